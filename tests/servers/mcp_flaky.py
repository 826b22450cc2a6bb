"""An MCP stdio server that dies: ``crash`` kills it mid-call; with ``--once`` it refuses to start again."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mcp.server.mcpserver import MCPServer

MARK = Path(os.environ.get("MCP_FLAKY_MARK", "/tmp/mcp_flaky_mark"))
if "--once" in sys.argv and MARK.exists():
    sys.exit(3)  # a server that cannot come back

server = MCPServer("flaky")


@server.tool()
def crash(x: str) -> str:
    """Kills the server process mid-call."""
    MARK.touch()
    os._exit(1)


@server.tool()
def ok(x: str) -> str:
    """Works."""
    return "ok:" + x


if __name__ == "__main__":
    server.run()
