from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HOTPOT = DATA / "hotpotqa" / "hotpot_dev_hard_350.jsonl"
MINI = Path(__file__).resolve().parent / "data" / "multihop_mini.jsonl"
"""16 made-up questions in the HotpotQA format (two gold paragraphs and four others each), written for the
tests so that control-flow, BATS and runner tests run from a fresh clone; the real data is tested too."""


def hotpot_rows(limit: int) -> list[dict]:
    if not HOTPOT.exists():
        pytest.skip(f"shared data not found at {HOTPOT}")
    rows = []
    with HOTPOT.open() as fh:
        for line in fh:
            rows.append(json.loads(line))
            if len(rows) >= limit:
                break
    return rows


def _corpus(rows: list[dict], name: str, folder: Path):
    from budgetgraph.tools import Corpus, Document

    docs, seen = [], set()
    for row in rows:
        for title, sentences in row["context"]:
            text = "".join(sentences)
            if (title, text) not in seen:
                seen.add((title, text))
                docs.append(Document(f"{len(docs)}", title, text))
    return Corpus.from_documents(docs, name=name, cache_dir=folder)


@pytest.fixture(scope="session")
def hotpot20() -> list[dict]:
    return hotpot_rows(20)


@pytest.fixture(scope="session")
def hotpot_corpus(hotpot20, tmp_path_factory):
    """The paragraphs of 20 real HotpotQA questions (skips without ../shared/data)."""
    return _corpus(hotpot20, "hotpot20", tmp_path_factory.mktemp("corpora"))


@pytest.fixture(scope="session")
def mini_rows() -> list[dict]:
    return [json.loads(line) for line in MINI.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="session")
def mini_corpus(mini_rows, tmp_path_factory):
    """The paragraphs of the 16 made-up questions: always there."""
    return _corpus(mini_rows, "multihop_mini", tmp_path_factory.mktemp("corpora"))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    """Under pytest-xdist (``-n``), a test marked ``model`` runs alone, its fixtures' set-up and tear-down
    included, while the others run side by side: llama.cpp's threads spin, so a test beside them slows both
    far more than waiting costs. The wait is outside the test, so ``--durations`` shows the test's own time."""
    import os

    if "PYTEST_XDIST_WORKER" not in os.environ:
        return (yield)
    from filelock import ReadWriteLock

    # each worker's basetemp is a folder of the run's shared one
    lock = ReadWriteLock(Path(item.config.option.basetemp).parent / "cpus.lock")
    alone = item.get_closest_marker("model") is not None
    with lock.write_lock() if alone else lock.read_lock():
        return (yield)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked ``bwrap`` needs bubblewrap (the default sandbox refuses to run model-written code without
    it): it skips where bubblewrap is missing, unless BUDGETGRAPH_REQUIRE_SANDBOX=1 (CI sets it) makes that a
    failure."""
    if item.get_closest_marker("bwrap") is None:
        return
    import os

    from budgetgraph.tools.sandbox import available_isolation

    if available_isolation() != "bwrap":
        reason = "bubblewrap is not installed or cannot make namespaces here (apt-get install bubblewrap)"
        if os.environ.get("BUDGETGRAPH_REQUIRE_SANDBOX"):
            pytest.fail(reason + " and BUDGETGRAPH_REQUIRE_SANDBOX=1")
        pytest.skip(reason)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real Redis server (Debian's redis-server) on a free loopback port, for this test session. Where none is
    installed the tests skip, unless BUDGETGRAPH_REQUIRE_REDIS=1 (CI sets it) makes that a failure."""
    import os
    import shutil
    import subprocess
    import time

    pytest.importorskip(
        "redis", reason="the redis client is not installed (pip install 'budgetgraph[redis]')"
    )
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("BUDGETGRAPH_REQUIRE_REDIS") == "1":
            pytest.fail(reason + " and BUDGETGRAPH_REQUIRE_REDIS=1")
        pytest.skip(reason)
    import redis

    port = _free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail(f"redis-server did not answer on port {port}")
    yield url
    client.close()
    proc.terminate()
    proc.wait(timeout=10)


def check_ledger(result) -> None:
    """Every cap of a run held, and the per-role figures add up to its totals."""
    limits, spent = result.ledger["limits"], result.ledger["spent"]
    for key, cap in limits.items():
        assert float(spent.get(key, 0)) <= float(cap), (key, spent.get(key), cap)
    roles = result.usage.by_role
    assert sum(r["llm_calls"] for r in roles.values()) == result.usage.llm_calls
    assert sum(r["input_tokens"] for r in roles.values()) == result.usage.input_tokens
    assert sum(r["output_tokens"] for r in roles.values()) == result.usage.output_tokens
