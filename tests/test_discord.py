"""The Discord front-end: the real discord.py client against a local Discord double."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.chat.discord_bot import FAILED_REPLY, REPLY_CHARS, DiscordFrontend
from bot.chat.discord_sender import RATE, DiscordSender, rest_sender
from bot.commands import Caller
from bot.config import DiscordSettings
from bot.errors import DeliveryError
from bot.models import Alert, Change, ChangeKind, FieldChange, Posting, Subscription
from bot.render import discord_payload
from tests.discord_double import (
    ADMIN_ROLE_ID,
    CHANNEL_ID,
    GUILD_ID,
    MEMBER_ROLE_ID,
    USER_ID,
    DiscordDouble,
    embed_problems,
    error,
    rate_limited,
    serve_discord,
)

MESSAGES = f"/channels/{CHANNEL_ID}/messages"
MANAGE_GUILD = 1 << 5
ADMINISTRATOR = 1 << 3
SEND_MESSAGES = 1 << 11


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(autouse=True)
def _restore_endpoints() -> Iterator[None]:
    """discord.py keeps its endpoints in class attributes; leave them as found."""
    base, gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    yield
    Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = base, gateway


@pytest.fixture
async def double() -> AsyncIterator[DiscordDouble]:
    async with serve_discord() as served:
        yield served


def settings_for(
    double: DiscordDouble, guild_ids: tuple[int, ...] = (GUILD_ID,)
) -> DiscordSettings:
    return DiscordSettings(
        guild_ids=guild_ids,
        api_base=double.api_base,
        gateway_url=double.gateway_url,
        admin_role_ids=(ADMIN_ROLE_ID,),
    )


class StubRunner:
    """Stands in for ``Commands.run``: records calls; ``source …`` reports the admin check."""

    def __init__(self, reply: str = "Subscribed as #1.") -> None:
        self.reply = reply
        self.calls: list[tuple[Caller, str]] = []
        self.fail = False

    async def __call__(self, caller: Caller, text: str) -> str:
        self.calls.append((caller, text))
        if self.fail:
            raise RuntimeError("boom")
        if text.startswith("source"):
            return f"admin={await caller.is_admin()}"
        return self.reply


@asynccontextmanager
async def running(
    double: DiscordDouble,
    runner: StubRunner,
    *,
    guild_ids: tuple[int, ...] = (GUILD_ID,),
    token: str | None = None,
    connected: bool = True,
) -> AsyncIterator[DiscordFrontend]:
    frontend = DiscordFrontend(
        settings_for(double, guild_ids), token or double.token, runner, retry_delay=0.05
    )
    await frontend.start()
    try:
        if connected:
            await double.wait_until(lambda: double.identifies)
        yield frontend
    finally:
        await frontend.stop()


async def command(double: DiscordDouble, payload: dict[str, Any]) -> tuple[Any, Any]:
    """Dispatch an interaction; wait for its answer; return (callback body, follow-up body)."""
    await double.dispatch("INTERACTION_CREATE", payload)
    await double.wait_until(lambda: double.answers(payload)[1])
    callbacks, followups = double.answers(payload)
    assert len(callbacks) == 1 and len(followups) == 1
    return callbacks[0].body, followups[0].body


@pytest.fixture
async def sender(double: DiscordDouble) -> AsyncIterator[DiscordSender]:
    """A sender logged in to the double over REST only (no gateway)."""
    async with rest_sender(double.api_base, double.token) as logged_in:
        yield logged_in


def make_alert(
    kind: ChangeKind = ChangeKind.NEW,
    target: str = f"discord:{CHANNEL_ID}",
    fields: tuple[FieldChange, ...] = (),
    **posting: Any,
) -> Alert:
    values: dict[str, Any] = {
        "source": "cvpr-2024",
        "id": "p1",
        "title": "Research Scientist, Neural Rendering",
        "company": "Example Labs",
        "locations": ("London, United Kingdom",),
        "salary_min": 90000,
        "salary_max": 120000,
        "salary_currency": "GBP",
        "salary_period": "year",
        "posted_at": "2024-05-09",
        "url": "https://jobs.example.test/1",
        "description": "Work on NeRF and gaussian splatting. @everyone welcome.",
    }
    values.update(posting)
    subscription = Subscription(id=3, target=target, query="nerf OR splatting")
    return Alert(Change(kind, Posting(**values), fields), subscription, "2024-05-09T10:00:00Z")


# ---------------------------------------------------------------- gateway, login and sync


async def test_start_identifies_and_syncs_jobs_to_the_configured_guild(
    double: DiscordDouble,
) -> None:
    async with running(double, StubRunner()):
        await double.wait_until(lambda: double.heartbeats)

    identify = double.identifies[0]
    assert identify["token"] == double.token
    assert identify["intents"] == 1  # guilds only: no privileged intents
    assert double.gateway_queries[0]["v"] == "10"
    assert double.requests("GET", "/users/@me")  # REST went to api_base
    assert list(double.synced) == [GUILD_ID]  # guild sync only, nothing global
    (jobs,) = double.synced[GUILD_ID]
    assert jobs["name"] == "jobs"
    subcommands = {option["name"]: option for option in jobs["options"]}
    assert set(subcommands) == {
        "subscribe", "list", "unsubscribe", "pause", "resume", "preview", "backfill", "why",
        "digest", "quiet", "tz", "sources", "status", "help", "source",
    }  # fmt: skip
    subscribe = {option["name"]: option for option in subcommands["subscribe"]["options"]}
    assert subscribe["query"]["type"] == 3 and subscribe["query"]["required"]
    assert subscribe["dm"]["type"] == 5 and not subscribe["dm"].get("required")
    assert subcommands["unsubscribe"]["options"][0]["name"] == "id"
    assert subcommands["backfill"]["options"][0]["name"] == "id"
    assert subcommands["why"]["options"][0]["name"] == "posting"
    digest = {option["name"]: option for option in subcommands["digest"]["options"]}
    assert digest["id"]["type"] == 4 and digest["id"]["required"]
    assert [c["value"] for c in digest["every"]["choices"]] == ["instant", "daily", "weekly"]
    assert len(digest["day"]["choices"]) == 7 and not digest["day"].get("required")
    assert not digest["time"].get("required")
    assert [(o["name"], o.get("required", False)) for o in subcommands["quiet"]["options"]] == [
        ("hours", False)
    ]
    assert [(o["name"], o.get("required", False)) for o in subcommands["tz"]["options"]] == [
        ("zone", False)
    ]
    assert subcommands["source"]["type"] == 2  # a subcommand group
    source = {option["name"]: option for option in subcommands["source"]["options"]}
    assert set(source) == {"add", "remove", "pause", "resume"}
    add = [(option["name"], option.get("required", False)) for option in source["add"]["options"]]
    assert add == [("name", True), ("type", True), ("url", True), ("interval", False)]


async def test_commands_are_synced_globally_when_no_guild_is_configured(
    double: DiscordDouble,
) -> None:
    async with running(double, StubRunner(), guild_ids=()):
        pass
    assert list(double.synced) == [None]
    assert double.synced[None][0]["name"] == "jobs"


async def test_a_guild_the_bot_is_not_in_is_logged_and_the_bot_still_runs(
    double: DiscordDouble, caplog: pytest.LogCaptureFixture
) -> None:
    elsewhere = GUILD_ID + 1
    runner = StubRunner()
    async with running(double, runner, guild_ids=(elsewhere, GUILD_ID)) as frontend:
        assert frontend.client is not None and not frontend.client.is_closed()
    assert list(double.synced) == [GUILD_ID]
    assert f"could not sync /jobs to guild {elsewhere} (HTTP 403)" in caplog.text


# ---------------------------------------------------------------- interactions


async def test_jobs_subscribe_reaches_the_command_layer_and_is_answered_ephemerally(
    double: DiscordDouble,
) -> None:
    runner = StubRunner("Subscribed #1: nerf. Alerts will appear in this channel.")
    async with running(double, runner):
        payload = double.slash_command("subscribe", options={"query": "nerf"})
        callback, followup = await command(double, payload)

    ((caller, text),) = runner.calls
    assert text == "subscribe nerf"
    assert (caller.platform, caller.user_id, caller.channel_id) == (
        "discord",
        str(USER_ID),
        str(CHANNEL_ID),
    )
    assert callback == {"type": 5, "data": {"flags": 64}}  # deferred, ephemeral, "thinking"
    assert followup["content"] == runner.reply
    assert followup["flags"] == 64
    assert followup["allowed_mentions"] == {"parse": []}


async def test_every_subcommand_becomes_the_command_layers_text(double: DiscordDouble) -> None:
    table: list[tuple[tuple[str, ...], dict[str, str | int | bool], str]] = [
        (("subscribe",), {"query": "nerf", "dm": True}, "subscribe dm nerf"),
        (("subscribe",), {"query": "nerf", "dm": False}, "subscribe nerf"),
        (("list",), {}, "list"),
        (("unsubscribe",), {"id": 3}, "unsubscribe 3"),
        (("pause",), {"target": "all"}, "pause all"),
        (("resume",), {"target": "7"}, "resume 7"),
        (
            ("preview",),
            {"query": '"gaussian splatting" OR nerf'},
            'preview "gaussian splatting" OR nerf',
        ),
        (("backfill",), {"id": 4}, "backfill 4"),
        (("why",), {"posting": "figma:5141321004"}, "why figma:5141321004"),
        (("sources",), {}, "sources"),
        (("status",), {}, "status"),
        (("help",), {}, "help"),
        (("digest",), {"id": 3, "every": "daily", "time": "09:00"}, "digest 3 daily 09:00"),
        (
            ("digest",),
            {"id": 3, "every": "weekly", "day": "mon", "time": "9:30"},
            "digest 3 weekly mon 9:30",
        ),
        (("digest",), {"id": 3, "every": "instant", "time": "09:00"}, "digest 3 instant"),
        (("quiet",), {"hours": "22:00-07:00"}, "quiet 22:00-07:00"),
        (("quiet",), {}, "quiet"),
        (("tz",), {"zone": "Europe/Zurich"}, "tz Europe/Zurich"),
        (("tz",), {}, "tz"),
        (
            ("source", "add"),
            {
                "name": "acme",
                "type": "greenhouse",
                "url": "https://boards.example.test/acme",
                "interval": "1h",
            },
            "source add acme greenhouse https://boards.example.test/acme 1h",
        ),
        (
            ("source", "add"),
            {"name": "acme", "type": "lever", "url": "https://jobs.example.test/acme"},
            "source add acme lever https://jobs.example.test/acme",
        ),
        (("source", "remove"), {"name": "acme"}, "source remove acme"),
        (("source", "pause"), {"name": "acme"}, "source pause acme"),
        (("source", "resume"), {"name": "acme"}, "source resume acme"),
    ]
    runner = StubRunner()
    async with running(double, runner):
        for path, options, _ in table:
            await command(double, double.slash_command(*path, options=options))
    assert [text for _, text in runner.calls] == [text for _, _, text in table]


async def test_long_replies_are_trimmed_and_failures_still_get_an_answer(
    double: DiscordDouble, caplog: pytest.LogCaptureFixture
) -> None:
    runner = StubRunner("x" * 5000)
    async with running(double, runner):
        _, long_reply = await command(double, double.slash_command("status"))
        runner.fail = True
        _, failed = await command(double, double.slash_command("status"))
    assert len(long_reply["content"]) == REPLY_CHARS
    assert failed["content"] == FAILED_REPLY and failed["flags"] == 64
    assert "/jobs status failed" in caplog.text


@pytest.mark.parametrize(
    ("permissions", "roles", "admin"),
    [
        (MANAGE_GUILD, (), True),
        (ADMINISTRATOR, (), True),
        (SEND_MESSAGES, (ADMIN_ROLE_ID,), True),
        (SEND_MESSAGES, (MEMBER_ROLE_ID,), False),
        (0, (), False),
    ],
    ids=["manage-server", "administrator", "admin-role", "other-role", "nothing"],
)
async def test_is_admin_means_manage_server_or_a_configured_role(
    double: DiscordDouble, permissions: int, roles: tuple[int, ...], admin: bool
) -> None:
    runner = StubRunner()
    async with running(double, runner):
        payload = double.slash_command(
            "source", "remove", options={"name": "acme"}, permissions=permissions, roles=roles
        )
        _, followup = await command(double, payload)
    assert followup["content"] == f"admin={admin}"


# ---------------------------------------------------------------- failures of the bot itself


async def test_a_refused_token_is_one_log_line_and_retried_without_crashing(
    double: DiscordDouble, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    runner = StubRunner()
    secret = "revoked-token-value"

    def refusals() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "refused the bot token" in r.getMessage()]

    async with running(double, runner, token=secret, connected=False) as frontend:
        await double.wait_until(lambda: len(refusals()) >= 2)  # retried
        with pytest.raises(DeliveryError) as raised:
            await frontend.sender.send(make_alert())
    assert raised.value.target_down
    assert len(double.requests("GET", "/users/@me")) >= 2
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in refusals())
    assert "check DISCORD_TOKEN" in refusals()[0].getMessage()
    assert secret not in caplog.text
    assert not double.identifies


async def test_an_unreachable_gateway_is_retried_until_it_answers(
    double: DiscordDouble, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    double.gateway_open = False
    runner = StubRunner()
    async with running(double, runner, connected=False):
        await double.wait_until(lambda: "cannot reach Discord" in caplog.text)
        assert not double.identifies
        double.gateway_open = True
        await double.wait_until(lambda: double.identifies)
        _, followup = await command(double, double.slash_command("help"))
    assert followup["content"] == runner.reply
    problems = [r for r in caplog.records if r.name.startswith("bot.") and r.exc_info]
    assert not problems  # one line each, no tracebacks


async def test_stop_lets_a_command_in_progress_answer(double: DiscordDouble) -> None:
    release = asyncio.Event()

    class SlowRunner(StubRunner):
        async def __call__(self, caller: Caller, text: str) -> str:
            self.calls.append((caller, text))
            await release.wait()
            return "Preview: 3 postings match."

    runner = SlowRunner()
    frontend = DiscordFrontend(settings_for(double), double.token, runner)
    await frontend.start()
    await double.wait_until(lambda: double.identifies)
    payload = double.slash_command("preview", options={"query": "nerf"})
    await double.dispatch("INTERACTION_CREATE", payload)
    await double.wait_until(lambda: runner.calls)
    stopping = asyncio.create_task(frontend.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()  # waiting for the command
    release.set()
    await stopping
    _, followups = double.answers(payload)
    assert [call.body["content"] for call in followups] == ["Preview: 3 postings match."]


async def test_stop_closes_the_client_and_its_gateway_connection(double: DiscordDouble) -> None:
    frontend = DiscordFrontend(settings_for(double), double.token, StubRunner())
    await frontend.start()
    await double.wait_until(lambda: double.identifies)
    client = frontend.client
    await frontend.stop()
    assert client is not None and client.is_closed()
    await double.wait_until(lambda: not double.gateway_connections)
    with pytest.raises(DeliveryError) as raised:
        await frontend.sender.send(make_alert())
    assert raised.value.target_down


# ---------------------------------------------------------------- alerts


async def test_sending_the_same_alert_again_posts_it_once(double: DiscordDouble) -> None:
    alert = replace(make_alert(), key="outbox-key-0000000000001")
    async with running(double, StubRunner()) as frontend:
        first = await frontend.sender.send(alert)
        again = await frontend.sender.send(alert)  # e.g. the first answer was lost
    (message,) = double.posted(CHANNEL_ID)
    assert first == again == f"{CHANNEL_ID}:{message['id']}"
    assert all(c.body["enforce_nonce"] is True for c in double.requests("POST", MESSAGES))


async def test_an_alert_reaches_the_channel_as_an_embed_without_mentions(
    double: DiscordDouble,
) -> None:
    alert = make_alert()
    async with running(double, StubRunner()) as frontend:  # the front-end's own session
        ref = await frontend.sender.send(alert)

    (message,) = double.posted(CHANNEL_ID)
    assert ref == f"{CHANNEL_ID}:{message['id']}"
    (call,) = double.requests("POST", MESSAGES)
    expected = discord_payload(alert)
    assert call.body["embeds"] == expected["embeds"]
    assert call.body["content"] == expected["content"]
    assert call.body["allowed_mentions"] == {"parse": []}
    assert call.headers["Authorization"] == f"Bot {double.token}"
    embed = call.body["embeds"][0]
    assert embed["title"] == "New job: Research Scientist, Neural Rendering"
    assert embed["url"] == "https://jobs.example.test/1"
    assert "message_reference" not in call.body
    assert RATE.messages == 5 and RATE.per_seconds == 5


async def test_a_429_is_waited_out_and_the_alert_is_posted_exactly_once(
    double: DiscordDouble, sender: DiscordSender
) -> None:
    double.script("POST", MESSAGES, rate_limited(0.05))
    ref = await sender.send(make_alert())
    assert len(double.requests("POST", MESSAGES)) == 2
    (message,) = double.posted(CHANNEL_ID)
    assert ref == f"{CHANNEL_ID}:{message['id']}"


async def test_a_long_rate_limit_is_handed_to_the_worker_with_its_delay(
    double: DiscordDouble, sender: DiscordSender
) -> None:
    double.script("POST", MESSAGES, rate_limited(120.0))
    with pytest.raises(DeliveryError) as raised:
        await sender.send(make_alert())
    assert raised.value.retryable and not raised.value.target_down
    assert raised.value.retry_after == 120.0
    assert not double.posted(CHANNEL_ID)


async def test_a_429_from_outside_discords_proxy_is_retryable_with_retry_after(
    double: DiscordDouble, sender: DiscordSender
) -> None:
    double.script("POST", MESSAGES, rate_limited(3.0, via=False))
    with pytest.raises(DeliveryError) as raised:
        await sender.send(make_alert())
    assert raised.value.retryable and raised.value.retry_after == 3.0


async def test_missing_permissions_is_final_and_says_what_to_grant(
    double: DiscordDouble, sender: DiscordSender
) -> None:
    double.forbidden_channels.add(CHANNEL_ID)
    with pytest.raises(DeliveryError) as raised:
        await sender.send(make_alert())
    err = raised.value
    assert not err.retryable and not err.target_down
    assert f"the bot cannot post in channel {CHANNEL_ID}" in str(err)
    assert "View Channel + Send Messages + Embed Links" in str(err)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (error(404, 10003, "Unknown Channel"), "does not exist or the bot cannot see it"),
        (error(400, 50035, "Invalid Form Body"), "Discord refused the message"),
        (error(403, 50001, "Missing Access"), "give it View Channel"),
    ],
    ids=["unknown-channel", "invalid-body", "missing-access"],
)
async def test_refusals_are_not_retried(
    double: DiscordDouble, sender: DiscordSender, reply: Any, expected: str
) -> None:
    double.script("POST", MESSAGES, reply, reply)  # an invalid body is tried again, plain
    with pytest.raises(DeliveryError) as raised:
        await sender.send(make_alert())
    assert not raised.value.retryable
    assert expected in str(raised.value)
    assert "HTTP" in str(raised.value) and str(reply.body["code"]) in str(raised.value)


async def test_a_revoked_token_marks_discord_down(
    double: DiscordDouble, sender: DiscordSender
) -> None:
    double.token = "rotated"
    with pytest.raises(DeliveryError) as raised:
        await sender.send(make_alert())
    assert raised.value.target_down
    assert "check DISCORD_TOKEN" in str(raised.value)
    assert "rotated" not in str(raised.value) and "double-bot-token" not in str(raised.value)


async def test_server_errors_and_outages_mark_discord_down(
    double: DiscordDouble, sender: DiscordSender
) -> None:
    double.script("POST", MESSAGES, error(503, 0, "Service Unavailable"))
    with pytest.raises(DeliveryError) as server_error:
        await sender.send(make_alert())
    await double.shutdown()
    with pytest.raises(DeliveryError) as unreachable:
        await sender.send(make_alert())
    assert server_error.value.target_down and "HTTP 503" in str(server_error.value)
    assert unreachable.value.target_down and "unreachable" in str(unreachable.value)


async def test_a_dm_target_opens_the_dm_channel_once_then_posts_there(
    double: DiscordDouble, sender: DiscordSender
) -> None:
    target = f"discord:dm:{USER_ID}"
    first = await sender.send(make_alert(target=target))
    second = await sender.send(make_alert(target=target, id="p2"))

    (opened,) = double.requests("POST", "/users/@me/channels")
    assert opened.body == {"recipient_id": str(USER_ID)}
    assert first and second
    dm_channel = int(first.split(":")[0])
    assert dm_channel != CHANNEL_ID and second.startswith(f"{dm_channel}:")
    assert len(double.posted(dm_channel)) == 2


async def test_a_change_is_a_reply_and_a_closing_also_edits_the_original(
    double: DiscordDouble, sender: DiscordSender
) -> None:
    original = await sender.send(make_alert())
    assert original is not None
    channel_id, message_id = original.split(":")
    changed = make_alert(ChangeKind.CHANGED, fields=(FieldChange("salary_max", 120000, 130000),))
    await sender.send(changed, original)
    await sender.send(make_alert(ChangeKind.CLOSED), original)

    reference = {"message_id": message_id, "channel_id": channel_id, "fail_if_not_exists": False}
    posts = double.requests("POST", MESSAGES)
    assert [call.body.get("message_reference") for call in posts] == [None, reference, reference]
    (edit,) = double.requests("PATCH", f"{MESSAGES}/{message_id}")
    assert edit.body["embeds"][0]["title"].startswith("Closed: ")
    assert edit.body["allowed_mentions"] == {"parse": []}
    assert double.messages[int(message_id)]["embeds"][0]["title"].startswith("Closed: ")


async def test_a_deleted_original_still_delivers_the_closing_once(
    double: DiscordDouble, sender: DiscordSender, caplog: pytest.LogCaptureFixture
) -> None:
    gone = f"{CHANNEL_ID}:123456789"
    ref = await sender.send(make_alert(ChangeKind.CLOSED), gone)
    assert ref is not None and ref != gone
    assert len(double.posted(CHANNEL_ID)) == 1
    assert "could not mark Discord message" in caplog.text


async def test_huge_postings_stay_within_discords_limits(
    double: DiscordDouble, sender: DiscordSender
) -> None:
    alert = make_alert(
        title="Principal Research Scientist " * 40,
        company="Example Labs " * 50,
        locations=tuple(f"Office number {n}, Some Long City Name, Country" for n in range(60)),
        description="Neural rendering. " * 6000,  # about 100 KB
    )
    assert len(alert.change.posting.description or "") > 100_000
    await sender.send(alert)

    (call,) = double.requests("POST", MESSAGES)
    assert embed_problems(call.body) == []
    embed = call.body["embeds"][0]
    assert len(call.body["content"]) <= 2000
    assert len(embed["title"]) <= 256
    assert len(embed.get("description", "")) <= 4096
    assert len(embed["fields"]) <= 25
    assert all(len(field["value"]) <= 1024 for field in embed["fields"])
    assert "more)" in next(f["value"] for f in embed["fields"] if f["name"] == "Locations")


async def test_a_rest_only_sender_with_a_refused_token_holds_alerts(
    double: DiscordDouble, caplog: pytest.LogCaptureFixture
) -> None:
    async with rest_sender(double.api_base, "not-the-token") as refused:
        with pytest.raises(DeliveryError) as raised:
            await refused.send(make_alert())
    assert raised.value.target_down
    assert "check DISCORD_TOKEN" in caplog.text and "not-the-token" not in caplog.text
    assert not double.requests("POST", MESSAGES)


async def test_an_unknown_target_is_refused(sender: DiscordSender) -> None:
    with pytest.raises(DeliveryError) as raised:
        await sender.send(make_alert(target="discord:general"))
    assert not raised.value.retryable
