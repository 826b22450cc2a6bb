"""What every command shares: the typer app, the consoles, error exits, option parsers and SIGTERM handling."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ..agents.registry import PLANNERS
from ..envs.registry import ENVS
from ..models.registry import model_forms


def _planner_help(prefix: str) -> str:
    """The planners of the registry, for the help of ``--planner`` (never a hand-kept list)."""
    names = [n if PLANNERS[n].build is not None else f"{n} (eval only)" for n in PLANNERS]
    return f"{prefix}: {' | '.join(names)}"


MODEL_HELP = f"The model: {model_forms()}"
ENV_HELP = "; ".join(f"{name}: {info.summary}" for name, info in ENVS.items())

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Budget-aware tool-using agents.")
console = Console(stderr=True, soft_wrap=True)


def _out() -> Console:
    """stdout at ``$COLUMNS`` when set (piped or not), else the terminal's width; 220 columns when it is not
    a terminal, so tables written to files or CI logs stay readable."""
    import os

    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return Console(width=int(columns))
    return Console() if sys.stdout.isatty() else Console(width=220)


def _error(message: object) -> typer.Exit:
    """Print an error (its text taken literally, never as rich markup) and give the exit to raise."""
    console.print(f"[red]error:[/] {escape(str(message))}")
    return typer.Exit(2)


def _shard(value: str | None) -> tuple[int, int] | None:
    """``"2/3"`` -> ``(2, 3)``; the range is checked where the tasks are selected."""
    if value is None:
        return None
    index, sep, count = value.partition("/")
    if not sep or not index.strip().isdigit() or not count.strip().isdigit():
        raise typer.BadParameter(f"--shard takes I/N, e.g. 1/2, not {value!r}")
    return int(index), int(count)


def _only(value: str | None) -> tuple[str, ...] | None:
    """``"a,b"`` or ``@FILE`` (a JSON list of ids, or sale-fit's weights file: its held-out tasks)."""
    if value is None:
        return None
    if not value.startswith("@"):
        ids: Any = [v.strip() for v in value.split(",") if v.strip()]
    else:
        try:
            data = json.loads(Path(value[1:]).read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise typer.BadParameter(f"--only {value}: cannot read a JSON file of task ids: {exc}") from None
        ids = data.get("held_out_tasks") if isinstance(data, dict) else data
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise typer.BadParameter(f"--only {value}: expected a JSON list of task ids or 'held_out_tasks'")
    if not ids:
        raise typer.BadParameter("--only names no task ids")
    return tuple(ids)


_T = TypeVar("_T")


class _Terminated(KeyboardInterrupt):
    """SIGTERM during a sweep (``kill``, ``timeout``): it stops as Ctrl-C does, resumable, with exit 143."""


async def _until_terminated(work: Coroutine[Any, Any, _T]) -> _T:
    """Await ``work``; SIGTERM cancels it from the event loop (never mid-``__del__``) and raises _Terminated."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    terminated = False

    def stop() -> None:
        nonlocal terminated
        terminated = True
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, stop)
    try:
        return await task
    except asyncio.CancelledError:
        if terminated:
            raise _Terminated from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


@app.callback()
def _root() -> None:
    """budgetgraph: agents whose tool calls, tokens, dollars and time are capped exactly."""
