"""SALE (papers.md section 6): agents of different sizes bid with short strategy plans, a cost-value auction
picks who executes, and agents cheaper than the provisional winner refine their bids from the auction memory.

Every call goes through the metering layer on the run's ledger, under its own role (``bid``, ``jury``,
``refine``), so the auction's share of the spend is in ``usage.by_role``; the winner executes on a child
ledger with its plan as instructions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..budget.ledger import Ledger
from ..budget.prices import PriceTable
from ..errors import BudgetExceeded
from ..meter import ModelMeter
from ..models.messages import Message, ModelSettings
from ..planners.sale import Bid, SaleWeights, score_bids, winner
from .auction_memory import AuctionMemory
from .options import Bidder
from .result import Delegated, StopReason, SubRunner

__all__ = ["BID_PROMPT", "JURY_PROMPT", "REFINE_PROMPT", "Auction", "Bidder", "Sale"]

BID_PROMPT = (
    "You are bidding for the job of solving the task below. Write your strategy plan: at most 5 short numbered "
    "steps, no code, under 100 words.\n\nTask:\n{task}"
)
JURY_PROMPT = (
    "Task:\n{task}\n\nA proposed strategy plan:\n{plan}\n\nHow likely is it that an agent following this plan "
    "solves the task correctly? Reply with a single digit from 0 (hopeless) to 5 (certain)."
)
REFINE_PROMPT = (
    "On similar past tasks, your plans lost to better plans:\n\n{pairs}\n\nLearn from how the winning plans "
    "differ from yours. Write your strategy plan for the task below: at most 5 short numbered steps, no code, "
    "under 100 words.\n\nTask:\n{task}"
)
EXECUTE_INSTRUCTIONS = "Follow this strategy plan:\n{plan}"
_DIGIT = re.compile(r"[0-5]")


@dataclass(slots=True)
class Auction:
    """One auction: the bids (refined ones replace their originals), plans, C - V scores and the winner."""

    bids: list[Bid]
    plans: list[str]
    scores: list[float]
    winner: int
    provisional: int
    refined: list[str] = field(default_factory=list)

    def details(self) -> dict[str, Any]:
        return {
            "winner": self.bids[self.winner].agent,
            "provisional": self.bids[self.provisional].agent,
            "refined": self.refined,
            "scores": {b.agent: round(s, 4) for b, s in zip(self.bids, self.scores, strict=True)},
            "entropy": {b.agent: None if b.entropy is None else round(b.entropy, 4) for b in self.bids},
            "jury": {b.agent: dict(b.jury) for b in self.bids},
            "plan_tokens": {b.agent: b.tokens for b in self.bids},
        }


class Sale:
    """The auction and the execution. ``execute(bidder, plan)`` builds the agent that runs the winner's plan."""

    def __init__(
        self,
        pool: Sequence[Bidder],
        execute: Callable[[Bidder, str], SubRunner],
        *,
        weights: SaleWeights | None = None,
        memory: AuctionMemory | None = None,
        prices: PriceTable | None = None,
        bid_tokens: int = 160,
        refine: bool = True,
        k: int = 8,
    ) -> None:
        if len(pool) < 1 or len({b.name for b in pool}) != len(pool):
            raise ValueError("SALE needs a pool of agents with distinct names")
        self.pool = list(pool)
        self.execute = execute
        self.weights = weights or SaleWeights()
        self.memory = memory if memory is not None else AuctionMemory()
        self.prices = prices or PriceTable()
        self.bid_tokens = bid_tokens
        self.refine = refine
        self.k = k

    def _meter(self, bidder: Bidder, ledger: Ledger) -> ModelMeter:
        return ModelMeter(bidder.model, ledger, self.prices)

    async def _plan(
        self, bidder: Bidder, ledger: Ledger, prompt: str, role: str
    ) -> tuple[str, int, float | None]:
        response = await self._meter(bidder, ledger).ask(
            [Message.user(prompt)],
            role=role,
            max_tokens=self.bid_tokens,
            settings=ModelSettings(temperature=0.0, entropy=True),
        )
        text = response.message.content.strip()
        return text, max(1, response.usage.output_tokens), response.entropy

    async def _jury(self, task: str, plan: str, ledger: Ledger) -> dict[str, float]:
        scores: dict[str, float] = {}
        for juror in self.pool:
            response = await self._meter(juror, ledger).ask(
                [Message.user(JURY_PROMPT.format(task=task, plan=plan))], role="jury", max_tokens=4
            )
            found = _DIGIT.search(response.message.content)
            scores[juror.name] = float(found.group()) if found else 0.0
        return scores

    async def _bid(
        self, bidder: Bidder, task: str, ledger: Ledger, prompt: str, role: str
    ) -> tuple[Bid, str]:
        plan, tokens, entropy = await self._plan(bidder, ledger, prompt, role)
        jury = await self._jury(task, plan, ledger)
        return Bid(bidder.name, bidder.price, tokens, entropy, jury), plan

    async def auction(self, task: str, ledger: Ledger) -> Auction:
        bids, plans = [], []
        for bidder in self.pool:
            bid, plan = await self._bid(bidder, task, ledger, BID_PROMPT.format(task=task), "bid")
            bids.append(bid)
            plans.append(plan)
        scores = score_bids(bids, self.weights)
        first = winner(bids, self.weights)
        result = Auction(bids, plans, scores, first, first)
        if self.refine:
            await self._refine(task, ledger, result)
        self.memory.record(
            task,
            {b.agent: p for b, p in zip(result.bids, result.plans, strict=True)},
            {b.agent: s for b, s in zip(result.bids, result.scores, strict=True)},
            result.bids[result.winner].agent,
        )
        return result

    async def _refine(self, task: str, ledger: Ledger, auction: Auction) -> None:
        """Only agents cheaper than the provisional winner refine, from their lost (plan, winning plan) pairs."""
        best = auction.scores[auction.provisional]
        leader_price = self.pool[auction.provisional].price
        candidates: list[tuple[float, int, Bid, str]] = []
        for i, bidder in enumerate(self.pool):
            if bidder.price >= leader_price:
                continue
            past = self.memory.contrast(task, bidder.name, self.k)
            if not past:
                continue
            pairs = "\n\n".join(
                f"Past task: {p.task[:400]}\nYour plan (lost):\n{p.plan}\nWinning plan:\n{p.winner_plan}"
                for p in past[:3]
            )
            prompt = REFINE_PROMPT.format(pairs=pairs, task=task)
            bid, plan = await self._bid(bidder, task, ledger, prompt, "refine")
            trial = list(auction.bids)
            trial[i] = bid
            score = score_bids(trial, self.weights)[i]
            auction.refined.append(bidder.name)
            if score < best:
                candidates.append((score, i, bid, plan))
        if candidates:
            score, i, bid, plan = min(candidates, key=lambda c: c[0])
            auction.bids[i], auction.plans[i] = bid, plan
            auction.scores = score_bids(auction.bids, self.weights)
            auction.winner = i

    async def run(self, task: str, ledger: Ledger) -> Delegated:
        """Auction, then the winner executes its plan on a child ledger (the delegating graph's contract)."""
        try:
            auction = await self.auction(task, ledger)
        except BudgetExceeded as exc:
            return Delegated(
                None, (), StopReason("budget_exhausted", exc.resource, str(exc)), {"auction": "refused"}
            )
        chosen = self.pool[auction.winner]
        agent = self.execute(chosen, auction.plans[auction.winner])
        result = await agent.arun(task, ledger=ledger.child())
        return Delegated.of(result, auction.details())
