"""Tools: the Tool type and @tool decorator, and the local corpus search tools (SQLite FTS5). The web tools
(``tools.web``, ``tools.search_backends``) and MCP (``tools.mcp``) are imported from their modules."""

from .base import Failed, NotFound, Tool, Used, tool
from .corpus import Corpus, Document, Hit

__all__ = ["Corpus", "Document", "Failed", "Hit", "NotFound", "Tool", "Used", "tool"]
