"""The results file: a JSON Lines log (a header, then one line per finished episode), durable and resumable."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from ..errors import ConfigError

__all__ = ["ResultsFile", "episode_key", "read_results", "strip_text"]

Key = tuple[str, str, str, str, int]


def episode_key(record: Mapping[str, Any]) -> Key:
    """What makes an episode unique in a sweep: task, planner, budget, model and epoch (0 when absent)."""
    return (
        str(record["task_id"]),
        str(record["planner"]),
        str(record["budget"]),
        str(record["model"]),
        int(record.get("epoch") or 0),
    )


SHORT_TEXT = 80
"""The longest string ``strip_text`` keeps: answers, verdicts, stop reasons and tool names fit; passages do not."""


def strip_text(record: Mapping[str, Any], keep: int = SHORT_TEXT) -> dict[str, Any]:
    """An episode line without the task's text, so it can be kept where the data may not be copied.

    The transcript is dropped; the gold becomes its digest; any other string over ``keep`` characters
    becomes ``"[N chars, sha256 XXXX]"``. Scores, usage, limits, the timeline's numbers and verdicts stay,
    so the file still resumes and reports.
    """

    def digest(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return value if len(value) <= keep else f"[{len(value)} chars, sha256 {digest(value)}]"
        if isinstance(value, Mapping):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        return value

    out = {k: walk(v) for k, v in record.items() if k != "transcript"}
    if record.get("gold") is not None:
        out["gold"] = f"sha256 {digest(json.dumps(record['gold'], sort_keys=True))}"
    out["text_stripped"] = True
    return out


class ResultsFile:
    """Append-only episode log. Every line is flushed and fsynced, so a crash loses only what was in flight.

    A line cut short by a kill is dropped (and the file trimmed) when the file is opened again.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh: TextIO | None = None

    def read(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The header and the episodes (first record of each key wins); repairs a torn last line."""
        if not self.path.exists():
            return None, []
        header: dict[str, Any] | None = None
        episodes: dict[Key, dict[str, Any]] = {}
        data = self.path.read_bytes()
        *complete, tail = data.split(b"\n")
        for n, raw in enumerate(complete, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError:
                raise ConfigError(
                    f"{self.path}:{n}: not a valid JSON line; the results file is damaged. "
                    "Remove or fix that line, or write to a new --out file."
                ) from None
            if row.get("type") == "header":
                header = header or row
            elif row.get("type") == "episode":
                episodes.setdefault(episode_key(row), row)
        if tail:  # a write torn by a kill has no newline: drop it
            with self.path.open("r+b") as fh:
                fh.truncate(len(data) - len(tail))
        return header, list(episodes.values())

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold ``PATH.lock`` while a run reads and appends, so two runs never write one file (``filelock``)."""
        from filelock import FileLock, Timeout

        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(lock_path), timeout=0)
            lock.acquire()
        except Timeout:
            raise ConfigError(
                f"another run is writing {self.path} (it holds {lock_path}); wait for it to finish, or give "
                "this run another --out"
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"cannot write results to {self.path}: {exc}; choose a writable --out"
            ) from None
        try:
            yield
        finally:
            lock.release()

    def episodes(self) -> Iterator[dict[str, Any]]:
        yield from self.read()[1]

    def open(self, header: Mapping[str, Any]) -> None:
        """Open for appending; writes ``header`` first when the file is new."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._fh = self.path.open("a", encoding="utf-8")
        if new:
            self.append({"type": "header", **header})

    def append(self, record: Mapping[str, Any]) -> None:
        if self._fh is None:
            raise RuntimeError("ResultsFile.open() must be called before append()")
        self._fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def read_results(paths: Sequence[str | Path]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The first file's header and the episodes of every file, for one report over sweeps run side by side.

    The files must hold the same environment and data; an episode key found in two files is kept from the first.
    """
    header: dict[str, Any] | None = None
    first: Path | None = None
    episodes: dict[Key, dict[str, Any]] = {}
    for path in paths:
        own, records = ResultsFile(path).read()
        if own is not None and header is not None and own.get("env_info") != header.get("env_info"):
            raise ConfigError(
                f"{path} holds another environment or data ({own.get('env_info')}) than {first} "
                f"({header.get('env_info')}); report them separately"
            )
        if header is None and own is not None:
            header, first = own, Path(path)
        for record in records:
            episodes.setdefault(episode_key(record), record)
    return header, list(episodes.values())
