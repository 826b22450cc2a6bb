"""``budgetgraph serve`` and ``budgetgraph data``: an OpenAI-compatible endpoint, and benchmark data."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..errors import BudgetgraphError
from .common import (
    _error,
    _out,
    app,
    console,
)


@app.command()
def serve(
    model: Annotated[
        str, typer.Option(help="The model to serve: local, local:0.5b or local:/path/model.gguf.")
    ] = "local",
    host: Annotated[
        str, typer.Option(help="The address to listen on (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port (0: a free one, printed).")] = 8080,
    name: Annotated[
        str | None, typer.Option(help="The model name clients send (default: the model's).")
    ] = None,
) -> None:
    """Serve an embedded model as an OpenAI-compatible endpoint with tool calls (POST /v1/chat/completions),
    for `--model openai:NAME@URL`, other frameworks or apps, offline."""
    from ..models import infer_model
    from ..models.endpoint import serve_model
    from ..models.local import LocalModel

    try:
        chosen = infer_model(model)
        if not isinstance(chosen, LocalModel):
            raise _error(f"serve runs embedded models (local, local:0.5b, local:/path.gguf), not {model!r}")
        chosen.load()
        server = serve_model(chosen, host, port, name)
    except BudgetgraphError as exc:
        raise _error(exc) from None
    except OSError as exc:
        raise _error(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    console.print(f"serving {escape(server.model_name)} at {escape(server.url)} (Ctrl-C stops)")
    _out().print(
        f"budgetgraph run QUESTION --model 'openai:{escape(server.model_name)}@{escape(server.url)}'"
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.shutdown()
        console.print("stopped")


data_app = typer.Typer(no_args_is_help=True, help="Get benchmark data: downloaded, checked, made ready.")
app.add_typer(data_app, name="data")


@data_app.command("hotpotqa")
def data_hotpotqa(
    out: Annotated[Path, typer.Option(help="Folder for the download and the subset.")] = Path(
        "data/hotpotqa"
    ),
    n: Annotated[int, typer.Option(help="How many hard questions to sample.")] = 350,
    seed: Annotated[
        int, typer.Option(help="The sample's seed (the same file, n and seed: the same subset).")
    ] = 0,
    from_file: Annotated[
        Path | None,
        typer.Option(help="An hotpot_dev_distractor_v1.json you already have (checked the same)."),
    ] = None,
    url: Annotated[str, typer.Option(help="Where to download the official dev file (a mirror).")] = "",
    sha256: Annotated[str, typer.Option(help="The SHA-256 the download must have.")] = "",
    deadline: Annotated[
        float, typer.Option(help="Seconds the whole download may take (a stalled mirror is stopped).", min=1)
    ] = 900.0,
) -> None:
    """Download HotpotQA's official dev file (distractor setting, 46 MB), check its SHA-256, and write a
    seeded sample of N hard questions as JSONL for `budgetgraph eval hotpotqa --data`."""
    from ..envs.hotpotqa_data import HOTPOT_DEV_SHA256, HOTPOT_DEV_URL, prepare_hotpotqa

    try:
        target = prepare_hotpotqa(
            out,
            n=n,
            seed=seed,
            url=url or HOTPOT_DEV_URL,
            sha256=sha256 or HOTPOT_DEV_SHA256,
            from_file=from_file,
            progress=lambda message: console.print(escape(message), highlight=False),
            deadline_s=deadline,
        )
    except BudgetgraphError as exc:
        raise _error(exc) from None
    _out().print(f"budgetgraph eval hotpotqa --data {escape(str(target))} --planner react,tracker --budget 3")
