"""Outbound-address rules for sources added from chat.

Someone in a chat channel must not be able to make careerbot fetch from the
network it runs in: loopback, private ranges, link-local, cloud metadata
services. ``AddressGuard`` checks a source's URL when it is added, and the HTTP
client it makes (used only for chat sources) checks every request again:

- before each request, redirects included (httpx runs request hooks on every
  hop), every address the host resolves to must be public;
- each connection resolves the host once more, checks every address, and
  connects to a checked address itself rather than to the name, so a name that
  answers differently the second time (DNS rebinding) never receives a request.
  TLS still verifies the certificate for the name, and the Host header is the name;
- when each response arrives, the address actually connected to must be public
  too, before any of the body is read.

That client ignores proxy settings from the environment, so the address it
connects to is the source's own and these checks mean something.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from collections.abc import Awaitable, Callable, Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address

import httpcore
import httpx

from bot.errors import SourceError
from bot.fetch import make_client

IPAddress = IPv4Address | IPv6Address
Resolver = Callable[[str], Awaitable[list[IPAddress]]]

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {
        IPv4Address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack…
        IPv6Address("fd00:ec2::254"),  # AWS over IPv6
        IPv4Address("100.100.100.200"),  # Alibaba Cloud
    }
)
SHARED_ADDRESS_SPACE = IPv4Network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
PROTOCOL_ASSIGNMENTS = IPv4Network("192.0.0.0/24")  # IETF protocol assignments (RFC 6890)
RESOLVE_TIMEOUT = 10.0


def is_public_address(address: IPAddress) -> bool:
    """Whether a chat-added source may connect to ``address``: a globally routable
    address, including every IPv4 address an IPv6 one carries (mapped, 6to4, Teredo)."""
    if isinstance(address, IPv6Address):
        embedded = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
        carried = [ipv4 for ipv4 in embedded if ipv4 is not None]
        if carried:
            return all(map(is_public_address, carried))
        if address.is_site_local:
            return False
    if address in METADATA_ADDRESSES:
        return False
    if isinstance(address, IPv4Address) and (
        address in SHARED_ADDRESS_SPACE or address in PROTOCOL_ASSIGNMENTS
    ):
        return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


async def resolve(host: str) -> list[IPAddress]:
    """Every address the system resolver gives for ``host`` (an IP literal is itself)."""
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, None, type=socket.SOCK_STREAM
            )
    except (OSError, TimeoutError, UnicodeError):
        raise SourceError(f"{host} refused: the name does not resolve") from None
    return [_address(str(info[4][0])) for info in infos]


def _address(text: str) -> IPAddress:
    return ip_address(text.split("%", 1)[0])  # without an IPv6 zone ("fe80::1%eth0")


class AddressGuard:
    """Refuses URLs, requests and connections that reach non-public addresses.

    ``resolver`` and ``allowed`` are the system resolver and ``is_public_address``;
    tests replace them to stand a loopback server in for a public host.
    """

    def __init__(
        self,
        *,
        resolver: Resolver = resolve,
        allowed: Callable[[IPAddress], bool] = is_public_address,
    ) -> None:
        self._resolve = resolver
        self._allowed = allowed

    async def check_url(self, url: str) -> None:
        """Raise ``SourceError`` unless ``url`` is http(s) and its host only public addresses."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            raise SourceError("refused: not a valid URL") from None
        await self._check(parsed)

    def make_client(self, timeout: float, connections: int) -> httpx.AsyncClient:
        """An HTTP client that applies the checks to every request and connection."""
        backend = PinningBackend(self._checked_addresses, httpcore.AnyIOBackend())
        client = make_client(timeout, connections, trust_env=False, network_backend=backend)
        client.event_hooks = {"request": [self._before_request], "response": [self._on_response]}
        return client

    async def _before_request(self, request: httpx.Request) -> None:
        await self._check(request.url)

    # Redundant while the backend pins addresses, but if pinning were ever bypassed
    # it still keeps a private address's response from reaching the chat.
    async def _on_response(self, response: httpx.Response) -> None:
        host = _host(response.request.url)
        stream = response.extensions.get("network_stream")
        peer = stream.get_extra_info("server_addr") if stream is not None else None
        if not peer:
            raise SourceError(f"{host} refused: the address connected to is unknown")
        if not self._allowed(_address(str(peer[0]))):
            raise SourceError(f"{host} refused: resolves to a private address")

    async def _check(self, url: httpx.URL) -> None:
        host = _host(url)
        if url.scheme not in ("http", "https"):
            raise SourceError("refused: only http:// and https:// locations are allowed")
        if not host:
            raise SourceError("refused: the URL has no host")
        await self._checked_addresses(host)

    async def _checked_addresses(self, host: str) -> list[IPAddress]:
        addresses = await self._resolve(host)
        if not addresses:
            raise SourceError(f"{host} refused: the name does not resolve")
        if not all(self._allowed(address) for address in addresses):
            raise SourceError(f"{host} refused: resolves to a private address")
        return addresses


class PinningBackend(httpcore.AsyncNetworkBackend):
    """Connects to the addresses ``checked_addresses`` gives for a host, never to the
    name itself, so nothing resolves it again between the check and the connection.

    httpcore passes the original host name to TLS separately (SNI and certificate
    checks); a ``SourceError`` raised here reaches the caller unchanged.
    """

    def __init__(
        self,
        checked_addresses: Callable[[str], Awaitable[list[IPAddress]]],
        backend: httpcore.AsyncNetworkBackend,
    ) -> None:
        self._checked_addresses = checked_addresses
        self._backend = backend

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        connect = functools.partial(
            self._backend.connect_tcp,
            port=port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )
        *others, last = await self._checked_addresses(host)
        for address in others:
            # An unreachable address (IPv6 on a host without it, say): try the next.
            with contextlib.suppress(httpcore.ConnectError):
                return await connect(str(address))
        return await connect(str(last))

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def _host(url: httpx.URL) -> str:
    return url.raw_host.decode("ascii", "replace")
