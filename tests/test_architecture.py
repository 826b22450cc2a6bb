"""The architecture holds by construction: import-linter's contracts (layers, pure planners), and only the
metering layer calls a model, runs a tool or reserves on a ledger."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "budgetgraph"
# calls that spend: a model request, a tool's function, a reservation and its settlement
SPENDING = {"request", "try_reserve", "reserve", "refund"}
ALLOWED = {"meter", "budget"}  # the ledger itself (children reserve through parents) and the metering layer
# `budgetgraph serve`: it serves a model to clients outside any run (no ledger here: the client meters its calls)
SERVES_OTHERS = {Path("models/endpoint.py")}
# a host framework's model, requested only from the send function the meter calls (HostModel.request)
HOST_MODEL = {(Path("integrations/pydantic_ai.py"), "wrapped")}


def _calls_outside_the_meter() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] in ALLOWED or rel in SERVES_OTHERS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name, owner = node.func.attr, node.func.value
            owner_name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            spends = name in SPENDING or name == "fn" or (name == "commit" and "ledger" in owner_name.lower())
            host = name == "request" and (rel, owner_name) in HOST_MODEL
            if (
                spends
                and not host
                and not (rel.parts[0] == "models" and name == "request" and owner_name == "self")
            ):
                found.append(f"{rel}:{node.lineno}: .{name}(")
    return found


def test_only_the_metering_layer_calls_models_runs_tools_or_reserves():
    assert _calls_outside_the_meter() == []


def test_the_scan_finds_a_call_around_the_meter(tmp_path, monkeypatch):
    """The check above can fail: a module that calls a model directly is reported."""
    fake = tmp_path / "budgetgraph"
    (fake / "agents").mkdir(parents=True)
    (fake / "agents" / "leak.py").write_text(
        "async def f(model):\n    return await model.request([], [], {})\n"
    )
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    assert _calls_outside_the_meter() == ["agents/leak.py:2: .request("]


def test_import_contracts_are_kept():
    # the environment's own script first: the venv need not be activated
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (pip install 'budgetgraph[lint]')")
    proc = subprocess.run([exe], capture_output=True, text=True, cwd=PACKAGE.parent, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def _import_circles(package: str = "budgetgraph") -> list[list[str]]:
    """Every set of modules that import each other, over every import statement (module-level, inside
    functions and under TYPE_CHECKING alike), by Tarjan's strongly connected components."""
    grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (the lint extra)")
    graph = grimp.build_graph(package, include_external_packages=False)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) & graph.modules for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in edges[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(edges):
        if module not in index:
            visit(module)
    return circles


def test_no_module_of_the_package_is_in_an_import_circle():
    assert _import_circles() == []


def test_the_circle_check_finds_a_circle(tmp_path, monkeypatch):
    """The check above can fail: two modules that import each other (one inside a function) are reported."""
    pkg = tmp_path / "circled"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .a import x\n")
    (pkg / "c.py").write_text("from . import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _import_circles("circled") == [["circled.a", "circled.b"]]


def test_the_facade_takes_at_most_twenty_parameters_and_no_planner_option():
    import inspect

    from budgetgraph.agents import PLANNERS, Agent, AgentOptions
    from budgetgraph.agents.options import LEGACY_KEYWORDS, option_names

    params = inspect.signature(Agent.__init__).parameters
    assert len(params) <= 20, list(params)
    own = {f for name in PLANNERS for f in option_names(PLANNERS[name].options)} - set(
        option_names(AgentOptions)
    )
    assert not own & set(params), own & set(params)
    assert not set(LEGACY_KEYWORDS) & set(params)  # those go through the compatibility mapping only


def test_nothing_in_agents_imports_the_facade():
    grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (the lint extra)")
    graph = grimp.build_graph("budgetgraph", include_external_packages=False)
    importers = graph.find_modules_that_directly_import("budgetgraph.agents.agent")
    inside = sorted(m for m in importers if m.startswith("budgetgraph.agents.") and m != "budgetgraph.agents")
    assert inside == []
