"""Why a posting matched (``explain``, ``/jobs why``, ``careerbot why``), the preview on
subscribe and the one-time backfill (``/jobs backfill``, ``careerbot backfill``)."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from fixture_postings import fixture_postings

from bot import commands as commands_module
from bot.catalog import SourceCatalog
from bot.cli import main
from bot.commands import Caller, Commands
from bot.config import Config
from bot.diff import diff
from bot.models import Alert, Change, ChangeKind, Posting, Subscription
from bot.query import Semantic, TermResult, explain, parse_query, term_text
from bot.render import discord_payload, render_text, slack_payload
from bot.store import Match, Store

REPO = Path(__file__).resolve().parents[1]
NOW = 1_700_000_000.0
FIGMA = fixture_postings()["figma:5141321004"]  # greenhouse job with its pay range
WAYVE = fixture_postings()["cvpr:5d1b4223601c59e9"]  # NeRFs & Gaussian Splatting, London
REMOTE_US = fixture_postings()["zoox:c4e18a90-27b5-4c8e-9d13-6a2f0e5b7d88"]  # "Remote - US"


# --- explain -----------------------------------------------------------------------------


def test_each_term_says_where_it_was_found() -> None:
    query = parse_query('salary>=150000 location:"united states"')
    assert explain(query, FIGMA) == [
        TermResult("salary>=150000", True, value="294,000 USD a year"),
        TermResult('location:"united states"', True, field="location", value="San Francisco, CA"),
    ]


def test_the_issue_example_on_the_wayve_posting() -> None:
    query = parse_query('"gaussian splatting" OR nerf location:london -intern')
    results = explain(query, WAYVE)
    assert results == [
        TermResult('"gaussian splatting"', True, field="title", value=WAYVE.title),
        TermResult("nerf", False),  # the posting says "NeRFs"
        TermResult("location:london", True, field="location", value="London"),
        TermResult("-intern", False, excluded=True),
    ]
    assert [result.satisfied for result in results] == [True, False, True, True]
    assert query.matches(WAYVE)


def test_an_exclusion_that_blocks_the_posting() -> None:
    query = parse_query('scientist -location:"new york"')
    assert explain(query, FIGMA) == [
        TermResult("scientist", True, field="title", value="AI Research Scientist"),
        TermResult('-location:"new york"', True, True, "location", "New York, NY"),
    ]
    assert not query.matches(FIGMA)


def test_conditions_say_what_they_measured() -> None:
    assert explain(parse_query("remote:yes salary>=1"), REMOTE_US) == [
        TermResult("remote:yes", True, field="location", value="Remote - US"),
        TermResult("salary>=1", False, value="no salary given"),
    ]
    hourly = Posting("s", "1", "Tutor", salary_max=75, salary_currency="USD", salary_period="hour")
    assert explain(parse_query("salary>=160kusd"), hourly) == [
        TermResult("salary>=160000usd", False, value="156,000 USD a year")
    ]


def test_description_matches_name_the_field() -> None:
    [result] = explain(parse_query('"neural simulator"'), WAYVE)
    assert (result.found, result.field, result.value) == (True, "description", None)


@pytest.mark.parametrize(
    ("typed", "written"),
    [
        ("Zürich", "zurich"),
        ("TITLE:Researcher", "title:researcher"),
        ('company:"Apple  Inc."', 'company:"apple inc"'),
        ("remote:NO", "remote:no"),
        ("salary>=120kGBP", "salary>=120000gbp"),
        ("salary>=62.5", "salary>=62.5"),
    ],
)
def test_a_term_is_written_as_it_is_matched_and_compiles_back(typed: str, written: str) -> None:
    node = parse_query(typed).root
    assert term_text(node) == written
    assert parse_query(written).root == node


def test_a_semantic_term_is_written_with_its_threshold() -> None:
    assert term_text(Semantic("robot learning")) == '~"robot learning"'
    assert term_text(Semantic("robot learning", 0.5)) == '~0.5"robot learning"'


# --- chat: /jobs why, the preview on subscribe, /jobs backfill ----------------------------

SLACK_ME = ("slack", "U1", "C1")
DISCORD_ME = ("discord", "111", "222")
PLATFORMS = [SLACK_ME, DISCORD_ME]


def caller(who: tuple[str, str, str]) -> Caller:
    platform, user, channel = who
    assert platform in ("slack", "discord")

    async def not_admin() -> bool:
        return False

    return Caller("slack" if platform == "slack" else "discord", user, channel, not_admin)


def neighbour(who: tuple[str, str, str]) -> Caller:
    """Someone else in the same channel."""
    return caller((who[0], who[1] + "9", who[2]))


def on_slack(text: str, who: tuple[str, str, str]) -> str:
    """Slack reads ``&``, ``<`` and ``>`` as entities even in code, so replies escape them."""
    return text.replace(">", "&gt;") if who[0] == "slack" else text


@pytest.fixture
async def commands(store: Store) -> Commands:
    config = Config.model_validate(
        {"sources": [{"name": "src", "type": "greenhouse", "url": "https://example.test/src"}]}
    )
    return Commands(store, await SourceCatalog.load(config, store), config, clock=lambda: NOW)


def at_src(*postings: Posting) -> list[Posting]:
    return [dataclasses.replace(posting, source="src") for posting in postings]


async def seed(store: Store, postings: Sequence[Posting]) -> None:
    """One poll each, the last posting newest; the first poll is the silent baseline."""
    for index in range(len(postings)):
        stored = await store.stored_postings("src")
        result = diff(stored, postings[: index + 1], baseline=index == 0, close_after=1)
        await store.apply_poll("src", result, [], now=NOW - 1000 + index)


@pytest.mark.parametrize("who", PLATFORMS)
async def test_why_explains_the_callers_and_the_channels_subscriptions(
    store: Store, commands: Commands, who: tuple[str, str, str]
) -> None:
    await seed(store, at_src(WAYVE, FIGMA))
    await commands.run(caller(who), 'subscribe salary>=150000 location:"united states"')
    await commands.run(caller(who), "subscribe dm nerf")
    await commands.run(neighbour(who), 'subscribe scientist -location:"new york"')
    await commands.run(caller((who[0], "U5", "elsewhere")), "subscribe scientist")

    reply = await commands.run(caller(who), "why src:5141321004")

    assert reply.splitlines() == [
        "• AI Research Scientist — Figma — San Francisco, CA; New York, NY · `src:5141321004`",
        on_slack('`#1` `salary>=150000 location:"united states"` matches:', who),
        on_slack("  ✓ `salary>=150000` — 294,000 USD a year", who),
        '  ✓ `location:"united states"` — in location "San Francisco, CA"',
        "`#2` `nerf` does not match:",
        "  ✗ `nerf` — not found",
        '`#3` `scientist -location:"new york"` does not match:',
        '  ✓ `scientist` — in title "AI Research Scientist"',
        '  ✗ `-location:"new york"` — in location "New York, NY": excluded',
    ]


async def test_why_finds_a_bare_id_and_says_when_it_is_closed(
    store: Store, commands: Commands
) -> None:
    await seed(store, at_src(WAYVE, FIGMA))
    await seed(store, at_src(WAYVE))  # FIGMA missing from a good poll: closed
    reply = await commands.run(caller(DISCORD_ME), "why 5141321004")
    assert reply.splitlines() == [
        "• AI Research Scientist — Figma — San Francisco, CA; New York, NY · `src:5141321004`"
        " (closed)",
        "You have no subscriptions, and none posts in this channel.",
    ]


async def test_why_names_what_it_cannot_find(store: Store, commands: Commands) -> None:
    await store.register_sources([("src2", "greenhouse", "https://example.test/src2")])
    await seed(store, at_src(FIGMA))
    result = diff({}, [dataclasses.replace(FIGMA, source="src2")], baseline=True, close_after=1)
    await store.apply_poll("src2", result, [], now=NOW)
    me = caller(SLACK_ME)
    assert await commands.run(me, "why") == (
        "Usage: `/jobs why SOURCE:ID`, with the ID an alert or `/jobs preview` shows."
    )
    assert await commands.run(me, "why src:404") == (
        "There is no posting `src:404`; copy the ID from an alert or `/jobs preview`."
    )
    assert await commands.run(me, "why 5141321004") == (
        "`5141321004` names several postings: `src:5141321004`, `src2:5141321004`. Which one?"
    )


@pytest.mark.parametrize("who", PLATFORMS)
async def test_subscribe_shows_what_matches_now_and_offers_a_backfill(
    store: Store, commands: Commands, who: tuple[str, str, str]
) -> None:
    us = [p for p in fixture_postings().values() if p.source in ("zoox", "notion", "apple")]
    await seed(store, at_src(*us))
    reply = await commands.run(caller(who), 'subscribe dm location:"united states" engineer')
    assert reply.splitlines() == [
        "Subscribed (`#1`): new and changed postings matching"
        ' `location:"united states" engineer` will be posted in your direct messages;'
        " `/jobs unsubscribe 1` stops it.",
        "5 open postings match it right now. Newest first:",
        "• Research Engineer, Retrieval — Notion — San Francisco, California"
        " · `src:6f1c9d02-4b8e-41a7-b3d5-9e0a7c2f8b64`",
        "• Software Engineer, AI — Notion — San Francisco, California; New York, New York"
        " · `src:0b5e2a51-7c3d-4e9a-8f10-2d6b4c8a9e13`",
        "• Senior Software Engineer - Simulation Infrastructure — Zoox — Remote - US"
        " · `src:c4e18a90-27b5-4c8e-9d13-6a2f0e5b7d88`",
        "`/jobs backfill 1` posts these 5 in your direct messages now (once).",
    ]
    nothing = await commands.run(caller(who), "subscribe location:tokyo")
    assert nothing.splitlines()[-1] == "No open posting matches it right now."


@pytest.mark.parametrize("who", PLATFORMS)
async def test_backfill_queues_each_alert_once(
    store: Store, commands: Commands, who: tuple[str, str, str]
) -> None:
    await seed(store, at_src(WAYVE, FIGMA, REMOTE_US))
    await commands.run(caller(who), "subscribe scientist")

    assert await commands.run(caller(who), "backfill 1") == (
        "Queued 2 alerts for `#1`; they will be posted within a minute."
    )
    queued = await store.due_deliveries(NOW + 1)
    assert [(item.change.kind, item.change.posting.ref) for item in queued] == [
        (ChangeKind.NEW, "src:5141321004"),
        (ChangeKind.NEW, "src:5d1b4223601c59e9"),
    ]
    assert {item.target for item in queued} == {f"{who[0]}:{who[2]}"}
    assert await commands.run(caller(who), "backfill #1") == (
        "Nothing to send: `#1` already had alerts about those postings."
    )
    assert len(await store.due_deliveries(NOW + 1)) == 2


async def test_backfill_skips_postings_already_alerted(store: Store, commands: Commands) -> None:
    await seed(store, at_src(WAYVE))
    await commands.run(caller(SLACK_ME), "subscribe scientist")
    [subscription] = await store.subscriptions()
    stored = await store.stored_postings("src")
    result = diff(stored, at_src(WAYVE, FIGMA), baseline=False, close_after=1)
    await store.apply_poll("src", result, [Match(0, subscription)], now=NOW)  # FIGMA, new

    assert await commands.run(caller(SLACK_ME), "backfill 1") == (
        "Queued 1 alert for `#1`; they will be posted within a minute."
    )
    refs = [item.change.posting.ref for item in await store.due_deliveries(NOW + 1)]
    assert sorted(refs) == ["src:5141321004", "src:5d1b4223601c59e9"]


async def test_backfill_sends_at_most_the_newest_few(
    store: Store, commands: Commands, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commands_module, "BACKFILL_MAX", 2)
    boards = [p for p in fixture_postings().values() if p.source in ("zoox", "notion")]
    await seed(store, at_src(*boards))
    reply = await commands.run(caller(DISCORD_ME), "subscribe engineer OR scientist")
    assert reply.endswith("`/jobs backfill 1` posts the newest 2 in this channel now (once).")
    assert await commands.run(caller(DISCORD_ME), "backfill 1") == (
        "Queued 2 alerts for `#1`; they will be posted within a minute."
    )
    refs = [item.change.posting.ref for item in await store.due_deliveries(NOW + 1)]
    assert sorted(refs) == [
        "src:0b5e2a51-7c3d-4e9a-8f10-2d6b4c8a9e13",  # the two engineers seeded last
        "src:6f1c9d02-4b8e-41a7-b3d5-9e0a7c2f8b64",
    ]


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("backfill", "Usage: `/jobs backfill ID` (the numbers `/jobs list` shows)."),
        ("backfill 9", "There is no subscription `#9`."),
        ("backfill 2", "`#2` is not yours: only the person who created it can backfill it."),
        ("backfill 1", "`#1` is paused; `/jobs resume 1` it first."),
        ("backfill 3", "No open posting matches `#3` right now."),
    ],
)
async def test_backfill_refusals(store: Store, commands: Commands, text: str, reply: str) -> None:
    await seed(store, at_src(FIGMA))
    me = caller(DISCORD_ME)
    await commands.run(me, "subscribe scientist")
    await commands.run(me, "pause 1")
    await commands.run(neighbour(DISCORD_ME), "subscribe scientist")
    await commands.run(me, "subscribe location:tokyo")
    assert await commands.run(me, text) == reply
    assert await store.due_deliveries(NOW + 1) == []


# --- alerts show the ID ------------------------------------------------------------------


def test_alerts_show_the_posting_id_on_every_platform() -> None:
    alert = Alert(Change(ChangeKind.NEW, FIGMA), Subscription(3, "console", "nerf"), "2024-05-10")
    assert "  ID:      figma:5141321004" in render_text(alert).splitlines()
    context = slack_payload(alert)["blocks"][-1]["elements"]
    assert {"type": "plain_text", "text": "ID: figma:5141321004"} in context
    fields = discord_payload(alert)["embeds"][0]["fields"]
    assert {"name": "ID", "value": "figma:5141321004", "inline": True} in fields


# --- the command line --------------------------------------------------------------------


def careerbot(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(REPO / "config.example.toml", tmp_path / "config.toml")
    shutil.copytree(REPO / "samples", tmp_path / "samples")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_cli_subscribe_previews_backfill_queues_once_and_why_explains(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert careerbot(capsys, "once")[0] == 0
    code, out, _ = careerbot(
        capsys, "subscribe", 'location:"united states" title:researcher', "--target", "console"
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[1] == "2 open postings match it right now; the newest:"
    assert lines[2].endswith("[cvpr-2024:9978bada64a0a6b0]")
    assert lines[-1] == "`careerbot backfill 2` queues alerts for these 2 now"

    assert careerbot(capsys, "backfill", "2")[1] == (
        "subscription #2: 2 open postings match, 2 alerts queued for console"
        " (sent by `careerbot once` or the running service)\n"
    )
    assert ", 0 alerts queued" in careerbot(capsys, "backfill", "2")[1]
    code, out, _ = careerbot(capsys, "once")
    assert code == 0 and out.count("[NEW]") == 2 and "ID:      cvpr-2024:9978bada64a0a6b0" in out

    code, out, _ = careerbot(capsys, "why", "cvpr-2024:9978bada64a0a6b0")
    assert code == 0
    assert out.splitlines()[-3:] == [
        '`#2` `location:"united states" title:researcher` matches:',
        '  ✓ `location:"united states"` — in location "New York, United States"',
        '  ✓ `title:researcher` — in title "Senior Researcher \u2013 Machine Learning and'
        ' Reinforcement Learning"',
    ]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("why", "cvpr-2024:nope"), "no posting 'cvpr-2024:nope' (use SOURCE:ID"),
        (("backfill", "7"), "no subscription #7"),
    ],
)
def test_cli_errors_are_one_line(
    workdir: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], error: str
) -> None:
    code, out, err = careerbot(capsys, *args)
    assert (code, out) == (2, "")
    assert err.startswith(f"careerbot: error: {error}")
