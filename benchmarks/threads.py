"""How to split a CPU between llama.cpp processes: one process on every core, or several on a share each.

    python benchmarks/threads.py [--processes 2] [--tokens 128]

Runs the same prompt through the embedded model in one process with every core, then in ``--processes``
processes at once with ``cores // processes`` threads each (as ``BUDGETGRAPH_THREADS`` would set for sweeps
sharing the machine). The table gives each layout's prompt and reply throughput summed over its processes,
the ratio to the single process, and whether every process computed bit-identical logits for the prompt
(the determinism that lets a results file mix episodes run at different thread counts). Run it on an
otherwise idle machine.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

PROMPT = (
    "<|im_start|>system\nYou answer briefly.<|im_end|>\n<|im_start|>user\n"
    + "The ledger reserves an upper bound before every call and commits the truth after it. " * 20
    + "Explain in detail what the ledger does.<|im_end|>\n<|im_start|>assistant\n"
)


@dataclass(frozen=True)
class Run:
    prompt_tokens: int
    prompt_s: float
    reply_tokens: int
    reply_s: float
    logits_sha: str


def worker(threads: int, tokens: int) -> None:
    """One process: evaluate the prompt cold, hash its last logits, then decode ``tokens`` greedy tokens."""
    import numpy as np

    from budgetgraph.models.local import LocalModel, _Engine

    engine = _Engine(LocalModel().path, 2048, threads, 0)
    try:
        ids = engine.tokens(PROMPT)
        started = time.perf_counter()
        engine.llm.eval(ids)
        prompt_s = time.perf_counter() - started
        logits = np.ctypeslib.as_array(engine.llm._ctx.get_logits(), shape=(engine.llm.n_vocab(),))
        sha = hashlib.sha256(logits.tobytes()).hexdigest()[:12]
        started = time.perf_counter()
        produced = 0
        for _ in range(tokens):  # plain greedy decoding: the reply's cost without the sampler's
            token = int(np.argmax(np.ctypeslib.as_array(engine.llm._ctx.get_logits(), shape=(logits.size,))))
            if engine.llm.token_eos() == token:
                break
            engine.llm.eval([token])
            produced += 1
        reply_s = time.perf_counter() - started
    finally:
        engine.llm.close()
    print(f"RESULT {len(ids)} {prompt_s:.4f} {produced} {reply_s:.4f} {sha}", flush=True)


def launch(processes: int, threads: int, tokens: int) -> list[Run]:
    """Start ``processes`` workers at once and wait for all of them."""
    cmd = [sys.executable, __file__, "--worker", str(threads), "--tokens", str(tokens)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    runs = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"a worker failed (exit {proc.returncode}); run it alone to see why")
        line = next(x for x in out.splitlines() if x.startswith("RESULT "))
        n, ps, r, rs, sha = line.split()[1:]
        runs.append(Run(int(n), float(ps), int(r), float(rs), sha))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.tokens)
        return
    cores = os.cpu_count() or 2
    layouts = [(1, cores), (args.processes, max(cores // args.processes, 1))]
    results = {layout: launch(*layout, args.tokens) for layout in layouts}
    base_prompt = base_reply = 0.0
    shas = {run.logits_sha for runs in results.values() for run in runs}
    table = Table(title=f"llama.cpp on {cores} CPU cores: one process or {args.processes} sharing them")
    for column in ("processes x threads", "prompt tok/s (sum)", "ratio", "reply tok/s (sum)", "ratio"):
        table.add_column(column, justify="right")
    for (processes, threads), runs in results.items():
        prompt = sum(r.prompt_tokens / r.prompt_s for r in runs)
        reply = sum(r.reply_tokens / r.reply_s for r in runs)
        base_prompt, base_reply = base_prompt or prompt, base_reply or reply
        table.add_row(
            f"{processes} x {threads}",
            f"{prompt:.1f}",
            f"{prompt / base_prompt:.2f}",
            f"{reply:.1f}",
            f"{reply / base_reply:.2f}",
        )
    Console().print(table)
    print(f"prompt logits: {'bit-identical in every process' if len(shas) == 1 else f'{len(shas)} variants'}")


if __name__ == "__main__":
    main()
