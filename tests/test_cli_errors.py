"""What a newcomer meets first on the command line: a missing key or a server that cannot be reached is one
line and a non-zero exit, and a near miss of a planner, environment or model prefix says what was meant."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from budgetgraph.errors import ConfigError

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "budgetgraph.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.parametrize(
    ("model", "says"),
    [
        ("openai:gpt-4o-mini", "needs OPENAI_API_KEY"),
        ("anthropic:claude-haiku-4-5", "needs ANTHROPIC_API_KEY"),
        ("openai:m@http://127.0.0.1:9/v1", "Connection error"),  # nothing listens on port 9
    ],
)
def test_a_missing_key_or_an_unreachable_server_is_one_line_and_a_failure(model, says):
    proc = _cli("run", "What is a budget?", "--model", model, "--corpus", str(DOCS))
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) <= 3, lines
    assert says in " ".join(lines) and "Traceback" not in proc.stderr


def test_near_misses_say_what_was_meant():
    from budgetgraph.envs.registry import make_env
    from budgetgraph.models import infer_model

    with pytest.raises(
        ConfigError, match=r"Ollama serves the OpenAI API, so use openai:llama3@http://localhost:11434/v1"
    ):
        infer_model("ollama:llama3")
    with pytest.raises(ConfigError, match="did you mean 'openai'"):
        infer_model("opnai:gpt-4o")
    with pytest.raises(ConfigError, match="did you mean 'hotpotqa'"):
        make_env("hotpotq", data="x.jsonl")
    proc = _cli("run", "q", "--model", "scripted", "--planner", "trackr")
    assert proc.returncode != 0 and "did you mean 'tracker'" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("web", "says"),
    [
        ("brave", "BRAVE_SEARCH_API_KEY"),
        ("tavily", "TAVILY_API_KEY"),
        ("serxng:http://127.0.0.1:9", "did you mean 'searxng'"),
        ("searxng", "searxng:http://HOST:PORT"),
    ],
)
def test_a_web_backend_without_its_key_or_by_a_wrong_name_is_one_line(web, says):
    proc = _cli("run", "q", "--model", "scripted", "--web", web)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) <= 3, lines
    assert says in " ".join(lines) and "Traceback" not in proc.stderr


def test_run_help_lists_the_search_backends_from_their_registry():
    from budgetgraph.tools.search_backends import SEARCH_BACKENDS

    proc = _cli("run", "--help")
    flat = " ".join(proc.stdout.split())
    assert all(name in flat for name in SEARCH_BACKENDS)
