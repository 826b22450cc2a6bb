"""Per-step overhead of the agent loop: budgetgraph (tracker planner, scripted model, one trivial tool,
ledger on) against LangGraph's create_react_agent driven by langchain-core's fake chat model.

    python benchmarks/overhead.py [--steps 20] [--runs 30]

Prints a table of median milliseconds per step (one model turn + one tool call) and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import warnings
from typing import Any

from rich.console import Console
from rich.table import Table

from budgetgraph import Agent, Budget, ScriptedModel, tool


@tool
async def echo(text: str) -> str:
    """Echo the text."""
    return text


def budgetgraph_run(steps: int) -> float:
    def policy(messages: Any, tools: Any) -> Any:
        done = sum(1 for m in messages if m.role == "tool")
        if done < steps:
            return ScriptedModel.tool_calls([("echo", {"text": f"step {done}"})])
        return ScriptedModel.text("<answer>done</answer>")

    agent = Agent(
        model=ScriptedModel(policy),
        tools=[echo],
        planner="tracker",
        budget=Budget(tool_calls={"echo": steps + 5}, llm_calls=steps + 5),
        max_turns=steps + 5,
    )
    start = time.perf_counter()
    result = asyncio.run(agent.arun("go"))
    elapsed = time.perf_counter() - start
    assert result.usage.tool_calls["echo"] == steps, result.usage
    return elapsed / steps


def langgraph_run(steps: int) -> float:
    from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.tools import tool as lc_tool

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langgraph.prebuilt import create_react_agent

    class FakeToolModel(FakeMessagesListChatModel):
        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            return self

    @lc_tool
    async def lc_echo(text: str) -> str:
        """Echo the text."""
        return text

    replies = [
        AIMessage("", tool_calls=[{"name": "lc_echo", "args": {"text": f"step {i}"}, "id": f"c{i}"}])
        for i in range(steps)
    ] + [AIMessage("done")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = create_react_agent(FakeToolModel(responses=replies), [lc_echo])
    start = time.perf_counter()
    out = asyncio.run(graph.ainvoke({"messages": [("user", "go")]}, {"recursion_limit": 4 * steps + 10}))
    elapsed = time.perf_counter() - start
    assert sum(1 for m in out["messages"] if m.type == "tool") == steps
    return elapsed / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    for fn in (budgetgraph_run, langgraph_run):  # warm-up: imports, first compile
        fn(args.steps)
    ours, theirs = [], []
    for _ in range(args.runs):  # interleaved so machine noise hits both alike
        ours.append(budgetgraph_run(args.steps))
        theirs.append(langgraph_run(args.steps))
    m_ours, m_theirs = statistics.median(ours), statistics.median(theirs)
    table = Table(title=f"agent loop overhead per step ({args.steps} steps a run, {args.runs} runs, median)")
    table.add_column("framework")
    table.add_column("ms / step", justify="right")
    table.add_column("p10-p90 ms", justify="right")
    for name, xs in (("budgetgraph tracker + ledger", ours), ("langgraph create_react_agent", theirs)):
        q = statistics.quantiles(xs, n=10)
        table.add_row(name, f"{statistics.median(xs) * 1000:.3f}", f"{q[0] * 1000:.3f}-{q[-1] * 1000:.3f}")
    Console().print(table)
    print(f"ratio: {m_ours / m_theirs:.3f}")


if __name__ == "__main__":
    main()
