"""Evaluation environments and the runner: not built yet (see the evaluation issue)."""

__all__: list[str] = []
