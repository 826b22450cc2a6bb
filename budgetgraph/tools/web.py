"""Web tools: ``web_search`` (the ddgs package; batched queries, one unit each) and ``fetch_page`` (httpx + a
maintained HTML extractor, trafilatura; one unit per URL) with a guard against server-side request forgery.

The guard allows only http and https, resolves every host once and refuses every address that is not
globally routable (loopback, private, link-local with the cloud metadata at 169.254.169.254, the carrier-grade
NAT range with 100.100.100.200, multicast, reserved, unspecified), also after each redirect (redirects are
followed by hand, each hop checked). The connection then goes to the address that was checked, with the
original Host header and TLS server name, so a DNS answer that changes between check and connection (DNS
rebinding) cannot redirect it. Bodies are decoded here, layer by layer, never past the size cap (a small
compressed body cannot grow into gigabytes); only gzip and deflate are asked for and accepted.
``allow_private=True`` or ``allow_hosts`` opens the guard, for tests and intranets. The URLs of one call are
fetched concurrently; a URL the guard refuses is not charged.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

from .._extras import require
from ..errors import ToolCallError, ToolRejected
from .base import NotFound, Tool, Used

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
    """Why an address may not be fetched (None: it is globally routable)."""
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
    if not addr.is_global:  # the carrier-grade NAT range (100.64.0.0/10) and other special ranges
        return "non-global"
    return None


@dataclass
class FetchGuard:
    """Which URLs ``fetch_page`` may open. Refuses non-public addresses unless allowed."""

    allow_private: bool = False
    allow_hosts: Sequence[str] = ()
    resolve: Resolver = _system_resolve

    async def check(self, url: str) -> str | None:
        """The address to connect to (every address the name resolves to is checked), or None when the guard
        is open for this host (then the client resolves it)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ToolRejected(f"refused {url!r}: only http and https URLs can be fetched")
        host = parts.hostname
        if not host:
            raise ToolRejected(f"refused {url!r}: no host name")
        if self.allow_private or host in self.allow_hosts:
            return None
        try:
            ips = [host.strip("[]")] if _is_ip(host) else await self.resolve(host)
        except OSError as exc:
            raise ToolRejected(f"cannot resolve {host!r}: {exc}") from None
        if not ips:
            raise ToolRejected(f"cannot resolve {host!r}: no address")
        for ip in ips:
            why = _blocked(ip)
            if why:
                raise ToolRejected(f"refused {url!r}: {host} resolves to {ip}, a {why} address")
        return ips[0]


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


_ENCODINGS = {"gzip", "x-gzip", "deflate"}


class BoundedDecoder:
    """Undo a body's content encodings (gzip / deflate, stacked up to 3), never producing more than ``cap``
    bytes: each layer's output is bounded as it is produced, whatever the compression ratio."""

    def __init__(self, encodings: str, cap: int) -> None:
        layers = [
            e.strip().lower() for e in encodings.split(",") if e.strip() and e.strip().lower() != "identity"
        ]
        bad = [e for e in layers if e not in _ENCODINGS]
        if bad or len(layers) > 3:
            raise ToolCallError(
                f"the server sent content-encoding {encodings!r}; only gzip and deflate (at most 3 layers) "
                "are accepted, as asked"
            )
        # the last encoding applied is undone first; wbits 47 reads a gzip or a zlib header
        self.layers = [zlib.decompressobj(wbits=47) for _ in reversed(layers)]
        self.cap = cap
        self.size = 0

    @property
    def full(self) -> bool:
        return self.size > self.cap

    def feed(self, data: bytes) -> bytes:
        for layer in self.layers:
            out = []
            room = self.cap + 1 - self.size
            chunk = layer.decompress(data, room)
            out.append(chunk)
            while layer.unconsumed_tail and sum(map(len, out)) < room:
                out.append(layer.decompress(layer.unconsumed_tail, room - sum(map(len, out))))
            data = b"".join(out)
        data = data[: max(self.cap + 1 - self.size, 0)]
        self.size += len(data)
        return data


async def fetch_text(
    url: str, guard: FetchGuard, *, client: Any, max_bytes: int, max_redirects: int = 5
) -> str:
    """Fetch one URL with the guard on every hop (connecting to the address it checked), read and decode at
    most ``max_bytes``, and extract readable text."""
    current = url
    for _ in range(max_redirects + 1):
        pinned = await guard.check(current)
        request = _pinned_request(client, current, pinned)
        response = await client.send(request, stream=True, follow_redirects=False)
        try:
            if response.is_redirect:
                location = response.headers.get("location")
                if not location:
                    raise ToolCallError(f"{current} redirected without a Location header")
                current = urljoin(current, location)
                continue
            if response.status_code >= 400:
                raise ToolCallError(f"{current} answered HTTP {response.status_code}")
            decoder = BoundedDecoder(response.headers.get("content-encoding", ""), max_bytes)
            chunks = []
            async for raw in response.aiter_raw():
                chunks.append(decoder.feed(raw))
                if decoder.full:
                    break
        finally:
            await response.aclose()
        body = b"".join(chunks)[:max_bytes]
        text = _extract(body, response.headers.get("content-type", ""), current)
        note = f"[page cut at {max_bytes} bytes]\n" if decoder.full else ""
        return note + (text.strip() or "(no readable text on the page)")
    raise ToolCallError(f"{url}: more than {max_redirects} redirects")


def _pinned_request(client: Any, url: str, ip: str | None) -> Any:
    """A GET to ``url`` that connects to ``ip`` (when given) with the original Host header and TLS name."""
    headers = {"Accept-Encoding": "gzip, deflate"}
    if ip is None:
        return client.build_request("GET", url, headers=headers)
    parts = urlsplit(url)
    host = parts.hostname or ""
    address = f"[{ip}]" if ":" in ip else ip
    netloc = address + (f":{parts.port}" if parts.port else "")
    target = parts._replace(netloc=netloc).geturl()
    headers["Host"] = parts.netloc.rsplit("@", 1)[-1]
    return client.build_request("GET", target, headers=headers, extensions={"sni_hostname": host})


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
    """``web_search(queries)`` and ``fetch_page(urls)``, one budget unit per query or URL ($0.001 each, BATS).
    What they need is checked here, when the tools are built, not at their first call inside a run."""
    require("httpx", "web")
    require("trafilatura", "web")  # fetch_page's reader
    if backend is None:
        require("ddgs", "web")  # the default search backend
    import httpx

    guard = guard or FetchGuard()
    search_backend = backend

    async def web_search(queries: list[str]) -> str | NotFound:
        """Search the web. Send one or more short keyword queries; each query costs one search unit.
        Returns titles, URLs and snippets; fetch a URL to read the page.

        Args:
            queries: one or more short keyword queries
        """
        nonlocal search_backend
        if search_backend is None:
            search_backend = DDGSBackend()
        blocks, found = [], False
        for q in queries:
            try:
                hits = await asyncio.to_thread(search_backend.search, q, max_results)
            except Exception as exc:  # the search service failing is the tool's error, not the run's
                raise ToolCallError(f"web search failed for {q!r}: {type(exc).__name__}: {exc}") from None
            found = found or bool(hits)
            lines = [f"{i}. [{h.title}]({h.url}) {h.snippet}" for i, h in enumerate(hits, 1)] or [
                "(no results)"
            ]
            blocks.append(f'Results for "{q}":\n' + "\n".join(lines))
        text = "\n\n".join(blocks)
        return text if found else NotFound(text)

    async def fetch_page(urls: list[str]) -> Used:
        """Fetch web pages and return their readable text; each URL costs one fetch unit.

        Args:
            urls: one or more http(s) URLs from the search results
        """
        limits = httpx.Timeout(timeout)
        async with httpx.AsyncClient(
            timeout=limits, transport=transport, headers={"User-Agent": "budgetgraph"}
        ) as client:

            async def one(url: str) -> tuple[str, str | None]:
                try:
                    return await fetch_text(url, guard, client=client, max_bytes=max_bytes), None
                except ToolRejected as exc:
                    return f"Error: {exc} (not charged)", str(exc)
                except ToolCallError as exc:
                    return f"Error: {exc}", None
                except httpx.HTTPError as exc:
                    return f"Error: fetching {url} failed: {type(exc).__name__}: {exc}", None

            fetched = await asyncio.gather(*(one(u) for u in urls))  # within the call's own deadline
        refused = [why for _, why in fetched if why is not None]
        if len(refused) == len(urls):  # nothing was fetched: refund the call
            raise ToolRejected("; ".join(refused))
        share = max_chars // max(len(urls), 1)
        text = "\n\n".join(f"# {url}\n{body[:share]}" for url, (body, _) in zip(urls, fetched, strict=True))
        return Used(text, units=len(urls) - len(refused))  # a refused URL is not charged

    return [
        Tool(
            web_search, price=search_price, units="queries", max_result_chars=max_chars, timeout=timeout * 2
        ),
        Tool(
            fetch_page,
            price=fetch_price,
            units="urls",
            max_result_chars=max_chars,
            timeout=timeout * 3,
            reads=True,
        ),
    ]
