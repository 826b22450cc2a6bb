"""The environment protocol: tasks, the episode an agent runs on one, and its score."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..agents.agent import Agent
from ..agents.options import LEGACY_KEYWORDS, option_names
from ..agents.planners import planner_options
from ..agents.registry import PLANNERS, get_planner
from ..agents.result import RunResult
from ..budget.limits import Budget
from ..budget.prices import PriceTable
from ..errors import ConfigError
from ..models.base import ChatModel
from ..tools.base import Tool

__all__ = ["CorpusQAEnv", "Env", "Task", "build_agent", "parse_budget_value"]


@dataclass(frozen=True, slots=True)
class Task:
    """One evaluation item. ``gold`` is whatever the environment's scorer compares against."""

    id: str
    question: str
    gold: Any
    meta: Mapping[str, Any] = field(default_factory=dict)


def parse_budget_value(value: str, capped_tools: Sequence[str]) -> Budget:
    """A budget in the one grammar (:meth:`Budget.parse`): ``"5"`` is 5 calls of each capped tool."""
    return Budget.parse(value, capped_tools)


class Env(ABC):
    """An evaluation environment. Subclasses give tasks, run one episode and score it.

    ``run_episode`` gets a shared model; it must charge everything it spends to a ledger built from
    ``budget`` and return the agent's :class:`RunResult`.
    """

    name: str = "env"
    kind: str = "research"
    """The kind of task (one of ``TASK_KINDS``): a planner runs here when its registry entry lists it."""
    capped_tools: tuple[str, ...] = ()

    @abstractmethod
    def tasks(self) -> Sequence[Task]: ...

    @abstractmethod
    async def run_episode(self, task: Task, model: ChatModel, planner: str, budget: Budget) -> RunResult: ...

    @abstractmethod
    def score(self, task: Task, result: RunResult) -> dict[str, float]:
        """Scores for one episode; ``correct`` (0 or 1) is the accuracy the report uses."""

    def budget(self, value: str) -> Budget:
        return parse_budget_value(value, self.capped_tools)

    def budget_for(self, task: Task, value: str) -> Budget:
        """The budget of one episode; environments with task-relative budgets override this."""
        return self.budget(value)

    def describe(self) -> dict[str, Any]:
        """What identifies this environment's data, for the results header."""
        return {"env": self.name}

    def category(self, task: Task) -> str | None:
        return None

    def answer_key(self, task: Task) -> Callable[[str | None], Hashable] | None:
        """How answers to ``task`` are grouped for a vote (None: as text); coding groups code by behaviour."""
        return None

    def zero_scores(self) -> dict[str, float]:
        """The scores of an episode that failed with an error."""
        return {"correct": 0.0}

    def check_planner(self, planner: str) -> None:
        """Raise ConfigError before a run starts when ``planner`` (a label: ``name[options]``) cannot run here."""
        name, _options = planner_options(planner)
        spec = get_planner(name)
        if self.kind not in spec.kinds:
            fits = [n for n in PLANNERS if self.kind in PLANNERS[n].kinds]
            raise ConfigError(
                f"planner {name!r} does not run {self.name} ({self.kind} tasks); planners that do: {', '.join(fits)}"
            )
        if spec.build is None:
            raise ConfigError(f"planner {planner!r} does not run {self.name}: {spec.where}")


def build_agent(
    model: ChatModel,
    tools: Sequence[Tool],
    label: str,
    *,
    options: Mapping[str, Any] | None = None,
    **agent: Any,
) -> Agent:
    """The agent of a planner label (``bats[bats_mode=full]``): ``agent`` are ``Agent``'s arguments, ``options``
    the environment's option defaults, set where the planner's options have the field (``answer_key`` for
    the planners that vote, ``world`` for mcts); the label's own options win. Its runs take their budget."""
    known = {f for n in PLANNERS for f in option_names(PLANNERS[n].options)}
    defaults: dict[str, Any] = {}
    for key, value in (options or {}).items():
        field = LEGACY_KEYWORDS.get(key, key)
        if field not in known:
            raise ConfigError(f"{key!r} is not an option of any planner")
        defaults[field] = value
    name, chosen = planner_options(label, defaults)
    return Agent(model, tools, planner=name, options=chosen, **agent)


class CorpusQAEnv(Env):
    """Question answering over a local corpus with the ``search``/``open`` tools; scored by EM and F1."""

    capped_tools = ("search", "open")

    def __init__(
        self,
        tools: Sequence[Tool],
        *,
        prices: PriceTable | None = None,
        max_turns: int = 30,
        max_tokens: int = 512,
    ) -> None:
        self._tools = list(tools)
        self._prices = prices
        self._max_turns = max_turns
        self._max_tokens = max_tokens
        self._agents: dict[tuple[str, str, int], Agent] = {}

    def agent(self, model: ChatModel, planner: str) -> Agent:
        """One compiled agent per (model, planner), reused by every episode and budget of the sweep."""
        key = (model.name, planner, id(model))
        if key not in self._agents:
            self.check_planner(planner)
            self._agents[key] = build_agent(
                model,
                self._tools,
                planner,
                prices=self._prices,
                max_turns=self._max_turns,
                max_tokens=self._max_tokens,
                answer_style="short",  # scored by exact match against short gold spans
            )
        return self._agents[key]

    async def run_episode(self, task: Task, model: ChatModel, planner: str, budget: Budget) -> RunResult:
        return await self.agent(model, planner).arun(task.question, budget=budget)

    def zero_scores(self) -> dict[str, float]:
        return {"correct": 0.0, "em": 0.0, "f1": 0.0}
