"""Run every code block of the newcomer's pages as written, in a fresh clone with no ``../shared`` beside it.

Each ```bash block runs in ``bash -euo pipefail`` and each ```python block as a file, from the clone's root,
with the environment this script runs in (CI activates the locked 3.11 virtual environment first). One block
is not run here: the README's test command, which ``.ci/run`` runs verbatim as its first step. A block fails
on a non-zero exit, and a Python block also when it prints nothing (it would leave a newcomer staring at an
empty terminal). Usage: ``python .ci/readme_blocks.py [--list]``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("README.md", "docs/getting-started.md")
BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```", re.S | re.M)
TEST_COMMAND = "python -m pytest"  # the README's test block: .ci/run's first step runs it verbatim


def blocks(root: Path = ROOT) -> list[tuple[str, int, str, str]]:
    """(page, number on the page, language, code) of every bash / python block of the pages."""
    found = []
    for page in PAGES:
        text = (root / page).read_text(encoding="utf-8")
        for n, match in enumerate(BLOCK.finditer(text), 1):
            found.append((page, n, match.group(1), match.group(2)))
    return found


def run_here(page: str, n: int, lang: str, code: str, clone: Path) -> tuple[int, float, str]:
    if lang == "bash":
        cmd = ["bash", "-euo", "pipefail", "-c", code]
    else:
        script = clone.parent / f"{Path(page).stem}_{n}.py"
        script.write_text(code, encoding="utf-8")
        cmd = [sys.executable, str(script)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=clone, capture_output=True, text=True, timeout=1200)
    seconds = time.perf_counter() - started
    out = proc.stdout + proc.stderr
    if proc.returncode == 0 and lang == "python" and not proc.stdout.strip():
        return 1, seconds, out + "\n(the block printed nothing)"
    return proc.returncode, seconds, out


def main() -> int:
    todo = blocks()
    if "--list" in sys.argv:
        for page, n, lang, code in todo:
            print(f"{page} #{n} ({lang}): {code.splitlines()[0][:100]}")
        return 0
    failed = 0
    with tempfile.TemporaryDirectory(prefix="readme-") as tmp:
        clone = Path(tmp) / "budgetgraph"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        assert not (clone.parent / "shared").exists()
        for page, n, lang, code in todo:
            label = f"{page} block {n} ({lang})"
            if TEST_COMMAND in code:
                print(f"-- {label}: the test command, run verbatim by .ci/run's first step", flush=True)
                continue
            rc, seconds, out = run_here(page, n, lang, code, clone)
            print(f"-- {label}: exit {rc} in {seconds:.0f} s", flush=True)
            tail = "\n".join(out.strip().splitlines()[-12:])
            print("   " + tail.replace("\n", "\n   "), flush=True)
            failed += rc != 0
    print(f"{len(todo)} blocks, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
