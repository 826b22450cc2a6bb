"""The command line: ``budgetgraph run QUESTION``, ``budgetgraph eval ENV``, ``budgetgraph report FILE``, and
the commands around them, one module each; importing this package registers them all on :data:`app`."""

from __future__ import annotations

from importlib import import_module

from .common import app

__all__ = ["app", "main"]

for _module in ("run", "evaluate", "report", "fits", "serve"):  # registration order is the order help lists
    import_module(f"{__name__}.{_module}")


def main() -> None:
    app()
