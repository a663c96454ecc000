"""Sources added from chat: stored, listed with the config's, scheduled live, managed."""

from __future__ import annotations

import asyncio
import io
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from loopback import Reply, serve

import bot.app
from bot.app import PRUNE_JOB, App
from bot.catalog import CatalogError, SourceCatalog
from bot.cli import main
from bot.config import Config, SourceConfig, load_config
from bot.diff import diff
from bot.errors import ConfigError
from bot.models import Posting
from bot.netguard import AddressGuard, IPAddress
from bot.store import Store

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
BOARD = "https://boards.example.com/acme"


async def public_resolver(host: str) -> list[IPAddress]:
    """Every name is a public address; no DNS server is asked."""
    return [ip_address("93.184.216.34")]


def make_config(**bot: Any) -> Config:
    return Config.model_validate(
        {
            "bot": {"default_interval": "30m", **bot},
            "sources": [{"name": "src", "type": "greenhouse", "url": "https://example.test/src"}],
        }
    )


class Heard:
    def __init__(self) -> None:
        self.events: list[tuple[str, SourceConfig | None]] = []

    def __call__(self, name: str, source: SourceConfig | None) -> None:
        self.events.append((name, source))


@pytest.fixture
async def catalog(store: Store) -> SourceCatalog:
    guard = AddressGuard(resolver=public_resolver)
    return await SourceCatalog.load(make_config(), store, guard=guard)


async def test_an_added_source_is_stored_listed_registered_and_announced(
    store: Store, catalog: SourceCatalog
) -> None:
    heard = Heard()
    catalog.add_listener(heard)
    added = await catalog.add("acme", "lever", BOARD, "2h", added_by="slack:U1", now=100.0)
    assert (added.name, added.type, added.url, added.interval, added.enabled) == (
        "acme", "lever", BOARD, 7200.0, True
    )  # fmt: skip
    assert [s.name for s in catalog.sources()] == ["src", "acme"]
    assert catalog.is_chat("acme") and not catalog.is_chat("src")
    assert catalog.source("acme") == added
    assert heard.events == [("acme", added)]
    [stored] = await store.chat_sources()
    assert (stored.name, stored.interval, stored.added_by, stored.added_at) == (
        "acme", 7200.0, "slack:U1", 100.0
    )  # fmt: skip
    state = await store.source_state("acme")
    assert state is not None and state.type == "lever" and not state.baseline_done


async def test_a_chat_source_survives_reopening(tmp_path: Path) -> None:
    guard = AddressGuard(resolver=public_resolver)
    store = await Store.open(tmp_path / "db.sqlite3")
    catalog = await SourceCatalog.load(make_config(), store, guard=guard)
    await catalog.add("acme", "lever", BOARD, None, added_by="discord:7", now=1.0)
    await catalog.set_enabled("acme", False)
    await store.close()
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        reopened = await SourceCatalog.load(make_config(), store, guard=guard)
        acme = reopened.source("acme")
        assert reopened.is_chat("acme") and not acme.enabled and acme.interval == 1800.0
        assert [s.name for s in reopened.enabled()] == ["src"]
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("settings", "typed", "interval"),
    [
        ({}, None, 1800.0),  # the default interval
        ({"default_interval": "1m"}, None, 300.0),  # a default below the floor is raised to it
        ({}, "5m", 300.0),
        ({}, "1d", 86400.0),
        ({"chat_min_interval": "30s"}, "45s", 45.0),
    ],
)
async def test_interval_default_and_floor(
    store: Store, settings: dict[str, str], typed: str | None, interval: float
) -> None:
    catalog = await SourceCatalog.load(
        make_config(**settings), store, guard=AddressGuard(resolver=public_resolver)
    )
    added = await catalog.add("acme", "lever", BOARD, typed, added_by="slack:U1", now=1.0)
    assert added.interval == interval


@pytest.mark.parametrize(
    ("name", "type_name", "url", "interval", "message"),
    [
        ("src", "lever", BOARD, None, "a source of the config file has that name"),
        ("bad name", "lever", BOARD, None, "is not a valid name"),
        ("acme", "nope", BOARD, None, "unknown source type 'nope'"),
        ("acme", "html", BOARD, None, "needs CSS selectors"),
        ("acme", "lever", "file:///etc/passwd", None, "must be an http://, https:// location"),
        ("acme", "lever", "https://", None, "has no host name"),
        ("acme", "lever", BOARD, "1m", "must be at least 5m"),
        ("acme", "lever", BOARD, "soon", "not a duration"),
        ("acme", "lever", "http://127.0.0.1:9/", None, "refused: resolves to a private address"),
    ],
)
async def test_refused_additions_change_nothing(
    store: Store, name: str, type_name: str, url: str, interval: str | None, message: str
) -> None:
    # The real resolver: the loopback case must be refused by the real rules.
    catalog = await SourceCatalog.load(make_config(), store)
    heard = Heard()
    catalog.add_listener(heard)
    with pytest.raises(CatalogError, match=message):
        await catalog.add(name, type_name, url, interval, added_by="slack:U1", now=1.0)
    assert await store.chat_sources() == []
    assert heard.events == []


async def test_private_sources_may_be_added_when_the_config_allows_them(store: Store) -> None:
    catalog = await SourceCatalog.load(make_config(allow_private_sources=True), store)
    added = await catalog.add("lab", "rss", "http://127.0.0.1:9/feed", None, added_by="x", now=1)
    assert added.url == "http://127.0.0.1:9/feed"


async def test_a_name_can_be_added_once(catalog: SourceCatalog) -> None:
    await catalog.add("acme", "lever", BOARD, None, added_by="slack:U1", now=1.0)
    with pytest.raises(CatalogError, match="already exists"):
        await catalog.add("acme", "ashby", BOARD, None, added_by="slack:U2", now=2.0)


async def test_pause_resume_and_remove(store: Store, catalog: SourceCatalog) -> None:
    await catalog.add("acme", "lever", BOARD, None, added_by="slack:U1", now=1.0)
    posting = Posting("acme", "1", "Research Engineer")
    await store.apply_poll("acme", diff({}, [posting], baseline=True, close_after=2), [], now=2.0)
    heard = Heard()
    catalog.add_listener(heard)

    assert await catalog.set_enabled("acme", False) is True
    assert await catalog.set_enabled("acme", False) is False  # already paused: no event
    assert [s.name for s in catalog.enabled()] == ["src"]
    assert await catalog.set_enabled("acme", True) is True
    await catalog.remove("acme")

    assert [(name, s.enabled if s else None) for name, s in heard.events] == [
        ("acme", False),
        ("acme", True),
        ("acme", None),
    ]
    assert [s.name for s in catalog.sources()] == ["src"]
    assert await store.chat_sources() == []
    assert await store.source_state("acme") is None
    assert await store.open_postings() == []
    with pytest.raises(ConfigError, match="no source named 'acme'"):
        catalog.source("acme")


@pytest.mark.parametrize("change", ["remove", "pause", "resume"])
async def test_config_sources_cannot_be_changed_from_chat(
    catalog: SourceCatalog, change: str
) -> None:
    resume = change == "resume"
    attempt = catalog.remove("src") if change == "remove" else catalog.set_enabled("src", resume)
    with pytest.raises(CatalogError, match="source of the config file"):
        await attempt
    assert catalog.source("src").enabled


async def test_unknown_sources_are_named_as_such(catalog: SourceCatalog) -> None:
    with pytest.raises(CatalogError, match="no source of that name"):
        await catalog.remove("nope")


def test_careerbot_sources_lists_chat_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[bot]\ndatabase = "state.sqlite3"\n\n'
        '[[sources]]\nname = "src"\ntype = "greenhouse"\nurl = "https://example.test/src"\n'
    )

    async def add_chat_sources() -> None:
        loaded = load_config(config)
        store = await Store.open(loaded.database)
        try:
            catalog = await SourceCatalog.load(
                loaded.config, store, guard=AddressGuard(resolver=public_resolver)
            )
            await catalog.add("acme", "lever", BOARD, "6h", added_by="slack:U1", now=1.0)
            await catalog.add("beta", "ashby", BOARD, None, added_by="slack:U1", now=1.0)
            await catalog.set_enabled("beta", False)
        finally:
            await store.close()

    asyncio.run(add_chat_sources())
    assert main(["sources", "--config", str(config)]) == 0
    rows = [line.split("\t")[:3] for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows == [
        ["src", "greenhouse", "30m"],
        ["acme (chat)", "lever", "6h"],
        ["beta (chat, paused)", "ashby", "30m"],
    ]


async def test_run_schedules_chat_sources_as_they_are_added_paused_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    schedulers: list[AsyncIOScheduler] = []

    class RecordedScheduler(AsyncIOScheduler):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            schedulers.append(self)

    monkeypatch.setattr(bot.app, "AsyncIOScheduler", RecordedScheduler)
    config = tmp_path / "config.toml"
    config.write_text(
        '[bot]\ndatabase = "state.sqlite3"\nallow_private_sources = true\n'
        'chat_min_interval = "1s"\n'
    )
    async with serve() as server:
        server.set("/board", Reply(200, (SAMPLES / "greenhouse/figma-board.json").read_bytes()))
        async with App.open(load_config(config), environ={}, console=io.StringIO()) as app:
            stop = asyncio.Event()
            running = asyncio.create_task(app.run(stop))
            try:
                while not schedulers or not schedulers[0].running:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                scheduler = schedulers[0]
                assert [job.id for job in scheduler.get_jobs()] == [PRUNE_JOB], "no source jobs"
                board = server.url("/board")
                await app.catalog.add("live", "greenhouse", board, "1s", added_by="x", now=1.0)
                job = scheduler.get_job("live")
                assert job is not None and job.trigger.interval.total_seconds() == 1.0
                async with asyncio.timeout(10):
                    while not server.requests:  # noqa: ASYNC110 (the first poll comes within 1s)
                        await asyncio.sleep(0.02)
                await app.catalog.set_enabled("live", False)
                assert scheduler.get_job("live") is None
                await app.catalog.set_enabled("live", True)
                assert scheduler.get_job("live") is not None
                await app.catalog.remove("live")
                assert scheduler.get_job("live") is None
            finally:
                stop.set()
                await running
        state_rows = await _source_names(load_config(config).database)
    assert state_rows == []


async def _source_names(database: Path) -> list[str]:
    store = await Store.open(database)
    try:
        return [state.name for state in await store.source_states()]
    finally:
        await store.close()


async def test_once_polls_enabled_chat_sources_too(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[bot]\ndatabase = "state.sqlite3"\nallow_private_sources = true\n')
    async with serve() as server:
        server.set("/board", Reply(200, (SAMPLES / "greenhouse/figma-board.json").read_bytes()))
        async with App.open(load_config(config), environ={}, console=io.StringIO()) as app:
            board = server.url("/board")
            await app.catalog.add("on", "greenhouse", board, None, added_by="x", now=1.0)
            await app.catalog.add("off", "greenhouse", board, None, added_by="x", now=1.0)
            await app.catalog.set_enabled("off", False)
            report = await app.once()
            single = await app.once("off")  # named explicitly, a paused source still polls
    assert [(o.source, o.ok) for o in report.outcomes] == [("on", True)]
    assert [(o.source, o.ok) for o in single.outcomes] == [("off", True)]
