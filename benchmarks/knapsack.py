"""The online (ZCL) composer against the offline knapsack optimum on generated instances.

    python benchmarks/knapsack.py [--instances 200] [--candidates 30] [--seed 0]

Each instance: candidates with integer costs 1-10 and hidden values (some broken, some useless) arrive in a
random order; the composer probes each and decides at once. The offline optimum knows every value.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from rich.console import Console
from rich.table import Table

from budgetgraph.planners.knapsack import Component, OnlineComposer, select


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--candidates", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    table = Table(title=f"{args.instances} instances x {args.candidates} candidates")
    for col in (
        "budget / total cost",
        "online value / offline optimum (median)",
        "mean",
        "min",
        "budget used (median)",
        "over budget",
        "offline ms (median)",
    ):
        table.add_column(col, justify="right")
    for share in (0.1, 0.25, 0.5):
        rng = random.Random(args.seed)
        ratios, used, over, dp_ms = [], [], 0, []
        for _ in range(args.instances):
            cands = [Component(f"c{i}", rng.randint(1, 10)) for i in range(args.candidates)]
            hidden = {c.name: rng.choice([None, 0.0] + [rng.uniform(0, 5)] * 4) for c in cands}
            budget = max(1, int(share * sum(c.cost for c in cands)))
            t0 = time.perf_counter()
            best = select([Component(c.name, c.cost, hidden[c.name] or 0.0) for c in cands], budget)
            dp_ms.append((time.perf_counter() - t0) * 1000)
            optimum = sum(c.value for c in best)
            composer = OnlineComposer.for_candidates(budget, [c.cost for c in cands], total_importance=5.0)
            got = composer.run(cands, lambda c, h=hidden: h[c.name])
            over += got.cost > budget
            used.append(got.cost / budget)
            ratios.append(got.value / optimum if optimum else 1.0)
        table.add_row(
            f"{share:.2f}",
            f"{statistics.median(ratios):.3f}",
            f"{statistics.fmean(ratios):.3f}",
            f"{min(ratios):.3f}",
            f"{statistics.median(used):.2f}",
            str(over),
            f"{statistics.median(dp_ms):.2f}",
        )
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
