from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from budgetgraph import ConfigError, Corpus
from budgetgraph.models.toolparse import parse_tool_calls

ROOT = Path(__file__).resolve().parents[1]


def test_hotpot_corpus_search_finds_the_supporting_paragraph(hotpot20, hotpot_corpus):
    assert len(hotpot_corpus) > 150
    hits = hotpot_corpus.search("Apple Remote originally designed to interact with", 5)
    assert "Apple Remote" in [h.title for h in hits]
    doc = hotpot_corpus.get("front row (software)")
    assert doc is not None and doc.title == "Front Row (software)"


def test_corpus_tools_count_units_per_query(mini_corpus):
    import asyncio

    from budgetgraph.meter import run_tool

    search, open_ = mini_corpus.tools()
    args = search.validate({"queries": ["Apple Remote", "Lumen Remote"]})
    assert search.units_for(args) == 2
    text = asyncio.run(run_tool(search, args, None))
    assert 'Results for "Apple Remote"' in text and "[Lumen Remote]" in text
    missing = asyncio.run(run_tool(open_, open_.validate({"title": "Apple Remot"}), None))
    assert "No document titled" in missing and "Apple Remote" in missing


def test_jsonl_corpus_cache_is_rebuilt_when_the_source_changes(tmp_path):
    src = tmp_path / "c.jsonl"
    src.write_text(json.dumps({"id": "1", "title": "Alpha", "text": "the alpha document"}) + "\n")
    first = Corpus.from_jsonl(src, cache_dir=tmp_path / "cache")
    again = Corpus.from_jsonl(src, cache_dir=tmp_path / "cache")
    assert first.path == again.path and len(again) == 1
    src.write_text(
        src.read_text() + json.dumps({"id": "2", "title": "Beta", "text": "beta words here"}) + "\n"
    )
    changed = Corpus.from_jsonl(src, cache_dir=tmp_path / "cache")
    assert changed.path != first.path and len(changed) == 2
    assert changed.search("beta")[0].title == "Beta"


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"id": "1", "title": "A", "text": "x"}\n{broken\n', "c.jsonl:2: not valid JSON"),
        ('{"id": "1", "title": "A"}\n', "missing field(s) text"),
        (
            '{"id": "1", "title": "A", "text": "x"}\n{"id": "1", "title": "B", "text": "y"}\n',
            "duplicate id '1'",
        ),
        ("\n\n", "the corpus is empty"),
    ],
)
def test_corrupt_corpus_files_get_clear_errors(tmp_path, content, message):
    src = tmp_path / "c.jsonl"
    src.write_text(content)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Corpus.from_jsonl(src, cache_dir=tmp_path / "cache")


def test_damaged_cached_index_is_rebuilt(tmp_path):
    src = tmp_path / "c.jsonl"
    src.write_text(json.dumps({"id": "1", "title": "Alpha", "text": "alpha"}) + "\n")
    corpus = Corpus.from_jsonl(src, cache_dir=tmp_path / "cache")
    corpus.path.write_bytes(b"this is not a sqlite file at all" * 100)
    assert len(Corpus.from_jsonl(src, cache_dir=tmp_path / "cache")) == 1


def test_docs_folder_is_indexed_by_section(tmp_path):
    corpus = Corpus.from_folder(ROOT / "docs", cache_dir=tmp_path)
    titles = [h.title for h in corpus.search("refuse overshoot parallel tool calls", 3)]
    assert any("Refuse" in t for t in titles)


@pytest.mark.parametrize(
    "text, names",
    [
        ('<tool_call>\n{"name": "search", "arguments": {"queries": ["a"]}}\n</tool_call>', ["search"]),
        (
            '<tool_call>{"name": "search", "arguments": {"queries": ["a"]}}</tool_call>\n'
            '<tool_call>{"name": "open", "arguments": {"title": "A"}}</tool_call>',
            ["search", "open"],
        ),
        ('{"name": "search", "arguments": {"queries": ["a"]}}', ["search"]),
        ('```json\n{"name": "search", "arguments": "{\\"queries\\": [\\"a\\"]}"}\n```', ["search"]),
        ('[{"name": "search", "parameters": {"queries": ["a"]}}]', ["search"]),
    ],
)
def test_tool_calls_written_as_text_are_parsed(text, names):
    parsed = parse_tool_calls(text, ["search", "open"])
    assert [c.name for c in parsed.calls] == names and not parsed.attempted
    assert all(c.error is None for c in parsed.calls)


def test_the_local_grammar_of_a_structured_call_writes_every_field_in_order():
    llama_cpp = pytest.importorskip("llama_cpp", reason="the grammar is llama.cpp's (budgetgraph[local])")
    from budgetgraph.models.local import tool_call_grammar
    from budgetgraph.planners.bats import PlanOut, Selection, Verdict

    for schema in (PlanOut, Verdict, Selection):
        grammar = tool_call_grammar(["submit"], 1, schema.model_json_schema())
        llama_cpp.LlamaGrammar.from_string(grammar, verbose=False)  # it compiles
        assert "arguments ::=" in grammar and " object " not in grammar
    selection = tool_call_grammar(["select_answer"], 1, Selection.model_json_schema())
    assert (
        'arguments ::= "{" space reason-kv "," space index-kv "}" space' in selection
    )  # reason first, both written
    assert " object " in tool_call_grammar(["a", "b"], 3)  # several tools: any JSON object


def test_a_grammar_bound_call_follows_each_tools_schema_with_lists_bounded():
    """A forced call under the grammar cannot loop inside a list argument (the 1.5B model once wrote 15
    queries until max_tokens cut the call off, and the turn was lost)."""
    llama_cpp = pytest.importorskip("llama_cpp", reason="the grammar is llama.cpp's (budgetgraph[local])")
    from budgetgraph.models.local import GRAMMAR_MAX_ITEMS, tool_call_grammar
    from budgetgraph.tools.web import web_tools

    parameters = {t.name: t.schema.parameters for t in web_tools(backend=None)}
    both = tool_call_grammar(list(parameters), 1, None, parameters)
    llama_cpp.LlamaGrammar.from_string(both, verbose=False)  # it compiles
    assert " object " not in both and '"\\"web_search\\""' in both and '"\\"fetch_page\\""' in both
    lists = [line for line in both.splitlines() if line.split(" ::=")[0].endswith(("-queries", "-urls"))]
    assert len(lists) == 2 and all(line.count("string") == GRAMMAR_MAX_ITEMS for line in lists)
    capped = {
        "type": "object",
        "properties": {"ids": {"type": "array", "items": {"type": "integer"}, "maxItems": 2}},
    }
    own = tool_call_grammar(["pick"], 1, None, {"pick": capped})
    llama_cpp.LlamaGrammar.from_string(own, verbose=False)
    assert any(line.startswith("alternative") or "ids ::=" in line for line in own.splitlines())
    assert (
        next(line for line in own.splitlines() if "-ids ::=" in line or line.startswith("ids ::=")).count(
            "integer"
        )
        == 2
    )  # a schema's own maxItems is kept
    assert " object " in tool_call_grammar(["a", "b"], 3)  # no schemas: any JSON object


def test_broken_or_unknown_calls_are_flagged():
    assert parse_tool_calls('<tool_call>{"name": "search", "arguments": {</tool_call>', ["search"]).attempted
    assert parse_tool_calls('{"name": "search", "arguments": {"q": ', ["search"]).attempted
    unknown = parse_tool_calls('{"name": "delete_all", "arguments": {}}', ["search"])
    assert unknown.calls[0].error and "unknown tool" in unknown.calls[0].error
    plain = parse_tool_calls("<answer>Paris</answer>", ["search"])
    assert not plain.calls and not plain.attempted


def test_import_needs_no_extra_and_cli_reports_bad_input():
    code = "import sys, budgetgraph; print(sorted(m for m in ('llama_cpp', 'openai') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    bad = subprocess.run(
        [sys.executable, "-m", "budgetgraph.cli", "run", "q", "--budget", "search=lots"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "'lots' is not a whole number" in bad.stderr


def test_cli_run_with_the_scripted_model_prints_json(tmp_path):
    env = {**__import__("os").environ, "BUDGETGRAPH_CACHE": str(tmp_path)}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "budgetgraph.cli",
            "run",
            "What does the ledger refuse?",
            "--model",
            "scripted",
            "--corpus",
            str(ROOT / "docs"),
            "--budget",
            "search=1,open=1",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    data = json.loads(out.stdout)
    assert data["usage"]["tool_calls"] == {"search": 1, "open": 1}
    assert data["stop_reason"].startswith("budget_exhausted") and data["answer"]


def test_cli_errors_print_their_text_literally_not_as_markup(monkeypatch):
    """A missing extra's message names budgetgraph[openai]: rich must not eat the brackets."""
    from typer.testing import CliRunner

    import budgetgraph._extras as extras
    from budgetgraph.cli import app

    real = extras.importlib.import_module

    def no_openai(name: str, *a):
        if name.split(".")[0] == "openai":
            raise ImportError("No module named 'openai'")
        return real(name, *a)

    monkeypatch.setattr(extras.importlib, "import_module", no_openai)
    result = CliRunner().invoke(app, ["run", "q", "--model", "openai:gpt-4.1-mini", "--no-stream"])
    assert result.exit_code == 2
    assert "pip install 'budgetgraph[openai]'" in result.output, result.output


def test_a_link_out_of_the_corpus_folder_is_not_indexed(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("root:x:0:0:the system password file\n")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.md").write_text("# Notes\n\nBudgets are reserved before calls.\n")
    (folder / "passwd.txt").symlink_to(outside)
    corpus = Corpus.from_folder(folder, cache_dir=tmp_path / "cache")
    assert corpus.search("password", 5) == [] and corpus.search("budgets", 5)
    linked = Corpus.from_folder(folder, cache_dir=tmp_path / "cache", follow_links=True)
    assert [h.title for h in linked.search("password", 5)] == ["passwd"]
