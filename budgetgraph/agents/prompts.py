"""System prompts of the built-in planners and the answer extraction."""

from __future__ import annotations

import re
from typing import Literal

from ..budget.block import REGIME_POLICY, RegimePolicy, render_policy
from ..budget.tool_block import render_tool_policy
from .need import strip_need

__all__ = [
    "ANSWER_NOW",
    "AnswerStyle",
    "answer_format",
    "answer_manner",
    "answer_now",
    "extract_answer",
    "system_prompt",
]

AnswerStyle = Literal["full", "short", "code"]
"""``full``: an answer in a sentence or two (a name or number alone when that is all that is asked);
``short``: the shortest span (what exact-match scoring wants: HotpotQA, the ``qa`` environment);
``code``: a complete Python function in a fenced block (the coding environment)."""

_FORMAT: dict[str, str] = {
    "full": "reply with the final answer inside <answer></answer>, in one or two sentences of your own that "
    "say what the documents say (a name, date or number alone when that is all the question asks), e.g. "
    "<answer>The library opened in 1905.</answer>",
    "short": "reply with the final answer only, inside <answer></answer>, as short as possible: a name, date, "
    "number or short phrase, e.g. <answer>1905</answer>",
    "code": "reply with the complete function (with its imports) inside <answer></answer>, in one ```python "
    "block",
}
_NOW_FORMAT = {
    "full": "in one or two sentences",
    "short": "as short as possible",
    "code": "as the complete Python function in one ```python block",
}

_BASE = (
    "You are a careful research agent. Do not answer from memory or from these instructions: first use the "
    "tools to find the facts you need, and answer from what they return. Search with short keyword queries, open the most promising documents, and reason step by step. "
    "Call tools only as the tool-call format says. When the documents you read support an answer, {format}."
)

ANSWER_NOW = (
    "{reason} No more tool calls are possible. Give your best final answer now from what you found, "
    "inside <answer></answer>, {format}."
)


def answer_format(style: AnswerStyle) -> str:
    """The answer-format sentence of a style, for prompts written outside this module."""
    return _FORMAT[style]


def answer_manner(style: AnswerStyle = "full") -> str:
    """How an answer of the style is written (``in one or two sentences``), for requests that ask for one."""
    return _NOW_FORMAT[style]


def answer_now(style: AnswerStyle = "full") -> str:
    """The final-answer nudge (``{reason}`` still to fill) in the given answer style."""
    return ANSWER_NOW.replace("{format}", _NOW_FORMAT[style])


_ANSWER = re.compile(r"<answer>\s*(.*?)\s*(?:</answer>|$)", re.DOTALL | re.IGNORECASE)
_TOOL_CALL = re.compile(r"<tool_(?:call|response)>.*?(?:</tool_(?:call|response)>|$)", re.DOTALL)
_PREFIX = re.compile(r"^\s*(?:final answer|answer)\s*[:\-]\s*", re.IGNORECASE)


def system_prompt(
    show_budget: bool,
    extra: str | None = None,
    base: str | None = None,
    policy: RegimePolicy = REGIME_POLICY,
    style: AnswerStyle = "full",
    per_tool: bool = False,
) -> str:
    """A planner that shows the budget (``tracker``) gets the regime policy (``per_tool``: the paper's policy
    of a regime per tool); the others (``react``, the baseline) get no budget information.

    ``base`` replaces the built-in research-agent prompt; ``extra`` is appended.
    """
    parts = [base or _BASE.format(format=_FORMAT[style])]
    if show_budget:
        parts.append(render_tool_policy() if per_tool else render_policy(policy))
    if extra:
        parts.append(extra)
    return "\n\n".join(parts)


def extract_answer(text: str) -> str:
    """The text inside the last ``<answer>`` tag, else the reply without an "Answer:" prefix.

    Tool-call blocks written as text (a small model does that even when no tools are offered) are not an answer,
    nor are tool results it echoes as ``<tool_response>`` blocks, nor the budget-aware stop's ``<need>``.
    """
    text = strip_need(_TOOL_CALL.sub("", text))
    found = _ANSWER.findall(text)
    if found:
        return str(found[-1]).strip()
    return _PREFIX.sub("", text.strip()).strip()
