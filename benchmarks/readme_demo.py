"""The README's main command (``budgetgraph run ... --corpus docs --budget search=3,open=2``) on questions about
this project's docs, with the embedded default model: each answer, whether it holds an expected phrase, time.

    python benchmarks/readme_demo.py

The phrase check is a coarse first pass; read the answers too (the table prints them whole).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    ("What happens when a tool call does not fit the budget?", ("refused", "not run")),
    ("How are batched search calls counted?", ("per query", "one unit per", "each query")),
    ("What does the ledger keep in reserve for the final answer?", ("final answer call", "answer call")),
    ("What does the embedded local model cost?", ("nothing", "free", "no cost", "costs 0", "$0")),
    ("Which planner is the baseline that shows the model no budget?", ("react",)),
    ("What is the price of one corpus search call?", ("0.001",)),
    ("What does the CRITICAL regime tell the agent to do?", ("answer now",)),
]


def main() -> None:
    table = Table(
        title="budgetgraph run --corpus docs --budget search=3,open=2 (embedded model)", show_lines=True
    )
    for col in ("question", "answer", "phrase", "s"):
        table.add_column(col)
    hits = 0
    for question, phrases in QUESTIONS:
        started = time.perf_counter()
        cmd = ["budgetgraph", "run", question, "--corpus", "docs", "--budget", "search=3,open=2", "--json"]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            answer = f"(failed: {proc.stderr.strip()[-200:]})"
        else:
            answer = json.loads(proc.stdout).get("answer") or "(none)"
        hit = any(p in answer.lower() for p in phrases)
        hits += hit
        table.add_row(question, answer, "yes" if hit else "no", f"{time.perf_counter() - started:.0f}")
    Console(width=160).print(table)
    print(f"{hits} of {len(QUESTIONS)} answers hold an expected phrase", file=sys.stderr)


if __name__ == "__main__":
    main()
