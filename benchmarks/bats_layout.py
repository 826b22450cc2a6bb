"""BATS's acting context on the embedded model: the run's state in the system message, or after the trajectory.

    python benchmarks/bats_layout.py [--questions 3] [--budget 5]

With ``BATSOptions(layout="system")`` the checklist and the queries already used sit in the system message, which
changes after every tool call, so the model's prefix cache can reuse only what comes before them; with
``"tail"`` they come last. Each of the first N HotpotQA questions (``../shared/data``) runs under both layouts,
one after the other; the table gives per episode the prompt tokens evaluated and taken from the cache, the
tokens and wall time, and the answer with its exact match, then medians and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from budgetgraph.envs.base import Task
from budgetgraph.envs.hotpotqa import HotpotQAEnv
from budgetgraph.models.local import LocalModel

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hotpotqa" / "hotpot_dev_hard_350.jsonl"
LAYOUTS = ("system", "tail")


@dataclass(frozen=True)
class Episode:
    seconds: float
    reused: int
    evaluated: int
    tokens: int
    answer: str
    em: float

    @property
    def reused_share(self) -> float:
        return self.reused / max(self.reused + self.evaluated, 1)


async def episode(env: HotpotQAEnv, model: LocalModel, task: Task, layout: str, budget: str) -> Episode:
    agent = env.agent(model, f"bats[bats_layout={layout}]", env.budget(budget))
    started = time.perf_counter()
    result = await agent.arun(task.question)
    usage = result.usage
    return Episode(
        time.perf_counter() - started,
        usage.cached_input_tokens,
        usage.input_tokens - usage.cached_input_tokens,
        usage.total_tokens,
        result.answer or "",
        env.score(task, result)["em"],
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--budget", default="5")
    args = parser.parse_args()
    env = HotpotQAEnv(DATA, max_tokens=300)
    model = LocalModel()
    rows: dict[str, list[Episode]] = {layout: [] for layout in LAYOUTS}
    table = Table(title=f"BATS at budget {args.budget} on the embedded model, by acting-context layout")
    for col in ("question", "layout", "evaluated", "reused", "reused %", "tokens", "s", "EM", "answer"):
        table.add_column(col, justify="left" if col in ("question", "layout", "answer") else "right")
    for task in env.tasks()[: args.questions]:
        for layout in LAYOUTS:  # one after the other on each question, so load drifts hit both alike
            e = await episode(env, model, task, layout, args.budget)
            rows[layout].append(e)
            table.add_row(
                task.id[:10],
                layout,
                str(e.evaluated),
                str(e.reused),
                f"{100 * e.reused_share:.0f}",
                str(e.tokens),
                f"{e.seconds:.0f}",
                f"{e.em:.0f}",
                e.answer[:40],
            )
    console = Console(width=160)
    console.print(table)

    def med(layout: str, key: str) -> float:
        return statistics.median(float(getattr(e, key)) for e in rows[layout])

    summary = Table(title="medians over the questions")
    for col in ("layout", "evaluated", "reused", "s", "EM (sum)"):
        summary.add_column(col, justify="left" if col == "layout" else "right")
    for layout in LAYOUTS:
        summary.add_row(
            layout,
            f"{med(layout, 'evaluated'):.0f}",
            f"{med(layout, 'reused'):.0f}",
            f"{med(layout, 'seconds'):.0f}",
            f"{sum(e.em for e in rows[layout]):.0f}",
        )
    console.print(summary)
    same = sum(a.answer == b.answer for a, b in zip(rows["system"], rows["tail"], strict=True))
    console.print(
        f"tail / system: evaluated tokens {med('tail', 'evaluated') / max(med('system', 'evaluated'), 1):.2f}, "
        f"wall time {med('tail', 'seconds') / max(med('system', 'seconds'), 1e-9):.2f}; "
        f"the same answer on {same} of {len(rows['tail'])} questions"
    )


if __name__ == "__main__":
    asyncio.run(main())
