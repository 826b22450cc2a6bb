"""The public surface is curated: every package's ``__all__`` imports, and every name the docs and examples
import from budgetgraph is exported where they import it from."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from budgetgraph.errors import MissingExtra

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = [
    "budgetgraph",
    "budgetgraph.agents",
    "budgetgraph.budget",
    "budgetgraph.envs",
    "budgetgraph.meter",
    "budgetgraph.models",
    "budgetgraph.planners",
    "budgetgraph.tools",
]
_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_imports(package):
    module = importlib.import_module(package)
    exported = list(module.__all__)
    assert exported, f"{package} exports nothing"
    assert len(set(exported)) == len(exported), f"{package}.__all__ names a name twice"
    missing = [name for name in exported if not hasattr(module, name)]
    assert missing == [], f"{package}.__all__ names what it does not have: {missing}"


def _doc_imports() -> list[tuple[str, str, str]]:
    """(where, module, name) for every ``from budgetgraph... import name`` in the docs' Python blocks, the
    README's and the examples."""
    sources: list[tuple[str, str]] = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        sources += [(path.name, block) for block in _BLOCK.findall(text)]
    sources += [(p.name, p.read_text(encoding="utf-8")) for p in sorted((ROOT / "examples").rglob("*.py"))]
    found = []
    for where, code in sources:
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue  # a fragment, not a program
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("budgetgraph"):
                found += [(where, node.module or "", alias.name) for alias in node.names]
    return found


def test_the_docs_import_only_exported_names():
    imports = _doc_imports()
    assert len(imports) > 20  # the scan found the docs' imports
    problems = []
    checked = 0
    for where, module_name, name in imports:
        try:
            module = importlib.import_module(module_name)
        except MissingExtra:
            continue  # an extra this interpreter lacks (langchain needs Python 3.11+): checked where it is
        checked += 1
        if not hasattr(module, name):
            problems.append(f"{where}: {module_name} has no {name}")
        elif "__all__" in vars(module) and name not in module.__all__:
            problems.append(f"{where}: {module_name} does not export {name}")
    assert checked > 20
    assert problems == []


def test_the_app_names_are_exported_at_the_top():
    import budgetgraph

    for name in (
        "sse_events",
        "event_to_dict",
        "BudgetGrant",
        "Bidder",
        "ChatModel",
        "Overrun",
        "AgentOptions",
    ):
        assert name in budgetgraph.__all__, name


def test_every_planner_label_of_the_kept_results_builds_its_options(monkeypatch):
    """The label grammar now asks the registry: the labels of every results file in docs/results (written
    before) still parse, to the options class of their planner, so those sweeps still resume."""
    from budgetgraph.agents import PLANNERS
    from budgetgraph.agents.planners import planner_options
    from budgetgraph.envs.results import ResultsFile

    monkeypatch.chdir(ROOT)  # the labels name their baseline files from the repository root
    labels = set()
    for path in sorted((ROOT / "docs" / "results").glob("*.jsonl")):
        _, records = ResultsFile(path).read()
        labels |= {r["planner"] for r in records}
    assert len(labels) >= 8
    for label in sorted(labels):
        name, options = planner_options(label)
        assert type(options) is PLANNERS[name].options, label


@pytest.mark.parametrize("command", ["run", "eval"])
def test_cli_help_lists_every_planner_environment_and_model_prefix(command, monkeypatch):
    """The help is generated from the registries, so it cannot go stale."""
    from typer.testing import CliRunner

    from budgetgraph.agents import PLANNERS
    from budgetgraph.cli import app
    from budgetgraph.envs.registry import ENVS
    from budgetgraph.models import MODEL_PREFIXES

    monkeypatch.setenv("COLUMNS", "400")
    text = " ".join(CliRunner().invoke(app, [command, "--help"]).output.split())
    missing = [name for name in PLANNERS if name not in text]
    missing += [f"{prefix}:" for prefix in MODEL_PREFIXES if prefix != "local" and f"{prefix}:" not in text]
    if command == "eval":
        missing += [name for name in ENVS if f"{name}:" not in text]
    assert missing == [], text[:3000]


def test_the_options_table_of_the_planners_doc_names_every_field():
    import dataclasses

    from budgetgraph.agents import options as module

    text = (Path(__file__).resolve().parents[1] / "docs" / "planners.md").read_text(encoding="utf-8")
    rows = {
        m[1]: set(re.findall(r"`(\w+)`", m[2]))
        for m in re.finditer(r"^\| `(\w+Options)` \|[^|]*\|(.*)\|$", text, re.M)
    }
    base = {f.name for f in dataclasses.fields(module.AgentOptions)}
    assert rows["AgentOptions"] >= base, base - rows["AgentOptions"]
    for name, listed in rows.items():
        own = {f.name for f in dataclasses.fields(getattr(module, name))} - base
        assert listed >= own, (name, own - listed)
