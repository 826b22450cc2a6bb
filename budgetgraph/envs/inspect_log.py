"""A results file as inspect_ai eval logs (``inspect`` extra): one ``EvalLog`` per (model, planner, budget)
cell, written with inspect_ai's own types, so ``inspect view`` and ``read_eval_log`` open them.

Each sample carries its messages and tool calls, its scores, its usage (tokens per model and per role), the
budget's limits, the units each tool used, the unified cost and the stop reason (a budget stop is an inspect
sample limit: tool calls and dollars as ``cost``, tokens as ``token``, seconds as ``time``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, cast

from .._extras import require
from ..budget.limits import tool_key
from .report import summarize

__all__ = ["write_inspect_logs"]

_LIMIT_TYPES = {"seconds": "time", "input_tokens": "token", "output_tokens": "token", "total_tokens": "token"}


def _messages(transcript: Sequence[Mapping[str, Any]]) -> list[Any]:
    from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageTool, ChatMessageUser
    from inspect_ai.tool import ToolCall

    out: list[Any] = []
    for m in transcript:
        role, content = m.get("role"), str(m.get("content") or "")
        if role == "system":
            out.append(ChatMessageSystem(content=content))
        elif role == "user":
            out.append(ChatMessageUser(content=content))
        elif role == "assistant":
            calls = [
                ToolCall(
                    id=str(c.get("id")), function=str(c.get("name")), arguments=dict(c.get("arguments") or {})
                )
                for c in m.get("tool_calls") or []
            ]
            out.append(ChatMessageAssistant(content=content, tool_calls=calls or None))
        elif role == "tool":
            out.append(ChatMessageTool(content=content, tool_call_id=m.get("tool_call_id")))
    return out


def _sample(record: Mapping[str, Any], model: str) -> Any:
    from inspect_ai.log import EvalSample, EvalSampleLimit
    from inspect_ai.model import ModelOutput, ModelUsage
    from inspect_ai.scorer import Score

    usage = record.get("usage") or {}
    tokens = ModelUsage(
        input_tokens=int(usage.get("input_tokens", 0)),
        output_tokens=int(usage.get("output_tokens", 0)),
        total_tokens=int(usage.get("total_tokens", 0)),
        input_tokens_cache_read=int(usage.get("cached_input_tokens", 0)) or None,
        total_cost=float(usage.get("usd", 0.0)),
    )
    roles = {
        role: ModelUsage(
            input_tokens=int(v.get("input_tokens", 0)),
            output_tokens=int(v.get("output_tokens", 0)),
            total_tokens=int(v.get("input_tokens", 0)) + int(v.get("output_tokens", 0)),
        )
        for role, v in (usage.get("by_role") or {}).items()
    }
    stop = str(record.get("stop_reason", ""))
    limits = dict(record.get("limits") or {})
    limit = None
    if stop.startswith("budget_exhausted"):
        resource = stop.split(":", 1)[-1].strip()
        key = resource if resource in limits else tool_key(resource)
        value = limits.get(key, limits.get(resource, 0))
        kind = _LIMIT_TYPES.get(resource, "cost" if resource == "usd" else "custom")
        limit = EvalSampleLimit(
            type=cast(Literal["time", "token", "cost", "custom"], kind), limit=float(value or 0)
        )
    answer = None if record.get("answer") is None else str(record["answer"])
    scores = {k: Score(value=float(v), answer=answer) for k, v in (record.get("scores") or {}).items()}
    gold = record.get("gold")
    target = (
        [str(g) for g in gold]
        if isinstance(gold, list) and all(isinstance(g, str) for g in gold)
        else str(gold)
    )
    answer = str(record.get("answer") or "")
    return EvalSample(
        id=str(record["task_id"]),
        epoch=1,
        input=next(
            (str(m.get("content")) for m in record.get("transcript") or [] if m.get("role") == "user"), ""
        ),
        target=target,
        messages=_messages(record.get("transcript") or []),
        output=ModelOutput.from_content(model, answer),
        scores=scores,
        metadata={
            "budget": record.get("budget"),
            "budget_limits": limits,
            "tool_calls": usage.get("tool_calls", {}),
            "usd": usage.get("usd", 0.0),
            "llm_calls": usage.get("llm_calls", 0),
            "stop_reason": stop,
            "error": record.get("error"),
        },
        model_usage={model: tokens},
        role_usage=roles,
        total_time=float(usage.get("seconds", 0.0)) or None,
        limit=limit,
        error=None,
    )


def write_inspect_logs(
    header: Mapping[str, Any] | None, records: Sequence[Mapping[str, Any]], folder: Path
) -> list[Path]:
    """Write one ``.eval`` log per (model, planner, budget) cell into ``folder``; returns their paths."""
    require("inspect_ai", "inspect")
    from inspect_ai.log import (
        EvalConfig,
        EvalDataset,
        EvalLog,
        EvalMetric,
        EvalPlan,
        EvalPlanStep,
        EvalResults,
        EvalScore,
        EvalSpec,
        EvalStats,
        write_eval_log,
    )
    from inspect_ai.model import ModelUsage

    info = dict((header or {}).get("env_info") or {})
    env = str(info.get("env", "budgetgraph"))
    created = str((header or {}).get("started") or "")
    cells: dict[tuple[str, str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        cells[(str(r["model"]), str(r["planner"]), str(r["budget"]))].append(r)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for (model, planner, budget), recs in sorted(cells.items()):
        row = summarize(recs)[0]
        samples = [_sample(r, model) for r in recs]
        total = ModelUsage(
            input_tokens=sum(int((r.get("usage") or {}).get("input_tokens", 0)) for r in recs),
            output_tokens=sum(int((r.get("usage") or {}).get("output_tokens", 0)) for r in recs),
            total_tokens=sum(int((r.get("usage") or {}).get("total_tokens", 0)) for r in recs),
            total_cost=sum(float((r.get("usage") or {}).get("usd", 0.0)) for r in recs),
        )
        metrics = {
            "accuracy": EvalMetric(name="accuracy", value=row.accuracy),
            "stderr": EvalMetric(name="stderr", value=row.se),
            "mean_cost_usd": EvalMetric(name="mean_cost_usd", value=row.cost),
            "mean_tokens": EvalMetric(name="mean_tokens", value=row.tokens),
        }
        log = EvalLog(
            status="success",
            eval=EvalSpec(
                created=created or "1970-01-01T00:00:00+00:00",
                task=f"budgetgraph/{env}",
                dataset=EvalDataset(name=str(info.get("data", env)), samples=len(recs)),
                model=model,
                config=EvalConfig(),
                solver=planner,
                metadata={"budget": budget, "env_info": info, "config": (header or {}).get("config")},
            ),
            plan=EvalPlan(name=planner, steps=[EvalPlanStep(solver=planner, params={"budget": budget})]),
            results=EvalResults(
                total_samples=len(recs),
                completed_samples=len(recs) - row.errors,
                scores=[EvalScore(name="correct", scorer="budgetgraph", metrics=metrics)],
            ),
            stats=EvalStats(started_at=created, completed_at=created, model_usage={model: total}),
            samples=samples,
        )
        safe = "-".join(x.replace("/", "_").replace(":", "_") for x in (env, model, planner, budget))
        path = folder / f"{safe}.eval"
        write_eval_log(log, str(path))
        paths.append(path)
    return paths
