"""Shows: an agent using the tools of an MCP server (started over stdio), with a price on one MCP tool and a
per-tool cap that the ledger holds: the third forecast is refused, not run.

    pip install 'budgetgraph[mcp]'
    python examples/mcp_agent.py
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from budgetgraph import Agent, ScriptedModel
from budgetgraph.tools.mcp import mcp_tools

SERVER = [sys.executable, str(Path(__file__).parent / "servers" / "weather_mcp.py")]


def planner(messages, tools):
    """Ask for three forecasts at once, then answer with what came back."""
    results = [m.content.split("\n")[0] for m in messages if m.role == "tool"]
    if not results:
        return ScriptedModel.tool_calls([("forecast", {"city": c}) for c in ("Paris", "Kyoto", "Lima")])
    return ScriptedModel.text(f"<answer>{'; '.join(results)}</answer>")


async def main() -> None:
    async with mcp_tools(SERVER, prices={"forecast": "0.001"}) as tools:
        print("MCP tools:", sorted(t.name for t in tools))
        agent = Agent(ScriptedModel(planner), tools, "forecast=2,usd=0.01", planner="tracker")
        result = await agent.arun("What is tomorrow's weather in Paris, Kyoto and Lima?")
    print("answer:", result.answer)
    print("charged:", result.usage.tool_calls, f"${result.usage.usd}")


if __name__ == "__main__":
    asyncio.run(main())
