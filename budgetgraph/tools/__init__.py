"""Tools: the Tool type and @tool decorator, and the local corpus search tools (SQLite FTS5)."""

from .base import Tool, Used, tool
from .corpus import Corpus, Document, Hit

__all__ = ["Corpus", "Document", "Hit", "Tool", "Used", "tool"]
