"""Web tools against a real HTTP server on 127.0.0.1 (guard opened for it) and recorded search rows."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytest.importorskip("trafilatura", reason="the web tools need pip install 'budgetgraph[web]'")
pytest.importorskip("ddgs", reason="the web tools need pip install 'budgetgraph[web]'")

from budgetgraph import Agent, Budget  # noqa: E402
from budgetgraph.errors import ToolRejected  # noqa: E402
from budgetgraph.meter import run_tool  # noqa: E402
from budgetgraph.models import ScriptedModel  # noqa: E402
from budgetgraph.tools.web import DDGSBackend, FetchGuard, SearchResult, web_tools  # noqa: E402

RECORDED = json.loads((Path(__file__).parent / "data" / "ddgs_text_results.json").read_text())
ARTICLE = """<!doctype html><html><head><title>Budgets</title><script>var tracking = 1;</script></head>
<body><nav>Home | About | Login</nav><article><h1>Why budgets matter</h1>
<p>A budget-aware agent reserves every tool call before it runs and commits it afterwards.</p>
<p>Calls that do not fit the remaining budget are refused, so the caps are never exceeded.</p></article>
<footer>Copyright 2026</footer></body></html>"""


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def _send(self, code, body=b"", ctype="text/html", headers=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        routes = {
            "/article": lambda: self._send(200, ARTICLE.encode()),
            "/plain": lambda: self._send(200, b"just text", "text/plain"),
            "/big": lambda: self._send(200, b"x" * 3_000_000, "text/plain"),
            "/hop": lambda: self._send(302, headers=[("Location", "/article")]),
            "/to-metadata": lambda: self._send(
                302, headers=[("Location", "http://169.254.169.254/latest/meta-data")]
            ),
            "/loop": lambda: self._send(302, headers=[("Location", "/loop")]),
        }
        routes.get(self.path, lambda: self._send(404, b"nope"))()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # the client hangs up on /big by design
            super().handle_error(request, client_address)


@pytest.fixture(scope="module")
def server():
    httpd = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _fetch(tools, urls):
    fetch = next(t for t in tools if t.name == "fetch_page")
    return asyncio.run(run_tool(fetch, fetch.validate({"urls": urls}), fetch.timeout))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://169.254.169.254/latest/meta-data",
        "file:///etc/passwd",
        "http://[::1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://localhost/",
        "ftp://example.org/",
    ],
)
def test_guard_refuses_non_public_targets_by_default(url):
    with pytest.raises(ToolRejected, match="refused|cannot resolve"):
        asyncio.run(FetchGuard().check(url))


def test_guard_refuses_a_public_looking_name_that_resolves_private():
    async def resolver(host):
        return {"intranet.example.com": ["93.184.216.34", "10.0.0.5"]}[host]

    with pytest.raises(ToolRejected, match="resolves to 10.0.0.5, a private address"):
        asyncio.run(FetchGuard(resolve=resolver).check("https://intranet.example.com/admin"))
    asyncio.run(FetchGuard(resolve=lambda h: _const(["93.184.216.34"])).check("https://example.com/"))


async def _const(value):
    return value


def test_fetch_extracts_readable_text_and_follows_checked_redirects(server):
    tools = web_tools(guard=FetchGuard(allow_private=True), backend=None)
    text = _fetch(tools, [f"{server}/hop"])
    assert "reserves every tool call" in text and "tracking" not in text and "Login" not in text
    assert "just text" in _fetch(tools, [f"{server}/plain"])
    assert "HTTP 404" in _fetch(tools, [f"{server}/missing", f"{server}/plain"])
    assert "more than 5 redirects" in _fetch(tools, [f"{server}/loop"])


def test_size_limit_cuts_large_pages(server):
    tools = web_tools(guard=FetchGuard(allow_private=True), max_bytes=10_000)
    assert "[page cut at 10000 bytes]" in _fetch(tools, [f"{server}/big"])


def test_a_redirect_into_the_metadata_service_is_refused(server):
    tools = web_tools(guard=FetchGuard(allow_hosts=["127.0.0.1"]))
    with pytest.raises(ToolRejected, match="169.254.169.254"):
        _fetch(tools, [f"{server}/to-metadata"])


class _Recorded:
    def search(self, query, max_results):
        rows = RECORDED.get(query, [])[:max_results]
        return [SearchResult(r["title"], r["href"], r["body"]) for r in rows]


def test_ddgs_backend_maps_the_ddgs_rows(monkeypatch):
    backend = DDGSBackend()
    calls = []

    def text(query, **kw):
        calls.append((query, kw))
        return RECORDED[query]

    monkeypatch.setattr(backend._ddgs, "text", text)
    hits = backend.search("sqlite fts5 bm25", 5)
    row = RECORDED["sqlite fts5 bm25"][0]
    assert hits == [SearchResult(row["title"], row["href"], row["body"])]
    assert calls == [("sqlite fts5 bm25", {"max_results": 5, "backend": "auto", "region": "wt-wt"})]


def test_agent_with_web_tools_keeps_per_tool_caps_and_refunds_refused_fetches(server):
    tools = web_tools(backend=_Recorded())  # default guard: the local server is refused

    def policy(messages, offered):
        n = sum(1 for m in messages if m.role == "tool")
        if n == 0:
            return ScriptedModel.tool_calls(
                [("web_search", {"queries": ["budget aware agents", "sqlite fts5 bm25"]})]
            )
        if n == 1:
            return ScriptedModel.tool_calls([("fetch_page", {"urls": [f"{server}/article"]})])
        if n == 2:
            return ScriptedModel.tool_calls([("web_search", {"queries": ["budget aware agents"]})])
        return ScriptedModel.text("<answer>done</answer>")

    agent = Agent(
        ScriptedModel(policy), tools, Budget(tool_calls={"web_search": 2, "fetch_page": 1}), planner="tracker"
    )
    result = agent.run("What do budget-aware agents do?")
    texts = [m.content for m in result.messages if m.role == "tool"]
    assert "arxiv.org/abs/2511.17006" in texts[0]
    assert "refused" in texts[1] and "(not charged)" in texts[1]
    assert "needed 1, 0 left" in texts[2]  # the third search does not fit the cap of 2 queries
    assert result.usage.tool_calls == {"web_search": 2}
    assert float(result.usage.usd) == pytest.approx(0.002)


# -- attacks: rebinding, decompression bombs, non-global addresses, refunds --------------------------------
def test_the_connection_goes_to_the_address_the_guard_checked():
    """DNS rebinding: the name is resolved once; the request goes to that IP with the original Host and SNI."""
    import httpx

    answers = iter([["93.184.216.34"], ["127.0.0.1"]])  # a second lookup would be the flip to loopback

    async def resolver(host):
        return next(answers)

    seen = []

    def handler(request):
        seen.append((request.url.host, request.headers["host"], request.extensions.get("sni_hostname")))
        page = b"<html><body><p>" + b"public page " * 20 + b"</p></body></html>"
        return httpx.Response(200, headers={"content-type": "text/html"}, stream=httpx.ByteStream(page))

    tools = web_tools(guard=FetchGuard(resolve=resolver), transport=httpx.MockTransport(handler))
    text = _fetch(tools, ["https://rebind.example/page"])
    assert "public page" in text
    assert seen == [("93.184.216.34", "rebind.example", "rebind.example")]


@pytest.mark.parametrize(
    "url", ["http://100.100.100.200/latest/meta-data", "http://100.64.0.1/", "http://0.0.0.0/"]
)
def test_non_global_addresses_are_refused(url):
    with pytest.raises(ToolRejected, match="refused"):
        asyncio.run(FetchGuard().check(url))


@pytest.fixture(scope="module")
def bomb_server():
    import gzip

    import zstandard

    zeros = b"\0" * (64 << 20)
    bombs = {
        "/gzip2": (gzip.compress(gzip.compress(zeros)), "gzip, gzip"),
        "/zstd": (zstandard.ZstdCompressor().compress(zeros), "zstd"),
    }

    class Bomb(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body, encoding = bombs[self.path]
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Encoding", encoding)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = _Server(("127.0.0.1", 0), Bomb)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", {k: len(v[0]) for k, v in bombs.items()}
    httpd.shutdown()


def test_decompression_bombs_are_cut_at_the_size_cap(bomb_server):
    import resource

    url, sizes = bomb_server
    assert sizes["/gzip2"] < 200_000 and sizes["/zstd"] < 200_000  # small bodies that decode to 64 MiB
    tools = web_tools(guard=FetchGuard(allow_private=True), max_bytes=100_000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    text = _fetch(tools, [f"{url}/gzip2"])
    assert "[page cut at 100000 bytes]" in text
    refused = _fetch(tools, [f"{url}/zstd", f"{url}/gzip2"])
    assert "content-encoding 'zstd'" in refused and "only gzip and deflate" in refused
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown < 50, f"peak memory grew {grown:.0f} MiB"


def test_a_refused_url_of_a_batch_is_not_charged(server):
    log = []

    def script(messages, tools):
        if any(m.role == "tool" for m in messages):
            return ScriptedModel.text("<answer>done</answer>")
        return ScriptedModel.tool_calls(
            [("fetch_page", {"urls": [f"{server}/plain", "http://10.0.0.7/admin"]})]
        )

    host = server.split("//")[1].split(":")[0]
    tools = web_tools(guard=FetchGuard(allow_hosts=[host]))
    agent = Agent(ScriptedModel(script), tools, Budget(tool_calls={"fetch_page": 5}), planner="react")
    result = agent.run("fetch")
    tool_text = next(m.content for m in result.messages if m.role == "tool")
    assert "just text" in tool_text and "not charged" in tool_text
    assert result.usage.tool_calls == {"fetch_page": 1} and result.usage.usd == Decimal("0.001")
    assert log == []


def test_a_missing_web_extra_is_an_error_when_the_tools_are_built(monkeypatch):
    """Not a charged tool error at the first call inside a run: the extra is named before any spend."""
    import budgetgraph._extras as extras
    from budgetgraph.errors import MissingExtra

    real = extras.importlib.import_module

    def without(name: str, *a):
        if name.split(".")[0] in ("ddgs", "trafilatura"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *a)

    monkeypatch.setattr(extras.importlib, "import_module", without)
    with pytest.raises(MissingExtra, match=r"budgetgraph\[web\]"):
        web_tools()


@pytest.mark.model
def test_run_with_web_searches_a_searxng_instance_by_name_with_the_embedded_model():
    """`budgetgraph run --web searxng:URL`: the CLI builds the backend by name and the real model searches."""
    import os
    import subprocess

    pytest.importorskip("llama_cpp", reason="the embedded model needs pip install 'budgetgraph[local]'")
    queries: list[str] = []

    class SearXNG(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            from urllib.parse import parse_qs, urlparse

            args = parse_qs(urlparse(self.path).query)
            queries.append(f"{args.get('q', [''])[0]} format={args.get('format', [''])[0]}")
            body = json.dumps(
                {
                    "results": [
                        {
                            "title": "Freedonia - facts",
                            "url": "https://example.org/freedonia",
                            "content": "The capital of Freedonia is Zubrowka City, on the river Lund.",
                        }
                    ]
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), SearXNG)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "budgetgraph.cli", "run", "What is the capital of Freedonia?"]
            + ["--web", f"searxng:http://127.0.0.1:{httpd.server_address[1]}"]
            # no page budget: the snippet is the source (the result's URL is not reachable from a test)
            + ["--budget", "web_search=2,fetch_page=0", "--max-tokens", "128"],
            capture_output=True,
            text=True,
            timeout=240,
            env={**os.environ, "COLUMNS": "200"},
        )
    finally:
        httpd.shutdown()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "-> web_search(" in proc.stderr and queries and all(q.endswith("format=json") for q in queries)
    assert "answer:" in proc.stdout and "zubrowka" in proc.stdout.lower()
    assert "web_search" in proc.stdout and "fetch_page" in proc.stdout  # the usage table names both caps
