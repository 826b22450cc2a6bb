"""The newcomer's pages: every code block is run as written by CI (``.ci/readme_blocks.py``); here, fast
checks that the blocks can run on a fresh clone at all (no ``../shared``, files that exist, output printed)."""

from __future__ import annotations

import ast
import importlib.util
import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("readme_blocks", ROOT / ".ci" / "readme_blocks.py")
assert _spec is not None and _spec.loader is not None
readme_blocks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(readme_blocks)


def test_ci_runs_every_block_and_the_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python .ci/readme_blocks.py" in ci
    found = readme_blocks.blocks()
    assert {page for page, *_ in found} == set(readme_blocks.PAGES)
    tests = [code for _, _, _, code in found if readme_blocks.TEST_COMMAND in code]
    assert len(tests) == 1  # the README's test command, which .ci/run's first step runs as written
    install, _, run = tests[0].strip().partition(" && ")
    assert install in ci and run in ci


def test_no_block_needs_what_a_fresh_clone_lacks():
    for page, n, lang, code in readme_blocks.blocks():
        assert "../shared" not in code, f"{page} block {n} reads ../shared, which a newcomer does not have"
        if lang != "bash":
            continue
        words = shlex.split(code.replace("\\\n", " "), comments=True)
        for flag, value in zip(words, words[1:], strict=False):
            if flag in ("--data", "--corpus"):
                assert (ROOT / value).exists(), f"{page} block {n}: {flag} {value} is not in the repository"


def test_python_blocks_print_what_they_compute():
    for page, n, lang, code in readme_blocks.blocks():
        if lang != "python":
            continue
        tree = ast.parse(code)
        last = tree.body[-1]
        bare = isinstance(last, ast.Expr) and not (
            isinstance(last.value, ast.Call) and getattr(last.value.func, "id", "") == "print"
        )
        assert not bare, f"{page} block {n} ends in a bare expression: run as a file, it prints nothing"
        assert re.search(r"\bprint\(", code), f"{page} block {n} prints nothing"
