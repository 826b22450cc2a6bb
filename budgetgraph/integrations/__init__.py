"""budgetgraph's exact ledger inside agents built with other frameworks: ``integrations.langchain`` (a
``create_agent`` middleware, ``[langchain]`` extra) and ``integrations.pydantic_ai`` (a pydantic-ai capability,
``[pydantic-ai]`` extra). Each is imported on its own; this package imports neither."""

__all__: list[str] = []
