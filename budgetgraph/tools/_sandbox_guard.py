"""Runs inside the sandbox's child process, before the untrusted code: limits, then an audit hook, then the code.

Started as ``python -I -S _sandbox_guard.py CONFIG_JSON`` with the code on stdin. Only the standard library is
used, and nothing from budgetgraph, so the guard works under any interpreter the sandbox picks.

The hook is a closure over immutable values and C functions captured before the code runs: there is no policy
object, module global or Python helper (``os.path``, a builtin) that the code could patch to switch it off,
and the ways to reach the closure (``gc``, frames, ``__code__``) are refused. The code runs in a fresh
``__main__`` module, not in this one.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys

_MB = 1 << 20
_BLOCKED_IMPORTS = frozenset(
    {
        "ctypes",
        "_ctypes",
        "_posixsubprocess",
        "cffi",
        "_cffi_backend",
        "mmap",
        "sqlite3",
        "_sqlite3",
        "gc",
        "_testcapi",
        "_testinternalcapi",
        "_xxsubinterpreters",
        "_interpreters",
        "faulthandler",
        "_tracemalloc",
    }
)
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
_INTROSPECTION_EVENTS = frozenset(
    {
        "sys._current_frames",
        "sys._current_exceptions",
        "sys.setprofile",
        "sys.settrace",
        "gc.get_objects",
        "gc.get_referrers",
        "gc.get_referents",
        "sqlite3.connect",
        "sqlite3.connect/handle",
        "sqlite3.enable_load_extension",
        "ctypes.dlopen",
        "code.__new__",
        "function.__new__",
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
        "os.mkfifo",
        "os.mknod",
        "shutil.rmtree",
        "shutil.copyfile",
        "shutil.move",
    }
)
_READ_EVENTS = frozenset({"os.listdir", "os.scandir", "os.chdir", "glob.glob"})
# C functions with no audit event that reach other processes or make files anywhere; removed before the code runs
_REMOVED = (
    ("os", "pidfd_open"),
    ("posix", "pidfd_open"),
    ("signal", "pidfd_send_signal"),
    ("os", "mkfifo"),
    ("posix", "mkfifo"),
    ("os", "mknod"),
    ("posix", "mknod"),
)


def _limits(cfg: dict[str, float]) -> None:
    cpu = max(1, int(cfg["cpu_seconds"] + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    memory = int(cfg["memory_mb"] * _MB)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    size = int(cfg["file_mb"] * _MB)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(cfg["open_files"]), int(cfg["open_files"])))


def _install(work: str, readable: tuple[str, ...], max_files: int) -> None:  # noqa: C901 - one closure
    """Add the audit hook: no processes, signals, sockets, native code or object-graph walks; files only in
    ``work`` (reads also in ``readable``, the interpreter's own library); no directory opened as a file (a
    directory descriptor would let ``dir_fd=`` reach past these checks). The hook never runs the code's own
    objects (no ``__fspath__``, ``__repr__`` or ``str`` subclass method): paths are taken as exact ``str`` or
    ``bytes``, anything else is refused."""
    import posix

    # captured now: the C functions themselves, never a Python attribute the code could replace later
    _lstat, _stat, _readlink, _getcwd = posix.lstat, posix.stat, posix.readlink, posix.getcwd
    _str, _bytes, _int, _type, _any, _issubclass = str, bytes, int, type, any, issubclass
    _plain_str, _plain_bytes = str.__add__, bytes.__add__
    _perm, _imperr = PermissionError, ImportError
    _skip = (int, float, tuple, type(None))
    S_IFMT, S_IFLNK, S_IFDIR = 0o170000, 0o120000, 0o040000
    blocked, process, net, introspect = _BLOCKED_IMPORTS, _PROCESS_EVENTS, _NET_EVENTS, _INTROSPECTION_EVENTS
    writes_ev, reads_ev = _WRITE_EVENTS, _READ_EVENTS
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def plain(path: object) -> str:
        """An exact ``str`` copy of a str or bytes path (C code only); a PermissionError for anything else."""
        kind = _type(path)
        if _issubclass(kind, _str):  # type.__subclasscheck__ reads the real MRO in C
            return _plain_str("", path)  # type: ignore[arg-type]
        if _issubclass(kind, _bytes):
            return _plain_bytes(b"", path).decode("utf-8", "surrogateescape")  # type: ignore[arg-type]
        raise _perm("sandbox: a path must be a str or bytes here")

    def real(text: str) -> str:
        """The absolute path with every symlink resolved (a path that does not exist yet resolves as far as
        it exists), computed with the captured C functions only."""
        if not text.startswith("/"):
            text = _getcwd() + "/" + text
        parts = [p for p in text.split("/") if p and p != "."]
        done: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            candidate = "/" + "/".join([*done, part])
            try:
                mode = _lstat(candidate).st_mode
            except OSError:
                done.append(part)
                continue
            if mode & S_IFMT == S_IFLNK:
                hops += 1
                if hops > 40:
                    raise _perm("sandbox: too many symbolic links")
                target = _readlink(candidate)
                if target.startswith("/"):
                    done = []
                parts = [p for p in target.split("/") if p and p != "."] + parts
                continue
            done.append(part)
        return "/" + "/".join(done)

    work_roots = (real(work),)
    read_roots = (*work_roots, *(real(p) for p in readable))
    created = [0]

    def inside(text: str, roots: tuple[str, ...]) -> bool:
        where = real(text)
        for root in roots:
            if where == root or where.startswith(root.rstrip("/") + "/"):
                return True
        return False

    def check_open(path: object, mode: object, flags: object) -> None:
        if path is None or _type(path) is _int:
            return
        text = plain(path)
        try:
            is_dir = _stat(real(text)).st_mode & S_IFMT == S_IFDIR
        except OSError:
            is_dir = False
        if is_dir:
            raise _perm(f"sandbox: opening the directory {text!r} as a file is not allowed")
        writes = (_type(mode) is _str and _any(c in mode for c in "wax+")) or (  # type: ignore[operator]
            _type(flags) is _int and flags & write_flags != 0  # type: ignore[operator]
        )
        if not writes:
            if not inside(text, read_roots):
                raise _perm(f"sandbox: reading {text!r} is not allowed (only the work directory)")
            return
        if not inside(text, work_roots):
            raise _perm(f"sandbox: writing {text!r} is not allowed (only the work directory)")
        created[0] += 1
        if created[0] > max_files:
            raise _perm(f"sandbox: more than {max_files} files opened for writing")

    def check_paths(event: str, args: tuple[object, ...], roots: tuple[str, ...]) -> None:
        for arg in args:
            if _type(arg) in _skip:
                continue
            text = plain(arg)
            if not inside(text, roots):
                raise _perm(f"sandbox: {event} on {text!r} is not allowed")

    def hook(event: str, args: tuple[object, ...]) -> None:
        if _type(event) is not _str:
            raise _perm("sandbox: an audit event with a name that is not a str")
        if event == "open":
            check_open(args[0], args[1], args[2])
        elif event == "import":
            name = plain(args[0]) if args[0] is not None else ""
            if name.split(".")[0] in blocked:
                raise _imperr(f"sandbox: importing {name} is not allowed")
            if args[1] is not None and inside(plain(args[1]), work_roots):
                raise _imperr(f"sandbox: importing code written in the sandbox ({name}) is not allowed")
        elif event in process:
            raise _perm(f"sandbox: {event} is not allowed (no processes or signals)")
        elif event in net:
            raise _perm(f"sandbox: {event} is not allowed (no network)")
        elif event in introspect or event.startswith("ctypes."):
            raise _perm(f"sandbox: {event} is not allowed")
        elif event == "object.__setattr__" and _type(args[1]) is _str and args[1] == "__code__":
            raise _perm("sandbox: replacing a function's code is not allowed")
        elif event in writes_ev:
            check_paths(event, args, work_roots)
        elif event in reads_ev:
            check_paths(event, args[:1], read_roots)

    sys.addaudithook(hook)


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
    import types

    for module, name in _REMOVED:
        if hasattr(sys.modules.get(module), name):
            delattr(sys.modules[module], name)
    sys.modules.pop("gc", None)  # so that importing it again is an audited (refused) import
    readable = tuple(cfg["readable"])
    _install(cfg["work"], (*readable, os.devnull), int(cfg["max_files"]))
    del sys.argv[1:]
    main_module = types.ModuleType("__main__")
    main_module.__file__ = "solution.py"
    sys.modules["__main__"] = main_module  # the code's own module: the guard's is out of its reach
    namespace = main_module.__dict__
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
