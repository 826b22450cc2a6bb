"""Many concurrent episodes: budgetgraph's runner against LangGraph's create_react_agent under the same load.

    python benchmarks/concurrency.py [--episodes 1000] [--steps 5] [--latency 0.05] [--no-ray]

Each episode makes ``steps`` model calls (each sleeps ``latency`` seconds, like a remote model): ``steps - 1``
tool calls, then the answer. All episodes run at once (concurrency = episodes). Every variant runs in a fresh
process, so its peak RSS is its own. Prints wall time, the ideal (steps x latency), peak memory and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import resource
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def _echo_env(episodes: int, steps: int) -> Any:
    from budgetgraph import Agent, Budget, tool
    from budgetgraph.envs import Env, Task

    @tool
    async def echo(text: str) -> str:
        """Echo the text."""
        return text

    class EchoEnv(Env):
        name = "echo"
        capped_tools = ("echo",)

        def __init__(self) -> None:
            self.agents: dict[str, Agent] = {}

        def tasks(self) -> list[Task]:
            return [Task(str(i), f"task {i}", ["done"]) for i in range(episodes)]

        async def run_episode(self, task: Task, model: Any, planner: str, budget: Budget) -> Any:
            if planner not in self.agents:
                self.agents[planner] = Agent(model, [echo], budget, planner=planner, max_turns=steps + 2)
            return await self.agents[planner].arun(task.question)

        def score(self, task: Task, result: Any) -> dict[str, float]:
            return {"correct": float(result.answer == "done")}

    return EchoEnv()


def _model(steps: int, latency: float) -> Any:
    from budgetgraph import ScriptedModel

    def policy(messages: Any, tools: Any) -> Any:
        done = sum(1 for m in messages if m.role == "tool")
        if done < steps - 1:
            return ScriptedModel.tool_calls([("echo", {"text": f"step {done}"})])
        return ScriptedModel.text("<answer>done</answer>")

    return ScriptedModel(policy, latency=latency, record=False)


def run_budgetgraph(episodes: int, steps: int, latency: float, executor: str) -> dict[str, Any]:
    from budgetgraph.envs import EvalSpec, run_eval

    env_factory, model_factory = (lambda: _echo_env(episodes, steps)), (lambda: _model(steps, latency))
    if executor == "ray":  # Ray workers import this file as a module, so the factories travel by reference
        import functools
        import sys

        import ray

        here = str(Path(__file__).resolve().parent)
        sys.path.insert(0, here)
        import concurrency as bench  # type: ignore[import-not-found]

        ray.init(runtime_env={"env_vars": {"PYTHONPATH": here}}, include_dashboard=False, log_to_driver=False)
        env_factory = functools.partial(bench._echo_env, episodes, steps)
        model_factory = functools.partial(bench._model, steps, latency)

    spec = EvalSpec(
        env="echo",
        model="scripted-sleep",
        planners=("tracker",),
        budgets=(str(steps + 2),),
        concurrency=episodes,
    )
    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as tmp:
        start = time.perf_counter()
        summary = asyncio.run(
            run_eval(
                spec,
                Path(tmp) / "r.jsonl",
                env_factory=env_factory,
                model_factory=model_factory,
                executor=executor,
                progress=False,
            )
        )
        wall = time.perf_counter() - start
    assert summary.ran == episodes and summary.errors == 0, summary
    return {"wall": wall}


def run_agent_only(episodes: int, steps: int, latency: float) -> dict[str, Any]:
    env = _echo_env(episodes, steps)
    model = _model(steps, latency)
    from budgetgraph.envs import Task

    async def main() -> list[Any]:
        budget = env.budget(str(steps + 2))
        return await asyncio.gather(
            *(env.run_episode(Task(str(i), "go", []), model, "tracker", budget) for i in range(episodes))
        )

    start = time.perf_counter()
    results = asyncio.run(main())
    wall = time.perf_counter() - start
    assert all(r.answer == "done" and r.usage.llm_calls == steps for r in results)
    return {"wall": wall}


def run_langgraph(episodes: int, steps: int, latency: float) -> dict[str, Any]:
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage, ToolMessage
    from langchain_core.outputs import ChatGeneration, ChatResult
    from langchain_core.tools import tool as lc_tool

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langgraph.prebuilt import create_react_agent

    class SleepyToolModel(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "sleepy"

        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            return self

        def _reply(self, messages: list[Any]) -> ChatResult:
            done = sum(1 for m in messages if isinstance(m, ToolMessage))
            if done < steps - 1:
                msg = AIMessage(
                    "", tool_calls=[{"name": "echo", "args": {"text": f"s{done}"}, "id": f"c{done}"}]
                )
            else:
                msg = AIMessage("done")
            return ChatResult(generations=[ChatGeneration(message=msg)])

        def _generate(
            self, messages: list[Any], stop: Any = None, run_manager: Any = None, **kw: Any
        ) -> ChatResult:
            time.sleep(latency)
            return self._reply(messages)

        async def _agenerate(
            self, messages: list[Any], stop: Any = None, run_manager: Any = None, **kw: Any
        ) -> ChatResult:
            await asyncio.sleep(latency)
            return self._reply(messages)

    @lc_tool
    async def echo(text: str) -> str:
        """Echo the text."""
        return text

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = create_react_agent(SleepyToolModel(), [echo])

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(
                graph.ainvoke({"messages": [("user", "go")]}, {"recursion_limit": 4 * steps + 10})
                for _ in range(episodes)
            )
        )

    start = time.perf_counter()
    outs = asyncio.run(main())
    wall = time.perf_counter() - start
    assert all(o["messages"][-1].content == "done" for o in outs)
    return {"wall": wall}


def _child(name: str, args: argparse.Namespace, queue: Any) -> None:
    fn = {
        "budgetgraph eval runner (asyncio)": lambda: run_budgetgraph(
            args.episodes, args.steps, args.latency, "asyncio"
        ),
        "budgetgraph agents, gather": lambda: run_agent_only(args.episodes, args.steps, args.latency),
        "langgraph create_react_agent, gather": lambda: run_langgraph(
            args.episodes, args.steps, args.latency
        ),
        "budgetgraph eval runner (ray, local)": lambda: run_budgetgraph(
            args.episodes, args.steps, args.latency, "ray"
        ),
    }[name]
    try:
        out = fn()
        out["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    except BaseException as exc:  # report it to the parent instead of leaving it waiting
        out = {"error": f"{type(exc).__name__}: {exc}"}
    queue.put(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    names = [
        "budgetgraph eval runner (asyncio)",
        "budgetgraph agents, gather",
        "langgraph create_react_agent, gather",
    ]
    if not args.no_ray:
        names.append("budgetgraph eval runner (ray, local)")
    ctx = mp.get_context("spawn")
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        queue = ctx.Queue()
        proc = ctx.Process(target=_child, args=(name, args, queue))
        proc.start()
        while True:
            try:
                results[name] = queue.get(timeout=1)
                break
            except Exception:
                if not proc.is_alive():
                    raise SystemExit(
                        f"{name}: the benchmark process died (exit code {proc.exitcode})"
                    ) from None
        proc.join()
        if "error" in results[name]:
            raise SystemExit(f"{name}: {results[name]['error']}")
    ideal = args.steps * args.latency
    table = Table(
        title=f"{args.episodes} episodes x {args.steps} model calls of {args.latency * 1000:.0f} ms, "
        f"all concurrent"
    )
    for col in ("variant", "wall s", "x ideal", "peak RSS MiB"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for name, r in results.items():
        table.add_row(name, f"{r['wall']:.2f}", f"{r['wall'] / ideal:.1f}", f"{r['rss_mib']:.0f}")
    console = Console(width=200)
    console.print(table)
    base = results["langgraph create_react_agent, gather"]["wall"]
    console.print(f"ideal: {ideal:.2f} s")
    console.print(
        f"ratio: {results['budgetgraph eval runner (asyncio)']['wall'] / base:.3f}"
        "  (budgetgraph eval runner / create_react_agent)"
    )
    console.print(f"ratio agents only: {results['budgetgraph agents, gather']['wall'] / base:.3f}")
    if "budgetgraph eval runner (ray, local)" in results:
        console.print("ray: the RSS column is the driver's only; workers are separate processes")


if __name__ == "__main__":
    main()
