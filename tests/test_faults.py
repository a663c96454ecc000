"""Faults from the outside (issue 6, part 3): each one is isolated, retried, or parked
in the dead letters with a one-line reason that `/jobs status` and `careerbot sources`
show, and nothing else stops.

Fault → test (this module unless another is named; ``[id]`` is a case of the test above it).

Sources: one source misbehaves while a healthy one alerts in the same `App.once`, in
test_a_failing_source_is_isolated_and_explained (which also checks the backoff after it):
  read timeout             [timeout]
  connection reset         [connection-reset], [closed-mid-response]
  4xx                      [http-404], [http-403], [http-410]
  5xx                      [http-500], [http-503-retry-after] (Retry-After defers the next poll)
      test_polite_fetching::test_source_asking_to_retry_later_is_left_alone
  redirect loop            [redirect-loop]
  huge body                [huge-streamed], [huge-declared]
  wrong content type       [html-instead-of-json], [json-instead-of-rss]
  truncated JSON           [truncated-json]
  zero postings            [zero-postings]
      test_end_to_end::test_failing_source_is_isolated_and_closes_nothing
  backoff while failing    every case above
      test_polite_fetching::test_failing_source_backs_off_exponentially
  clock skew in dates
      test_skewed_posting_dates_still_alert_as_the_source_dated_them
      test_skewed_dates_never_crash_the_date_reader
  a reason over several lines
      test_a_reason_over_several_lines_is_recorded_as_one

Chat: the real senders against the local doubles, driven by the delivery worker:
  429 with Retry-After
      test_rate_limits_are_waited_out_and_delivered_once[*-retry-after*]
      test_delivery::test_slack_webhook_429_with_retry_after_is_delivered_exactly_once
      test_delivery::test_retry_after_holds_every_alert_of_the_target
      test_slack::test_short_429_is_retried_by_the_sdk_and_delivered_once
      test_slack::test_long_429_goes_back_to_the_worker_and_is_delivered_once
      test_discord::test_a_429_is_waited_out_and_the_alert_is_posted_exactly_once
  429 without Retry-After
      test_rate_limits_are_waited_out_and_delivered_once[*-no-retry-after]
  5xx
      test_server_errors_hold_the_target_then_deliver_once
      test_a_webhook_that_keeps_failing_is_dead_lettered_with_the_reason
      test_delivery::test_retry_and_dead_letter
      test_slack::test_platform_problems_hold_the_target[http-503]
      test_discord::test_server_errors_and_outages_mark_discord_down
  revoked token
      test_a_refused_token_holds_alerts_without_spending_attempts
      test_slack::test_platform_problems_hold_the_target[invalid_auth]
      test_discord::test_a_revoked_token_marks_discord_down
      test_discord::test_a_rest_only_sender_with_a_refused_token_holds_alerts
      test_delivery::test_platform_outage_holds_alerts_without_using_their_attempts
  deleted channel
      test_a_deleted_channel_dead_letters_each_of_its_alerts
      test_delivery::test_retry_and_dead_letter (a deleted webhook answers 404)
      test_discord::test_refusals_are_not_retried[unknown-channel]
  message too long
      test_a_refused_layout_is_sent_again_as_plain_text
      test_a_message_refused_even_as_plain_text_is_dead_lettered
      test_slack::test_limits_hold_for_huge_postings
      test_discord::test_huge_postings_stay_within_discords_limits
  who sees which failures in `/jobs status`
      test_status_names_only_channels_and_the_callers_own_direct_messages
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, redirect_stdout
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from discord.http import Route
from discord_double import CHANNEL_ID, DiscordDouble, Scripted, error, rate_limited, serve_discord
from fakes import FakeClock, queue_alert
from loopback import Recorded, Reply, serve
from slack_double import BOT_TOKEN, Canned, SlackDouble, serve_slack
from slack_double import error as slack_error

import bot.sources.greenhouse
from bot.app import App
from bot.catalog import SourceCatalog
from bot.chat.console import ConsoleSender
from bot.chat.discord_sender import rest_sender
from bot.chat.slack import SlackSender, make_web_client
from bot.chat.webhook import DiscordWebhookSender, SlackWebhookSender
from bot.cli import build_parser, cmd_sources
from bot.commands import Caller, Commands, Platform
from bot.config import Config, LoadedConfig, SlackSettings, load_config
from bot.delivery import DeliveryWorker, RateLimit, Sender
from bot.models import Posting
from bot.pipeline import poll_due
from bot.store import Store
from bot.text import iso_date

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
BOARD_V1 = (FIXTURES / "greenhouse" / "board-v1.json").read_bytes()
BOARD_V2 = (FIXTURES / "greenhouse" / "board-v2.json").read_bytes()
FEED_V1 = (FIXTURES / "rss" / "wwr-programming-v1.rss").read_bytes()
FLAKY = "127.0.0.1/flaky/jobs"  # how errors name the failing source's location
TIMEOUT = 0.2  # seconds; the slow server answers later than that
HUGE = 16 * 1024 * 1024 + 64 * 1024  # just over the 16 MiB cap
CHUNK = b"x" * 64 * 1024


def caller(platform: Platform = "slack", user: str = "U1", channel: str = "C1") -> Caller:
    async def not_admin() -> bool:
        return False

    return Caller(platform, user, channel, not_admin)


def line_with(text: str, part: str) -> str:
    (line,) = [line for line in text.splitlines() if part in line]
    return line


# ---------------------------------------------------------------- sources

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def answer(status: int, body: bytes | str = b"", headers: dict[str, str] | None = None) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        data = body.encode() if isinstance(body, str) else body
        return web.Response(status=status, body=data, headers=headers)

    return handle


async def too_slow(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(TIMEOUT + 0.3)
    return web.Response(body=BOARD_V1)


async def reset(request: web.Request) -> web.StreamResponse:
    """Drop the connection with a TCP reset instead of answering."""
    transport = request.transport
    assert transport is not None
    sock = transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    return web.Response()


async def closed_mid_response(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Length": str(len(BOARD_V1))})
    await response.prepare(request)
    await response.write(BOARD_V1[:100])
    assert request.transport is not None
    request.transport.abort()
    return response


async def huge_streamed(request: web.Request) -> web.StreamResponse:
    """Chunked, so the client learns the size only by reading."""
    response = web.StreamResponse()
    await response.prepare(request)
    try:
        for _ in range(HUGE // len(CHUNK)):
            await response.write(CHUNK)
    except ConnectionError:
        pass  # the client stopped reading at the cap, as it should
    return response


async def huge_declared(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Length": str(HUGE)})
    await response.prepare(request)
    assert request.transport is not None
    request.transport.abort()  # the client must refuse it from the header alone
    return response


async def redirect_loop(request: web.Request) -> web.StreamResponse:
    elsewhere = "/flaky/elsewhere" if request.path == "/flaky/jobs" else "/flaky/jobs"
    return web.Response(status=302, headers={"Location": elsewhere})


class Site:
    """Two career sites on one loopback server: ``/healthy/jobs`` serves
    ``healthy_body``; every path under ``/flaky/`` is answered by ``flaky``."""

    def __init__(self) -> None:
        self.base_url = ""
        self.healthy_body = BOARD_V1
        self.flaky: Handler = answer(200, BOARD_V1)

    async def _healthy(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=self.healthy_body)

    async def _flaky(self, request: web.Request) -> web.StreamResponse:
        return await self.flaky(request)


@asynccontextmanager
async def serve_site() -> AsyncIterator[Site]:
    site = Site()
    app = web.Application()
    app.router.add_get("/healthy/jobs", site._healthy)
    app.router.add_get("/flaky/{tail:.*}", site._flaky)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    site.base_url = f"http://127.0.0.1:{server.port}"
    try:
        yield site
    finally:
        await server.close()


def load(tmp_path: Path, site: Site, flaky_type: str = "greenhouse") -> LoadedConfig:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[bot]
database = "state.sqlite3"
per_host_rate = 1000

[[sources]]
name = "healthy"
type = "greenhouse"
url = "{site.base_url}/healthy/jobs"

[[sources]]
name = "flaky"
type = "{flaky_type}"
url = "{site.base_url}/flaky/jobs"

[[subscriptions]]
target = "console"
query = "scientist OR engineer OR researcher OR developer"
"""
    )
    loaded = load_config(path, environ={})
    # Below the config's 1 s floor, so that a timeout costs a test almost nothing.
    bot = loaded.config.bot.model_copy(update={"request_timeout": TIMEOUT})
    return replace(loaded, config=loaded.config.model_copy(update={"bot": bot}))


def alerts_from(console: io.StringIO, source: str) -> list[str]:
    blocks = [block for block in console.getvalue().split("\n\n") if block.strip()]
    return [block for block in blocks if f"Source:  {source} ·" in block]


async def sources_table(loaded: LoadedConfig) -> dict[str, list[str]]:
    """`careerbot sources`, as printed: its rows by source name."""
    args = build_parser().parse_args(["sources", "--config", str(loaded.path)])
    out = io.StringIO()
    with redirect_stdout(out):
        assert await cmd_sources(args) == 0
    header, *rows = out.getvalue().splitlines()
    assert header.split("\t") == [
        "name", "type", "interval", "last poll", "last success", "open", "failures", "health",
        "last error",
    ]  # fmt: skip
    return {row.split("\t")[0]: row.split("\t") for row in rows}


@dataclass(frozen=True)
class SourceFault:
    handler: Handler
    reason: str
    flaky_type: str = "greenhouse"
    retry_after: float | None = None


SOURCE_FAULTS = {
    "timeout": SourceFault(too_slow, f"timed out fetching {FLAKY}"),
    "connection-reset": SourceFault(reset, f"connection reset fetching {FLAKY}"),
    "closed-mid-response": SourceFault(
        closed_mid_response, f"connection closed mid-response fetching {FLAKY}"
    ),
    "http-404": SourceFault(answer(404, "Not Found"), f"HTTP 404 from {FLAKY}"),
    "http-403": SourceFault(answer(403, "Forbidden"), f"HTTP 403 from {FLAKY}"),
    "http-410": SourceFault(answer(410, "Gone"), f"HTTP 410 from {FLAKY}"),
    "http-500": SourceFault(answer(500, "<h1>Oops</h1>"), f"HTTP 500 from {FLAKY}"),
    "http-503-retry-after": SourceFault(
        answer(503, "busy", {"Retry-After": "120"}), f"HTTP 503 from {FLAKY}", retry_after=120
    ),
    "redirect-loop": SourceFault(
        redirect_loop, f"too many redirects (more than 5) fetching {FLAKY}"
    ),
    "huge-streamed": SourceFault(huge_streamed, f"response from {FLAKY} is larger than 16 MiB"),
    "huge-declared": SourceFault(huge_declared, f"response from {FLAKY} is larger than 16 MiB"),
    "html-instead-of-json": SourceFault(
        answer(200, "<!DOCTYPE html><html><body><h1>Service unavailable</h1></body></html>"),
        "greenhouse: invalid JSON at line 1, column 1 (got an HTML page)",
    ),
    "json-instead-of-rss": SourceFault(
        answer(200, '{"jobs": []}', {"Content-Type": "application/json"}),
        "rss: not an RSS or Atom feed (got JSON)",
        flaky_type="rss",
    ),
    "truncated-json": SourceFault(
        answer(200, b'{"jobs": [{"id": 1, "title": "Research Scientist"'),
        "greenhouse: invalid JSON at line 1, column 50 (it ends early: a truncated response?)",
    ),
    "zero-postings": SourceFault(
        answer(200, '{"jobs": []}'), "returned no postings although 3 were open; closing none"
    ),
}


@pytest.mark.parametrize("fault", SOURCE_FAULTS.values(), ids=SOURCE_FAULTS.keys())
async def test_a_failing_source_is_isolated_and_explained(
    tmp_path: Path, fault: SourceFault
) -> None:
    console = io.StringIO()
    async with serve_site() as site:
        if fault.flaky_type == "rss":
            site.flaky = answer(200, FEED_V1)
        loaded = load(tmp_path, site, fault.flaky_type)
        async with App.open(loaded, environ={}, console=console) as app:
            baseline = await app.once()
            assert baseline.ok
            opened = {s.name: s.open_postings for s in await app.store.source_states()}
            assert opened == {"healthy": 3, "flaky": 3}

            site.healthy_body = BOARD_V2
            site.flaky = fault.handler
            report = await app.once()
            outcomes = {o.source: o for o in report.outcomes}
            assert outcomes["flaky"].error == fault.reason
            assert outcomes["healthy"].ok and len(outcomes["healthy"].changes) == 2
            assert len(alerts_from(console, "healthy")) == 2, "the healthy source still alerts"
            assert report.still_queued == 0

            flaky = await app.store.source_state("flaky")
            assert flaky is not None
            assert (flaky.consecutive_failures, flaky.last_error) == (1, fault.reason)
            assert flaky.open_postings == 3
            stored = await app.store.stored_postings("flaky")
            assert not any(s.closed or s.missing_polls for s in stored.values()), "closed nothing"
            interval = loaded.config.interval_of(loaded.config.sources[1])
            assert flaky.last_poll_at is not None
            if fault.retry_after is not None:
                asked = flaky.last_poll_at + fault.retry_after
                assert flaky.retry_not_before == pytest.approx(asked)
                assert not poll_due(flaky, interval, asked - 1)
                assert poll_due(flaky, interval, asked)

            status = await app.commands.run(caller(), "status")
            assert line_with(status, "`flaky`").endswith(f"failed (1 in a row): {fault.reason}")
            assert line_with(status, "`healthy`").endswith(" ok")

            await app.once()  # still failing: the scheduler now waits two intervals
            flaky = await app.store.source_state("flaky")
            assert flaky is not None and flaky.consecutive_failures == 2
            assert flaky.last_poll_at is not None
            assert not poll_due(flaky, interval, flaky.last_poll_at + interval)
            assert poll_due(flaky, interval, flaky.last_poll_at + 2 * interval)

    assert alerts_from(console, "flaky") == []
    rows = await sources_table(loaded)
    assert rows["flaky"][5:] == ["3", "2", "ok", fault.reason]
    assert rows["healthy"][5:] == ["3", "0", "ok", ""]


async def test_a_reason_over_several_lines_is_recorded_as_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_parser(*args: object) -> None:
        raise ValueError("unexpected layout:\n\tline 2\tof the page")

    async with serve_site() as site:
        loaded = load(tmp_path, site)
        async with App.open(loaded, environ={}) as app:
            monkeypatch.setattr(bot.sources.greenhouse, "parse_board", broken_parser)
            report = await app.once()
    reason = "internal error: ValueError: unexpected layout: line 2 of the page"
    assert {o.source: o.error for o in report.outcomes} == {"healthy": reason, "flaky": reason}
    rows = await sources_table(loaded)
    assert rows["flaky"][6:] == ["1", "ok", reason]


SKEWED_BOARD = json.dumps(
    {
        "jobs": [
            *json.loads(BOARD_V1)["jobs"],
            *(
                {
                    "id": 900 + number,
                    "title": f"Research Scientist {number}",
                    "absolute_url": f"https://jobs.example/{number}",
                    "location": {"name": "London"},
                    "first_published": published,
                }
                for number, published in enumerate(
                    [
                        "2999-12-31T23:00:00Z",  # far in the future
                        "1970-01-01T00:00:00Z",  # the epoch: an unset date
                        "2024-05-09T23:30:00-14:00",  # the next day in UTC
                        "2024-05-10T01:00:00+14:00",  # the day before in UTC
                        "9999-12-31T23:00:00-14:00",  # past the end of the calendar in UTC
                    ]
                )
            ),
        ]
    }
)


async def test_skewed_posting_dates_still_alert_as_the_source_dated_them(tmp_path: Path) -> None:
    """Nothing orders or filters by ``posted_at`` (previews and searches order by when a
    posting was first seen), so a skewed date is shown as the source gives it, as a UTC
    calendar date; one beyond the calendar is unknown."""
    console = io.StringIO()
    async with serve_site() as site:
        loaded = load(tmp_path, site)
        async with App.open(loaded, environ={}, console=console) as app:
            await app.once()
            site.flaky = answer(200, SKEWED_BOARD)
            report = await app.once("flaky")
            assert report.ok and report.delivered == 5
            posted = {c.posting.id: c.posting.posted_at for c in report.outcomes[0].changes}
    assert posted == {
        "900": "2999-12-31",
        "901": "1970-01-01",
        "902": "2024-05-10",
        "903": "2024-05-09",
        "904": None,
    }
    alerts = alerts_from(console, "flaky")
    assert len(alerts) == 5
    assert sum("Posted:  2999-12-31" in alert for alert in alerts) == 1


@pytest.mark.parametrize(
    ("value", "date"),
    [
        (0, "1970-01-01"),
        (-1, "1969-12-31"),
        (32_503_680_000_000, "3000-01-01"),  # epoch milliseconds
        (10**30, None),
        (float("inf"), None),
        ("9999-12-31T23:00:00-14:00", None),
        ("0001-01-01T00:00:00+14:00", None),
        ("2024-02-30", None),
        ("2024-05-09T12:00:00+25:00", None),
    ],
)
def test_skewed_dates_never_crash_the_date_reader(value: str | float, date: str | None) -> None:
    assert iso_date(value) == date


# ---------------------------------------------------------------- chat

SLACK, SLACK_GONE = "slack:C123", "slack:C999"
GONE_CHANNEL_ID = CHANNEL_ID + 79
DISCORD, DISCORD_GONE = f"discord:{CHANNEL_ID}", f"discord:{GONE_CHANNEL_ID}"
SLACK_HOOK, DISCORD_HOOK = "webhook:slack-hook", "webhook:discord-hook"
MESSAGES = f"/channels/{CHANNEL_ID}/messages"
MAX_ATTEMPTS = 3


@dataclass
class Hook:
    """An incoming-webhook endpoint: answers with ``failures`` first, then accepts."""

    ok: Reply
    failures: list[Reply] = field(default_factory=list)
    accepted: list[Any] = field(default_factory=list)

    def __call__(self, request: Recorded) -> Reply:
        if self.failures:
            return self.failures.pop(0)
        self.accepted.append(request.json())
        return self.ok


@dataclass
class Chat:
    """Every platform's double, the real senders to them, and the console as a bystander."""

    slack: SlackDouble
    discord: DiscordDouble
    hooks: dict[str, Hook]
    senders: dict[str, Sender]  # by the target's prefix
    console: io.StringIO

    def sender_for(self, target: str) -> tuple[Sender, RateLimit | None]:
        prefix = target if target in self.senders else target.split(":")[0]
        # No RateLimit: aiolimiter paces in real time, which the fake clock cannot skip.
        return self.senders[prefix], None

    def tried(self, target: str) -> int:
        """How many messages were sent to a Slack or Discord channel, accepted or not."""
        kind, _, where = target.partition(":")
        if kind == "slack":
            return sum(c.args["channel"] == where for c in self.slack.calls_to("chat.postMessage"))
        return len(self.discord.requests("POST", f"/channels/{where}/messages"))

    def delivered(self, target: str) -> list[Any]:
        """The messages the platform accepted for ``target``."""
        if target in self.hooks:
            return self.hooks[target].accepted
        kind, _, where = target.partition(":")
        if kind == "slack":
            return [
                c.args
                for c in self.slack.accepted("chat.postMessage")
                if c.args["channel"] == where
            ]
        if kind == "discord":
            return self.discord.posted(int(where))
        return [block for block in self.console.getvalue().split("\n\n") if block.strip()]


@pytest.fixture
async def chat() -> AsyncIterator[Chat]:
    api_base = Route.BASE  # rest_sender points discord.py's class-wide endpoint at the double
    hooks = {SLACK_HOOK: Hook(Reply(200, "ok")), DISCORD_HOOK: Hook(Reply(200, '{"id": "1"}'))}

    async def no_sleep(seconds: float) -> None:
        pass

    async with (
        serve() as loopback,
        serve_slack() as slack,
        serve_discord() as discord_double,
        rest_sender(discord_double.api_base, discord_double.token) as discord_sender,
        httpx.AsyncClient() as client,
    ):
        for name, hook in hooks.items():
            loopback.set(f"/{name}", hook)
        slack_settings = SlackSettings(api_base_url=slack.api_url)
        console = io.StringIO()
        yield Chat(
            slack,
            discord_double,
            hooks,
            {
                "slack": SlackSender(make_web_client(BOT_TOKEN, slack_settings, sleep=no_sleep)),
                "discord": discord_sender,
                SLACK_HOOK: SlackWebhookSender(client, loopback.url(f"/{SLACK_HOOK}")),
                DISCORD_HOOK: DiscordWebhookSender(client, loopback.url(f"/{DISCORD_HOOK}")),
                "console": ConsoleSender(console),
            },
            console,
        )
    Route.BASE = api_base


def worker_for(store: Store, chat: Chat, clock: FakeClock) -> DeliveryWorker:
    return DeliveryWorker(
        store,
        chat.sender_for,
        max_attempts=MAX_ATTEMPTS,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(1),
    )


async def queue(store: Store, clock: FakeClock, *targets: str) -> None:
    for number, target in enumerate(targets):
        posting = Posting(
            "src", f"{target}-{number}", f"Research Scientist {number}", company="Acme"
        )
        await queue_alert(store, target, posting, clock.now, "scientist")


async def status(store: Store, clock: FakeClock, who: Caller | None = None) -> str:
    config = Config.model_validate(
        {"sources": [{"name": "src", "type": "greenhouse", "url": "https://example.test/src"}]}
    )
    commands = Commands(store, await SourceCatalog.load(config, store), config, clock)
    return await commands.run(who or caller(), "status")


async def counts(store: Store) -> tuple[int, int, int]:
    found = await store.outbox_counts()
    return found.pending, found.sent, found.dead


Fault = Callable[[Chat], None]


def hook_fails(target: str, *replies: Reply) -> Fault:
    return lambda chat: chat.hooks[target].failures.extend(replies)


def slack_fails(*answers: Canned) -> Fault:
    return lambda chat: chat.slack.script("chat.postMessage", *answers)


def discord_fails(*replies: Scripted) -> Fault:
    return lambda chat: chat.discord.script("POST", MESSAGES, *replies)


@dataclass(frozen=True)
class RateLimitCase:
    target: str
    fault: Fault
    wait: tuple[float, float]  # the worker's sleep falls in this range


RATE_LIMITS = {
    "slack-webhook-no-retry-after": RateLimitCase(
        SLACK_HOOK, hook_fails(SLACK_HOOK, Reply(429, "rate_limited")), (2, 4)
    ),
    "slack-no-retry-after": RateLimitCase(
        SLACK, slack_fails(Canned({"ok": False, "error": "ratelimited"}, 429)), (2, 4)
    ),
    # Without Discord's Via header, discord.py hands the 429 over instead of sleeping.
    "discord-no-retry-after": RateLimitCase(
        DISCORD, discord_fails(Scripted(429, {"message": "You are being rate limited."})), (2, 4)
    ),
    "discord-webhook-retry-after-in-body": RateLimitCase(
        DISCORD_HOOK,
        hook_fails(DISCORD_HOOK, Reply(429, '{"retry_after": 7.5, "global": false}')),
        (7.5, 7.75),
    ),
    "discord-long-retry-after": RateLimitCase(
        DISCORD, discord_fails(rate_limited(120.0)), (120, 120.25)
    ),
}


@pytest.mark.parametrize("case", RATE_LIMITS.values(), ids=RATE_LIMITS.keys())
async def test_rate_limits_are_waited_out_and_delivered_once(
    store: Store, chat: Chat, case: RateLimitCase
) -> None:
    """Retry-After is honoured; without it the wait is jittered exponential backoff."""
    clock = FakeClock()
    case.fault(chat)
    await queue(store, clock, case.target, "console")
    assert await worker_for(store, chat, clock).drain(clock.now + 600) == 2
    assert len(chat.delivered(case.target)) == 1
    assert len(chat.delivered("console")) == 1
    (waited,) = clock.slept
    assert case.wait[0] <= waited <= case.wait[1]
    assert await counts(store) == (0, 2, 0)


@dataclass(frozen=True)
class ServerErrorCase:
    target: str
    fault: Fault
    reason: str
    attempts_used: int  # a webhook's 5xx costs the alert an attempt; a platform outage does not


SERVER_ERRORS = {
    "slack-webhook": ServerErrorCase(
        SLACK_HOOK,
        hook_fails(SLACK_HOOK, Reply(503, "upstream down")),
        "slack webhook answered HTTP 503: upstream down",
        1,
    ),
    "discord-webhook": ServerErrorCase(
        DISCORD_HOOK,
        hook_fails(DISCORD_HOOK, Reply(502)),
        "discord webhook answered HTTP 502",
        1,
    ),
    "slack": ServerErrorCase(
        SLACK, slack_fails(Canned({"ok": False}, 503)), "slack is unavailable (HTTP 503)", 0
    ),
    "discord": ServerErrorCase(
        DISCORD,
        discord_fails(error(503, 0, "Service Unavailable")),
        "Discord is having trouble (HTTP 503)",
        0,
    ),
}


@pytest.mark.parametrize("case", SERVER_ERRORS.values(), ids=SERVER_ERRORS.keys())
async def test_server_errors_hold_the_target_then_deliver_once(
    store: Store, chat: Chat, case: ServerErrorCase
) -> None:
    clock = FakeClock()
    case.fault(chat)
    await queue(store, clock, case.target, case.target, "console")
    worker = worker_for(store, chat, clock)
    assert await worker.deliver_due() == 1, "only the console got its alert"
    held = await store.due_deliveries(clock.now + 10_000)
    assert [item.attempts for item in held] == [case.attempts_used, 0]
    shown = await status(store, clock)
    assert "Alerts waiting to be sent: 2. Undeliverable: 0." in shown
    held_line = line_with(shown, "Held back:")
    assert held_line.startswith(f"Held back: 2 to `{case.target}`, next try in ")
    assert held_line.endswith(f"s: {case.reason}")

    assert await worker.drain(clock.now + 600) == 2
    assert len(chat.delivered(case.target)) == 2
    assert await counts(store) == (0, 3, 0)
    assert "Held back" not in await status(store, clock)


async def test_a_webhook_that_keeps_failing_is_dead_lettered_with_the_reason(
    store: Store, chat: Chat
) -> None:
    clock = FakeClock()
    hook_fails(SLACK_HOOK, *[Reply(500, "oops")] * MAX_ATTEMPTS)(chat)
    await queue(store, clock, SLACK_HOOK, "console")
    assert await worker_for(store, chat, clock).drain(clock.now + 3600) == 1
    assert chat.delivered(SLACK_HOOK) == [] and len(chat.delivered("console")) == 1
    assert await counts(store) == (0, 1, 1)
    shown = await status(store, clock)
    assert "Alerts waiting to be sent: 0. Undeliverable: 1." in shown
    assert line_with(shown, f"to `{SLACK_HOOK}`, queued ").endswith(
        f"s ago: gave up after {MAX_ATTEMPTS} attempts: slack webhook answered HTTP 500: oops"
    )


def set_discord_token(token: str) -> Fault:
    return lambda chat: setattr(chat.discord, "token", token)


@dataclass(frozen=True)
class TokenCase:
    target: str
    revoke: Fault
    restore: Fault
    reason: str


TOKEN_PROBLEMS = {
    "slack-invalid_auth": TokenCase(
        SLACK,
        lambda chat: setattr(chat.slack, "bot_token", "xoxb-rotated"),
        lambda chat: setattr(chat.slack, "bot_token", BOT_TOKEN),
        "slack refused the bot token (invalid_auth)",
    ),
    "slack-token_revoked": TokenCase(
        SLACK,
        slack_fails(*[slack_error("token_revoked")] * 5),
        lambda chat: chat.slack.scripts.clear(),
        "slack refused the bot token (token_revoked)",
    ),
    "discord-401": TokenCase(
        DISCORD,
        set_discord_token("rotated"),
        set_discord_token("double-bot-token"),
        "Discord refused the bot token (HTTP 401): check DISCORD_TOKEN",
    ),
}


@pytest.mark.parametrize("case", TOKEN_PROBLEMS.values(), ids=TOKEN_PROBLEMS.keys())
async def test_a_refused_token_holds_alerts_without_spending_attempts(
    store: Store, chat: Chat, case: TokenCase
) -> None:
    """Every alert would fail alike until the operator fixes the token: none is dead-lettered."""
    clock = FakeClock()
    case.revoke(chat)
    await queue(store, clock, case.target, "console")
    worker = worker_for(store, chat, clock)
    assert await worker.deliver_due() == 1, "only the console got its alert"
    for _ in range(MAX_ATTEMPTS + 1):
        clock.now = await store.next_delivery_at() or clock.now
        assert await worker.deliver_due() == 0
    (held,) = await store.due_deliveries(clock.now + 10_000)
    assert held.attempts == 0
    assert await counts(store) == (1, 1, 0)
    shown = await status(store, clock)
    assert "Alerts waiting to be sent: 1. Undeliverable: 0." in shown
    assert line_with(shown, "Held back:").startswith(
        f"Held back: 1 to `{case.target}`, next try in "
    )
    assert line_with(shown, "Held back:").endswith(f": {case.reason}")

    case.restore(chat)
    clock.now = await store.next_delivery_at() or clock.now
    assert await worker.deliver_due() == 1
    assert len(chat.delivered(case.target)) == 1
    assert await counts(store) == (0, 2, 0)


@dataclass(frozen=True)
class DeletedChannelCase:
    gone: str
    alive: str
    delete: Fault
    reason: str


DELETED_CHANNELS = {
    "slack": DeletedChannelCase(
        SLACK_GONE,
        SLACK,
        lambda chat: chat.slack.deleted_channels.add("C999"),
        "slack: channel C999 not found (deleted, or private: /invite @careerbot there)",
    ),
    "discord": DeletedChannelCase(
        DISCORD_GONE,
        DISCORD,
        lambda chat: chat.discord.channels.discard(GONE_CHANNEL_ID),
        f"channel {GONE_CHANNEL_ID} does not exist or the bot cannot see it"
        " (HTTP 404, code 10003: Unknown Channel)",
    ),
}


@pytest.mark.parametrize("case", DELETED_CHANNELS.values(), ids=DELETED_CHANNELS.keys())
async def test_a_deleted_channel_dead_letters_each_of_its_alerts(
    store: Store, chat: Chat, case: DeletedChannelCase
) -> None:
    """Each alert to the channel is tried once and parked with the reason; the other
    channels of the same platform keep receiving theirs."""
    clock = FakeClock()
    case.delete(chat)
    await queue(store, clock, case.gone, case.alive, case.gone, "console")
    assert await worker_for(store, chat, clock).drain(clock.now + 600) == 2
    assert len(chat.delivered(case.alive)) == 1 and len(chat.delivered("console")) == 1
    assert await counts(store) == (0, 2, 2)
    assert chat.tried(case.gone) == 2
    shown = await status(store, clock)
    assert "Alerts waiting to be sent: 0. Undeliverable: 2." in shown
    assert shown.count(f"to `{case.gone}`, queued 0s ago: {case.reason}") == 2


@dataclass(frozen=True)
class RefusedLayoutCase:
    target: str
    refuse: Callable[[int], Fault]  # the platform refuses the next n messages
    rich: str  # the part of the message that is left out the second time
    text: str  # the part that carries the plain rendering
    reason: str  # when even the plain message is refused


REFUSED_LAYOUTS = {
    "slack-invalid_blocks": RefusedLayoutCase(
        SLACK,
        lambda n: slack_fails(*[slack_error("invalid_blocks")] * n),
        "blocks",
        "text",
        "slack: Slack refused the message layout (invalid_blocks)",
    ),
    "slack-msg_too_long": RefusedLayoutCase(
        SLACK,
        lambda n: slack_fails(*[slack_error("msg_too_long")] * n),
        "blocks",
        "text",
        "slack: Slack refused the message as too long (msg_too_long)",
    ),
    "discord-50035": RefusedLayoutCase(
        DISCORD,
        lambda n: discord_fails(*[error(400, 50035, "Invalid Form Body")] * n),
        "embeds",
        "content",
        f"Discord refused the message for channel {CHANNEL_ID}"
        " (HTTP 400, code 50035: Invalid Form Body)",
    ),
    "slack-webhook": RefusedLayoutCase(
        SLACK_HOOK,
        lambda n: hook_fails(SLACK_HOOK, *[Reply(400, "invalid_blocks")] * n),
        "blocks",
        "text",
        "slack webhook answered HTTP 400: invalid_blocks",
    ),
    "discord-webhook": RefusedLayoutCase(
        DISCORD_HOOK,
        lambda n: hook_fails(
            DISCORD_HOOK, *[Reply(400, '{"code": 50035, "message": "Invalid Form Body"}')] * n
        ),
        "embeds",
        "content",
        'discord webhook answered HTTP 400: {"code": 50035, "message": "Invalid Form Body"}',
    ),
}


@pytest.mark.parametrize("case", REFUSED_LAYOUTS.values(), ids=REFUSED_LAYOUTS.keys())
async def test_a_refused_layout_is_sent_again_as_plain_text(
    store: Store, chat: Chat, case: RefusedLayoutCase
) -> None:
    """Too long, or a layout the platform will not take: the same message would be refused
    forever, so the alert goes once more right away as its plain-text fallback alone."""
    clock = FakeClock()
    case.refuse(1)(chat)
    await queue(store, clock, case.target)
    assert await worker_for(store, chat, clock).drain(clock.now + 600) == 1
    (message,) = chat.delivered(case.target)
    assert not message.get(case.rich)
    assert "Research Scientist 0" in message[case.text]
    assert clock.slept == [], "not a retry: the plain message follows at once"
    assert await counts(store) == (0, 1, 0)


@pytest.mark.parametrize("case", REFUSED_LAYOUTS.values(), ids=REFUSED_LAYOUTS.keys())
async def test_a_message_refused_even_as_plain_text_is_dead_lettered(
    store: Store, chat: Chat, case: RefusedLayoutCase
) -> None:
    clock = FakeClock()
    case.refuse(2)(chat)
    await queue(store, clock, case.target, case.target, "console")
    assert await worker_for(store, chat, clock).drain(clock.now + 600) == 2
    assert len(chat.delivered(case.target)) == 1, "the target's next alert still went out"
    assert await counts(store) == (0, 2, 1)
    shown = await status(store, clock)
    assert "Alerts waiting to be sent: 0. Undeliverable: 1." in shown
    assert f"to `{case.target}`, queued 0s ago: {case.reason}" in shown


async def test_status_names_only_channels_and_the_callers_own_direct_messages(
    store: Store,
) -> None:
    """Anyone may run `/jobs status`: other people's direct messages stay anonymous,
    and so do their reasons, which may name them."""
    clock = FakeClock()
    targets = ["slack:C1", "slack:U1", "slack:U2", "discord:dm:111", "discord:222"]
    await queue(store, clock, *targets, "slack:U3")
    pending = await store.due_deliveries(clock.now)
    for item in pending[:-1]:
        who = item.target.rsplit(":", 1)[1]
        await store.mark_dead(item.id, f"{who} refused it")
    await store.defer_target("slack:U3", clock.now + 60, "U3 is rate limited")

    as_u1 = (await status(store, clock, caller("slack", "U1", "C1"))).splitlines()
    as_111 = (await status(store, clock, caller("discord", "111", "222"))).splitlines()

    ids = {item.target: item.id for item in pending}
    assert as_u1[-8:] == [
        "Alerts waiting to be sent: 1. Undeliverable: 5.",
        "Held back: 1 to someone's direct messages, next try in 1m",
        "Most recent undeliverable alerts:",
        f"`#{ids['discord:222']}` to `discord:222`, queued 0s ago: 222 refused it",
        f"`#{ids['discord:dm:111']}` to someone's direct messages, queued 0s ago",
        f"`#{ids['slack:U2']}` to someone's direct messages, queued 0s ago",
        f"`#{ids['slack:U1']}` to your direct messages, queued 0s ago: U1 refused it",
        f"`#{ids['slack:C1']}` to `slack:C1`, queued 0s ago: C1 refused it",
    ]
    assert "U2" not in "\n".join(as_u1) and "111" not in "\n".join(as_u1)
    assert (
        f"`#{ids['discord:dm:111']}` to your direct messages, queued 0s ago: 111 refused it"
        in as_111
    )
    assert "U1" not in "\n".join(as_111)
