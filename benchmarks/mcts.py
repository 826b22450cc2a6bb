"""Model-free cost-augmented MCTS on generated costplan tasks: exact-match rate by task size, nodes per second,
and how fast an infeasible budget is reported.

    python benchmarks/mcts.py [--tasks 50] [--iterations 300] [--seed 7]
"""

from __future__ import annotations

import argparse
import statistics

from rich.console import Console
from rich.table import Table

from budgetgraph.envs.costplan import _Problem
from budgetgraph.envs.costplan_world import World, generate_tasks
from budgetgraph.planners.mcts import mcts_search


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    table = Table(
        title=f"model-free MCTS, {args.tasks} tasks per level, {args.iterations} iterations, budget 1.5x optimal"
    )
    for col in (
        "level",
        "stages",
        "tools",
        "exact match",
        "cost ratio (median)",
        "nodes/s (median)",
        "ms per search",
        "infeasible found",
        "ms per infeasible",
    ):
        table.add_column(col, justify="right")
    for level in (1, 2, 3, 4, 5):
        tasks = generate_tasks(args.tasks, args.seed, level=level)
        exact, ratios, rates, times, infeasible, inf_times = 0, [], [], [], 0, []
        for task in tasks:
            world = World(task)
            problem = _Problem(world)
            found = mcts_search(problem, 0, world.reference_cost * 1.5, iterations=args.iterations, seed=1)
            exact += found.feasible and abs(found.cost - world.reference_cost) < 1e-6
            ratios.append(found.cost / world.reference_cost)
            rates.append(found.nodes / found.seconds if found.seconds else 0.0)
            times.append(found.seconds * 1000)
            tight = mcts_search(problem, 0, world.reference_cost * 0.95, iterations=args.iterations)
            infeasible += not tight.feasible
            inf_times.append(tight.seconds * 1000)
        table.add_row(
            str(level),
            str(level + 3),
            str(len(tasks[0].tools)),
            f"{exact / len(tasks):.2f}",
            f"{statistics.median(ratios):.3f}",
            f"{statistics.median(rates):,.0f}",
            f"{statistics.median(times):.1f}",
            f"{infeasible}/{len(tasks)}",
            f"{statistics.median(inf_times):.3f}",
        )
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
