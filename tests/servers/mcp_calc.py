"""A small MCP server for the tests (stdio by default, streamable HTTP with --http PORT)."""

from __future__ import annotations

import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("calc")
CITIES = {"paris": "France", "kyoto": "Japan", "lima": "Peru"}


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def country_of(city: str) -> str:
    """The country a city is in."""
    return CITIES.get(city.lower(), "unknown")


@server.tool()
def explode(reason: str) -> str:
    """Always fails (for error handling tests)."""
    raise ValueError(f"exploded: {reason}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--http":
        server.run(transport="streamable-http", port=int(sys.argv[2]))
    else:
        server.run()
