"""MCP tools from a real MCP server the test starts (stdio, and streamable HTTP on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from budgetgraph.meter import run_tool

pytest.importorskip("mcp", reason="MCP tools need pip install 'budgetgraph[mcp]'")

from budgetgraph import Agent, Budget  # noqa: E402
from budgetgraph.models import ScriptedModel  # noqa: E402
from budgetgraph.tools.mcp import mcp_tools  # noqa: E402

SERVER = [sys.executable, str(Path(__file__).parent / "servers" / "mcp_calc.py")]


def _agent_run(tools):
    cities = ["Paris", "Kyoto", "Lima", "Oslo"]

    def policy(messages, offered):
        if not any(m.role == "tool" for m in messages):
            return ScriptedModel.tool_calls(
                [("country_of", {"city": c}) for c in cities] + [("add", {"a": 2, "b": 40})]
            )
        return ScriptedModel.text("<answer>done</answer>")

    agent = Agent(ScriptedModel(policy), tools, Budget(tool_calls={"country_of": 2, "add": 1}, usd="0.01"))
    return agent, policy


async def _run_with(server):
    async with mcp_tools(server, prices={"country_of": "0.002", "add": 0}) as tools:
        names = sorted(t.name for t in tools)
        agent, _ = _agent_run(tools)
        result = await agent.arun("Which countries are Paris, Kyoto, Lima and Oslo in, and what is 2 + 40?")
        bad = next(t for t in tools if t.name == "explode")
        try:
            await run_tool(bad, bad.validate({"reason": "test"}), bad.timeout)
            error = None
        except Exception as exc:  # noqa: BLE001
            error = exc
        return names, result, error


def test_stdio_server_tools_run_under_per_tool_caps():
    names, result, error = asyncio.run(_run_with(SERVER))
    assert names == ["add", "country_of", "explode"]
    texts = [m.content for m in result.messages if m.role == "tool"]
    assert texts[0].startswith("France") and texts[1].startswith("Japan")
    assert all("Budget exhausted for country_of" in t for t in texts[2:4])  # the cap of 2 holds
    assert texts[4].startswith("42")
    assert result.usage.tool_calls == {"country_of": 2, "add": 1}
    assert float(result.usage.usd) == pytest.approx(0.004)
    assert error is not None and "explode failed" in str(error)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_streamable_http_server_tools():
    port = _free_port()
    proc = subprocess.Popen(
        [*SERVER, "--http", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        names, result, _ = asyncio.run(_run_with(f"http://127.0.0.1:{port}/mcp"))
        assert names == ["add", "country_of", "explode"]
        assert result.usage.tool_calls == {"country_of": 2, "add": 1}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("comes_back", [True, False])
def test_a_server_that_dies_mid_call_is_reconnected_once(tmp_path, monkeypatch, comes_back):
    """The call under way is charged (it may have run); the next call reconnects; a failed reconnect refunds."""
    monkeypatch.setenv("MCP_FLAKY_MARK", str(tmp_path / "mark"))
    flaky = [sys.executable, str(Path(__file__).parent / "servers" / "mcp_flaky.py")]
    if not comes_back:
        flaky.append("--once")

    def policy(messages, offered):
        n = sum(m.role == "assistant" for m in messages)
        calls = [("crash", {"x": "a"}), ("ok", {"x": "b"})]
        return ScriptedModel.tool_calls([calls[n]]) if n < 2 else ScriptedModel.text("<answer>done</answer>")

    async def go():
        async with mcp_tools(flaky, env={"MCP_FLAKY_MARK": str(tmp_path / "mark")}) as tools:
            agent = Agent(ScriptedModel(policy), tools, Budget(total_tool_calls=5), planner="react")
            return await agent.arun("q")

    result = asyncio.run(go())
    texts = [m.content for m in result.messages if m.role == "tool"]
    assert "closed the connection during crash" in texts[0]
    if comes_back:
        assert texts[1].startswith("ok:b") and result.usage.tool_calls == {"crash": 1, "ok": 1}
    else:
        assert "reconnecting failed" in texts[1] or "cannot reach" in texts[1]
        assert result.usage.tool_calls == {"crash": 1}  # the call that found the server gone is refunded
