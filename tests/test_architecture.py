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


def _calls_outside_the_meter() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] in ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name, owner = node.func.attr, node.func.value
            owner_name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            spends = name in SPENDING or name == "fn" or (name == "commit" and "ledger" in owner_name.lower())
            if spends and not (rel.parts[0] == "models" and name == "request" and owner_name == "self"):
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
