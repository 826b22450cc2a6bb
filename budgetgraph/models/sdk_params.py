"""Send an SDK only the keyword arguments its installed version accepts (SDK majors add and remove them)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

__all__ = ["accepted_params", "keep_accepted"]

log = logging.getLogger("budgetgraph.models")


@lru_cache(maxsize=32)
def _names(fn: Callable[..., Any]) -> frozenset[str] | None:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - a C function or an odd wrapper: send everything
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None  # **kwargs: the SDK takes anything
    return frozenset(p.name for p in params)


def accepted_params(method: Any) -> frozenset[str] | None:
    """The keyword names ``method`` accepts, or None when it takes any (``**kwargs``)."""
    return _names(getattr(method, "__func__", method))


def keep_accepted(params: Mapping[str, Any], method: Any, *, backend: str) -> dict[str, Any]:
    """``params`` without the keys ``method`` does not accept; each dropped key is logged at debug level."""
    names = accepted_params(method)
    if names is None:
        return dict(params)
    dropped = [k for k in params if k not in names]
    if dropped:
        log.debug("%s: the installed SDK takes no %s; not sent", backend, ", ".join(sorted(dropped)))
    return {k: v for k, v in params.items() if k in names}
