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
    "call {tools} on the result most likely to hold the answer, then answer from what it says."
)
"""Asked once of a research agent that answers before any reading tool ran while one is funded."""
