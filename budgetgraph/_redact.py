"""The one redaction rule for text that leaves the process: credentials in URLs (user-info, and query parameters
such as ``?password=`` or ``?token=``), API-key-shaped tokens, secrets in header or key=value form, every secret
the process was given (an API key or store password passed to a backend: :func:`remember_secret`), and the
values of secret-named environment variables. Applied where text goes to a model provider (a tool's result),
a client (events, SSE, an HTTP error), a log, a trace or a results file."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from typing import Any

__all__ = ["MASK", "redact", "redact_tree", "redact_url", "remember_secret"]

MASK = "***"
_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]*://"
# user-info runs to the LAST '@' of the authority (a password may hold an unescaped '@'), which ends at / ? # or space
_USERINFO = re.compile(
    rf"(?P<scheme>{_SCHEME})(?P<user>[^:@/?#\s]*):(?P<secret>[^/?#\s]*)@(?=[^@/?#\s]*(?:[/?#\s]|$))"
)
_SECRET_WORDS = (
    r"password|passwd|pwd|pass|secret|client_secret|token|access_token|refresh_token|id_token|auth|"
    r"api[_-]?key|apikey|key|sig|signature|x-amz-signature|x-amz-credential|credential|session"
)
_QUERY = re.compile(rf"(?i)(?P<name>[?&;](?:{_SECRET_WORDS})=)(?P<value>[^&#\s'\"]+)")
_TOKENS = re.compile(
    r"\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{16,}|xox[abp]-[A-Za-z0-9\-]{10,}|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|AKIA[0-9A-Z]{16}|hf_[A-Za-z0-9]{20,}|tvly-[A-Za-z0-9_\-]{16,})"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic|authorization:)\s+[A-Za-z0-9._\-+/=]{8,}")
# "X-Subscription-Token": "...", api_key=..., 'x-api-key': '...', password: ...
_HEADER = re.compile(
    r"(?i)(?P<name>[\"']?(?:x-[a-z0-9-]*(?:token|key|secret|auth)|api[_-]?key|apikey|access[_-]?token|"
    r"client[_-]?secret)[\"']?\s*[:=]\s*[\"']?)(?P<value>[^\s\"',}&]{6,})"
)
_SECRET_NAME = re.compile(r"(?i)(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)")
_REMEMBERED: set[str] = set()
_LOCK = threading.Lock()


def remember_secret(value: str | None) -> None:
    """Mask ``value`` wherever it appears from now on (an API key or password given to a backend directly,
    not through the environment). Values shorter than 8 characters are not remembered (they would mask words)."""
    if isinstance(value, str) and len(value) >= 8:
        with _LOCK:
            _REMEMBERED.add(value)


def redact_url(url: str) -> str:
    """``url`` with the password of its user-info and secret query parameters masked
    (``redis://:***@host:6379/0``, ``redis://host/0?password=***``)."""
    out = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", url)
    return _QUERY.sub(lambda m: f"{m['name']}{MASK}", out)


def redact(text: str) -> str:
    """``text`` with URL credentials, API-key-shaped tokens, header and key=value secrets, remembered secrets
    and secret environment values masked."""
    if not text:
        return text
    out = _TOKENS.sub(MASK, redact_url(text))
    out = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", out)
    out = _HEADER.sub(lambda m: f"{m['name']}{MASK}", out)
    with _LOCK:
        remembered = sorted(_REMEMBERED, key=len, reverse=True)
    for value in remembered:
        if value in out:
            out = out.replace(value, MASK)
    for name, value in os.environ.items():
        if len(value) >= 8 and _SECRET_NAME.search(name) and value in out:
            out = out.replace(value, MASK)
    return out


def redact_tree(value: Any) -> Any:
    """``value`` with every string in it (mapping keys left as they are) redacted: for JSON-able payloads."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: redact_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(v) for v in value]
    return value
