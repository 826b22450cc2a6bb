"""The results file: a JSON Lines log (a header, then one line per finished episode), durable and resumable."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from .._redact import redact_tree
from ..errors import ConfigError

__all__ = ["ResultsFile", "config_changes", "config_digest", "episode_key", "read_results", "strip_text"]

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


_COMPARED = ("model", "options", "files", "prompts", "sampling")


def config_digest(config: Mapping[str, Any]) -> str:
    """A short SHA-256 of a sweep's configuration (the header's ``config``): every episode line carries the
    digest of the configuration it ran under, so a line from another configuration is told apart."""
    keep = {k: config.get(k) for k in (*_COMPARED, "budgets")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:16]


def config_changes(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    prompts: set[str] | None = None,
    *,
    keys: Sequence[str] = _COMPARED,
) -> list[str]:
    """What differs between two sweep configurations; ``prompts`` limits the prompt digests compared to the
    modules the sweep's planners read."""
    changes = []
    for key in keys:
        if key in old and old[key] != new.get(key):
            was, now = old[key], new.get(key)
            if isinstance(was, dict) and isinstance(now, dict):
                for k in sorted(set(was) | set(now)):
                    if key == "prompts" and (prompts is not None and k not in prompts or k not in was):
                        continue  # a module the old header did not list is new: moved text changes its source
                    if was.get(k) != now.get(k):
                        changes.append(f"{key}.{k}: {was.get(k)!r} -> {now.get(k)!r}")
            else:
                changes.append(f"{key}: {was!r} -> {now!r}")
    for label, limits in (old.get("budgets") or {}).items():
        if label in (new.get("budgets") or {}) and new["budgets"][label] != limits:
            changes.append(f"budget {label!r}: {limits} -> {new['budgets'][label]}")
    return changes


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
        """The header and the episodes (first record of each key wins). Reading never writes: a last line
        with no newline yet (being written now, or torn by a kill) is left out, and the writer trims a torn
        one when it opens the file. Every line is checked: valid JSON of the right shape, and run under the
        header's configuration (or one a resume added with ``--extend``)."""
        if not self.path.exists():
            return None, []
        header: dict[str, Any] | None = None
        allowed: set[str] = set()
        episodes: dict[Key, dict[str, Any]] = {}
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read the results file {self.path}: {exc}") from None
        *complete, _tail = data.split(b"\n")
        for n, raw in enumerate(complete, 1):
            if not raw.strip():
                continue
            row = self._row(n, raw)
            kind = row.get("type")
            if kind == "header":
                if header is None:
                    header = row
                    if "config_digest" in row:
                        allowed.add(str(row["config_digest"]))
            elif kind == "config":
                allowed.add(str(row.get("config_digest")))
            elif kind == "episode":
                self._check_line(n, row, header, allowed)
                episodes.setdefault(episode_key(row), row)
        return header, list(episodes.values())

    def _row(self, n: int, raw: bytes) -> dict[str, Any]:
        where = f"{self.path}:{n}"
        try:
            row = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"{where}: not UTF-8 text; the results file is damaged") from None
        except (json.JSONDecodeError, RecursionError):
            raise ConfigError(
                f"{where}: not a valid JSON line; the results file is damaged. "
                "Remove or fix that line, or write to a new --out file."
            ) from None
        if not isinstance(row, dict):
            raise ConfigError(f"{where}: a results line is a JSON object, not {type(row).__name__}")
        if row.get("type") == "episode":
            missing = [
                k for k in ("task_id", "planner", "budget", "model") if not isinstance(row.get(k), str)
            ]
            if (
                missing
                or not isinstance(row.get("scores", {}), dict)
                or not isinstance(row.get("usage", {}), dict)
            ):
                raise ConfigError(
                    f"{where}: not an episode line of budgetgraph eval (needs string task_id, planner, budget "
                    f"and model, and objects scores and usage{'; missing ' + ', '.join(missing) if missing else ''})"
                )
            if not isinstance(row.get("epoch") or 0, int):
                raise ConfigError(f"{where}: epoch must be a whole number")
        return row

    def _check_line(
        self, n: int, row: Mapping[str, Any], header: Mapping[str, Any] | None, allowed: set[str]
    ) -> None:
        """An episode line of a file whose header has a configuration digest must carry one it allows."""
        if header is None or "config_digest" not in header:
            return  # a file written before lines carried digests
        digest = row.get("config_digest")
        if digest not in allowed:
            raise ConfigError(
                f"{self.path}:{n}: episode {row.get('task_id')!r} ({row.get('planner')}, budget "
                f"{row.get('budget')}) was run under another configuration ({digest or 'none recorded'}; this "
                f"file's: {', '.join(sorted(allowed))}): it was copied from another results file. Remove the "
                "line, or report the files it came from side by side"
            )

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
        """Open for appending (the writer, holding :meth:`exclusive`); writes ``header`` first when the file is
        new, and trims a last line torn by a kill (it has no newline). A resume under another configuration
        (``--extend``) records it, so that its lines are told from copied ones."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        if not new:
            data = self.path.read_bytes()
            tail = data.rsplit(b"\n", 1)[-1]
            if tail:
                with self.path.open("r+b") as fh:
                    fh.truncate(len(data) - len(tail))
        self._fh = self.path.open("a", encoding="utf-8")
        if new:
            self.append({"type": "header", **header})
            return
        old, _ = self.read()
        digest = header.get("config_digest")
        if old is not None and "config_digest" in old and digest and digest != old["config_digest"]:
            self.append({"type": "config", "config_digest": digest, "config": header.get("config")})

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one record (every string in it redacted) and fsync it."""
        if self._fh is None:
            raise RuntimeError("ResultsFile.open() must be called before append()")
        self._fh.write(json.dumps(redact_tree(record), ensure_ascii=False, default=str) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def read_results(
    paths: Sequence[str | Path], *, mixed: bool = False
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The first file's header and the episodes of every file, for one report over sweeps run side by side.

    The files must hold the same environment and data, and (unless ``mixed``) have run under the same
    configuration as ``eval`` checks on a resume: model, options, prices and data files, sampling and what each
    budget label means. An episode key found in two files is kept from the first.
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
        if own is not None and header is not None and not mixed:
            keys = ("model", "options", "files", "sampling")
            changes = config_changes(header.get("config") or {}, own.get("config") or {}, keys=keys)
            if changes:
                raise ConfigError(
                    f"{path} was run with another configuration than {first}: {'; '.join(changes)}. Its "
                    "episodes do not compare with the first file's: report them separately, or pass --mixed "
                    "to report them together anyway"
                )
        if header is None and own is not None:
            header, first = own, Path(path)
        for record in records:
            episodes.setdefault(episode_key(record), record)
    return header, list(episodes.values())
