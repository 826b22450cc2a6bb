"""Shows: a web-search agent with its own SearchBackend and fetch_page over a local page server, per-tool caps,
and the fetch guard refusing a cloud-metadata URL without charging it.

    python examples/web_search_agent.py                  # a scripted agent (fast, deterministic)
    python examples/web_search_agent.py --model local    # the embedded model, 10 questions, pages fetched
"""

from __future__ import annotations

import argparse
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
    "/kestrel": (
        "Kestrel Lamp",
        "The Kestrel Lamp, sold since 2021, is made of recycled aluminium in Porto.",
    ),
    "/tern": ("Tern Speaker", "The Tern Speaker plays for 14 hours on one charge and weighs 410 grams."),
    "/moreau": ("Ada Moreau", "Ada Moreau is an industrial designer born in Lyon in 1984."),
}
QUESTIONS = [  # the snippets (60 characters) stop before each answer: the page must be read
    ("Who designed the Lumen Remote?", "Ada Moreau"),
    ("In which year was the Lumen Remote designed?", "2019"),
    ("What does the Lisbon studio make besides remotes?", "lamps"),
    ("What is the Kestrel Lamp made of?", "recycled aluminium"),
    ("In which city is the Kestrel Lamp made?", "Porto"),
    ("How many hours does the Tern Speaker play on one charge?", "14"),
    ("How much does the Tern Speaker weigh?", "410"),
    ("Where was Ada Moreau born?", "Lyon"),
    ("In which year was Ada Moreau born?", "1984"),
    ("Since when is the Kestrel Lamp sold?", "2021"),
]


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


def with_model(model: str, tools: list, episodes: int) -> None:
    """A real model on the questions: how many episodes fetched at least one page, and how many answered."""
    fetched = right = 0
    for question, gold in QUESTIONS[:episodes]:
        result = Agent(model, tools, "web_search=3,fetch_page=2", planner="tracker").run(question)
        pages = result.usage.tool_calls.get("fetch_page", 0)
        fetched += pages > 0
        right += gold.lower() in (result.answer or "").lower()
        print(f"{question} -> {result.answer!r}: {dict(result.usage.tool_calls)} ({result.stop_reason})")
    print(
        f"episodes that fetched a page: {fetched} of {episodes}; answers with the fact: {right} of {episodes}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", help="a model (e.g. local) instead of the scripted agent")
    parser.add_argument("--episodes", type=int, default=len(QUESTIONS))
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    # the guard refuses loopback by default: open it for this one local host only
    tools = web_tools(backend=LocalSearch(base), guard=FetchGuard(allow_hosts=["127.0.0.1"]), max_results=2)
    if args.model:
        with_model(args.model, tools, args.episodes)
        server.shutdown()
        return
    agent = Agent(ScriptedModel(researcher), tools, "web_search=2,fetch_page=2", planner="tracker")
    result = agent.run("Who designed the Lumen Remote?")
    fetched = [m.content for m in result.messages if m.role == "tool"][-1]
    print("answer:", result.answer)
    print("charged:", result.usage.tool_calls, "(the metadata URL was refused, not charged)")
    print("guard said:", next(line for line in fetched.splitlines() if line.startswith("Error: refused")))
    server.shutdown()


if __name__ == "__main__":
    main()
