"""Web tools: ``web_search`` (the ddgs package; batched queries, one unit each) and ``fetch_page`` (httpx + a
maintained HTML extractor, trafilatura; one unit per URL) with a guard against server-side request forgery.

The guard allows only http and https, resolves every host and refuses loopback, private, link-local (cloud
metadata at 169.254.169.254 included), multicast, reserved and unspecified addresses, also after each
redirect (redirects are followed by hand, each hop checked). ``allow_private=True`` or ``allow_hosts`` opens
it, for tests and intranets. The check happens at resolution time; a host whose DNS answer changes between
the check and the connection (DNS rebinding) is a known limit of checking at this layer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

from .._extras import require
from ..errors import ToolCallError, ToolRejected
from .base import Tool

__all__ = ["DDGSBackend", "FetchGuard", "SearchBackend", "SearchResult", "web_tools"]

Resolver = Callable[[str], Awaitable[list[str]]]


@dataclass(frozen=True, slots=True)
class SearchResult:
    title: str
    url: str
    snippet: str


class SearchBackend(Protocol):
    def search(self, query: str, max_results: int) -> list[SearchResult]: ...


class DDGSBackend:
    """Metasearch through the ``ddgs`` package (successor of duckduckgo-search); needs ``budgetgraph[web]``."""

    def __init__(self, backend: str = "auto", region: str = "wt-wt", timeout: int = 10) -> None:
        require("ddgs", "web")
        from ddgs import DDGS

        self._ddgs = DDGS(timeout=timeout)
        self.backend, self.region = backend, region

    def search(self, query: str, max_results: int) -> list[SearchResult]:
        rows = self._ddgs.text(query, max_results=max_results, backend=self.backend, region=self.region)
        return [SearchResult(r.get("title", ""), r.get("href", ""), r.get("body", "")) for r in rows]


async def _system_resolve(host: str) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _blocked(ip: str) -> str | None:
    addr = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    for flag in (
        "is_loopback",
        "is_private",
        "is_link_local",
        "is_multicast",
        "is_reserved",
        "is_unspecified",
    ):
        if getattr(addr, flag):
            return flag.removeprefix("is_").replace("_", "-")
    return None


@dataclass
class FetchGuard:
    """Which URLs ``fetch_page`` may open. Refuses non-public addresses unless allowed."""

    allow_private: bool = False
    allow_hosts: Sequence[str] = ()
    resolve: Resolver = _system_resolve

    async def check(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ToolRejected(f"refused {url!r}: only http and https URLs can be fetched")
        host = parts.hostname
        if not host:
            raise ToolRejected(f"refused {url!r}: no host name")
        if self.allow_private or host in self.allow_hosts:
            return
        try:
            ips = [host] if _is_ip(host) else await self.resolve(host)
        except OSError as exc:
            raise ToolRejected(f"cannot resolve {host!r}: {exc}") from None
        for ip in ips:
            why = _blocked(ip)
            if why:
                raise ToolRejected(f"refused {url!r}: {host} resolves to {ip}, a {why} address")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _extract(body: bytes, content_type: str, url: str) -> str:
    text = body.decode("utf-8", errors="replace")
    if "html" in content_type or text.lstrip()[:15].lower().startswith(("<!doctype", "<html")):
        require("trafilatura", "web")
        import trafilatura

        return trafilatura.extract(text, url=url, include_tables=True, favor_recall=True) or ""
    return text


async def fetch_text(
    url: str, guard: FetchGuard, *, client: Any, max_bytes: int, max_redirects: int = 5
) -> str:
    """Fetch one URL with the guard on every hop, read at most ``max_bytes``, and extract readable text."""
    current = url
    for _ in range(max_redirects + 1):
        await guard.check(current)
        async with client.stream("GET", current, follow_redirects=False) as response:
            if response.is_redirect:
                location = response.headers.get("location")
                if not location:
                    raise ToolCallError(f"{current} redirected without a Location header")
                current = urljoin(current, location)
                continue
            if response.status_code >= 400:
                raise ToolCallError(f"{current} answered HTTP {response.status_code}")
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size >= max_bytes:
                    break
            body = b"".join(chunks)[:max_bytes]
            text = _extract(body, response.headers.get("content-type", ""), current)
            note = f"[page cut at {max_bytes} bytes]\n" if size >= max_bytes else ""
            return note + (text.strip() or "(no readable text on the page)")
    raise ToolCallError(f"{url}: more than {max_redirects} redirects")


def web_tools(
    *,
    backend: SearchBackend | None = None,
    guard: FetchGuard | None = None,
    max_results: int = 5,
    search_price: Decimal | float | str = "0.001",
    fetch_price: Decimal | float | str = "0.001",
    max_bytes: int = 2_000_000,
    timeout: float = 20.0,
    max_chars: int = 6000,
    transport: Any = None,
) -> list[Tool]:
    """``web_search(queries)`` and ``fetch_page(urls)``, one budget unit per query or URL ($0.001 each, BATS)."""
    require("httpx", "web")
    import httpx

    guard = guard or FetchGuard()
    search_backend = backend

    async def web_search(queries: list[str]) -> str:
        """Search the web. Send one or more short keyword queries; each query costs one search unit.
        Returns titles, URLs and snippets; fetch a URL to read the page.

        Args:
            queries: one or more short keyword queries
        """
        nonlocal search_backend
        if search_backend is None:
            search_backend = DDGSBackend()
        blocks = []
        for q in queries:
            try:
                hits = await asyncio.to_thread(search_backend.search, q, max_results)
            except Exception as exc:  # the search service failing is the tool's error, not the run's
                raise ToolCallError(f"web search failed for {q!r}: {type(exc).__name__}: {exc}") from None
            lines = [f"{i}. [{h.title}]({h.url}) {h.snippet}" for i, h in enumerate(hits, 1)] or [
                "(no results)"
            ]
            blocks.append(f'Results for "{q}":\n' + "\n".join(lines))
        return "\n\n".join(blocks)

    async def fetch_page(urls: list[str]) -> str:
        """Fetch web pages and return their readable text; each URL costs one fetch unit.

        Args:
            urls: one or more http(s) URLs from the search results
        """
        limits = httpx.Timeout(timeout)
        async with httpx.AsyncClient(
            timeout=limits, transport=transport, headers={"User-Agent": "budgetgraph"}
        ) as client:
            parts, refused = [], []
            for url in urls:
                try:
                    text = await fetch_text(url, guard, client=client, max_bytes=max_bytes)
                except ToolRejected as exc:
                    refused.append(str(exc))
                    text = f"Error: {exc}"
                except ToolCallError as exc:
                    text = f"Error: {exc}"
                except httpx.HTTPError as exc:
                    text = f"Error: fetching {url} failed: {type(exc).__name__}: {exc}"
                parts.append(f"# {url}\n{text[: max_chars // max(len(urls), 1)]}")
        if len(refused) == len(urls):  # nothing was fetched: refund the call
            raise ToolRejected("; ".join(refused))
        return "\n\n".join(parts)

    return [
        Tool(
            web_search, price=search_price, units="queries", max_result_chars=max_chars, timeout=timeout * 2
        ),
        Tool(fetch_page, price=fetch_price, units="urls", max_result_chars=max_chars, timeout=timeout * 3),
    ]
