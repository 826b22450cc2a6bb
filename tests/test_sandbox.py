"""The sandbox that runs model-written code: each escape the coding environment must stop, on every isolation
this machine offers, and the calling process survives each."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from budgetgraph.errors import ConfigError
from budgetgraph.tools.sandbox import Sandbox, SandboxLimits, available_isolation

ORDER = ("none", "unshare", "bwrap")
MODES = [m for m in ORDER if ORDER.index(m) <= ORDER.index(available_isolation())]
LIMITS = SandboxLimits(cpu_seconds=2, wall_seconds=4, memory_mb=256, file_mb=2, disk_mb=8, max_files=16)


@pytest.fixture(params=MODES)
def sandbox(request: pytest.FixtureRequest) -> Sandbox:
    return Sandbox(LIMITS, isolation=request.param)


def test_ci_gets_the_strongest_isolation() -> None:
    if os.environ.get("BUDGETGRAPH_REQUIRE_SANDBOX"):
        assert available_isolation() == "bwrap", "CI installs bubblewrap: the sandbox must use it"


def test_ordinary_code_runs_and_prints(sandbox: Sandbox) -> None:
    r = sandbox.run("import math, collections, itertools, re, typing\nprint(math.factorial(5))")
    assert (r.status, r.stdout.strip()) == ("ok", "120")


def test_an_exception_is_an_error_with_the_candidates_traceback(sandbox: Sandbox) -> None:
    r = sandbox.run("def f():\n    return 1 / 0\nf()\n")
    assert r.status == "error" and r.returncode == 1
    assert 'File "solution.py", line 2, in f' in r.stderr and "ZeroDivisionError" in r.stderr
    assert "guard" not in r.stderr  # the guard's own frames are not shown


def test_a_file_outside_its_directory_cannot_be_read(sandbox: Sandbox, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the hidden tests")
    for path in (secret, Path(__file__), Path("/etc/hostname")):
        r = sandbox.run(f"print(open({str(path)!r}).read())")
        assert r.status == "error", path
        assert "the hidden tests" not in r.stdout
        assert "PermissionError" in r.stderr or "FileNotFoundError" in r.stderr
    r = sandbox.run(f"import os\nprint(os.listdir({str(tmp_path)!r}))")
    assert r.status == "error" and "secret.txt" not in r.stdout


def test_its_own_directory_is_writable_and_starts_empty(sandbox: Sandbox) -> None:
    r = sandbox.run("import os\nopen('a.txt', 'w').write('x')\nprint(sorted(os.listdir('.')))")
    assert r.status == "ok", r.stderr
    assert r.stdout.strip() == "['a.txt', 'solution.py']"


def test_no_network(sandbox: Sandbox) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted: list[object] = []
    server.settimeout(3)
    waiter = threading.Thread(target=lambda: _accept(server, accepted))
    waiter.start()
    r = sandbox.run(
        f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('connected')"
    )
    waiter.join()
    server.close()
    assert r.status == "error" and "connected" not in r.stdout
    assert accepted == []


def _accept(server: socket.socket, out: list[object]) -> None:
    try:
        out.append(server.accept())
    except OSError:
        pass


def test_a_fork_bomb_is_stopped(sandbox: Sandbox) -> None:
    before = _children()
    r = sandbox.run("import os\nwhile True:\n    os.fork()\n")
    assert r.status in ("error", "killed", "timeout")
    r = sandbox.run("import subprocess\nsubprocess.run(['sh', '-c', 'echo escaped'])")
    assert r.status == "error" and "escaped" not in r.stdout
    r = sandbox.run("import multiprocessing\nmultiprocessing.Process(target=print).start()")
    assert r.status == "error"
    assert _children() <= before


def _children() -> int:
    me = str(os.getpid())
    count = 0
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and (d / "stat").read_text().split()[3] == me:
                count += 1
        except OSError:
            continue
    return count


def test_the_disk_cannot_be_filled(sandbox: Sandbox) -> None:
    r = sandbox.run("i = 0\nwhile True:\n    open(f'f{i}', 'wb').write(b'x' * 1_500_000)\n    i += 1\n")
    assert r.status in ("error", "killed")
    assert any(s in r.stderr for s in ("No space left", "File too large", "more than", "PermissionError"))
    r = sandbox.run("open('big', 'wb').write(b'x' * 50_000_000)")  # one file over file_mb
    assert r.status in ("error", "killed")


def test_it_cannot_outlive_its_time_limits(sandbox: Sandbox) -> None:
    start = time.monotonic()
    r = sandbox.run("import time\ntime.sleep(60)")
    assert r.status == "timeout" and time.monotonic() - start < LIMITS.wall_seconds + 3
    r = sandbox.run("while True:\n    pass\n")
    assert r.status in ("cpu", "timeout")
    assert "CPU time limit" in r.stderr or r.status == "timeout"


def test_memory_is_capped(sandbox: Sandbox) -> None:
    r = sandbox.run("x = bytearray(1_000_000_000)\nprint('allocated')")
    assert r.status == "memory" and "allocated" not in r.stdout


def test_it_cannot_signal_the_agent_process(sandbox: Sandbox) -> None:
    r = sandbox.run(f"import os, signal\nos.kill({os.getpid()}, signal.SIGKILL)")
    assert r.status == "error" and "not allowed" in r.stderr
    r = sandbox.run("import ctypes\nctypes.CDLL(None).kill(1, 9)")
    assert r.status == "error" and "not allowed" in r.stderr


def test_output_is_cut_at_the_limit(sandbox: Sandbox) -> None:
    small = Sandbox(SandboxLimits(output_chars=100), isolation=sandbox.mode)
    r = small.run("print('y' * 10_000)")
    assert r.status == "ok" and r.truncated and len(r.stdout) == 100


def test_an_unavailable_isolation_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import budgetgraph.tools.sandbox as sb

    monkeypatch.setattr(sb, "available_isolation", lambda: "none")
    with pytest.raises(ConfigError, match="install bubblewrap"):
        Sandbox(isolation="bwrap")
    with pytest.raises(ConfigError, match="positive"):
        SandboxLimits(wall_seconds=0)
