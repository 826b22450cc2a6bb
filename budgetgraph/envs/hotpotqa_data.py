"""Get real HotpotQA data: download the official dev file, check its SHA-256, and sample a hard subset."""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def download_checked(
    url: str, dest: Path, sha256: str, *, timeout: float = 30.0, progress: Progress | None = None
) -> Path:
    """``dest`` holding ``url``'s bytes with this SHA-256; a file already there with it is kept as is.

    The bytes go to ``dest.part`` first, so a failed or wrong download never leaves a file that looks done.
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
    say(f"downloading {url}")
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
            if response.status_code != 200:
                raise ConfigError(
                    f"downloading {url} failed: HTTP {response.status_code}; try again later, or "
                    "download the file yourself and pass it with --from-file"
                )
            total = int(response.headers.get("content-length") or 0)
            shown = -1
            with part.open("wb") as f:
                for chunk in response.iter_bytes(1 << 20):
                    f.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    if total and (tenth := size * 10 // total) != shown:
                        shown = tenth
                        say(f"  {size / 1e6:.1f} of {total / 1e6:.1f} MB")
    except httpx.HTTPError as exc:
        part.unlink(missing_ok=True)
        raise ConfigError(
            f"cannot download {url}: {exc or type(exc).__name__}. Offline? Download the file on a "
            "machine that can reach it and pass it with --from-file PATH"
        ) from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    if digest.hexdigest() != sha256:
        part.unlink(missing_ok=True)
        raise ConfigError(
            f"{url} sent {size:,} bytes with SHA-256 {digest.hexdigest()}, not the expected {sha256}; "
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
) -> Path:
    """Download (or take) the official dev file, check it, and write ``hotpot_dev_hard_N.jsonl`` in out_dir."""
    say = progress or (lambda _m: None)
    out = Path(out_dir)
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
        download_checked(url, source, sha256, progress=say)
    rows = read_hotpot(source)
    subset = hard_subset(rows, n, seed)
    target = out / f"hotpot_dev_hard_{n}.jsonl"
    out.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in subset)
    part = target.with_name(target.name + ".part")
    part.write_text(text, encoding="utf-8")
    os.replace(part, target)
    digest = hashlib.sha256(text.encode()).hexdigest()
    say(f"wrote {target}: {len(subset)} hard questions of {len(rows)} (seed {seed}, SHA-256 {digest})")
    return target
