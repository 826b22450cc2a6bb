"""Shows: a web-search agent with its own SearchBackend and fetch_page over a local page server, per-tool caps,
and the fetch guard refusing a cloud-metadata URL without charging it.

    python examples/web_search_agent.py
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from budgetgraph import Agent, ScriptedModel
from budgetgraph.tools.web import FetchGuard, SearchResult, web_tools

PAGES = {
    "/lumen": (
        "The Lumen Remote",
        "The Lumen Remote was designed by Ada Moreau at the Lisbon studio in 2019.",
    ),
    "/studio": ("Lisbon studio", "The Lisbon studio makes remotes, lamps and small speakers."),
}


class Pages(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        title, text = PAGES.get(self.path, ("Not found", ""))
        body = f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1><p>{text}</p></article></body></html>"
        self.send_response(200 if text else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(body.encode())


class LocalSearch:
    """A SearchBackend: any object with search(query, max_results) -> list[SearchResult]."""

    def __init__(self, base: str) -> None:
        self.base = base

    def search(self, query: str, max_results: int) -> list[SearchResult]:
        words = set(re.findall(r"\w+", query.lower()))
        ranked = sorted(PAGES.items(), key=lambda kv: -len(words & set(re.findall(r"\w+", kv[1][0].lower()))))
        return [
            SearchResult(title, self.base + path, text[:60]) for path, (title, text) in ranked[:max_results]
        ]


def researcher(messages, tools):
    """Search, then fetch the top hit and a metadata URL (refused), then answer from the page."""
    results = [m.content for m in messages if m.role == "tool"]
    if not results:
        return ScriptedModel.tool_calls([("web_search", {"queries": ["Lumen Remote designer"]})])
    if len(results) == 1:
        top = re.search(r"\]\((http[^)]+)\)", results[0]).group(1)  # type: ignore[union-attr]
        return ScriptedModel.tool_calls(
            [("fetch_page", {"urls": [top, "http://169.254.169.254/latest/meta-data/"]})]
        )
    designer = re.search(r"designed by ([A-Z]\w+ [A-Z]\w+)", results[-1])
    return ScriptedModel.text(f"<answer>{designer.group(1) if designer else 'unknown'}</answer>")


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    # the guard refuses loopback by default: open it for this one local host only
    tools = web_tools(backend=LocalSearch(base), guard=FetchGuard(allow_hosts=["127.0.0.1"]), max_results=2)
    agent = Agent(ScriptedModel(researcher), tools, "web_search=2,fetch_page=2", planner="tracker")
    result = agent.run("Who designed the Lumen Remote?")
    fetched = [m.content for m in result.messages if m.role == "tool"][-1]
    print("answer:", result.answer)
    print("charged:", result.usage.tool_calls, "(the metadata URL was refused, not charged)")
    print("guard said:", next(line for line in fetched.splitlines() if line.startswith("Error: refused")))
    server.shutdown()


if __name__ == "__main__":
    main()
