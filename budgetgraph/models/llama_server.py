"""``python -m budgetgraph.models.llama_server ARGS``: llama-cpp-python's OpenAI-compatible server (same
arguments as ``python -m llama_cpp.server``), loading its model as the embedded backend does, so that it
also runs on CPUs with AMX (see ``llama_load``)."""

from __future__ import annotations

from .llama_load import patch_for_process

__all__ = ["main"]


def main() -> None:
    """Run the server after making model loading safe on this CPU."""
    patch_for_process()
    from llama_cpp.server.__main__ import main as serve

    serve()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
