"""Brave, Tavily and SearXNG backends against a local fake of each wire format, plus a web-search agent run
on each. The replies are treated as hostile: size cap, shape checks, HTML stripped, clear errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("httpx")
sys.path.insert(0, str(Path(__file__).parent / "servers"))

from fake_search import KEY, FakeSearch  # noqa: E402

from budgetgraph import Agent, ConfigError, ScriptedModel, ToolCallError  # noqa: E402
from budgetgraph.tools.search_backends import BraveBackend, SearXNGBackend, TavilyBackend  # noqa: E402
from budgetgraph.tools.web import web_tools  # noqa: E402


@pytest.fixture(scope="module")
def fake():
    server = FakeSearch()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def reset(fake):
    fake.mode = "ok"
    fake.requests.clear()


def backends(url: str):
    return {
        "brave": BraveBackend(KEY, base_url=url),
        "tavily": TavilyBackend(KEY, base_url=url),
        "searxng": SearXNGBackend(url),
    }


@pytest.mark.parametrize("name", ["brave", "tavily", "searxng"])
def test_each_backend_speaks_its_wire_format(fake, name):
    hits = backends(fake.url)[name].search("capital of France", 3)
    assert [h.url for h in hits] == [
        "https://example.com/0",
        "https://example.com/1",
        "https://example.com/2",
    ]
    assert hits[0].snippet == "Paris is the capital"
    (req,) = fake.requests
    if name == "brave":
        assert (req["method"], req["path"]) == ("GET", "/res/v1/web/search")
        assert req["query"] == {"q": ["capital of France"], "count": ["3"]}
        assert req["headers"]["X-Subscription-Token"] == KEY
    elif name == "tavily":
        assert (req["method"], req["path"]) == ("POST", "/search")
        assert req["json"] == {"query": "capital of France", "max_results": 3, "search_depth": "basic"}
        assert req["headers"]["Authorization"] == f"Bearer {KEY}"
    else:
        assert (req["method"], req["path"]) == ("GET", "/search")
        assert req["query"]["format"] == ["json"] and req["query"]["q"] == ["capital of France"]


@pytest.mark.parametrize("name", ["brave", "tavily", "searxng"])
@pytest.mark.parametrize(
    ("mode", "says"),
    [
        ("401", "refused the request"),
        ("429", "rate limiting"),
        ("notjson", "not JSON"),
        ("huge", "over 2000000 bytes"),
        ("shape", "not a list"),
    ],
)
def test_a_failing_or_lying_api_is_a_clear_tool_error(fake, name, mode, says):
    fake.mode = mode
    with pytest.raises(ToolCallError, match=says):
        backends(fake.url)[name].search("q", 3)


def test_hostile_snippets_lose_their_markup(fake):
    fake.mode = "hostile"
    hit = BraveBackend(KEY, base_url=fake.url).search("q", 1)[0]
    assert hit.snippet == "Paris is the capital & largest city"


def test_a_wrong_key_and_a_missing_key_say_what_to_do(fake, monkeypatch):
    with pytest.raises(ToolCallError, match="check the API key"):
        BraveBackend("wrong", base_url=fake.url).search("q", 1)
    monkeypatch.delenv("TAVILY_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="TAVILY_API_KEY"):
        TavilyBackend()
    fake.mode = "403"
    with pytest.raises(ToolCallError, match="enable the json format"):
        SearXNGBackend(fake.url).search("q", 1)


def test_an_unreachable_api_is_a_tool_error():
    with pytest.raises(ToolCallError, match="unreachable"):
        SearXNGBackend("http://127.0.0.1:1").search("q", 1)


@pytest.mark.parametrize("name", ["brave", "tavily", "searxng"])
def test_a_web_search_agent_runs_on_each_backend(fake, name):
    tools = web_tools(backend=backends(fake.url)[name], max_results=2)

    def script(messages, offered):
        if not any(m.role == "tool" for m in messages):
            return ScriptedModel.tool_calls([("web_search", {"queries": ["capital of France", "Paris"]})])
        return ScriptedModel.text("<answer>Paris</answer>")

    result = Agent(ScriptedModel(script), tools, "web_search=4,fetch_page=2", planner="tracker").run("q")
    assert result.answer == "Paris" and result.usage.tool_calls == {"web_search": 2}  # a unit per query
    found = [m.content for m in result.messages if m.role == "tool"][0]
    assert "https://example.com/1" in found and len(fake.requests) == 2
