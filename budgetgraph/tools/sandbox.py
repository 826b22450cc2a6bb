"""Run untrusted Python (model-written code) in a child process with limits, never in the agent's process.

Layers, each on where the machine allows it (``Sandbox.isolation`` says which ran):

- ``bwrap`` (bubblewrap): new user, PID, network, IPC and mount namespaces; the child sees only ``/usr``, the
  interpreter's own prefix and an empty size-limited tmpfs as its work directory; no network device but a
  loopback that is down; every process of the run dies with it.
- ``unshare`` (util-linux) when bwrap is missing: new network and PID namespaces, but the host file system.
- Always: rlimits (CPU seconds, address space, file size, open files, no core dumps), a wall-clock kill of the
  whole process group, output cut at a size, ``python -I -S`` in a fresh temporary directory with an empty
  environment, and an audit hook (``_sandbox_guard``) that refuses processes, signals, sockets, ctypes and any
  file outside the work directory (reads also in the interpreter's library).

What it does not stop is in ``docs/sandbox.md``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

from ..errors import ConfigError

__all__ = ["Isolation", "Sandbox", "SandboxLimits", "SandboxResult", "available_isolation"]

Isolation = Literal["bwrap", "unshare", "none"]
Status = Literal["ok", "error", "timeout", "cpu", "memory", "killed"]
_GUARD = Path(__file__).with_name("_sandbox_guard.py")
_log = logging.getLogger(__name__)
_POLL_S = 0.02


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Limits of one run. ``disk_mb`` bounds the work directory where it is a tmpfs (bwrap); ``file_mb`` every
    file anywhere; ``memory_mb`` each process's address space *and* the summed resident memory of the run's
    whole process tree, and ``processes`` how many processes that tree may hold (bubblewrap's own included):
    a watchdog reads the tree every 20 ms and kills it when either is passed."""

    cpu_seconds: float = 5.0
    wall_seconds: float = 10.0
    memory_mb: int = 512
    file_mb: int = 4
    disk_mb: int = 16
    open_files: int = 64
    max_files: int = 64
    output_chars: int = 20_000
    processes: int = 8

    def __post_init__(self) -> None:
        for name in (
            "cpu_seconds",
            "wall_seconds",
            "memory_mb",
            "file_mb",
            "disk_mb",
            "open_files",
            "processes",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError(f"SandboxLimits.{name} must be positive, got {getattr(self, name)!r}")


@dataclass(frozen=True, slots=True)
class SandboxResult:
    """What one run did. ``status``: ok (exit 0) | error (non-zero exit, e.g. an exception) | timeout (wall
    clock) | cpu (CPU seconds) | memory | killed (another signal)."""

    status: Status
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    isolation: Isolation
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def tail(self, chars: int = 1200) -> str:
        """The end of stderr (a traceback's last lines), else of stdout."""
        text = self.stderr.strip() or self.stdout.strip()
        return text if len(text) <= chars else "..." + text[-chars:]


def _works(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@cache
def available_isolation() -> Isolation:
    """The strongest isolation this machine allows (probed once per process)."""
    if shutil.which("bwrap") and _works(["bwrap", *_bwrap_base(), "--", "/bin/true"]):
        return "bwrap"
    if shutil.which("unshare") and _works(["unshare", *_unshare_args(), "true"]):
        return "unshare"
    return "none"


def _unshare_args() -> list[str]:
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    return [*user, "--net", "--pid", "--fork", "--kill-child"]


def _bwrap_base() -> list[str]:
    args = ["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    args += ["--uid", "65534", "--gid", "65534", "--ro-bind", "/usr", "/usr"]
    for link in ("lib", "lib64", "bin", "sbin"):
        target = Path("/") / link
        if target.is_symlink():
            args += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            args += ["--ro-bind", str(target), str(target)]
    return [*args, "--proc", "/proc", "--dev", "/dev"]


def _interpreter() -> tuple[str, str]:
    """The base interpreter (outside any virtual environment: candidates get the standard library only)."""
    exe = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    return exe, os.path.realpath(sys.base_prefix)


@dataclass(slots=True)
class Sandbox:
    """Runs a program in a fresh sandbox each time; ``run`` blocks (tools run it on the meter's threads).

    ``isolation="auto"`` takes the strongest available; naming one that is missing is a ConfigError.
    """

    limits: SandboxLimits = field(default_factory=SandboxLimits)
    isolation: Literal["auto", "bwrap", "unshare", "none"] = "auto"
    _mode: Isolation = field(init=False)

    def __post_init__(self) -> None:
        order = {"none": 0, "unshare": 1, "bwrap": 2}
        if self.isolation != "auto" and self.isolation not in order:
            raise ConfigError(f"isolation must be auto, bwrap, unshare or none, not {self.isolation!r}")
        found = available_isolation()
        if self.isolation == "auto":
            if found != "bwrap":
                raise ConfigError(
                    "the sandbox runs model-written code only under bubblewrap, which is not available here "
                    f"(the strongest isolation found: {found!r}). Install it (Debian: apt install bubblewrap) "
                    "and allow unprivileged user namespaces, or ask for a weaker isolation by name: "
                    f"Sandbox(isolation={found!r}) (budgetgraph eval coding --isolation {found}); every run "
                    "then warns"
                )
            self._mode = found
            return
        if order[self.isolation] > order[found]:
            raise ConfigError(
                f"sandbox isolation {self.isolation!r} is not available here (found {found!r}): install "
                "bubblewrap (Debian: apt install bubblewrap) and allow unprivileged user namespaces"
            )
        self._mode = self.isolation

    @property
    def mode(self) -> Isolation:
        return self._mode

    @property
    def warning(self) -> str | None:
        """What a run under weaker isolation than bubblewrap says (None under bubblewrap)."""
        if self._mode == "bwrap":
            return None
        guard = "the host file system is visible" if self._mode == "unshare" else "no namespaces at all"
        return (
            f"sandbox isolation {self._mode!r} (asked for by name): model-written code runs without "
            f"bubblewrap ({guard}); an in-process audit hook is its file guard"
        )

    def run(self, code: str) -> SandboxResult:
        if (warning := self.warning) is not None:
            _log.warning(warning)
        with tempfile.TemporaryDirectory(prefix="bg-sandbox-") as ctrl:
            return self._run(code, Path(ctrl))

    def _run(self, code: str, ctrl: Path) -> SandboxResult:
        lim = self.limits
        exe, prefix = _interpreter()
        work = ctrl / "work"
        work.mkdir()
        guard = str(_GUARD)
        readable = [prefix, "/usr/lib", "/usr/share/zoneinfo"]
        argv: list[str] = []
        if self._mode == "bwrap":
            readable = [prefix, "/usr/lib", "/usr/share/zoneinfo"]
            argv = ["bwrap", *_bwrap_base(), "--ro-bind", prefix, prefix]
            if not exe.startswith(prefix + "/"):
                argv += ["--ro-bind", exe, exe]
            argv += ["--ro-bind", guard, "/guard/guard.py"]
            argv += ["--size", str(lim.disk_mb << 20), "--tmpfs", "/sandbox", "--chdir", "/sandbox", "--"]
            guard, work_inside = "/guard/guard.py", "/sandbox"
        else:
            if self._mode == "unshare":
                argv = ["unshare", *_unshare_args()]
            work_inside = str(work)
        cfg = {
            "work": work_inside,
            "readable": readable,
            "cpu_seconds": lim.cpu_seconds,
            "memory_mb": lim.memory_mb,
            "file_mb": lim.file_mb,
            "open_files": lim.open_files,
            "max_files": lim.max_files,
        }
        argv += [exe, "-I", "-S", "-B", guard, json.dumps(cfg)]
        out_path, err_path = ctrl / "stdout", ctrl / "stderr"
        start = time.monotonic()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
                cwd=str(work),
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"},
                start_new_session=True,
                close_fds=True,
            )
            timed_out = False
            watch = _TreeWatch(proc.pid, lim.memory_mb << 20, lim.processes)
            try:
                watch.start()
                proc.communicate(code.encode("utf-8"), timeout=lim.wall_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                watch.stop()
                _kill_group(proc)
                watch.kill_all()
        seconds = time.monotonic() - start
        stdout, cut_out = _read(out_path, lim.output_chars)
        stderr, cut_err = _read(err_path, lim.output_chars)
        rc = proc.returncode
        status = watch.verdict or _status(rc, timed_out, stderr)
        if watch.verdict is not None:
            stderr += f"\nsandbox: {watch.reason}\n"
        return SandboxResult(status, rc, stdout, stderr, seconds, self._mode, cut_out or cut_err)


class _TreeWatch:
    """Bounds the run's whole process tree, not each process: every 20 ms it sums the resident memory of the
    root's descendants (read from /proc) and counts them, and kills them all when either limit is passed.
    Every process ever seen is killed at the end too, even one that left the process group."""

    def __init__(self, root: int, memory: int, processes: int) -> None:
        self.root, self.memory, self.processes = root, memory, processes
        self.seen: set[int] = set()
        self.verdict: Status | None = None
        self.reason = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="bg-sandbox-watch")
        self._page = os.sysconf("SC_PAGE_SIZE")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _loop(self) -> None:
        while not self._stop.wait(_POLL_S):
            tree = _descendants(self.root)
            self.seen |= tree
            rss = sum(_rss(pid) for pid in tree) * self._page
            if rss > self.memory:
                self._kill("memory", f"the process tree held {rss >> 20} MiB (limit {self.memory >> 20} MiB)")
            elif len(tree) > self.processes:
                self._kill("killed", f"the process tree held {len(tree)} processes (limit {self.processes})")
            if self.verdict is not None:
                return

    def _kill(self, verdict: Status, reason: str) -> None:
        self.verdict, self.reason = verdict, reason
        self.kill_all()

    def kill_all(self) -> None:
        for pid in sorted(self.seen | _descendants(self.root)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _descendants(root: int) -> set[int]:
    """``root`` and every process below it, from /proc (empty where /proc cannot be read)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return set()
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found.add(pid)
        todo += children.get(pid, [])
    return found


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process in uninterruptible sleep
        proc.kill()


def _read(path: Path, limit: int) -> tuple[str, bool]:
    with open(path, "rb") as f:
        data = f.read(limit * 4 + 1)
    text = data.decode("utf-8", errors="replace")
    return (text[:limit], True) if len(text) > limit else (text, False)


def _status(rc: int | None, timed_out: bool, stderr: str) -> Status:
    """The guard exits 3 on MemoryError and 4 on SIGXCPU; a signal shows as -N, or 128+N through bwrap."""
    if timed_out:
        return "timeout"
    if rc == 0:
        return "ok"
    if rc == 3 and "MemoryError" in stderr:
        return "memory"
    if rc == 4 and "CPU time limit" in stderr:
        return "cpu"
    if rc is not None and (rc < 0 or rc > 128):
        sig = -rc if rc < 0 else rc - 128
        return "cpu" if sig == signal.SIGXCPU else "killed"
    return "error"
