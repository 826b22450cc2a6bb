"""Get real HotpotQA data: download the official dev file, check its SHA-256, and sample a hard subset."""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from .._redact import redact, redact_url
from ..errors import ConfigError
from .hotpotqa import read_hotpot

__all__ = [
    "HOTPOT_DEV_BYTES",
    "HOTPOT_DEV_SHA256",
    "HOTPOT_DEV_URL",
    "download_checked",
    "hard_subset",
    "prepare_hotpotqa",
]

HOTPOT_DEV_URL = "http://curtis.ml.cmu.edu/datasets/hotpot/hotpot_dev_distractor_v1.json"
HOTPOT_DEV_SHA256 = "4e9ecb5c8d3b719f624d66b60f8d56bf227f03914f5f0753d6fa1b359d7104ea"
HOTPOT_DEV_BYTES = 46_320_117
_KEPT = ("_id", "question", "answer", "type", "level", "supporting_facts", "context")

Progress = Callable[[str], None]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fresh(path: Path) -> BinaryIO:
    """A new file at ``path`` for writing: whatever is there (a file, or a symlink planted to send the bytes
    elsewhere) is removed first, and the new one is created, never followed."""
    if os.path.lexists(path):
        path.unlink()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    return os.fdopen(os.open(path, flags, 0o644), "wb")


def download_checked(
    url: str,
    dest: Path,
    sha256: str,
    *,
    timeout: float = 30.0,
    progress: Progress | None = None,
    max_bytes: int = HOTPOT_DEV_BYTES,
    deadline_s: float = 900.0,
) -> Path:
    """``dest`` holding ``url``'s bytes with this SHA-256; a file already there with it is kept as is.

    The bytes go to ``dest.part`` first (a new file, never a link followed), so a failed or wrong download never
    leaves a file that looks done. A download larger than ``max_bytes`` is stopped as it streams, and one that
    takes longer than ``deadline_s`` in all is stopped (``timeout`` bounds each read).
    """
    import httpx

    say = progress or (lambda _m: None)
    if dest.is_file() and _sha256(dest) == sha256:
        say(f"{dest} is already here (SHA-256 checked)")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    size = 0
    started = time.monotonic()
    say(f"downloading {redact_url(url)}")
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
            if response.status_code != 200:
                raise ConfigError(
                    f"downloading {redact_url(url)} failed: HTTP {response.status_code}; try again later, or "
                    "download the file yourself and pass it with --from-file"
                )
            length = response.headers.get("content-length") or ""
            total = int(length) if length.isascii() and length.isdigit() else 0
            if total > max_bytes:
                raise ConfigError(
                    f"{redact_url(url)} announces {total:,} bytes; the file is {max_bytes:,}: not the official "
                    "file (nothing was written)"
                )
            shown = -1
            with _fresh(part) as f:
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise ConfigError(
                            f"{redact_url(url)} sent more than {max_bytes:,} bytes, the file's size: not the "
                            "official file (the download was stopped and nothing was kept)"
                        )
                    if time.monotonic() - started > deadline_s:
                        raise ConfigError(
                            f"downloading {redact_url(url)} took longer than {deadline_s:.0f} s ({size:,} bytes "
                            "so far): stopped, nothing was kept; try again, or pass the file with --from-file"
                        )
                    f.write(chunk)
                    digest.update(chunk)
                    if total and (tenth := size * 10 // total) != shown:
                        shown = tenth
                        say(f"  {size / 1e6:.1f} of {total / 1e6:.1f} MB")
    except httpx.HTTPError as exc:
        part.unlink(missing_ok=True)
        raise ConfigError(
            f"cannot download {redact_url(url)}: {redact(str(exc)) or type(exc).__name__}. Offline? Download "
            "the file on a machine that can reach it and pass it with --from-file PATH"
        ) from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    if digest.hexdigest() != sha256:
        part.unlink(missing_ok=True)
        raise ConfigError(
            f"{redact_url(url)} sent {size:,} bytes with SHA-256 {digest.hexdigest()}, not the expected {sha256}; "
            "the file is corrupt or not the official one (nothing was kept)"
        )
    os.replace(part, dest)
    return dest


def hard_subset(rows: list[dict[str, Any]], n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` of the rows whose ``level`` is ``hard``, sampled with ``random.Random(seed)`` from the rows in
    ``_id`` order, and kept in that order: the same file, n and seed always give the same subset."""
    hard = sorted((r for r in rows if r.get("level") == "hard"), key=lambda r: str(r["_id"]))
    if n < 1:
        raise ConfigError(f"--n must be at least 1, got {n}")
    if n > len(hard):
        raise ConfigError(f"the file has {len(hard)} hard questions; ask for at most that many (--n)")
    picked = sorted(random.Random(seed).sample(range(len(hard)), n))
    return [{k: hard[i][k] for k in _KEPT if k in hard[i]} for i in picked]


def prepare_hotpotqa(
    out_dir: str | Path,
    *,
    n: int = 350,
    seed: int = 0,
    url: str = HOTPOT_DEV_URL,
    sha256: str = HOTPOT_DEV_SHA256,
    from_file: str | Path | None = None,
    progress: Progress | None = None,
    deadline_s: float = 900.0,
) -> Path:
    """Download (or take) the official dev file, check it, and write ``hotpot_dev_hard_N.jsonl`` in out_dir."""
    say = progress or (lambda _m: None)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file: give a folder for the download and the subset")
    source = out / "hotpot_dev_distractor_v1.json"
    if from_file is not None:
        source = Path(from_file)
        if not source.is_file():
            raise ConfigError(f"--from-file {source}: no such file")
        found = _sha256(source)
        if found != sha256:
            raise ConfigError(
                f"{source} has SHA-256 {found}, not the official file's {sha256}; "
                "download hotpot_dev_distractor_v1.json again"
            )
        say(f"{source}: SHA-256 checked")
    else:
        most = HOTPOT_DEV_BYTES if sha256 == HOTPOT_DEV_SHA256 else 1 << 30
        download_checked(url, source, sha256, progress=say, max_bytes=most, deadline_s=deadline_s)
    rows = read_hotpot(source)
    subset = hard_subset(rows, n, seed)
    target = out / f"hotpot_dev_hard_{n}.jsonl"
    text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in subset)
    out.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    with _fresh(part) as f:
        f.write(text.encode("utf-8"))
    os.replace(part, target)
    digest = hashlib.sha256(text.encode()).hexdigest()
    say(f"wrote {target}: {len(subset)} hard questions of {len(rows)} (seed {seed}, SHA-256 {digest})")
    return target
