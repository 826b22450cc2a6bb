"""An orchestrator that decomposes a task, picks sub-agents with the knapsack composer, and delegates each
sub-task under a child ledger carved from what it has left (architecture rule 6).

A child ledger reserves through its parent, so a sub-agent can spend neither more than its share nor more
than the parent has; what it leaves unspent is simply never charged and stays with the parent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from ..budget.ledger import Ledger
from ..budget.limits import Budget
from ..budget.prices import PriceTable
from ..errors import ConfigError
from ..meter import ModelMeter
from ..models.base import ChatModel
from ..models.messages import Message
from ..models.registry import infer_model
from ..planners.knapsack import Component, select
from ..tools.base import Tool
from .delegating import ask_once, child_shares, hold_synthesis, raise_overrun
from .prompts import extract_answer
from .result import Delegated, RunResult, StopReason, SubRunner

__all__ = ["Orchestrator", "SubAgent", "SubAgentRunner"]

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an and are as at be by did do does for from how in is it its of on or the to was were what when where "
    "which who whom why with".split()
)


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


DECOMPOSE = (
    "Split the task into 1 to {n} short, self-contained sub-questions that together answer it. Reply with a JSON "
    'list of strings only, e.g. ["...", "..."].\n\nTask: {question}'
)
SYNTHESIZE = (
    "Task: {question}\n\nFindings of the sub-agents:\n{findings}\n\nGive the final answer to the task inside "
    "<answer></answer>, as short as possible (a name, a date, yes or no)."
)


@dataclass
class SubAgent:
    """A worker with its own model, tools and prices. ``cost`` estimates one delegation (knapsack weight, in
    the budget's unit for ``unit``: dollars or tool calls); ``value`` is its prior usefulness."""

    name: str
    description: str
    tools: Sequence[Tool] = ()
    model: str | ChatModel | None = None
    prices: PriceTable | None = None
    cost: Decimal | float = 1
    value: float = 1.0
    planner: str = "tracker"
    agent: SubRunner | None = field(default=None, repr=False)


class SubAgentRunner(Protocol):
    """Builds the sub-run of a :class:`SubAgent` on its share: ``budgetgraph.Agent`` itself does
    (``Orchestrator(..., runner=Agent)``); the ``orchestrator`` planner passes its agent's ``spawn``."""

    def __call__(
        self,
        model: Any,
        tools: Sequence[Tool] = (),
        budget: Budget | None = None,
        *,
        planner: str = ...,
        prices: PriceTable | None = None,
        max_tokens: int = ...,
    ) -> SubRunner: ...


@dataclass(frozen=True, slots=True)
class Delegation:
    sub_question: str
    sub_agent: str
    budget: dict[str, Any]
    result: RunResult | None
    note: str = ""


class Orchestrator:
    """``Orchestrator(model, [SubAgent(...), ...], budget, runner=Agent).arun(question)`` -> :class:`RunResult`;
    ``runner`` builds each sub-agent's run (a sub-agent with its own ``agent`` needs none)."""

    def __init__(
        self,
        model: str | ChatModel,
        sub_agents: Sequence[SubAgent],
        budget: Budget | str | None = None,
        *,
        runner: SubAgentRunner | None = None,
        prices: PriceTable | None = None,
        max_subtasks: int = 3,
        max_tokens: int = 256,
        unit: str = "tool_calls",
    ) -> None:
        if not sub_agents:
            raise ConfigError("an orchestrator needs at least one SubAgent")
        if runner is None and any(sa.agent is None for sa in sub_agents):
            raise ConfigError(
                "an orchestrator builds its sub-agents' runs with runner= (e.g. runner=budgetgraph.Agent), or "
                "each SubAgent brings its own agent="
            )
        self.runner = runner
        self.model = infer_model(model)
        self.sub_agents = list(sub_agents)
        self.budget = Budget.parse(budget) if isinstance(budget, str) else (budget or Budget())
        self.prices = prices or PriceTable()
        self.max_subtasks = max_subtasks
        self.max_tokens = max_tokens
        self.unit = unit
        self.delegations: list[Delegation] = []

    async def _ask(self, ledger: Ledger, prompt: str, role: str) -> str | None:
        meter = ModelMeter(self.model, ledger, self.prices)
        response = await ask_once(meter, [Message.user(prompt)], role=role, max_tokens=self.max_tokens)
        return None if response is None else response.message.content

    def _choose(self, ledger: Ledger, question: str) -> list[SubAgent]:
        """Knapsack over the sub-agents: value = prior value x relevance to the task, cost = estimate."""
        words = _words(question)
        room = ledger.remaining(self.unit)
        comps = []
        for sa in self.sub_agents:
            overlap = len(words & _words(sa.description))
            comps.append(Component(sa.name, sa.cost, sa.value * (1 + overlap), sa))
        chosen = select(comps, room) if room is not None else comps
        return [c.payload for c in sorted(chosen, key=lambda c: -c.value)] or [self.sub_agents[0]]

    async def arun(self, question: str, *, ledger: Ledger | None = None) -> RunResult:
        live = ledger or Ledger(self.budget)
        transcript: list[Message] = [Message.user(question)]
        hold_synthesis(self.model, live, self.prices, self.max_tokens)
        text = await self._ask(live, DECOMPOSE.format(n=self.max_subtasks, question=question), "plan")
        subs = _parse_list(text or "")[: self.max_subtasks] or [question]
        transcript.append(Message.assistant(json.dumps(subs)))
        team = self._choose(live, question)
        findings = []
        for i, sub_q in enumerate(subs):
            words = _words(sub_q)
            worker = max(team, key=lambda s: (len(words & _words(s.description)), s.value))
            share = child_shares(live, [1.0] * (len(subs) - i), tools=worker.tools)[0]
            child = live.child(share)
            agent = worker.agent or self._runner()(
                worker.model or self.model,
                worker.tools,
                share,
                planner=worker.planner,
                prices=worker.prices or self.prices,
                max_tokens=self.max_tokens,
            )
            result = await agent.arun(sub_q, ledger=child)
            raise_overrun(result)
            self.delegations.append(Delegation(sub_q, worker.name, share.to_dict(), result))
            transcript.extend(result.messages)
            findings.append(f"- {sub_q} -> {result.answer or '(no answer)'}")
        final = await self._ask(
            live, SYNTHESIZE.format(question=question, findings="\n".join(findings)), "answer"
        )
        answer = extract_answer(final) if final else (findings[-1].split("-> ", 1)[-1] if findings else None)
        transcript.append(Message.assistant(final or ""))
        return RunResult.of(answer, StopReason("answered"), live, transcript)

    def _runner(self) -> SubAgentRunner:
        assert self.runner is not None  # checked when the orchestrator was made
        return self.runner

    async def delegate(self, question: str, ledger: Ledger) -> Delegated:
        """The delegating graph's work (the orchestrator planner of ``Agent``)."""
        return Delegated.of(await self.arun(question, ledger=ledger))


def _parse_list(text: str) -> list[str]:
    match = re.search(r"\[.*\]", text, re.DOTALL)
    if not match:
        return []
    try:
        items = json.loads(match.group(0))
    except json.JSONDecodeError:
        return []
    return [str(x).strip() for x in items if isinstance(x, str | int | float) and str(x).strip()]
