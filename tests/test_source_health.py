"""Source health: one notice to the operator when a source starts failing or thins out,
one when it recovers, never a stream; the same facts in `careerbot sources` and status."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from loopback import Reply, serve

from bot.app import App
from bot.chat.webhook import DiscordWebhookSender, SlackWebhookSender
from bot.cli import build_parser, cmd_sources
from bot.commands import Caller
from bot.config import load_config
from bot.fetch import make_client
from bot.models import Notice, Posting, utc_iso
from bot.render_notice import discord_notice_payload, notice_text, slack_notice_payload
from bot.source_health import (
    Health,
    HealthState,
    PollFacts,
    after_poll,
    describe,
    details_per_posting,
)

FULL = Posting(
    "s",
    "1",
    "Research Scientist",
    company="Acme",
    locations=("London",),
    team="Research",
    employment_type="Full-time",
    posted_at="2026-11-01",
    url="https://jobs.example/1",
    description="Build things.",
)
BARE = Posting("s", "2", "Research Scientist", url="https://jobs.example/2")


def test_details_count_the_optional_fields_filled() -> None:
    assert details_per_posting([FULL]) == 7
    assert details_per_posting([BARE]) == 1
    assert details_per_posting([FULL, BARE]) == 4
    assert details_per_posting([]) is None


def failed(failures: int) -> PollFacts:
    return PollFacts(ok=False, failures=failures, error="HTTP 503 from jobs.example/")


def parsed(details: float) -> PollFacts:
    return PollFacts(ok=True, failures=0, details=details, postings=40)


HEALTHY = Health()


def run(polls: list[PollFacts], health: Health = HEALTHY) -> tuple[Health, list[str]]:
    """The health after ``polls`` (one a minute) and the notices' titles."""
    titles = []
    for minute, poll in enumerate(polls):
        health, notice = after_poll("acme", health, poll, failures_to_tell=3, now=60.0 * minute)
        if notice is not None:
            titles.append(notice.title)
    return health, titles


def test_failing_is_told_once_at_the_threshold_and_recovery_once() -> None:
    health, titles = run([failed(1), failed(2)])
    assert health.state is HealthState.OK and titles == []
    health, titles = run([failed(n) for n in range(1, 8)])
    assert health == Health(HealthState.FAILING, 120.0)
    assert titles == ["Source acme is failing"], "one notice, however long it fails"
    health, titles = run([parsed(6.0), parsed(6.0)], health)
    assert health.state is HealthState.OK and health.since is None
    assert titles == ["Source acme has recovered"]


def test_a_source_that_recovers_before_the_threshold_is_never_told() -> None:
    _, titles = run([failed(1), failed(2), parsed(6.0), failed(1), failed(2), parsed(6.0)])
    assert titles == []


def test_a_redesign_that_thins_the_postings_is_told_once_and_so_is_its_fix() -> None:
    health, titles = run([parsed(6.0)] * 5 + [parsed(2.0)] * 4)
    assert health.state is HealthState.THIN and health.usual_details == pytest.approx(6.0)
    assert titles == ["Source acme gives far fewer details than usual"]
    health, titles = run([parsed(5.5)], health)
    assert health.state is HealthState.OK
    assert titles == ["Source acme has recovered"]


@pytest.mark.parametrize(
    ("polls", "state"),
    [
        ([parsed(6.0), parsed(3.5), parsed(3.5)], HealthState.OK),  # fewer, not far fewer
        ([parsed(1.5), parsed(0.5)], HealthState.OK),  # never had enough details to judge
        ([parsed(6.0), PollFacts(ok=True, failures=0)], HealthState.OK),  # not parsed: no news
    ],
)
def test_small_or_unjudgeable_drops_are_not_problems(
    polls: list[PollFacts], state: HealthState
) -> None:
    health, titles = run(polls)
    assert health.state is state and titles == []


def test_the_usual_count_follows_slow_change_but_not_a_problem() -> None:
    health, _ = run([parsed(6.0)] + [parsed(5.0)] * 20)
    assert health.usual_details == pytest.approx(5.0, abs=0.1)
    thin, _ = run([parsed(2.0)] * 10, health)
    assert thin.usual_details == health.usual_details, "a thin source does not lower the bar"


def test_describe() -> None:
    assert describe(Health()) == "ok"
    assert describe(Health(HealthState.FAILING, 10.0), "for 2h") == "failing for 2h"
    assert (
        describe(Health(HealthState.THIN, 10.0, 6.0))
        == "thin: far fewer details per posting than the usual 6.0"
    )


NOTICE = Notice(
    "webhook:ops",
    "Source acme is failing",
    "3 polls in a row failed; the last: <!channel> *HTTP 503* @everyone [x](https://evil)",
    0.0,
    "acme",
)


def test_notices_render_as_plain_text_everywhere() -> None:
    slack = slack_notice_payload(NOTICE)
    assert [block["text"]["type"] for block in slack["blocks"]] == ["plain_text", "plain_text"]
    assert "<!channel>" not in slack["text"] and "&lt;!channel&gt;" in slack["text"]
    discord = discord_notice_payload(NOTICE)
    assert discord["allowed_mentions"] == {"parse": []}
    description = discord["embeds"][0]["description"]
    assert "@everyone" not in description and r"\*HTTP 503\*" in description
    assert r"\[x\]" in description
    assert notice_text(NOTICE).startswith("⚠️ Source acme is failing")


async def test_webhooks_post_notices() -> None:
    async with serve() as server, make_client(5, 4) as client:
        server.set("/slack", Reply(200, "ok"))
        server.set("/discord", Reply(200, '{"id": "1"}'))
        await SlackWebhookSender(client, server.url("/slack")).send_notice(NOTICE)
        await DiscordWebhookSender(client, server.url("/discord")).send_notice(NOTICE)
    slack, discord = (request.json() for request in server.requests)
    assert slack["blocks"][0]["text"]["text"] == "⚠️ Source acme is failing"
    assert discord["embeds"][0]["title"] == "⚠️ Source acme is failing"


def board(postings: int, *, detailed: bool = True) -> str:
    jobs = [
        {
            "id": number,
            "title": f"Research Scientist {number}",
            "absolute_url": f"https://jobs.example/{number}",
            **(
                {
                    "location": {"name": "London"},
                    "first_published": "2026-11-01T09:00:00Z",
                    "departments": [{"name": "Research"}],
                    "content": "&lt;p&gt;Build things.&lt;/p&gt;",
                }
                if detailed
                else {}
            ),
        }
        for number in range(postings)
    ]
    return json.dumps({"jobs": jobs, "meta": {"total": postings}})


async def test_the_operator_hears_of_a_failing_source_once_and_of_its_recovery_once(
    tmp_path: Path,
) -> None:
    page = tmp_path / "board.json"
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[bot]
database = "state.sqlite3"
ops_target = "console"
ops_after_failures = 3

[[sources]]
name = "acme"
type = "greenhouse"
url = "file:{page}"
company = "Acme"
"""
    )
    loaded = load_config(config)
    console = io.StringIO()
    versions = [board(20)] + ["{not json"] * 5 + [board(20)] + [board(20, detailed=False)] * 3
    async with App.open(loaded, environ={}, console=console) as app:
        for version in versions:
            page.write_text(version)
            await app.once()
        status = await app.store.source_state("acme")
        member = Caller("slack", "U1", "C1", is_admin=_never_admin)
        status_reply = await app.commands.run(member, "status")
    sources = io.StringIO()
    with redirect_stdout(sources):
        assert (
            await cmd_sources(build_parser().parse_args(["sources", "--config", str(config)])) == 0
        )
    notices = [block for block in console.getvalue().split("\n\n") if block.strip()]
    assert [notice.splitlines()[0] for notice in notices] == [
        "⚠️ Source acme is failing",
        "✅ Source acme has recovered",
        "⚠️ Source acme gives far fewer details than usual",
    ]
    assert "3 polls in a row failed; the last: greenhouse: invalid JSON" in notices[0]
    assert status is not None and status.health.state is HealthState.THIN
    thin = "thin{}: far fewer details per posting than the usual 6.0"
    assert thin.format(" for 0s") in status_reply
    (row,) = sources.getvalue().splitlines()[1:]
    assert row.split("\t")[7] == thin.format(f" since {utc_iso(status.health.since or 0)}")


async def _never_admin() -> bool:
    return False
