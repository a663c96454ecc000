"""The Slack front-end: the real slack-bolt app and slack-sdk client against a local double."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from fakes import FakeClock, queue_alert
from slack_double import (
    APP_TOKEN,
    BOT_TOKEN,
    SIGNING_SECRET,
    Canned,
    SlackDouble,
    error,
    limit_problems,
    rate_limited,
    serve_slack,
    signed_headers,
)

from bot.chat.slack import SlackFrontend, SlackSender, command_text, make_web_client
from bot.commands import Caller
from bot.config import SlackSettings
from bot.delivery import DeliveryWorker, RateLimit, Sender
from bot.errors import ConfigError, DeliveryError
from bot.models import Alert, Change, ChangeKind, FieldChange, Posting, Subscription
from bot.render import slack_payload
from bot.store import Store

POSTING = Posting(
    "src",
    "7",
    "Research Scientist, NeRF",
    company="Acme",
    locations=("London",),
    url="https://jobs.example/7",
    description="Neural radiance fields.",
)


def alert_for(
    kind: ChangeKind = ChangeKind.NEW,
    target: str = "slack:C123",
    posting: Posting = POSTING,
    fields: tuple[FieldChange, ...] = (),
) -> Alert:
    subscription = Subscription(1, target, "nerf")
    return Alert(Change(kind, posting, fields), subscription, "2024-01-01T00:00:00Z")


def settings_for(double: SlackDouble, **overrides: Any) -> SlackSettings:
    settings = SlackSettings(host="127.0.0.1", api_base_url=double.api_url)
    # Port 0 (any free port) is below the config's minimum, so bypass validation.
    return settings.model_copy(update={"port": 0, **overrides})


@pytest.fixture
async def slack() -> AsyncIterator[SlackDouble]:
    async with serve_slack() as double:
        yield double


# ---------------------------------------------------------------- /jobs


class StubCommands:
    """Stands in for bot.commands.Commands: records calls, asks is_admin for `source …`."""

    def __init__(self) -> None:
        self.calls: list[tuple[Caller, str]] = []
        self.gate: asyncio.Event | None = None  # when set, run() waits for it

    async def run(self, caller: Caller, text: str) -> str:
        self.calls.append((caller, text))
        if self.gate is not None:
            await self.gate.wait()
        if text.startswith("source"):
            return "admin ok" if await caller.is_admin() else "refused: needs a workspace admin"
        return f"Subscribed #1: `{text.removeprefix('subscribe ')}` & more"


@pytest.fixture
def commands() -> StubCommands:
    return StubCommands()


FrontendFactory = Callable[..., Awaitable[SlackFrontend]]


@pytest.fixture
async def make_frontend(
    slack: SlackDouble, commands: StubCommands
) -> AsyncIterator[FrontendFactory]:
    started: list[SlackFrontend] = []

    async def make(token: str = BOT_TOKEN, **overrides: Any) -> SlackFrontend:
        frontend = SlackFrontend(
            settings_for(slack, **overrides),
            commands,
            bot_token=token,
            signing_secret=SIGNING_SECRET,
            app_token=APP_TOKEN,
            retry_delay=0.02,
        )
        started.append(frontend)
        await frontend.start()
        return frontend

    yield make
    for frontend in started:
        await frontend.stop()


def slash_body(slack: SlackDouble, text: str, user: str = "U111", channel: str = "C222") -> str:
    return urlencode(
        {
            "token": "deprecated-verification-token",
            "team_id": "T1",
            "channel_id": channel,
            "user_id": user,
            "command": "/jobs",
            "text": text,
            "response_url": slack.response_url(),
            "trigger_id": "1.2.3",
        }
    )


async def post_command(frontend: SlackFrontend, body: str, headers: dict[str, str]) -> int:
    url = f"http://127.0.0.1:{frontend.http_port}/slack/events"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as r,
    ):
        return r.status


async def test_signed_slash_command_is_acked_first_then_answered_ephemerally(
    slack: SlackDouble, commands: StubCommands, make_frontend: FrontendFactory
) -> None:
    frontend = await make_frontend()
    commands.gate = asyncio.Event()  # the command is still "working" when the ack goes out
    body = slash_body(slack, "subscribe nerf")
    started = time.monotonic()
    status = await post_command(frontend, body, signed_headers(body))
    assert status == 200
    assert time.monotonic() - started < 2.0, "acked well within Slack's 3 seconds"
    assert not slack.calls_to("response_url"), "the answer comes after the ack"
    commands.gate.set()
    await asyncio.wait_for(slack.replied.wait(), 5)
    ((caller, text),) = commands.calls
    assert (caller.platform, caller.user_id, caller.channel_id) == ("slack", "U111", "C222")
    assert text == "subscribe nerf"
    (reply,) = slack.calls_to("response_url")
    assert reply.args["response_type"] == "ephemeral"
    assert reply.args["text"] == "Subscribed #1: `nerf` & more", "mrkdwn from the command layer"
    assert not slack.calls_to("users.info"), "nobody asked whether the caller is an admin"


async def test_stop_lets_a_command_in_progress_answer(
    slack: SlackDouble, commands: StubCommands, make_frontend: FrontendFactory
) -> None:
    frontend = await make_frontend()
    commands.gate = asyncio.Event()
    body = slash_body(slack, "subscribe nerf")
    assert await post_command(frontend, body, signed_headers(body)) == 200
    stopping = asyncio.create_task(frontend.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done(), "stop() waits for the answer"
    commands.gate.set()
    await asyncio.wait_for(stopping, 5)
    assert len(slack.calls_to("response_url")) == 1


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(
            lambda body: signed_headers(body, secret="not-the-secret"), id="bad-signature"
        ),
        pytest.param(lambda body: signed_headers(body, at=time.time() - 6 * 60), id="too-old"),
        pytest.param(
            lambda body: {"Content-Type": "application/x-www-form-urlencoded"}, id="unsigned"
        ),
    ],
)
async def test_unverified_requests_are_rejected(
    slack: SlackDouble,
    commands: StubCommands,
    make_frontend: FrontendFactory,
    headers: Callable[[str], dict[str, str]],
) -> None:
    frontend = await make_frontend()
    body = slash_body(slack, "source remove src")
    assert await post_command(frontend, body, headers(body)) == 401
    await asyncio.sleep(0.05)
    assert commands.calls == []
    assert not slack.calls_to("response_url")


@pytest.mark.parametrize(
    ("user", "text", "reply", "lookups"),
    [
        ("UCONF", "source pause src", "admin ok", 0),  # [slack] admin_user_ids
        ("UADMIN", "source pause src", "admin ok", 1),  # users.info is_admin
        ("UOWNER", "source pause src", "admin ok", 1),  # users.info is_owner
        ("UPLAIN", "source pause src", "refused: needs a workspace admin", 1),
        ("UPLAIN", "list", "Subscribed #1: `list` & more", 0),  # no admin command, no lookup
    ],
)
async def test_admin_check(
    slack: SlackDouble,
    make_frontend: FrontendFactory,
    user: str,
    text: str,
    reply: str,
    lookups: int,
) -> None:
    slack.admins.add("UADMIN")
    slack.owners.add("UOWNER")
    frontend = await make_frontend(admin_user_ids=("UCONF",))
    body = slash_body(slack, text, user=user)
    assert await post_command(frontend, body, signed_headers(body)) == 200
    await asyncio.wait_for(slack.replied.wait(), 5)
    assert slack.calls_to("response_url")[0].args["text"] == reply
    assert [call.args["user"] for call in slack.calls_to("users.info")] == [user] * lookups


@pytest.mark.parametrize(
    ("raw", "typed"),
    [
        ("  list  ", "list"),
        ("subscribe salary&gt;=150k -&lt;x&gt;", "subscribe salary>=150k -<x>"),
        ('subscribe "r &amp; d"', 'subscribe "r & d"'),
        (
            "source add lab html <https://example.com/jobs?a=1&amp;b=2|example.com/jobs>",
            "source add lab html https://example.com/jobs?a=1&b=2",
        ),
        (
            "source add lab rss <http://example.com/feed>",
            "source add lab rss http://example.com/feed",
        ),
    ],
)
def test_command_text_is_what_the_user_typed(raw: str, typed: str) -> None:
    assert command_text(raw) == typed


async def test_socket_mode_slash_command(
    slack: SlackDouble, commands: StubCommands, make_frontend: FrontendFactory
) -> None:
    frontend = await make_frontend(mode="socket")
    assert frontend.connected and frontend.http_port is None
    await asyncio.wait_for(slack.socket_open.wait(), 5)
    payload = {
        "command": "/jobs",
        "text": "subscribe dm nerf",
        "user_id": "U111",
        "channel_id": "D999",
        "team_id": "T1",
        "response_url": slack.response_url(),
        "trigger_id": "1.2.3",
    }
    await slack.push(
        {
            "envelope_id": "e1",
            "type": "slash_commands",
            "accepts_response_payload": True,
            "payload": payload,
        }
    )
    ack = await asyncio.wait_for(slack.socket_acks.get(), 5)
    assert ack["envelope_id"] == "e1"
    await asyncio.wait_for(slack.replied.wait(), 5)
    ((caller, text),) = commands.calls
    assert (caller.user_id, caller.channel_id, text) == ("U111", "D999", "subscribe dm nerf")
    assert slack.calls_to("apps.connections.open"), "the socket URL came from api_base_url"


async def test_a_bad_token_at_start_is_one_log_line_then_retried(
    slack: SlackDouble, make_frontend: FrontendFactory, caplog: pytest.LogCaptureFixture
) -> None:
    slack.bot_token = "xoxb-the-right-one"
    with caplog.at_level(logging.WARNING, logger="bot.chat.slack"):
        frontend = await make_frontend(token="xoxb-revoked-secret")
    assert not frontend.connected and frontend.http_port is None
    (record,) = [r for r in caplog.records if r.name == "bot.chat.slack"]
    assert "invalid_auth" in record.getMessage() and "\n" not in record.getMessage()
    assert "xoxb-revoked-secret" not in caplog.text
    slack.bot_token = "xoxb-revoked-secret"  # the operator fixed it
    for _ in range(200):
        if frontend.connected:
            break
        await asyncio.sleep(0.01)
    assert frontend.connected and frontend.http_port


async def test_a_socket_mode_app_token_problem_does_not_raise(
    slack: SlackDouble, make_frontend: FrontendFactory, caplog: pytest.LogCaptureFixture
) -> None:
    slack.app_token = "xapp-another"
    with caplog.at_level(logging.WARNING, logger="bot.chat.slack"):
        frontend = await make_frontend(mode="socket")
    assert not frontend.connected
    assert "invalid_auth" in caplog.text and APP_TOKEN not in caplog.text


@pytest.mark.parametrize(
    ("mode", "missing"), [("http", "SLACK_SIGNING_SECRET"), ("socket", "SLACK_APP_TOKEN")]
)
def test_missing_secret_is_a_config_error(mode: str, missing: str) -> None:
    settings = SlackSettings(mode=mode)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=missing):
        SlackFrontend(settings, StubCommands(), bot_token=BOT_TOKEN)


# ---------------------------------------------------------------- alerts


class Sleeps:
    def __init__(self) -> None:
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


def sender_for(
    slack: SlackDouble, token: str = BOT_TOKEN, sleep: Sleeps | None = None
) -> SlackSender:
    client = make_web_client(token, settings_for(slack), sleep=sleep or Sleeps())
    return SlackSender(client)


async def test_new_posting_is_posted_with_blocks_and_fallback(slack: SlackDouble) -> None:
    alert = alert_for()
    ref = await sender_for(slack).send(alert)
    (call,) = slack.accepted("chat.postMessage")
    payload = slack_payload(alert)
    assert call.args["channel"] == "C123"
    assert call.args["text"] == payload["text"] and "Research Scientist" in call.args["text"]
    assert call.args["blocks"] == payload["blocks"]
    assert call.args["unfurl_links"] is False and "thread_ts" not in call.args
    assert ref == "C123:1700000000.000001"


async def test_user_target_posts_to_the_dm_and_remembers_its_channel(slack: SlackDouble) -> None:
    ref = await sender_for(slack).send(alert_for(target="slack:U42"))
    assert slack.accepted("chat.postMessage")[0].args["channel"] == "U42"
    assert ref is not None and ref.startswith("D42:")


async def test_changed_posting_replies_in_the_original_thread(slack: SlackDouble) -> None:
    change = FieldChange("title", "Research Scientist", "Senior Research Scientist")
    ref = await sender_for(slack).send(
        alert_for(ChangeKind.CHANGED, fields=(change,)), "C123:1699999999.000100"
    )
    (call,) = slack.accepted("chat.postMessage")
    assert (call.args["channel"], call.args["thread_ts"]) == ("C123", "1699999999.000100")
    assert not slack.calls_to("chat.update")
    assert ref == "C123:1700000000.000001"


async def test_a_follow_up_to_a_deleted_original_is_posted_on_its_own(
    slack: SlackDouble,
) -> None:
    slack.script("chat.postMessage", error("thread_not_found"))
    change = FieldChange("title", "Research Scientist", "Senior Research Scientist")
    ref = await sender_for(slack).send(
        alert_for(ChangeKind.CHANGED, fields=(change,)), "C123:1699999999.000100"
    )
    (call,) = slack.accepted("chat.postMessage")
    assert call.args["channel"] == "C123" and "thread_ts" not in call.args
    assert ref is not None and ref.startswith("C123:")


async def test_closed_posting_marks_the_original_and_replies_in_its_thread(
    slack: SlackDouble,
) -> None:
    closed = alert_for(ChangeKind.CLOSED)
    await sender_for(slack).send(closed, "D42:1699999999.000100")
    assert [call.method for call in slack.calls] == ["chat.update", "chat.postMessage"]
    update, reply = slack.calls
    assert (update.args["channel"], update.args["ts"]) == ("D42", "1699999999.000100")
    assert update.args["blocks"] == slack_payload(closed)["blocks"]
    assert "Closed" in update.args["blocks"][0]["text"]["text"]
    assert reply.args["thread_ts"] == "1699999999.000100"


async def test_an_original_that_cannot_be_edited_still_gets_the_reply(slack: SlackDouble) -> None:
    slack.script("chat.update", error("message_not_found"))
    await sender_for(slack).send(alert_for(ChangeKind.CLOSED), "C123:1699999999.000100")
    assert len(slack.accepted("chat.postMessage")) == 1


async def test_a_rate_limited_edit_posts_nothing_yet(slack: SlackDouble) -> None:
    slack.script("chat.update", rate_limited(60))
    with pytest.raises(DeliveryError) as raised:
        await sender_for(slack).send(alert_for(ChangeKind.CLOSED), "C123:1699999999.000100")
    assert raised.value.retryable and raised.value.retry_after == 60
    assert not slack.calls_to("chat.postMessage"), "the retry must not post a second reply"


async def test_not_in_channel_is_permanent_with_an_invite_hint(slack: SlackDouble) -> None:
    slack.script("chat.postMessage", error("not_in_channel"))
    with pytest.raises(DeliveryError) as raised:
        await sender_for(slack).send(alert_for())
    assert not raised.value.retryable and not raised.value.target_down
    assert str(raised.value) == "slack: the bot is not in channel C123: /invite @careerbot there"


@pytest.mark.parametrize(
    ("scripted", "base_url"),
    [
        pytest.param(None, None, id="invalid_auth"),  # the sender's token is not the double's
        pytest.param(Canned({"ok": False}, 503), None, id="http-503"),
        pytest.param(None, "http://127.0.0.1:1/api/", id="unreachable"),
    ],
)
async def test_platform_problems_hold_the_target(
    slack: SlackDouble, scripted: Canned | None, base_url: str | None
) -> None:
    token = "xoxb-revoked-secret" if scripted is None and base_url is None else BOT_TOKEN
    if scripted is not None:
        slack.script("chat.postMessage", scripted)
    settings = settings_for(slack, **({"api_base_url": base_url} if base_url else {}))
    sender = SlackSender(make_web_client(token, settings, sleep=Sleeps()))
    with pytest.raises(DeliveryError) as raised:
        await sender.send(alert_for())
    assert raised.value.target_down and raised.value.retryable
    assert "xoxb-revoked-secret" not in str(raised.value)


async def test_limits_hold_for_huge_postings(slack: SlackDouble) -> None:
    huge = Posting(
        "src",
        "big",
        "Staff Scientist " * 40,
        company="Acme " * 100,
        locations=tuple(f"City number {n}, Country {n}" for n in range(60)),
        url="https://jobs.example/big",
        description="radiance " * 12_000,  # about 100 KB
    )
    for kind in (ChangeKind.NEW, ChangeKind.CHANGED):
        fields = tuple(FieldChange(f"field{n}", "x" * 5000, "y" * 5000) for n in range(20))
        await sender_for(slack).send(alert_for(kind, posting=huge, fields=fields))
    posted = slack.accepted("chat.postMessage")
    assert len(posted) == 2
    for call in posted:
        assert limit_problems(call.args) == []
        assert len(call.args["blocks"]) <= 50
        assert all(len(b["text"]["text"]) <= 3000 for b in call.args["blocks"] if "text" in b)
        assert len(call.args["text"]) <= 40_000


# ---------------------------------------------------------------- with the delivery worker


async def drain(store: Store, sender: Sender, clock: FakeClock) -> int:
    # No RateLimit here: aiolimiter paces in real time, which a fake clock cannot skip.
    senders: dict[str, tuple[Sender, RateLimit | None]] = {"slack:C123": (sender, None)}
    worker = DeliveryWorker(
        store, senders.get, clock=clock, sleep=clock.sleep, rng=random.Random(1)
    )
    return await worker.drain(deadline=clock.now + 120)


async def test_an_alerts_429_goes_to_the_worker_however_short(
    slack: SlackDouble, store: Store
) -> None:
    """The worker must see it: the channel's allowance is spent, so the next alert waits."""
    clock, sdk_sleeps = FakeClock(), Sleeps()
    slack.script("chat.postMessage", rate_limited(1))
    await queue_alert(store, "slack:C123", POSTING, clock.now, "nerf")
    assert await drain(store, sender_for(slack, sleep=sdk_sleeps), clock) == 1
    assert len(slack.calls_to("chat.postMessage")) == 2
    assert len(slack.accepted("chat.postMessage")) == 1
    assert sdk_sleeps.slept == [], "not waited out inside the SDK"
    assert 1 <= clock.slept[0] <= 1.25, "the worker honoured Retry-After"
    counts = await store.outbox_counts()
    assert (counts.pending, counts.sent, counts.dead) == (0, 1, 0)


async def test_other_calls_wait_out_a_short_429_inside_the_sdk(slack: SlackDouble) -> None:
    sdk_sleeps = Sleeps()
    slack.script("users.info", rate_limited(1))
    client = make_web_client(BOT_TOKEN, settings_for(slack), sleep=sdk_sleeps)
    await client.users_info(user="U1")
    assert len(slack.calls_to("users.info")) == 2
    assert len(sdk_sleeps.slept) == 1 and 1 <= sdk_sleeps.slept[0] <= 1.25


async def test_long_429_goes_back_to_the_worker_and_is_delivered_once(
    slack: SlackDouble, store: Store
) -> None:
    clock, sdk_sleeps = FakeClock(), Sleeps()
    slack.script("chat.postMessage", rate_limited(30))
    await queue_alert(store, "slack:C123", POSTING, clock.now, "nerf")
    assert await drain(store, sender_for(slack, sleep=sdk_sleeps), clock) == 1
    assert sdk_sleeps.slept == [], "a 30 s wait is not spent inside the SDK"
    assert 30 <= clock.slept[0] <= 30.25, "the worker honoured Retry-After"
    assert len(slack.accepted("chat.postMessage")) == 1
    counts = await store.outbox_counts()
    assert (counts.sent, counts.dead) == (1, 0)


async def test_not_in_channel_is_dead_lettered_without_retries(
    slack: SlackDouble, store: Store
) -> None:
    clock = FakeClock()
    slack.script("chat.postMessage", error("not_in_channel"))
    await queue_alert(store, "slack:C123", POSTING, clock.now, "nerf")
    assert await drain(store, sender_for(slack), clock) == 0
    assert len(slack.calls_to("chat.postMessage")) == 1
    counts = await store.outbox_counts()
    assert (counts.pending, counts.sent, counts.dead) == (0, 0, 1)
