"""Shows: a qa evaluation (your own questions and corpus as JSONL) swept over planners x budgets, then the report.

python examples/qa_eval.py             # the scripted model, into a temporary folder
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

from budgetgraph.envs import EvalSpec, run_eval
from budgetgraph.envs.report import render_rows, summarize

QUESTIONS = [
    {"id": "q1", "question": "Which town holds the Lantern Festival?", "answers": ["Tarnow Bay"]},
    {"id": "q2", "question": "Who designed the Lumen Remote?", "answers": ["Ada Voss"]},
]
CORPUS = [
    {"id": "d1", "title": "Tarnow Bay", "text": "Tarnow Bay holds the Lantern Festival every spring."},
    {"id": "d2", "title": "Ada Voss", "text": "Ada Voss designed the Lumen Remote, a projector remote."},
    {"id": "d3", "title": "Halvern", "text": "Halvern is the capital of Veldmark."},
]


def write(path: Path, rows: list[dict[str, object]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = EvalSpec(
            env="qa",
            env_options={
                "data": write(folder / "q.jsonl", QUESTIONS),
                "corpus": write(folder / "c.jsonl", CORPUS),
                "cache_dir": str(folder / "cache"),
            },
            model="scripted",
            planners=("react", "tracker"),
            budgets=("1", "2"),
        )
        out = folder / "results.jsonl"
        summary = await run_eval(spec, out, progress=False)
        print(f"{summary.ran} episodes, {summary.errors} errors")
        episodes = [json.loads(x) for x in out.read_text().splitlines() if '"episode"' in x]
        from rich.console import Console

        Console(width=160).print(render_rows(summarize(episodes)))


if __name__ == "__main__":
    asyncio.run(main())
