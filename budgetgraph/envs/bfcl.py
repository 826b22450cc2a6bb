"""BFCL v4 single-turn function calling: the listed functions are offered as tools; the call is the answer."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._files import loads, read_text
from ..agents.result import RunResult
from ..agents.single_call import recorded_calls
from ..budget.limits import Budget
from ..budget.prices import PriceTable
from ..errors import ConfigError
from ..models.base import ChatModel
from ..models.messages import Message, ModelSettings
from ..tools.base import Tool
from .base import Env, Task, build_agent
from .bfcl_check import calls_match

__all__ = ["BFCLEnv", "to_json_schema"]

CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance")
_TYPES = {
    "dict": "object",
    "float": "number",
    "tuple": "array",
    "int": "integer",
    "bool": "boolean",
    "list": "array",
}
SYSTEM = (
    "You are an expert in composing function calls. Given a question and a set of functions, make the "
    "function call(s) that answer it, with argument values taken from the question. If none of the functions "
    "fits the question, do not call any; say so briefly instead."
)


def to_json_schema(spec: Any) -> Any:
    """BFCL's Python-flavoured types (dict, float, tuple, any) as JSON Schema."""
    if isinstance(spec, list):
        return [to_json_schema(s) for s in spec]
    if not isinstance(spec, Mapping):
        return spec
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if key == "type":
            if value == "any":
                continue
            out["type"] = _TYPES.get(value, value)
        elif key in ("properties",):
            out[key] = {k: to_json_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = to_json_schema(value)
        else:
            out[key] = value
    return out


def _tool_name(name: str) -> str:
    """OpenAI-style APIs allow only ``[A-Za-z0-9_-]`` in names (BFCL does the same replacement)."""
    return name.replace(".", "_")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(read_text(path, "BFCL file").splitlines(), 1):
        if line.strip():
            try:
                rows.append(loads(line))
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
    return rows


def _category(path: Path) -> str:
    return path.stem.removeprefix("BFCL_v4_").removeprefix("BFCL_v3_")


class BFCLEnv(Env):
    """Tool-calling accuracy per BFCL category; ``irrelevance`` passes only when no function is called. It runs
    the ``single_call`` planner (its ``single_call`` kind): the model's calls are the answer.

    A number budget ``B`` caps the calls of each offered function: calls past it are refused and not scored.
    """

    name = "bfcl"
    kind = "single_call"

    def __init__(
        self,
        data: str | Path,
        *,
        categories: Sequence[str] | None = None,
        prices: PriceTable | None = None,
        max_tokens: int = 512,
        per_category: int | None = None,
    ) -> None:
        self.path = Path(data)
        self.per_category = per_category
        files = sorted(self.path.glob("BFCL_v*_*.json")) if self.path.is_dir() else [self.path]
        if not files or not all(f.is_file() for f in files):
            raise ConfigError(
                f"no BFCL files at {self.path}; point --data at a BFCL_v4_*.json file or its folder"
            )
        wanted = set(categories or CATEGORIES)
        self._prices = prices or PriceTable()
        self._max_tokens = max_tokens
        self._tasks: list[Task] = []
        for f in files:
            category = _category(f)
            if category not in wanted:
                continue
            if category not in CATEGORIES:
                raise ConfigError(
                    f"{f}: category {category!r} is not single-turn; supported: {', '.join(CATEGORIES)}"
                )
            answers: dict[str, Any] = {}
            if category != "irrelevance":
                answer_file = f.parent / "possible_answer" / f.name
                if not answer_file.is_file():
                    raise ConfigError(f"{f}: its answers are missing; expected {answer_file}")
                answers = {r["id"]: r["ground_truth"] for r in _read_jsonl(answer_file)}
            rows = _read_jsonl(f)
            for row in rows[:per_category] if per_category else rows:
                if category != "irrelevance" and row["id"] not in answers:
                    raise ConfigError(f"{f}: item {row['id']} has no entry in {f.parent / 'possible_answer'}")
                turns = (
                    row["question"][0]
                    if row["question"] and isinstance(row["question"][0], list)
                    else row["question"]
                )
                self._tasks.append(
                    Task(
                        row["id"],
                        json.dumps(turns, ensure_ascii=False),
                        answers.get(row["id"], []),
                        {"category": category, "functions": row["function"], "turns": turns},
                    )
                )
        if not self._tasks:
            raise ConfigError(f"no BFCL items for categories {sorted(wanted)} in {self.path}")

    def tasks(self) -> list[Task]:
        return list(self._tasks)

    def category(self, task: Task) -> str | None:
        return str(task.meta["category"])

    def budget_for(self, task: Task, value: str) -> Budget:
        """The one grammar over this task's functions: ``"2"`` is 2 calls of each function offered."""
        return Budget.parse(value, [_tool_name(f["name"]) for f in task.meta["functions"]])

    def tools(self, task: Task) -> list[Tool]:
        """The task's functions, declared only: the ``single_call`` planner records the calls, never runs them."""
        return [
            Tool.from_schema(
                _tool_name(f["name"]), f.get("description", ""), to_json_schema(f.get("parameters", {}))
            )
            for f in task.meta["functions"]
        ]

    async def run_episode(self, task: Task, model: ChatModel, planner: str, budget: Budget) -> RunResult:
        agent = build_agent(
            model,
            self.tools(task),
            planner,
            budget=budget,
            prices=self._prices,
            max_tokens=self._max_tokens,
            system_prompt=SYSTEM,
            settings=ModelSettings(temperature=0.0),
        )
        turns = [Message(role=t["role"], content=t["content"]) for t in task.meta["turns"]]
        return await agent.arun(turns if len(turns) > 1 else turns[0].content)

    def score(self, task: Task, result: RunResult) -> dict[str, float]:
        calls = _answer_calls(task, result)
        if task.meta["category"] == "irrelevance":
            return {"correct": float(not calls)}
        return {"correct": float(calls_match(calls, task.gold) is None)}

    def describe(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for t in self._tasks:
            counts[t.meta["category"]] = counts.get(t.meta["category"], 0) + 1
        return {"env": self.name, "data": str(self.path.resolve()), "categories": counts}


def _answer_calls(task: Task, result: RunResult) -> list[tuple[str, Mapping[str, Any]]]:
    """The calls of a ``single_call`` answer under BFCL's own function names (an answer in text has none)."""
    names = {_tool_name(f["name"]): f["name"] for f in task.meta["functions"]}
    calls = [next(iter(c.items())) for c in recorded_calls(result.answer) or ()]
    return [(names.get(n, n), a if isinstance(a, Mapping) else {}) for n, a in calls]
