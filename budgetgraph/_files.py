"""Files from outside, read where they enter: UTF-8 text with the bad line named, and JSON whose nesting
cannot exhaust the interpreter's stack; both end in a :class:`ConfigError` that says what to fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["loads", "read_text"]


def read_text(path: str | Path, what: str = "file") -> str:
    """The file's text; a missing, unreadable or non-UTF-8 file is a ConfigError naming the line."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save the {what} as UTF-8"
        ) from None


def loads(text: str | bytes) -> Any:
    """``json.loads``, with a document nested too deeply for the parser raised as a ``JSONDecodeError``."""
    try:
        return json.loads(text)
    except RecursionError:
        doc = text if isinstance(text, str) else ""
        raise json.JSONDecodeError("nested too deeply", doc, 0) from None
