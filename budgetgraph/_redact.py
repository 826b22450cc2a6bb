"""Secrets out of text that leaves the process: credentials in URLs, API keys, and the values of secret-named
environment variables. Applied where text goes to a client, a log, a trace or a results file."""

from __future__ import annotations

import os
import re

__all__ = ["redact", "redact_url"]

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:@/\s]*):(?P<secret>[^@/\s]+)@")
_TOKENS = re.compile(
    r"\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{16,}|xox[abp]-[A-Za-z0-9\-]{10,}|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|AKIA[0-9A-Z]{16}|hf_[A-Za-z0-9]{20,})"
)
_BEARER = re.compile(r"(?i)\b(bearer|authorization:)\s+[A-Za-z0-9._\-+/=]{12,}")
_SECRET_NAME = re.compile(r"(?i)(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)")
MASK = "***"


def redact_url(url: str) -> str:
    """``url`` with the password of its user-info masked (``redis://:***@host:6379/0``)."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", url)


def redact(text: str) -> str:
    """``text`` with URL passwords, API-key-shaped tokens and secret environment values masked."""
    out = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", _TOKENS.sub(MASK, redact_url(text)))
    for name, value in os.environ.items():
        if len(value) >= 8 and _SECRET_NAME.search(name) and value in out:
            out = out.replace(value, MASK)
    return out
