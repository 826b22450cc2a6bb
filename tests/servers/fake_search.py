"""A local fake of three search APIs on 127.0.0.1, in each one's wire format: Brave (GET /res/v1/web/search,
X-Subscription-Token), Tavily (POST /search, Bearer key) and SearXNG (GET /search?format=json). It records
every request; ``mode`` makes it fail: ``401``, ``403``, ``429``, ``notjson``, ``huge`` (a 3 MB reply), ``shape``
(results is not a list), ``hostile`` (HTML and entities in the snippets)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

KEY = "test-key"


class FakeSearch:
    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                owner.requests.append(
                    {
                        "method": method,
                        "path": parts.path,
                        "query": parse_qs(parts.query),
                        "headers": dict(self.headers),
                        "json": body,
                    }
                )
                if owner.mode in ("401", "403", "429"):  # 403: what SearXNG answers with json not enabled
                    return self._reply(int(owner.mode), b'{"error": "no"}')
                if owner.mode == "notjson":
                    return self._reply(200, b"<html>oops</html>")
                if owner.mode == "huge":
                    return self._reply(200, b'{"results": [' + b'"x",' * 800_000 + b'"x"]}')
                snippet = (
                    "<strong>Paris</strong> is the capital &amp; largest city"
                    if owner.mode == "hostile"
                    else "Paris is the capital"
                )
                rows = [
                    {
                        "title": f"Result {i}",
                        "url": f"https://example.com/{i}",
                        "content": snippet,
                        "description": snippet,
                    }
                    for i in range(8)
                ]
                if owner.mode == "shape":
                    rows = "not a list"  # type: ignore[assignment]
                if parts.path == "/res/v1/web/search":
                    ok = self.headers.get("X-Subscription-Token") == KEY
                    payload: Any = {"type": "search", "web": {"type": "search", "results": rows}}
                elif parts.path == "/search" and method == "POST":
                    ok = self.headers.get("Authorization") == f"Bearer {KEY}"
                    payload = {"query": (body or {}).get("query"), "results": rows, "response_time": 0.1}
                elif parts.path == "/search":
                    ok = parse_qs(parts.query).get("format") == ["json"]
                    payload = {"query": parse_qs(parts.query).get("q", [""])[0], "results": rows}
                else:
                    return self._reply(404, b"{}")
                if not ok:
                    return self._reply(403 if parts.path == "/search" and method == "GET" else 401, b"{}")
                self._reply(200, json.dumps(payload).encode())

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
