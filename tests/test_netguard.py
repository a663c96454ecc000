"""Outbound-address rules for sources added from chat: addresses, names, redirects, rebinding."""

from __future__ import annotations

import asyncio
import io
import socket
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

import pytest
from loopback import Reply, serve

from bot.app import App
from bot.config import load_config
from bot.errors import SourceError
from bot.fetch import HttpFetcher
from bot.netguard import AddressGuard, IPAddress, Resolver, is_public_address, resolve
from bot.store import ChatSource, Store

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
PUBLIC = IPv4Address("93.184.216.34")


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("8.8.8.8", True),
        ("100.63.255.255", True),  # just below the shared address space
        ("100.128.0.0", True),  # just above it
        ("2606:4700:4700::1111", True),
        ("::ffff:8.8.8.8", True),  # IPv4-mapped form of a public address
        ("2002:7f00:1::", False),  # 6to4 carrying 127.0.0.1
        ("2002:a9fe:a9fe::", False),  # 6to4 carrying the metadata address
        ("2002:808:808::", True),  # 6to4 carrying 8.8.8.8
        ("fec0::1", False),  # deprecated site-local
        ("192.0.0.8", False),  # IETF protocol assignments
        ("127.0.0.1", False),
        ("127.8.9.10", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.100.100.200", False),  # Alibaba Cloud metadata
        ("100.64.0.1", False),  # shared address space (carrier-grade NAT)
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("fd00:ec2::254", False),  # AWS metadata over IPv6
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("::ffff:100.100.100.200", False),
        ("::ffff:100.64.0.1", False),
    ],
)
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert is_public_address(ip_address(address)) is public


def resolver(table: dict[str, list[str]]) -> Resolver:
    """A resolver that answers from ``table``, touching no DNS server."""

    async def resolve_from_table(host: str) -> list[IPAddress]:
        return [ip_address(a) for a in table[host]]

    return resolve_from_table


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/jobs",
        "http://127.0.0.1:8080/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",  # 127.0.0.1 as one number
        "http://0x7f.1/",  # and in hex shorthand
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "https://10.0.0.8/careers",
    ],
)
async def test_loopback_private_and_metadata_hosts_are_refused(url: str) -> None:
    with pytest.raises(SourceError, match="refused: resolves to a private address"):
        await AddressGuard().check_url(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "only http:// and https://"),
        ("ftp://jobs.example.com/", "only http:// and https://"),
        ("http:///nohost", "no host"),
    ],
)
async def test_other_schemes_and_hostless_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        await AddressGuard().check_url(url)


async def test_a_public_name_passes_but_one_private_address_among_several_refuses() -> None:
    guard = AddressGuard(
        resolver=resolver(
            {"jobs.example.com": ["93.184.216.34"], "mixed.example.com": ["8.8.8.8", "10.0.0.1"]}
        )
    )
    await guard.check_url("https://jobs.example.com/careers?page=2")
    with pytest.raises(SourceError, match=r"mixed\.example\.com refused"):
        await guard.check_url("https://mixed.example.com/")


async def test_the_refusal_never_repeats_the_query_string() -> None:
    with pytest.raises(SourceError) as refused:
        await AddressGuard().check_url("http://127.0.0.1/feed?token=s3cret")
    assert "s3cret" not in str(refused.value)


async def test_a_name_that_does_not_resolve_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_such_name(*args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    # The system resolver's own failure, without asking any DNS server.
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", no_such_name)
    with pytest.raises(SourceError, match="does not resolve"):
        await resolve("jobs.example.invalid")


# The loopback test server is on 127.0.0.1, which the guard refuses. To have an
# allowed first hop, these tests let exactly that address through and nothing
# else, standing in for a public web server; every other rule is the real one.
def loopback_is_public(address: IPAddress) -> bool:
    return address == IPv4Address("127.0.0.1") or is_public_address(address)


async def test_an_allowed_host_is_fetched_through_the_guard() -> None:
    async with serve() as server, AddressGuard(allowed=loopback_is_public).make_client(5, 4) as c:
        server.set("/jobs", Reply(200, "ok"))
        response = await HttpFetcher(c).get(server.url("/jobs"))
    assert response.body == b"ok"


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.2:{port}/internal",  # still loopback, but not the stand-in address
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/",
    ],
)
async def test_a_redirect_to_a_private_address_is_refused(location: str) -> None:
    async with serve() as server, AddressGuard(allowed=loopback_is_public).make_client(5, 4) as c:
        port = server.base_url.rsplit(":", 1)[1]
        server.set("/start", Reply(302, headers={"Location": location.format(port=port)}))
        with pytest.raises(SourceError, match="refused: resolves to a private address"):
            await HttpFetcher(c).get(server.url("/start"))
    assert [r.path_qs for r in server.requests] == ["/start"], "the second hop is never sent"


async def test_a_name_that_resolves_elsewhere_when_connecting_is_never_sent_a_request() -> None:
    """DNS rebinding: the request check sees a public address, the next answer is loopback."""
    answers = [[PUBLIC], [IPv4Address("127.0.0.1")]]

    async def rebinding(host: str) -> list[IPAddress]:
        return answers.pop(0) if len(answers) > 1 else answers[0]

    async with serve() as server, AddressGuard(resolver=rebinding).make_client(5, 4) as c:
        server.set("/jobs", Reply(200, "internal secrets"))
        url = server.url("/jobs?token=s3cret").replace("127.0.0.1", "jobs.example.invalid")
        with pytest.raises(SourceError) as refused:
            await HttpFetcher(c).get(url)
    assert str(refused.value) == "jobs.example.invalid refused: resolves to a private address"
    assert answers == [[IPv4Address("127.0.0.1")]], "the request check got the public answer"
    assert server.requests == []


async def test_a_connection_goes_to_the_checked_address_with_the_name_as_host() -> None:
    # The name is in no DNS: only a connection to the address checked reaches the server.
    guard = AddressGuard(
        resolver=resolver({"jobs.example.invalid": ["127.0.0.1"]}), allowed=loopback_is_public
    )
    async with serve() as server, guard.make_client(5, 4) as c:
        server.set("/jobs", Reply(200, "ok"))
        port = server.base_url.rsplit(":", 1)[1]
        response = await HttpFetcher(c).get(f"http://jobs.example.invalid:{port}/jobs")
    assert response.body == b"ok"
    [request] = server.requests
    assert request.headers["Host"] == f"jobs.example.invalid:{port}"


async def test_an_unreachable_checked_address_falls_back_to_the_next() -> None:
    def loopbacks_are_public(address: IPAddress) -> bool:
        return address in (IPv4Address("127.0.0.1"), IPv6Address("::1"))

    # The server listens on 127.0.0.1 only, so connecting to ::1 first fails.
    guard = AddressGuard(
        resolver=resolver({"jobs.example.invalid": ["::1", "127.0.0.1"]}),
        allowed=loopbacks_are_public,
    )
    async with serve() as server, guard.make_client(5, 4) as c:
        server.set("/jobs", Reply(200, "ok"))
        port = server.base_url.rsplit(":", 1)[1]
        response = await HttpFetcher(c).get(f"http://jobs.example.invalid:{port}/jobs")
    assert response.body == b"ok"


def write_config(tmp_path: Path, allow_private: bool) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[bot]
database = "state.sqlite3"
allow_private_sources = {"true" if allow_private else "false"}
"""
    )
    return config


@pytest.mark.parametrize("allow_private", [False, True])
async def test_polling_a_chat_source_is_guarded_unless_private_sources_are_allowed(
    tmp_path: Path, allow_private: bool
) -> None:
    async with serve() as server:
        server.set("/board", Reply(200, (SAMPLES / "greenhouse/figma-board.json").read_bytes()))
        loaded = load_config(write_config(tmp_path, allow_private))
        # Stored directly: `source add` itself would refuse a loopback URL.
        store = await Store.open(loaded.database)
        await store.add_chat_source(
            ChatSource("board", "greenhouse", server.url("/board"), None, True, "slack:U1", 0.0)
        )
        await store.close()
        async with App.open(loaded, environ={}, console=io.StringIO()) as app:
            report = await app.once()
    [outcome] = report.outcomes
    if allow_private:
        assert outcome.ok and outcome.postings > 0
        assert len(server.requests) == 1
    else:
        assert outcome.error == "127.0.0.1 refused: resolves to a private address"
        assert server.requests == []
