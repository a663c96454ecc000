"""Conditional requests, unchanged-source short-circuits, backoff and per-host limits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from fakes import FakeClock
from loopback import Reply, serve

import bot.sources.greenhouse
from bot.config import load_config
from bot.errors import SourceError
from bot.fetch import FetchLimits, HttpFetcher
from bot.pipeline import Pipeline, poll_due
from bot.store import SourceState, Store

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
BOARD = (FIXTURES / "greenhouse" / "board-v1.json").read_bytes()
BOARD_V2 = (FIXTURES / "greenhouse" / "board-v2.json").read_bytes()


async def pipeline_for(
    tmp_path: Path, url: str, client: httpx.AsyncClient
) -> tuple[Pipeline, Store, FakeClock]:
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        f'[[sources]]\nname = "figma"\ntype = "greenhouse"\nurl = "{url}"\n'
        '[[subscriptions]]\ntarget = "console"\nquery = "scientist OR engineer"\n'
    )
    config = load_config(config_path, environ={}).config
    store = await Store.open(tmp_path / "state.sqlite3")
    await store.register_sources([("figma", "greenhouse", "https://example.test/figma")])
    clock = FakeClock(start=10_000.0)
    return Pipeline(config, store, HttpFetcher(client), clock), store, clock


def count_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = bot.sources.greenhouse.parse_board

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(bot.sources.greenhouse, "parse_board", counting)
    return calls


async def test_304_skips_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parses = count_parses(monkeypatch)
    async with serve() as server, httpx.AsyncClient() as client:
        etag = '"board-v1"'
        server.set(
            "/jobs",
            [
                Reply(200, BOARD, {"ETag": etag, "Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT"}),
                Reply(304),
            ],
        )
        pipeline, store, _ = await pipeline_for(tmp_path, server.url("/jobs"), client)
        config = load_config(tmp_path / "config.toml", environ={}).config
        first = await pipeline.poll(config.sources[0])
        second = await pipeline.poll(config.sources[0])
        await store.close()
    assert first.ok and not first.unchanged
    assert second.ok and second.unchanged and second.postings == 3
    assert server.requests[1].headers["If-None-Match"] == etag
    assert server.requests[1].headers["If-Modified-Since"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert "If-None-Match" not in server.requests[0].headers
    assert len(parses) == 1, "the 304 was not parsed"


async def test_same_body_without_validators_skips_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parses = count_parses(monkeypatch)
    async with serve() as server, httpx.AsyncClient() as client:
        server.set("/jobs", Reply(200, BOARD))
        pipeline, store, clock = await pipeline_for(tmp_path, server.url("/jobs"), client)
        source = load_config(tmp_path / "config.toml", environ={}).config.sources[0]
        await pipeline.poll(source)
        clock.now += 60
        again = await pipeline.poll(source)
        state = await store.source_state("figma")
        server.set("/jobs", Reply(200, BOARD_V2))
        changed = await pipeline.poll(source)
        await store.close()
    assert again.unchanged and len(parses) == 2
    assert state is not None and state.last_success_at == clock.now
    assert not changed.unchanged
    assert sorted(c.kind.value for c in changed.changes) == ["changed", "new"]


async def test_unchanged_poll_still_closes_a_posting_on_its_way_out(tmp_path: Path) -> None:
    async with serve() as server, httpx.AsyncClient() as client:
        server.set("/jobs", Reply(200, BOARD))
        pipeline, store, _ = await pipeline_for(tmp_path, server.url("/jobs"), client)
        source = load_config(tmp_path / "config.toml", environ={}).config.sources[0]
        await pipeline.poll(source)
        server.set("/jobs", Reply(200, BOARD_V2))
        await pipeline.poll(source)  # 5098877004 missing once
        third = await pipeline.poll(source)  # same body: not re-parsed, but it closes
        await store.close()
    assert [(c.kind.value, c.posting.id) for c in third.changes] == [("closed", "5098877004")]


async def test_source_asking_to_retry_later_is_left_alone(tmp_path: Path) -> None:
    async with serve() as server, httpx.AsyncClient() as client:
        server.set("/jobs", Reply(429, "slow down", {"Retry-After": "600"}))
        pipeline, store, clock = await pipeline_for(tmp_path, server.url("/jobs"), client)
        source = load_config(tmp_path / "config.toml", environ={}).config.sources[0]
        outcome = await pipeline.poll(source)
        state = await store.source_state("figma")
        await store.close()
    assert outcome.error == "HTTP 429 from 127.0.0.1/jobs"
    assert state is not None and state.retry_not_before == clock.now + 600
    assert not poll_due(state, 60, clock.now + 599)
    assert poll_due(state, 60, clock.now + 600)


def state(failures: int, last_poll: float = 0.0) -> SourceState:
    return SourceState("s", "cvpr", True, last_poll, None, "boom", failures, 0)


@pytest.mark.parametrize(
    ("failures", "elapsed", "due"),
    [
        (0, 100, True),
        (1, 100, True),  # one failure: the normal interval
        (2, 100, False),  # two: wait two intervals
        (2, 190, True),  # (a little early is fine: schedules have jitter)
        (3, 300, False),
        (3, 400, True),
        (30, 6 * 3600 - 100, False),  # capped at six hours
        (30, 6 * 3600, True),
    ],
)
def test_failing_source_backs_off_exponentially(failures: int, elapsed: float, due: bool) -> None:
    assert poll_due(state(failures), 100.0, elapsed) is due


def test_backoff_of_a_long_interval_source_is_its_interval() -> None:
    assert poll_due(state(5), 86_400.0, 86_400.0)
    assert not poll_due(state(5), 86_400.0, 60_000.0)


async def test_requests_to_one_host_are_bounded() -> None:
    async with serve() as server, httpx.AsyncClient() as client:
        server.set("/page", Reply(200, "ok"))
        server.delay = 0.05
        fetcher = HttpFetcher(
            client, limits=FetchLimits(connections=8, per_host=2, per_host_rate=1000)
        )
        await asyncio.gather(*(fetcher.get(server.url("/page")) for _ in range(8)))
    assert len(server.requests) == 8
    assert server.max_in_flight == 2


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(500, "oops"), "HTTP 500 from 127.0.0.1/big"),
        (Reply(200, b"x" * 2048), "larger than 1024 bytes"),
        (Reply(302, "", {"Location": "/big"}), "too many redirects"),
    ],
)
async def test_fetch_failures_are_source_errors(reply: Reply, message: str) -> None:
    async with (
        serve() as server,
        httpx.AsyncClient(follow_redirects=True, max_redirects=3) as client,
    ):
        server.set("/big", reply)
        with pytest.raises(SourceError, match=message):
            await HttpFetcher(client, max_bytes=1024).get(server.url("/big"))


async def test_fetch_errors_never_show_the_query_string() -> None:
    async with httpx.AsyncClient() as client:
        with pytest.raises(SourceError) as caught:
            await HttpFetcher(client).get("http://127.0.0.1:9/jobs?token=secret")
    assert "secret" not in str(caught.value)


async def test_a_page_on_the_network_cannot_lead_to_local_files(tmp_path: Path) -> None:
    from bot.conditional import PollFetcher

    secret = tmp_path / "secret.html"
    secret.write_text("TOKEN=supersecret")
    async with serve() as server, httpx.AsyncClient() as client:
        server.set("/page", Reply(200, "<a href='next'>next</a>"))
        fetcher = PollFetcher(HttpFetcher(client), None)
        await fetcher.get(server.url("/page"))
        with pytest.raises(SourceError, match="from the network to a local file"):
            await fetcher.get(secret.as_uri())


async def test_only_regular_files_of_bounded_size_are_read(tmp_path: Path) -> None:
    big = tmp_path / "big.html"
    big.write_bytes(b"x" * 2048)
    async with httpx.AsyncClient() as client:
        fetcher = HttpFetcher(client, max_bytes=1024)
        with pytest.raises(SourceError, match="not a regular file"):
            await fetcher.get(Path("/dev/zero").as_uri())
        with pytest.raises(SourceError, match="larger than 1024 bytes"):
            await fetcher.get(big.as_uri())


async def test_a_config_change_rereads_the_source_as_a_silent_baseline(tmp_path: Path) -> None:
    async with serve() as server, httpx.AsyncClient() as client:
        server.set("/jobs", Reply(200, BOARD))
        pipeline, store, _ = await pipeline_for(tmp_path, server.url("/jobs"), client)
        source = load_config(tmp_path / "config.toml", environ={}).config.sources[0]
        await pipeline.poll(source)
        renamed = source.model_copy(update={"company": "Figma Inc."})
        reread = await pipeline.poll(renamed)
        again = await pipeline.poll(renamed)
        stored = await store.stored_postings("figma")
        await store.close()
    assert not reread.unchanged, "the same body is read again under the new config"
    assert reread.baseline and reread.changes == [], "and that alerts nothing"
    assert again.unchanged
    assert {s.posting.company for s in stored.values()} == {"Figma"}  # the data's own name wins
