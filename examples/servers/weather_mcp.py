"""An MCP server for examples/mcp_agent.py (stdio): two tools, one priced by the agent's owner."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

server = MCPServer("weather")
FORECAST = {"paris": "rain, 14 C", "kyoto": "sun, 22 C", "lima": "cloud, 19 C"}


@server.tool()
def forecast(city: str) -> str:
    """Tomorrow's forecast for a city."""
    return FORECAST.get(city.lower(), "no forecast for that city")


@server.tool()
def cities() -> str:
    """The cities with a forecast."""
    return ", ".join(sorted(FORECAST))


if __name__ == "__main__":
    server.run()
