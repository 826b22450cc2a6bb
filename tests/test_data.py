"""`budgetgraph data hotpotqa`: download over real HTTP from a local server, SHA-256 check, seeded subset."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from budgetgraph.cli import app
from budgetgraph.envs.hotpotqa import HotpotQAEnv
from budgetgraph.envs.hotpotqa_data import hard_subset, prepare_hotpotqa
from budgetgraph.errors import ConfigError


def _row(i: int, level: str) -> dict[str, object]:
    return {
        "_id": f"q{i:03d}",
        "question": f"Which town is paragraph {i} about?",
        "answer": f"Town{i}",
        "type": "bridge",
        "level": level,
        "supporting_facts": [[f"Title {i}", 0]],
        "context": [
            [f"Title {i}", [f"Town{i} is a town. ", "It has a river."]],
            ["Other", ["Nothing here."]],
        ],
    }


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str]:
    """A file in the official format (a JSON list, as distributed): 40 rows, 30 of them hard."""
    rows = [_row(i, "hard" if i % 4 else "medium") for i in range(40)]
    body = json.dumps(rows).encode()
    return body, hashlib.sha256(body).hexdigest()


@pytest.fixture(scope="module")
def server(official: tuple[bytes, str]) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1: /dev.json is the file, /broken.json a truncated copy, else 404."""
    body = official[0]
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            if self.path == "/big-unsized.json":  # three times the file, with no Content-Length
                self.send_response(200)
                self.end_headers()
                self.wfile.write(body * 3)
                return
            if self.path == "/drip.json":  # one byte every 0.2 s, for ever (the client gives up)
                self.send_response(200)
                self.end_headers()
                try:
                    for _ in range(100):
                        self.wfile.write(b"[")
                        self.wfile.flush()
                        time.sleep(0.2)
                except OSError:
                    pass
                return
            payload = {
                "/dev.json": body,
                "/broken.json": body[: len(body) // 2],
                "/big.json": body * 3,  # three times the file's size
            }.get(self.path)
            if payload is None:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_check_and_subset_are_reproducible(
    server: str, official: tuple[bytes, str], tmp_path: Path
) -> None:
    said: list[str] = []
    first = prepare_hotpotqa(
        tmp_path / "a", n=10, seed=3, url=f"{server}/dev.json", sha256=official[1], progress=said.append
    )
    assert first.name == "hotpot_dev_hard_10.jsonl"
    assert (tmp_path / "a" / "hotpot_dev_distractor_v1.json").read_bytes() == official[0]
    rows = [json.loads(line) for line in first.read_text().splitlines()]
    assert len(rows) == 10 and {r["level"] for r in rows} == {"hard"}
    assert [r["_id"] for r in rows] == sorted(r["_id"] for r in rows)
    assert any("SHA-256" in line for line in said)
    second = prepare_hotpotqa(tmp_path / "b", n=10, seed=3, url=f"{server}/dev.json", sha256=official[1])
    assert second.read_bytes() == first.read_bytes()
    other = prepare_hotpotqa(tmp_path / "c", n=10, seed=4, url=f"{server}/dev.json", sha256=official[1])
    assert other.read_bytes() != first.read_bytes()
    # the subset is a file the environment reads: its corpus pools the subset's paragraphs
    env = HotpotQAEnv(first, cache_dir=tmp_path / "cache")
    assert len(env.tasks()) == 10 and env.tasks()[0].meta["support"]
    # a second run finds the checked download and does not fetch again
    again: list[str] = []
    prepare_hotpotqa(
        tmp_path / "a", n=5, seed=3, url=f"{server}/nothing", sha256=official[1], progress=again.append
    )
    assert any("already here" in line for line in again)


def test_a_wrong_download_keeps_nothing(server: str, official: tuple[bytes, str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not the expected") as info:
        prepare_hotpotqa(tmp_path, n=5, url=f"{server}/broken.json", sha256=official[1])
    assert "corrupt" in str(info.value)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="HTTP 404"):
        prepare_hotpotqa(tmp_path, n=5, url=f"{server}/missing.json", sha256=official[1])
    assert list(tmp_path.iterdir()) == []


def test_offline_is_one_clear_line_naming_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["data", "hotpotqa", "--out", str(tmp_path), "--url", "http://127.0.0.1:9/dev.json"]
    )
    assert result.exit_code == 2
    assert "cannot download http://127.0.0.1:9/dev.json" in result.output
    assert "--from-file" in result.output
    assert "Traceback" not in result.output


def test_from_file_is_checked_too(official: tuple[bytes, str], tmp_path: Path) -> None:
    local = tmp_path / "dev.json"
    local.write_bytes(official[0])
    runner = CliRunner()
    ok = runner.invoke(
        app,
        ["data", "hotpotqa", "--out", str(tmp_path / "out"), "--from-file", str(local)]
        + ["--sha256", official[1], "--n", "4"],
    )
    assert ok.exit_code == 0, ok.output
    assert "eval hotpotqa --data" in ok.output
    assert len((tmp_path / "out" / "hotpot_dev_hard_4.jsonl").read_text().splitlines()) == 4
    bad = runner.invoke(app, ["data", "hotpotqa", "--out", str(tmp_path / "o2"), "--from-file", str(local)])
    assert bad.exit_code == 2 and "not the official file's" in bad.output


def test_the_subset_asks_for_no_more_than_there_is() -> None:
    rows = [_row(i, "hard") for i in range(3)]
    with pytest.raises(ConfigError, match="at most that many"):
        hard_subset(rows, 4)
    with pytest.raises(ConfigError, match="at least 1"):
        hard_subset(rows, 0)


def test_a_download_is_held_to_its_size_its_deadline_and_never_writes_through_a_link(
    server: str, official: tuple[bytes, str], tmp_path: Path
) -> None:
    from budgetgraph.envs.hotpotqa_data import download_checked

    dest = tmp_path / "dev.json"
    size = len(official[0])
    with pytest.raises(ConfigError, match=f"announces {3 * size:,} bytes"):
        download_checked(f"{server}/big.json", dest, official[1], max_bytes=size)
    with pytest.raises(ConfigError, match=f"more than {size:,} bytes"):
        download_checked(f"{server}/big-unsized.json", dest, official[1], max_bytes=size)
    assert list(tmp_path.iterdir()) == []
    started = time.monotonic()
    with pytest.raises(ConfigError, match="took longer than 1 s"):
        download_checked(f"{server}/drip.json", dest, official[1], deadline_s=1.0)
    assert time.monotonic() - started < 5 and list(tmp_path.iterdir()) == []
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "dev.json.part").symlink_to(victim)  # planted where the download writes first
    with pytest.raises(ConfigError, match="not the expected"):
        download_checked(f"{server}/broken.json", dest, official[1])
    assert victim.read_text() == "precious"
    (tmp_path / "dev.json.part").symlink_to(victim)
    download_checked(f"{server}/dev.json", dest, official[1])
    assert victim.read_text() == "precious" and dest.read_bytes() == official[0] and not dest.is_symlink()
