"""SALE's training data from results files, and the weight fit: the bids of a ``sale`` sweep's auctions, and
each pool agent's own outcome on the same tasks from its single-model sweep (who would have solved it, at what
cost), on a seeded train split of the tasks."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..planners.sale import Bid, SaleWeights, TrainingTask, fit_weights
from .results import ResultsFile

__all__ = ["fit_from_results", "training_tasks"]


def _episodes(path: str | Path) -> list[dict[str, Any]]:
    _header, records = ResultsFile(Path(path)).read()
    return [r for r in records if not r.get("error")]


def training_tasks(
    auctions: str | Path,
    alone: Mapping[str, str | Path],
    prices: Mapping[str, float],
    *,
    cost_weight: float = 0.1,
    planner: str | None = None,
    budget: str | None = None,
) -> dict[str, TrainingTask]:
    """Per task id: the auction's bids (from the ``details`` of ``sale`` episodes) and, for each agent of
    ``alone`` (agent name -> its results file), loss = 1 - correct + ``cost_weight`` x its tokens' cost
    share (the dearest agent's tokens on the task = 1). ``planner`` and ``budget`` pick the single-agent
    cell when a file holds several; a task with two episodes left for one agent is refused as ambiguous."""
    outcome: dict[str, dict[str, tuple[float, float]]] = {}
    for agent, path in alone.items():
        for r in _episodes(path):
            if (planner and r.get("planner") != planner) or (budget and str(r.get("budget")) != budget):
                continue
            if agent in outcome.get(r["task_id"], {}):
                raise ConfigError(
                    f"{path} holds more than one episode of {r['task_id']} for {agent} (planners or budgets "
                    "besides the one to fit on): pass --planner and --budget to pick the cell"
                )
            tokens = float((r.get("usage") or {}).get("total_tokens", 0))
            outcome.setdefault(r["task_id"], {})[agent] = (float(r["scores"].get("correct", 0)), tokens)
    tasks: dict[str, TrainingTask] = {}
    for r in _episodes(auctions):
        details = r.get("details") or {}
        if "plan_tokens" not in details or r["task_id"] not in outcome:
            continue
        agents = list(details["plan_tokens"])
        seen = outcome[r["task_id"]]
        if any(a not in seen or a not in prices for a in agents):
            continue
        bids = [
            Bid(
                a,
                prices[a],
                int(details["plan_tokens"][a]),
                details["entropy"].get(a),
                details["jury"].get(a, {}),
            )
            for a in agents
        ]
        costs = [prices[a] * seen[a][1] for a in agents]
        top = max(costs) or 1.0
        loss = [1.0 - seen[a][0] + cost_weight * c / top for a, c in zip(agents, costs, strict=True)]
        tasks[r["task_id"]] = TrainingTask(bids, loss)
    if not tasks:
        raise ConfigError(
            "no task has both a sale auction and every pool agent's own episode: run the sale sweep and each "
            "agent's single-model sweep on the same tasks first"
        )
    return tasks


def fit_from_results(
    auctions: str | Path,
    alone: Mapping[str, str | Path],
    prices: Mapping[str, float],
    out: str | Path,
    *,
    train_share: float = 0.5,
    seed: int = 0,
    planner: str | None = None,
    budget: str | None = None,
) -> tuple[SaleWeights, list[str], list[str]]:
    """Fit on a seeded ``train_share`` of the tasks, write the weights as JSON (``sale[weights=FILE]`` reads
    it), and return them with the train and held-out task ids."""
    tasks = training_tasks(auctions, alone, prices, planner=planner, budget=budget)
    ids = sorted(tasks)
    random.Random(seed).shuffle(ids)
    cut = max(1, int(len(ids) * train_share))
    train, held = sorted(ids[:cut]), sorted(ids[cut:])
    jurors = sorted({j for t in train for b in tasks[t].bids for j in b.jury})
    weights = fit_weights([tasks[t] for t in train], jurors)
    payload = {
        "cost": weights.cost,
        "entropy": weights.entropy,
        "jury": dict(weights.jury),
        "train_tasks": train,
        "held_out_tasks": held,
    }
    Path(out).write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return weights, train, held
