"""One episode: run it, score it, and make its results line (an error is recorded, not raised). The local
runner and the Ray workers both run episodes through here."""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from .._redact import redact
from ..budget.shared import spending_from
from ..budget.store import Account
from ..models.base import ChatModel, sampling
from ..models.messages import ModelSettings
from .base import Env, Task

__all__ = ["episode_record", "failed_record", "jsonable"]


def _transcript(messages: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            "role": m.role,
            "content": m.content,
            **(
                {"tool_calls": [{"name": c.name, "arguments": dict(c.arguments)} for c in m.tool_calls]}
                if m.tool_calls
                else {}
            ),
        }
        for m in messages
    ]


async def episode_record(
    env: Env,
    task: Task,
    model: ChatModel,
    model_label: str,
    planner: str,
    budget: str,
    epoch: int = 0,
    seed: int | None = None,
    temperature: float | None = None,
    account: Account | None = None,
) -> dict[str, Any]:
    """Run one episode and return its results line; an error is recorded (and scored wrong), not raised.
    ``account``: a sweep-wide account every run of the episode also spends from."""
    base = _base(task, model_label, planner, budget, epoch, seed)
    override = ModelSettings()
    if seed is not None:
        override["seed"] = seed
    if temperature is not None:
        override["temperature"] = temperature
    token = sampling.set(override or None)  # every model call of the episode, sub-agents' too
    try:
        with spending_from(account):
            return await _episode(env, task, model, planner, budget, base)
    finally:
        sampling.reset(token)


def _base(
    task: Task, model_label: str, planner: str, budget: str, epoch: int, seed: int | None
) -> dict[str, Any]:
    return {
        "type": "episode",
        "task_id": task.id,
        "planner": planner,
        "budget": budget,
        "model": model_label,
        "gold": task.gold,
        "epoch": epoch,
        "seed": seed,
    }


def failed_record(
    env: Env,
    task: Task,
    model_label: str,
    planner: str,
    budget: str,
    epoch: int,
    seed: int | None,
    kind: str,
    error: str,
) -> dict[str, Any]:
    """The results line of an episode that could not finish where it ran (its worker process died): an
    error, scored wrong, so the sweep goes on; what it spent before is in the account, not in this line."""
    base = _base(task, model_label, planner, budget, epoch, seed)
    if (category := env.category(task)) is not None:
        base["category"] = category
    return {
        **base,
        "answer": None,
        "scores": env.zero_scores(),
        "stop_reason": f"error: {kind}",
        "error": redact(f"{kind}: {error}"),
        "usage": {},
        "wall_seconds": 0.0,
    }


async def _episode(
    env: Env, task: Task, model: ChatModel, planner: str, budget: str, base: dict[str, Any]
) -> dict[str, Any]:
    if (category := env.category(task)) is not None:
        base["category"] = category
    start = time.monotonic()
    try:
        result = await env.run_episode(task, model, planner, env.budget_for(task, budget))
        scores = env.score(task, result)
        scores.update(_pass_at_n(env, task, result))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return {
            **base,
            "answer": None,
            "scores": env.zero_scores(),
            "stop_reason": f"error: {type(exc).__name__}",
            "error": redact(f"{type(exc).__name__}: {exc}"),
            "traceback": redact(traceback.format_exc(limit=8)),
            "usage": {},
            "wall_seconds": round(time.monotonic() - start, 3),
        }
    error = result.stop_reason.message if result.stop_reason.kind == "error" else None
    return {
        **base,
        "answer": result.answer,
        "scores": scores if not error else {**scores, "correct": 0.0},
        "stop_reason": str(result.stop_reason),
        "error": error,
        "limits": dict(result.ledger.get("limits") or {}),  # what the budget label expanded to
        "usage": result.usage.to_dict(),
        "wall_seconds": round(time.monotonic() - start, 3),
        "transcript": _transcript(result.messages),
        "timeline": list(getattr(result, "timeline", ()) or ()),
        **({"details": jsonable(result.details)} if getattr(result, "details", None) else {}),
    }


def _pass_at_n(env: Env, task: Task, result: Any) -> dict[str, float]:
    """``pass_at_n``: 1 when any sampled episode's answer (a run that voted over samples records them all in
    its details) is correct, the oracle bound on what a vote or judge could pick."""
    answers = (getattr(result, "details", None) or {}).get("answers")
    if not isinstance(answers, list) or len(answers) < 2:
        return {}
    best = max(env.score(task, replace(result, answer=a)).get("correct", 0.0) for a in answers)
    return {"pass_at_n": float(best)}


def jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
