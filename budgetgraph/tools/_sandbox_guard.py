"""Runs inside the sandbox's child process, before the untrusted code: limits, then an audit hook, then the code.

Started as ``python -I -S _sandbox_guard.py CONFIG_JSON`` with the code on stdin. Only the standard library is
used, and nothing from budgetgraph, so the guard works under any interpreter the sandbox picks.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys

_MB = 1 << 20
_BLOCKED_IMPORTS = frozenset({"ctypes", "_ctypes", "_posixsubprocess", "cffi", "_cffi_backend", "mmap"})
_PROCESS_EVENTS = frozenset(
    {
        "os.fork",
        "os.forkpty",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.system",
        "os.startfile",
        "subprocess.Popen",
        "pty.spawn",
        "os.kill",
        "os.killpg",
        "signal.pthread_kill",
        "os.setuid",
        "os.setreuid",
        "os.chroot",
    }
)
_NET_EVENTS = frozenset(
    {
        "socket.__new__",
        "socket.connect",
        "socket.bind",
        "socket.getaddrinfo",
        "socket.sendto",
        "socket.gethostbyname",
    }
)
# events whose path arguments must lie in the work directory: they change the file system
_WRITE_EVENTS = frozenset(
    {
        "os.remove",
        "os.rename",
        "os.rmdir",
        "os.mkdir",
        "os.chmod",
        "os.chown",
        "os.link",
        "os.symlink",
        "os.truncate",
        "os.utime",
        "shutil.rmtree",
        "shutil.copyfile",
        "shutil.move",
    }
)
_READ_EVENTS = frozenset({"os.listdir", "os.scandir", "os.chdir", "glob.glob"})


def _limits(cfg: dict[str, float]) -> None:
    cpu = max(1, int(cfg["cpu_seconds"] + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    memory = int(cfg["memory_mb"] * _MB)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    size = int(cfg["file_mb"] * _MB)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(cfg["open_files"]), int(cfg["open_files"])))
    if cfg.get("processes") is not None:  # counts all the user's processes and threads, not only ours
        procs = int(cfg["processes"])
        resource.setrlimit(resource.RLIMIT_NPROC, (procs, procs))


class _Policy:
    """The audit hook's rules: no processes, signals, sockets, native code; files only in ``work`` (reads also
    in ``readable``, the interpreter's own library)."""

    def __init__(self, work: str, readable: tuple[str, ...], max_files: int) -> None:
        self.work = (os.path.realpath(work),)
        self.readable = (*self.work, *readable)
        self.max_files = max_files
        self.created = 0

    @staticmethod
    def inside(path: object, roots: tuple[str, ...]) -> bool:
        if isinstance(path, int):
            return True
        if not isinstance(path, (str, bytes, os.PathLike)):
            return False
        real = os.fsdecode(os.path.realpath(path))
        return any(real == r or real.startswith(r.rstrip("/") + "/") for r in roots)

    def open(self, args: tuple[object, ...]) -> None:
        path, mode, flags = args[0], args[1], args[2]
        if path is None:
            return
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC))
        )
        if not writes:
            if not self.inside(path, self.readable):
                raise PermissionError(f"sandbox: reading {path!r} is not allowed (only the work directory)")
            return
        if not self.inside(path, self.work):
            raise PermissionError(f"sandbox: writing {path!r} is not allowed (only the work directory)")
        self.created += 1
        if self.created > self.max_files:
            raise PermissionError(f"sandbox: more than {self.max_files} files opened for writing")

    def imports(self, args: tuple[object, ...]) -> None:
        name, filename = args[0], args[1]
        if isinstance(name, str) and name.split(".")[0] in _BLOCKED_IMPORTS:
            raise ImportError(f"sandbox: importing {name} is not allowed")
        if filename and self.inside(filename, self.work):
            raise ImportError(f"sandbox: importing code written in the sandbox ({name}) is not allowed")

    def paths(self, event: str, args: tuple[object, ...], roots: tuple[str, ...]) -> None:
        for arg in args:
            if isinstance(arg, (str, bytes, os.PathLike)) and not self.inside(arg, roots):
                raise PermissionError(f"sandbox: {event} on {arg!r} is not allowed")

    def __call__(self, event: str, args: tuple[object, ...]) -> None:
        if event == "open":
            self.open(args)
        elif event == "import":
            self.imports(args)
        elif event in _PROCESS_EVENTS:
            raise PermissionError(f"sandbox: {event} is not allowed (no processes or signals)")
        elif event in _NET_EVENTS:
            raise PermissionError(f"sandbox: {event} is not allowed (no network)")
        elif event.startswith("ctypes."):
            raise PermissionError(f"sandbox: {event} is not allowed (no native code)")
        elif event in _WRITE_EVENTS:
            self.paths(event, args, self.work)
        elif event in _READ_EVENTS:
            self.paths(event, args[:1], self.readable)


def _out_of_cpu(signum: int, frame: object) -> None:
    os.write(2, b"CPU time limit exceeded\n")
    os._exit(4)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    code = sys.stdin.read()
    os.chdir(cfg["work"])
    # the source file is there for tracebacks; the code runs from the string read above
    with open("solution.py", "w", encoding="utf-8") as f:
        f.write(code)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    signal.signal(signal.SIGXCPU, _out_of_cpu)
    _limits(cfg)
    import linecache  # noqa: F401  (loaded now: tracebacks need it after the hook is on)
    import traceback

    readable = tuple(os.path.realpath(p) for p in cfg["readable"])
    sys.addaudithook(_Policy(cfg["work"], (*readable, os.path.realpath(os.devnull)), int(cfg["max_files"])))
    del sys.argv[1:]
    namespace = {"__name__": "__main__", "__file__": "solution.py", "__builtins__": __builtins__}
    try:
        exec(compile(code, "solution.py", "exec"), namespace)
    except SystemExit:
        raise
    except MemoryError:
        sys.stderr.write("MemoryError: the sandbox's memory limit was reached\n")
        sys.exit(3)
    except BaseException as exc:
        # the candidate's frames only: the guard's own (the audit hook that refused) are noise to a reader
        report = traceback.TracebackException.from_exception(exc)
        report.stack = traceback.StackSummary.from_list(
            [f for f in report.stack if f.filename == "solution.py"]
        )
        sys.stderr.write("".join(report.format()))
        sys.exit(1)


if __name__ == "__main__":
    main()
