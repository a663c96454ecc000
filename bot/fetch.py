"""Fetching source locations: ``http(s)://`` through one shared httpx client, and ``file:``."""

from __future__ import annotations

import asyncio
import email.utils
import re
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlsplit
from urllib.request import url2pathname

import httpcore
import httpx
from aiolimiter import AsyncLimiter

from bot import __version__
from bot.errors import SourceError
from bot.sources.base import Response

USER_AGENT = f"careerbot/{__version__} (self-hosted job-alert bot)"
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_REDIRECTS = 5
_LAST_NUMBER = re.compile(r"\d+(?=\D*$)")
_PAGING_KEYS = ("page", "offset", "skip")


def make_client(
    timeout: float = 20.0,
    connections: int = 16,
    *,
    trust_env: bool = True,
    network_backend: httpcore.AsyncNetworkBackend | None = None,
) -> httpx.AsyncClient:
    """The one HTTP client every source and webhook shares. ``trust_env`` false
    ignores proxy and certificate settings from the environment. ``network_backend``
    opens connections instead of httpcore's own; a proxy from a trusted environment
    would bypass it."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(
        trust_env=trust_env,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=True,
        http2=True,
        max_redirects=MAX_REDIRECTS,
        limits=limits,
        transport=None
        if network_backend is None
        else _transport(network_backend, limits, trust_env=trust_env),
    )


def _transport(
    network_backend: httpcore.AsyncNetworkBackend, limits: httpx.Limits, *, trust_env: bool
) -> httpx.AsyncHTTPTransport:
    """The transport httpx would build for ``make_client``, connecting through
    ``network_backend``. httpx takes no network backend, so its connection pool is
    swapped for an equal one that has it (``_pool`` is the httpx internal relied on;
    tests/test_netguard.py fails if that stops working)."""
    transport = httpx.AsyncHTTPTransport(trust_env=trust_env, http2=True, limits=limits)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=trust_env),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http2=True,
        network_backend=network_backend,
    )
    return transport


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """Politeness: how many requests at once, overall and per host, and how fast per host."""

    connections: int = 16
    per_host: int = 4
    per_host_rate: float = 5.0  # requests per second


class HttpFetcher:
    """Implements ``bot.sources.base.Fetcher``; every failure is a ``SourceError``."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        max_bytes: int = MAX_BODY_BYTES,
        limits: FetchLimits | None = None,
    ) -> None:
        self._client = client
        self._max_bytes = max_bytes
        self._limits = limits or FetchLimits()
        self._all_hosts = asyncio.Semaphore(self._limits.connections)
        self._hosts: dict[str, tuple[asyncio.Semaphore, AsyncLimiter]] = {}

    async def get(self, url: str, *, headers: Mapping[str, str] | None = None) -> Response:
        return await self._request("GET", url, headers)

    async def post_json(
        self, url: str, payload: Any, *, headers: Mapping[str, str] | None = None
    ) -> Response:
        return await self._request("POST", url, headers, payload)

    async def _request(
        self, method: str, url: str, headers: Mapping[str, str] | None, payload: Any = None
    ) -> Response:
        parts = _valid_url(url)
        if parts.scheme.lower() == "file":
            return await asyncio.to_thread(read_file_url, url, self._max_bytes)
        host_slots, host_rate = self._host(parts.hostname or "")
        async with self._all_hosts, host_slots:
            await host_rate.acquire()
            return await self._send(method, url, headers, payload)

    def _host(self, host: str) -> tuple[asyncio.Semaphore, AsyncLimiter]:
        limits = self._hosts.get(host)
        if limits is None:
            rate = self._limits.per_host_rate
            limits = (asyncio.Semaphore(self._limits.per_host), AsyncLimiter(rate, 1.0))
            self._hosts[host] = limits
        return limits

    async def _send(
        self, method: str, url: str, headers: Mapping[str, str] | None, payload: Any
    ) -> Response:
        where = _describe(url)
        try:
            async with self._client.stream(method, url, headers=headers, json=payload) as response:
                if response.status_code >= 400:  # an error page's body is not worth reading
                    raise SourceError(
                        f"HTTP {response.status_code} from {where}",
                        retry_after=parse_retry_after(response.headers.get("Retry-After")),
                    )
                body = await self._read_capped(response, where)
        except httpx.TimeoutException:
            raise SourceError(f"timed out fetching {where}") from None
        except httpx.TooManyRedirects:
            limit = self._client.max_redirects
            raise SourceError(f"too many redirects (more than {limit}) fetching {where}") from None
        except httpx.ConnectError:
            raise SourceError(f"could not connect to {where}") from None
        except httpx.RemoteProtocolError:
            raise SourceError(f"connection closed mid-response fetching {where}") from None
        except httpx.NetworkError:
            raise SourceError(f"connection reset fetching {where}") from None
        except httpx.DecodingError:
            raise SourceError(f"undecodable response (bad content encoding) from {where}") from None
        except (httpx.HTTPError, httpx.InvalidURL, ValueError, OSError) as err:
            raise SourceError(f"could not fetch {where}: {type(err).__name__}") from None
        return Response(str(response.url), response.status_code, dict(response.headers), body)

    async def _read_capped(self, response: httpx.Response, where: str) -> bytes:
        too_large = f"response from {where} is larger than {_size(self._max_bytes)}"
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise SourceError(too_large)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._max_bytes:
                raise SourceError(too_large)
            chunks.append(chunk)
        return b"".join(chunks)


def read_file_url(url: str, max_bytes: int = MAX_BODY_BYTES) -> Response:
    """Read a ``file:`` location.

    A ``page``, ``offset`` or ``skip`` query parameter selects the numbered
    sibling file (``page1.html?page=2`` → ``page2.html``) when it exists, so a
    saved set of pages paginates offline like the live source; otherwise the
    query is ignored.
    """
    parts = urlsplit(url)
    path = Path(url2pathname(parts.path))
    try:
        if parts.query:  # looking for the sibling can fail too (a name too long)
            path = _paged_sibling(path, parts.query)
        if not stat.S_ISREG(path.stat().st_mode):
            raise SourceError(f"{path} is not a regular file")
        with path.open("rb") as handle:
            body = handle.read(max_bytes + 1)  # the size on disk can lie (/proc, growing files)
        if len(body) > max_bytes:
            raise SourceError(f"{path} is larger than {_size(max_bytes)}")
    except FileNotFoundError:
        raise SourceError(f"file not found: {path}") from None
    except IsADirectoryError:
        raise SourceError(f"{path} is a directory, not a file") from None
    except OSError as err:
        raise SourceError(f"cannot read {path}: {err.strerror}") from None
    return Response(url, 200, {}, body)


def _paged_sibling(path: Path, query: str) -> Path:
    params = parse_qs(query)
    number = next((params[key][-1] for key in _PAGING_KEYS if key in params), None)
    if number is None or not number.isdigit() or not _LAST_NUMBER.search(path.stem):
        return path
    stem = _LAST_NUMBER.sub(number, path.stem, count=1)
    sibling = path.with_name(stem + path.suffix)
    return sibling if sibling.exists() else path


def _valid_url(url: str) -> SplitResult:
    """The parts of a fetchable URL; a ``SourceError`` (that never shows the URL's
    query) for one that cannot be fetched."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
        scheme = parts.scheme.lower()
        if scheme in ("http", "https"):
            if not parts.hostname:
                raise ValueError("no host")
            httpx.URL(url)  # rejects hosts that are not valid IDNA
    except (ValueError, httpx.InvalidURL):
        raise SourceError(f"{_describe_safely(url)} is not a valid URL") from None
    if scheme not in ("http", "https", "file"):
        raise SourceError(f"cannot fetch {scheme}: locations; only http(s):// and file:")
    return parts


def _describe_safely(url: str) -> str:
    try:
        return _describe(url)
    except ValueError:
        return "the location"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _size(limit: int) -> str:
    """A byte limit as people write it: ``16 MiB``, ``1024 bytes``."""
    mib = 1024 * 1024
    return f"{limit // mib} MiB" if limit >= mib and limit % mib == 0 else f"{limit} bytes"


def _describe(url: str) -> str:
    """Host and path only: query strings can carry tokens."""
    parts = urlsplit(url)
    return f"{parts.hostname or ''}{parts.path or '/'}"
