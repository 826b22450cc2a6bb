"""Structured output: the final answer validated as a pydantic model, with one metered retry that shows the
model its validation error."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import BudgetExceeded, ModelError
from ..meter import MeteredRun
from ..models.messages import Message, ModelSettings
from .prompts import extract_answer

__all__ = ["answer_nudge", "parse_output", "repair_output", "schema_instructions"]

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def _shape(output_type: type[BaseModel]) -> str:
    """The object's keys with their JSON types, as a template a small model can fill in."""
    schema = output_type.model_json_schema()
    parts = []
    for name, prop in schema.get("properties", {}).items():
        kind = (
            prop.get("type")
            or "|".join(str(p.get("type", "value")) for p in prop.get("anyOf", []))
            or "value"
        )
        parts.append(f'"{name}": <{kind}>')
    return "{" + ", ".join(parts) + "}"


def schema_instructions(output_type: type[BaseModel]) -> str:
    """What the system prompt adds: the answer is one JSON object of this shape (and the full schema)."""
    schema = json.dumps(output_type.model_json_schema(), separators=(",", ":"))
    return (
        "Your final answer, inside <answer></answer>, must be one JSON object with your values filled in, "
        f"no prose around it, in this shape: {_shape(output_type)}. Do not repeat the schema. "
        f"Its JSON schema, for reference: {schema}"
    )


def answer_nudge(output_type: type[BaseModel]) -> str:
    """The final-answer request (``{reason}`` still to fill) asking for the JSON object."""
    return (
        "{reason} No more tool calls are possible. Give your final answer now from what you found, inside "
        f"<answer></answer>, as one JSON object in this shape: {_shape(output_type)}".replace("{", "{{")
        .replace("}", "}}")
        .replace("{{reason}}", "{reason}")
    )


def parse_output(output_type: type[BaseModel], text: str | None) -> tuple[BaseModel | None, str | None]:
    """The validated model, or None and what was wrong (short enough to show the model)."""
    if not text:
        return None, "the answer is empty"
    body = text.strip()
    if fenced := _FENCE.match(body):
        body = fenced.group(1)
    try:
        return output_type.model_validate_json(body), None
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()[:8]
        )
        return None, f"the answer does not match the schema: {errors}"


async def repair_output(
    run: MeteredRun,
    output_type: type[BaseModel],
    system: str,
    question: str,
    answer: str | None,
    problem: str,
    settings: ModelSettings,
    max_tokens: int,
) -> tuple[BaseModel | None, str | None, list[Message], str | None]:
    """One more model call (metered, role ``output``) asking for a corrected answer: the output, what was
    still wrong, the messages of the exchange and the new answer text."""
    ask = Message.user(
        f"Your answer was: {answer or '(none)'}\nIt was rejected: {problem}.\nReply with the corrected answer "
        f"inside <answer></answer>: only the JSON object, in this shape: {_shape(output_type)}"
    )
    messages = [Message.system(system), Message.user(question), Message.assistant(answer or ""), ask]
    ask_settings = ModelSettings(**settings)
    ask_settings["json_schema"] = output_type.model_json_schema()
    try:
        response = await run.models.ask(
            messages, role="output", max_tokens=max_tokens, settings=ask_settings, use_hold=True
        )
    except BudgetExceeded as exc:
        return None, f"{problem}; no budget was left to ask again ({exc})", [], answer
    except ModelError as exc:
        return None, f"{problem}; asking again failed ({exc})", [], answer
    reply = response.message.content
    text = extract_answer(reply)
    output, error = parse_output(output_type, text)
    return output, error, [ask, Message.assistant(reply)], text


def dump(output: Any) -> Any:
    return output.model_dump(mode="json") if isinstance(output, BaseModel) else None
