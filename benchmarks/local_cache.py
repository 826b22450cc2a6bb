"""The embedded model's prompt-state cache: turns that alternate between two contexts, with and without it.

    python benchmarks/local_cache.py [--rounds 3] [--tokens 1000]

BATS alternates an act prompt (question, checklist, tool results) with a verify prompt; without saved prompt
states llama.cpp keeps only the last prompt's KV cache, so every switch re-evaluates the whole other prompt. Each
round here makes one call on context A then one on context B, each grown by a line, as an agent's would be.
Times are per call (prompt evaluation plus one generated token), medians over the rounds after the first.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from budgetgraph.models.local import LocalModel, _Engine

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hotpotqa" / "hotpot_dev_hard_350.jsonl"


def _prompt(system: str, body: str) -> str:
    return (
        f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{body}<|im_end|>\n<|im_start|>assistant\n"
    )


def run(cache_bytes: int, rounds: int, text_a: str, text_b: str) -> tuple[list[float], int, int]:
    engine = _Engine(LocalModel().path, 8192, None, cache_bytes)  # its own context, not the shared one
    times: list[float] = []
    a, b = _prompt("You act.", text_a), _prompt("You verify.", text_b)
    for i in range(rounds):
        for base in (a, b):
            prompt = base + f"Step {i}.\n"
            started = time.perf_counter()
            engine.generate(prompt, {"max_tokens": 1, "temperature": 0.0}, None)
            times.append(time.perf_counter() - started)
    n_a, n_b = engine.count(a), engine.count(b)
    engine.llm.close()
    return times, n_a, n_b


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=1000, help="about this many tokens per context")
    args = parser.parse_args()
    text = DATA.read_text(encoding="utf-8")
    chars = args.tokens * 4
    text_a, text_b = text[:chars], text[chars : 2 * chars]
    table = Table(title=f"alternating two contexts, {args.rounds} rounds (one call on each per round)")
    for col in ("cache", "prompt tokens A / B", "first round s", "later calls s (median)", "speed-up"):
        table.add_column(col, justify="right")
    medians: dict[str, float] = {}
    for label, size in (("off", 0), ("on (2 GiB)", 2 << 30)):
        times, n_a, n_b = run(size, args.rounds, text_a, text_b)
        medians[label] = statistics.median(times[2:])
        speed = "" if label == "off" else f"{medians['off'] / medians[label]:.1f}x"
        table.add_row(label, f"{n_a} / {n_b}", f"{sum(times[:2]):.1f}", f"{medians[label]:.2f}", speed)
    Console().print(table)


if __name__ == "__main__":
    main()
