"""Search backends for ``web_tools(backend=...)``: Brave and Tavily (hosted APIs) and SearXNG (self-hosted,
its JSON API). Each is a :class:`~budgetgraph.tools.web.SearchBackend`; replies are untrusted: read to a size
cap, checked for shape, and snippets lose their HTML.
"""

from __future__ import annotations

import html
import json
import os
import re
from typing import Any

from .._extras import require
from .._redact import remember_secret
from ..errors import ConfigError, ToolCallError
from .web import DDGSBackend, SearchBackend, SearchResult

__all__ = ["SEARCH_BACKENDS", "BraveBackend", "SearXNGBackend", "TavilyBackend", "search_backend"]

_TAGS = re.compile(r"<[^>]{0,200}>")
_MAX_REPLY = 2_000_000
_MAX_FIELD = 1000


def _clean(value: Any, limit: int = _MAX_FIELD) -> str:
    text = html.unescape(_TAGS.sub("", value if isinstance(value, str) else ""))
    return " ".join(text.split())[:limit]


class _HTTPBackend:
    """Shared plumbing: one httpx client, a bounded read, errors that say what to check."""

    name = "search API"

    def __init__(self, base_url: str, *, timeout: float, transport: Any) -> None:
        require("httpx", "web")
        import httpx

        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            with self._client.stream(method, self.base_url + path, **kwargs) as reply:
                body = b""
                for chunk in reply.iter_bytes():
                    body += chunk
                    if len(body) > _MAX_REPLY:
                        raise ToolCallError(f"{self.name}: the reply is over {_MAX_REPLY} bytes; not read")
                status = reply.status_code
        except httpx.HTTPError as exc:
            raise ToolCallError(
                f"{self.name} at {self.base_url} is unreachable: {type(exc).__name__}: {exc}"
            ) from None
        if status in (401, 403):
            raise ToolCallError(f"{self.name} refused the request (HTTP {status}): {self._auth_hint()}")
        if status == 429:
            raise ToolCallError(f"{self.name} is rate limiting (HTTP 429): wait, or lower the search budget")
        if status >= 400:
            raise ToolCallError(f"{self.name} answered HTTP {status}: {body[:200]!r}")
        try:
            return json.loads(body)
        except ValueError:
            raise ToolCallError(f"{self.name}: the reply is not JSON ({body[:80]!r}...)") from None

    def _auth_hint(self) -> str:
        return "check the API key"

    def _rows(self, data: Any, *path: str) -> list[dict[str, Any]]:
        if not isinstance(data, dict):
            raise ToolCallError(f"{self.name}: the reply is {type(data).__name__}, not a JSON object")
        for key in path:
            data = data.get(key) if isinstance(data, dict) else None
        if data is None:
            return []
        if not isinstance(data, list):
            raise ToolCallError(f"{self.name}: the reply's {'.'.join(path)} is not a list")
        return [row for row in data if isinstance(row, dict)]

    def close(self) -> None:
        self._client.close()


def _key(given: str | None, env: str, name: str) -> str:
    key = given or os.environ.get(env)
    if not key:
        raise ConfigError(f"{name} needs an API key: pass api_key= or set {env}")
    remember_secret(key)  # an API that echoes its key in an error body: masked before the model sees it
    return key


class BraveBackend(_HTTPBackend):
    """Brave Search API (``/res/v1/web/search``); the key from ``api_key`` or ``BRAVE_SEARCH_API_KEY``."""

    name = "Brave Search"

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str = "https://api.search.brave.com",
        timeout: float = 10.0,
        transport: Any = None,
    ) -> None:
        self._api_key = _key(api_key, "BRAVE_SEARCH_API_KEY", "BraveBackend")
        super().__init__(base_url, timeout=timeout, transport=transport)

    def search(self, query: str, max_results: int) -> list[SearchResult]:
        data = self._send(
            "GET",
            "/res/v1/web/search",
            params={"q": query, "count": max(1, min(max_results, 20))},
            headers={"Accept": "application/json", "X-Subscription-Token": self._api_key},
        )
        rows = self._rows(data, "web", "results")[:max_results]
        return [
            SearchResult(_clean(r.get("title")), _clean(r.get("url")), _clean(r.get("description")))
            for r in rows
        ]


class TavilyBackend(_HTTPBackend):
    """Tavily search API (``POST /search``); the key from ``api_key`` or ``TAVILY_API_KEY``."""

    name = "Tavily"

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str = "https://api.tavily.com",
        search_depth: str = "basic",
        timeout: float = 15.0,
        transport: Any = None,
    ) -> None:
        self._api_key = _key(api_key, "TAVILY_API_KEY", "TavilyBackend")
        self.search_depth = search_depth
        super().__init__(base_url, timeout=timeout, transport=transport)

    def search(self, query: str, max_results: int) -> list[SearchResult]:
        data = self._send(
            "POST",
            "/search",
            json={
                "query": query,
                "max_results": max(1, min(max_results, 20)),
                "search_depth": self.search_depth,
            },
            headers={"Authorization": f"Bearer {self._api_key}"},
        )
        rows = self._rows(data, "results")[:max_results]
        return [
            SearchResult(_clean(r.get("title")), _clean(r.get("url")), _clean(r.get("content"))) for r in rows
        ]


class SearXNGBackend(_HTTPBackend):
    """A SearXNG instance's JSON API (``/search?format=json``; enable ``json`` in its ``search.formats``)."""

    name = "SearXNG"

    def __init__(
        self, base_url: str, *, categories: str = "general", timeout: float = 10.0, transport: Any = None
    ) -> None:
        self.categories = categories
        super().__init__(base_url, timeout=timeout, transport=transport)

    def _auth_hint(self) -> str:
        return "enable the json format in the instance's settings.yml (search: formats: [html, json])"

    def search(self, query: str, max_results: int) -> list[SearchResult]:
        data = self._send(
            "GET", "/search", params={"q": query, "format": "json", "categories": self.categories}
        )
        rows = self._rows(data, "results")[:max_results]
        return [
            SearchResult(_clean(r.get("title")), _clean(r.get("url")), _clean(r.get("content"))) for r in rows
        ]


SEARCH_BACKENDS: dict[str, str] = {
    "ddgs": "DuckDuckGo and other engines through the ddgs package (no key)",
    "brave": "the Brave Search API (key in BRAVE_SEARCH_API_KEY)",
    "tavily": "the Tavily API (key in TAVILY_API_KEY)",
    "searxng:URL": "a SearXNG instance's JSON API, e.g. searxng:http://127.0.0.1:8888",
}
"""The backends ``search_backend`` builds by name (the CLI's ``--web`` help is made from this)."""


def search_backend(spec: str) -> SearchBackend:
    """A search backend by name: ``ddgs``, ``brave``, ``tavily`` or ``searxng:URL``; keys come from the
    environment, and a missing one is a ConfigError naming the variable."""
    name, _, rest = spec.strip().partition(":")
    name = name.lower()
    names = [k.split(":")[0] for k in SEARCH_BACKENDS]
    if name not in names:
        import difflib

        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"no search backend {spec!r}{hint} The backends: {', '.join(SEARCH_BACKENDS)}")
    if name == "searxng":
        if not rest.strip():
            raise ConfigError("searxng needs the instance's URL: searxng:http://HOST:PORT")
        return SearXNGBackend(rest.strip())
    if rest:
        raise ConfigError(f"{spec!r}: only searxng takes a URL (searxng:URL)")
    if name == "ddgs":
        require("ddgs", "web")
        return DDGSBackend()
    if name == "brave":
        return BraveBackend()
    return TavilyBackend()
