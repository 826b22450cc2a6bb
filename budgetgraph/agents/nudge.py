"""The BATS paper's sequential baseline, "budget forcing" (papers.md section 1): each time the agent answers
while tool budget remains, it is told to keep using its tools; the run stops after five answers in a row."""

from __future__ import annotations

NUDGE = (
    "Wait, you still have remaining tool budget, use more tools to find and verify the facts before you "
    "answer again."
)
NUDGE_LIMIT = 5
"""Consecutive answers (turns without a tool call) after which the nudged run stops."""

READ_FIRST = (
    "Before you answer: you have not read any document yet, and search snippets are cut. Read first: "
    "call {tools} on the result most likely to hold the answer, then answer the question from what it says, "
    "inside <answer></answer>, {format}: in your own words, not the document's text."
)
"""Asked once of a research agent that answers before any reading tool ran while one is funded."""

READ_MORE = (
    "Before you answer: read one more document. A question that links two things needs both: call {tools} "
    "on the other result, or on the name the document you read points to, most likely to hold what is still "
    "missing, then answer the question from both, inside <answer></answer>, {format}."
)
"""Asked of an agent that answers after fewer reading calls than ``min_reads``, once per document missing."""
