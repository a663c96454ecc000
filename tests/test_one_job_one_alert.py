"""One job, one alert: the same role on two sources, or in two cities, is alerted once;
a later listing of it follows the first alert (its thread on Slack, a reply on Discord)."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from discord_double import CHANNEL_ID, DiscordDouble, serve_discord
from loopback import Loopback, Reply, serve
from slack_double import BOT_TOKEN, SlackDouble, serve_slack

from bot import cli
from bot.app import App
from bot.catalog import SourceCatalog
from bot.chat.discord_sender import rest_sender
from bot.chat.slack import SlackSender, make_web_client
from bot.commands import Caller, Commands, Platform
from bot.config import Config, SlackSettings, load_config
from bot.delivery import DeliveryWorker, Sender
from bot.diff import diff
from bot.models import ChangeKind, Posting
from bot.sources import cvpr, greenhouse
from bot.store import Match, Store

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
ROLE = "5141321004"  # Figma's "AI Research Scientist", also a card on the CVPR board
LONDON = "5141321005"


def figma_board(*, without: str | None = None, london: bool = False) -> bytes:
    """board-v1, with the role taken out, or with a second listing of it in London."""
    board = json.loads((FIXTURES / "greenhouse" / "board-v1.json").read_bytes())
    jobs = [job for job in board["jobs"] if str(job["id"]) != without]
    if london:
        (role,) = [job for job in jobs if str(job["id"]) == ROLE]
        jobs.append(
            {
                **role,
                "id": int(LONDON),
                "location": {"name": "London, England"},
                "absolute_url": f"https://boards.greenhouse.io/figma/jobs/{LONDON}",
            }
        )
    return json.dumps({**board, "jobs": jobs}).encode()


def cvpr_page2(*, with_figma: bool) -> bytes:
    """The board's second page, with or without its last card: Figma's role."""
    page = (FIXTURES / "cvpr" / "page2.html").read_text()
    if with_figma:
        return page.encode()
    start = page.rfind('<div class="card job-card', 0, page.index('alt="Figma"'))
    card_end = "</div>\n  </div>\n</div>\n"
    end = page.index(card_end, page.index(f"figma/jobs/{ROLE}")) + len(card_end)
    return (page[:start] + page[end:]).encode()


def write_config(tmp_path: Path, server: Loopback) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[bot]
database = "state.sqlite3"
per_host_rate = 1000

[[sources]]
name = "figma"
type = "greenhouse"
url = "{server.url("/v1/boards/figma/jobs?content=true")}"
company = "Figma"

[[sources]]
name = "cvpr-2024"
type = "cvpr"
url = "{server.url("/careers/")}"

[[subscriptions]]
target = "console"
query = "scientist OR engineer OR researcher"
notify = ["new", "changed"]
"""
    )
    return path


def serve_boards(server: Loopback, figma: bytes, *, cvpr_with_figma: bool) -> None:
    server.set("/v1/boards/figma/jobs", Reply(200, figma))
    server.set("/careers/", Reply(200, (FIXTURES / "cvpr" / "page1.html").read_bytes()))
    server.set("/careers/?page=2", Reply(200, cvpr_page2(with_figma=cvpr_with_figma)))


def blocks(console: io.StringIO) -> list[str]:
    return [block for block in console.getvalue().strip().split("\n\n") if block.strip()]


async def test_a_role_seen_again_on_another_source_follows_its_first_alert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    console = io.StringIO()
    async with serve() as server:
        serve_boards(server, figma_board(without=ROLE), cvpr_with_figma=False)
        config = write_config(tmp_path, server)
        async with App.open(load_config(config, environ={}), environ={}, console=console) as app:
            assert (await app.once()).ok  # the baseline: neither lists the role

            server.set("/v1/boards/figma/jobs", Reply(200, figma_board()))
            await app.once("figma")
            (first,) = blocks(console)
            assert first.startswith("[NEW] AI Research Scientist — Figma")
            assert "San Francisco, CA; New York, NY" in first and "Also on" not in first

            server.set("/careers/?page=2", Reply(200, cvpr_page2(with_figma=True)))
            await app.once("cvpr-2024")
            (_, follow_up) = blocks(console)
            lines = follow_up.splitlines()
            assert lines[0] == "[ALSO LISTED] AI Research Scientist — Figma"
            assert "  Where:   San Francisco, CA; New York, NY" in lines
            assert "  Also on: figma" in lines
            assert f"  Link:    https://boards.greenhouse.io/figma/jobs/{ROLE}" in lines
            assert any(line.startswith("  Source:  cvpr-2024 · subscription #") for line in lines)

    # `careerbot search` shows the job once, with where else it is listed.
    for options in ([], ["--json"]):
        args = cli.build_parser().parse_args(
            ["search", "--config", str(config), *options, '"ai research scientist"']
        )
        assert await cli.cmd_search(args) == cli.EXIT_OK
    text, as_json = capsys.readouterr().out.strip().splitlines()
    assert text.startswith("AI Research Scientist — Figma — San Francisco, CA; New York, NY [")
    assert text.endswith(("(also on: figma)", "(also on: cvpr-2024)"))
    found = json.loads(as_json)
    assert found["job"] == f"figma:{ROLE}"
    assert {found["source"], *(other["source"] for other in found["also_on"])} == {
        "figma",
        "cvpr-2024",
    }


async def test_a_role_found_twice_before_delivery_is_one_alert_with_both(tmp_path: Path) -> None:
    console = io.StringIO()
    async with serve() as server:
        serve_boards(server, figma_board(without=ROLE), cvpr_with_figma=False)
        config = write_config(tmp_path, server)
        async with App.open(load_config(config, environ={}), environ={}, console=console) as app:
            await app.once()
            serve_boards(server, figma_board(), cvpr_with_figma=True)
            report = await app.once()
    assert report.ok and report.delivered == 1
    assert sorted(c.posting.source for o in report.outcomes for c in o.changes) == [
        "cvpr-2024",
        "figma",
    ]
    (alert,) = blocks(console)
    assert alert.startswith("[NEW] AI Research Scientist — Figma")
    assert "  Also on: figma" in alert or "  Also on: cvpr-2024" in alert
    assert "  Where:   San Francisco, CA; New York, NY" in alert


async def test_one_role_listed_per_city_is_one_alert_with_every_city(tmp_path: Path) -> None:
    console = io.StringIO()
    async with serve() as server:
        serve_boards(server, figma_board(without=ROLE), cvpr_with_figma=False)
        config = write_config(tmp_path, server)
        async with App.open(load_config(config, environ={}), environ={}, console=console) as app:
            await app.once()
            server.set("/v1/boards/figma/jobs", Reply(200, figma_board(london=True)))
            report = await app.once("figma")
    assert [c.kind for o in report.outcomes for c in o.changes] == [ChangeKind.NEW] * 2
    (alert,) = blocks(console)
    assert alert.startswith("[NEW] AI Research Scientist — Figma")
    assert "  Where:   San Francisco, CA; New York, NY; London, England" in alert
    assert "Also on" not in alert  # one source, several cities


# ---------------------------------------------------------------- chat platforms


def real_postings() -> tuple[Posting, Posting]:
    """The role as Figma's Greenhouse board lists it, and as its CVPR board card does."""
    board = (FIXTURES / "greenhouse" / "board-v1.json").read_bytes()
    (listed,) = [p for p in greenhouse.parse_board(board, "figma", "Figma", None) if p.id == ROLE]
    page = (FIXTURES / "cvpr" / "page2.html").read_bytes()
    cards, _ = cvpr.parse_page(page, "https://cvpr.thecvf.com/careers/", "cvpr-2024", None)
    (card,) = [p for p in cards if p.company == "Figma"]
    return listed, card


@pytest.fixture
async def doubles() -> AsyncIterator[tuple[SlackDouble, DiscordDouble]]:
    async with serve_slack() as slack, serve_discord() as discord:
        yield slack, discord


async def test_slack_threads_and_discord_replies_the_second_listing(
    store: Store, doubles: tuple[SlackDouble, DiscordDouble]
) -> None:
    slack, discord = doubles
    listed, card = real_postings()
    await store.register_sources([("figma", "greenhouse", "x"), ("cvpr-2024", "cvpr", "y")])
    subscriptions = [
        await store.add_subscription(
            target, "scientist", [ChangeKind.NEW], origin="cli", created_by=None, now=1.0
        )
        for target in ("slack:C123", f"discord:{CHANNEL_ID}")
    ]
    settings = SlackSettings(api_base_url=slack.api_url)

    async def no_sleep(seconds: float) -> None:
        pass

    async with rest_sender(discord.api_base, discord.token) as discord_sender:
        senders: dict[str, Sender] = {
            "slack:C123": SlackSender(make_web_client(BOT_TOKEN, settings, sleep=no_sleep)),
            f"discord:{CHANNEL_ID}": discord_sender,
        }
        worker = DeliveryWorker(store, lambda target: (senders[target], None))
        for now, posting in ((10.0, listed), (20.0, card)):
            found = diff({}, [posting], baseline=False, close_after=2)
            matches = [Match(0, subscription) for subscription in subscriptions]
            await store.apply_poll(posting.source, found, matches, now)
            assert await worker.deliver_due() == 2

    first, second = slack.accepted("chat.postMessage")
    assert "thread_ts" not in first.args
    assert second.args["thread_ts"] == "1700000000.000001"  # the double's first ts
    assert second.args["blocks"][0]["text"]["text"].startswith("*Also listed:* <https://boards")
    context = [e["text"] for e in second.args["blocks"][-1]["elements"]]
    assert "Source: cvpr-2024" in context and "Also on: figma" in context

    original, reply = discord.posted(CHANNEL_ID)
    assert "message_reference" not in original
    assert reply["message_reference"]["message_id"] == original["id"]
    embed = reply["embeds"][0]
    assert embed["title"] == "Also listed: AI Research Scientist"
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert fields["Also on"] == "figma" and fields["Source"] == "cvpr-2024"
    assert fields["Locations"] == "San Francisco, CA; New York, NY"


# ---------------------------------------------------------------- databases from before jobs


def forget_jobs(database: Path) -> None:
    """Make the rows look as a database from before jobs left them."""
    with sqlite3.connect(database) as db:
        db.execute("UPDATE postings SET job = NULL, company_key = NULL")
        db.execute("UPDATE changes SET job = NULL")


async def test_postings_from_before_jobs_are_grouped_by_the_next_poll(
    store: Store, tmp_path: Path
) -> None:
    listed, card = real_postings()
    await store.register_sources([("figma", "greenhouse", "x"), ("cvpr-2024", "cvpr", "y")])
    await store.apply_poll("figma", diff({}, [listed], baseline=True, close_after=2), [], 1.0)
    forget_jobs(tmp_path / "state.sqlite3")
    assert await store.open_jobs() == {}
    await store.apply_poll("cvpr-2024", diff({}, [card], baseline=True, close_after=2), [], 2.0)
    assert await store.open_jobs() == {
        ("figma", ROLE): f"figma:{ROLE}",
        ("cvpr-2024", card.id): f"figma:{ROLE}",
    }


async def test_a_change_follows_an_alert_sent_before_jobs(store: Store, tmp_path: Path) -> None:
    listed, _ = real_postings()
    await store.register_sources([("figma", "greenhouse", "x")])
    subscription = await store.add_subscription(
        "slack:C1", "scientist", [ChangeKind.NEW, ChangeKind.CHANGED], origin="cli",
        created_by=None, now=1.0,
    )  # fmt: skip
    new = diff({}, [listed], baseline=False, close_after=2)
    await store.apply_poll("figma", new, [Match(0, subscription)], 1.0)
    (first,) = await store.due_deliveries(1.0)
    await store.mark_sent(first.id, 2.0, "C1:1700000000.000001")
    forget_jobs(tmp_path / "state.sqlite3")
    moved = replace(listed, locations=("London, England",))
    changed = diff(await store.stored_postings("figma"), [moved], baseline=False, close_after=2)
    await store.apply_poll("figma", changed, [Match(0, subscription)], 3.0)
    (follow_up,) = await store.due_deliveries(3.0)
    assert follow_up.change.kind is ChangeKind.CHANGED
    assert follow_up.original_ref == "C1:1700000000.000001"


async def test_pruning_keeps_a_closed_listing_whose_job_is_open_elsewhere(store: Store) -> None:
    listed, card = real_postings()
    await store.register_sources([("figma", "greenhouse", "x"), ("cvpr-2024", "cvpr", "y")])
    subscription = await store.add_subscription(
        "slack:C1", "scientist", [ChangeKind.NEW], origin="cli", created_by=None, now=1.0
    )
    await store.apply_poll(
        "cvpr-2024", diff({}, [card], baseline=False, close_after=1), [Match(0, subscription)], 1.0
    )
    await store.apply_poll("figma", diff({}, [listed], baseline=True, close_after=1), [], 1.0)
    (first,) = await store.due_deliveries(1.0)
    await store.mark_sent(first.id, 2.0, "C1:1700000000.000001")
    gone = diff(await store.stored_postings("cvpr-2024"), [], baseline=False, close_after=1)
    await store.apply_poll("cvpr-2024", gone, [], 3.0)

    await store.prune(closed_before=100.0)
    assert card.id in await store.stored_postings("cvpr-2024"), "the job is open on figma"
    assert (await store.outbox_counts()).sent == 1, "its alert is the job's thread"

    gone = diff(await store.stored_postings("figma"), [], baseline=False, close_after=1)
    await store.apply_poll("figma", gone, [], 4.0)
    await store.prune(closed_before=100.0)
    assert await store.stored_postings("cvpr-2024") == {}, "the whole job closed: all goes"
    assert (await store.outbox_counts()).sent == 0


async def test_a_backfill_queues_one_alert_per_job(store: Store) -> None:
    listed, card = real_postings()
    await store.register_sources([("figma", "greenhouse", "x"), ("cvpr-2024", "cvpr", "y")])
    await store.apply_poll("figma", diff({}, [listed], baseline=True, close_after=2), [], 1.0)
    await store.apply_poll("cvpr-2024", diff({}, [card], baseline=True, close_after=2), [], 1.0)
    subscription = await store.add_subscription(
        "slack:C1", "scientist", [ChangeKind.NEW], origin="cli", created_by=None, now=2.0
    )
    assert await store.backfill(subscription.id, [listed, card], 3.0) == 1
    (alert,) = await store.due_deliveries(3.0)
    assert {p.source for p in (alert.change.posting, *alert.also)} == {"figma", "cvpr-2024"}


# ---------------------------------------------------------------- /jobs preview


@pytest.mark.parametrize("platform", ["slack", "discord"])
async def test_preview_shows_the_job_once_with_where_else_it_is_listed(
    store: Store, platform: Platform
) -> None:
    listed, card = real_postings()
    config = Config.model_validate(
        {
            "sources": [
                {"name": "figma", "type": "greenhouse", "url": "https://example.test/figma"},
                {"name": "cvpr-2024", "type": "cvpr", "url": "https://example.test/cvpr"},
            ]
        }
    )
    await store.register_sources([("figma", "greenhouse", "x"), ("cvpr-2024", "cvpr", "y")])
    for now, posting in ((1.0, listed), (2.0, card)):
        found = diff({}, [posting], baseline=True, close_after=2)
        await store.apply_poll(posting.source, found, [], now)
    commands = Commands(store, await SourceCatalog.load(config, store), config, clock=lambda: 3.0)

    async def not_admin() -> bool:
        return False

    reply = await commands.run(Caller(platform, "U1", "C1", not_admin), 'preview "ai research"')
    heading, job = reply.splitlines()
    assert heading == '2 open postings (1 job) match `"ai research"` right now. Newest first:'
    assert job.startswith("• AI Research Scientist — Figma — San Francisco, CA; New York, NY")
    assert job.endswith(" (also on: figma)")
