"""Shows: agent.graph inside your own LangGraph app, enforcing the agent's budget with nothing seeded.

python examples/subgraph.py            # the scripted model (no download)
python examples/subgraph.py --local    # the embedded model
"""

from __future__ import annotations

import asyncio
import sys

from langgraph.graph import END, START, StateGraph

from budgetgraph import Agent, Corpus, Message, ScriptedModel
from budgetgraph.agents import AgentState


class AppState(AgentState, total=False):
    """Your app's state: the agent's keys plus your own."""

    summary: str


def summarize(state: AppState) -> dict[str, str]:
    spent = state["ledger"]["spent"]
    return {"summary": f"answer={state.get('answer')!r}, search calls spent={spent.get('tool:search', 0)}"}


async def main() -> None:
    model = "local" if "--local" in sys.argv else ScriptedModel.qa_policy()
    tools = Corpus.from_folder("docs").tools()
    agent = Agent(model, tools, "search=2,open=1", planner="tracker")
    app = StateGraph(AppState)
    app.add_node("agent", agent.graph)  # the compiled agent graph is a node of yours
    app.add_node("summarize", summarize)
    app.add_edge(START, "agent")
    app.add_edge("agent", "summarize")
    app.add_edge("summarize", END)
    out = await app.compile().ainvoke(
        {"messages": [Message.user("What happens when a tool call does not fit?")]}
    )
    print(out["summary"])
    print("stop:", out["stop"]["kind"], out["stop"]["resource"])


if __name__ == "__main__":
    asyncio.run(main())
