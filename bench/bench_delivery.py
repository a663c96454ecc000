"""Delivery throughput against local doubles that enforce each platform's rate limit.

The real ``DeliveryWorker`` drains a real outbox through the real senders, wired as
``careerbot`` wires them (``fixed_senders`` for incoming webhooks, ``one_shot_senders``
for the Slack and Discord bots), to one loopback double that enforces the limit the
code assumes for each target and answers 429 with Retry-After when it is exceeded:

    Slack incoming webhook   1 message/s              bot.app.SLACK_WEBHOOK_RATE
    Discord incoming webhook burst 5, then 1 per 2 s  bot.app.DISCORD_WEBHOOK_RATE
    Slack bot channel        1 message/s              bot.chat.slack.RATE
    Discord bot channel      burst 5, then 1/s        bot.chat.discord_sender.RATE

Each limit is a token bucket on arrival, with 50 ms of tolerance for network jitter.
Three scenarios run side by side for WINDOW seconds, each with its own webhooks and
channels: one worker per target with the platform's limit unused; the same with the
limit just used up (say, by a restart), so the first request is refused; and all four
targets on one worker, as in a deployment that has all four. Target: at least 90 % of
the messages the platform allowed in the window, and no 429 after the first.

Run: .venv/bin/python bench/bench_delivery.py
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import socket
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from aiohttp import web

from bot.app import DISCORD_WEBHOOK_RATE, SLACK_WEBHOOK_RATE, fixed_senders
from bot.chat import discord_sender, slack
from bot.chat.platforms import one_shot_senders
from bot.config import Config, DiscordSettings, Secrets, SlackSettings, WebhookConfig
from bot.delivery import DeliveryWorker, RateLimit, Sender
from bot.diff import diff
from bot.fetch import make_client
from bot.models import ChangeKind, Posting
from bot.store import Match, Store

WINDOW = 30.0
ALERTS_PER_TARGET = 60  # more than any target can send in the window
JITTER = 0.050
SLACK_TOKEN = "xoxb-bench"
DISCORD_TOKEN = "bench-discord-token"
BOT_USER = {"id": "1", "username": "careerbot", "discriminator": "0", "avatar": None, "bot": True}


# --- The double ----------------------------------------------------------------------------


@dataclass
class Bucket:
    """A token bucket, full or empty at the first request; ``arrivals`` are the
    requests it accepted."""

    limit: RateLimit
    full: bool = True
    tokens: float | None = None
    updated: float = 0.0
    first_request: float = 0.0
    arrivals: list[float] = field(default_factory=list)
    refused: int = 0

    @property
    def rate(self) -> float:
        return self.limit.messages / self.limit.per_seconds

    def take(self, now: float) -> float | None:
        """None when accepted, else the seconds until a token is there."""
        if self.tokens is None:
            self.tokens = self.limit.messages if self.full else 0.0
            self.first_request = now
        else:
            elapsed = now - self.updated
            self.tokens = min(self.limit.messages, self.tokens + elapsed * self.rate)
        self.updated = now
        if self.tokens >= 1 - JITTER * self.rate:
            self.tokens -= 1
            self.arrivals.append(now)
            return None
        self.refused += 1
        return (1 - self.tokens) / self.rate

    def allowed(self, until: float) -> int:
        """How many requests the platform would have accepted by ``until``."""
        burst = self.limit.messages if self.full else 0
        return int(burst + math.floor((until - self.first_request) * self.rate + 1e-9))


class Double:
    """Slack and Discord, incoming webhooks and bot APIs, in one aiohttp app."""

    def __init__(self) -> None:
        self.buckets: dict[str, Bucket] = {}
        self.starts_empty: set[str] = set()  # bucket keys used up before the run
        self._ids = itertools.count(1)
        self.base = ""

    def bucket(self, key: str, limit: RateLimit) -> Bucket:
        return self.buckets.setdefault(key, Bucket(limit, full=key not in self.starts_empty))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/slack-hook/{hook}", self._slack_hook)
        app.router.add_post("/discord-hook/{hook}", self._discord_hook)
        app.router.add_post("/slack/api/chat.postMessage", self._slack_post)
        app.router.add_get("/discord/api/users/@me", self._discord_me)
        app.router.add_post("/discord/api/channels/{channel}/messages", self._discord_post)
        return app

    async def _slack_hook(self, request: web.Request) -> web.Response:
        await request.read()
        wait = self.bucket(request.path, SLACK_WEBHOOK_RATE).take(time.monotonic())
        if wait is not None:
            return web.Response(status=429, text="rate_limited", headers=_slack_retry(wait))
        return web.Response(text="ok")

    async def _discord_hook(self, request: web.Request) -> web.Response:
        body = await request.json()
        bucket = self.bucket(request.path, DISCORD_WEBHOOK_RATE)
        wait = bucket.take(time.monotonic())
        if wait is not None:
            return _discord_limited(wait, bucket)
        return _json(self._message(body), headers=_discord_headers(bucket))

    async def _slack_post(self, request: web.Request) -> web.Response:
        form = dict(await request.post()) or await request.json()
        channel = str(form.get("channel"))
        wait = self.bucket(f"slack:{channel}", slack.RATE).take(time.monotonic())
        if wait is not None:
            body = {"ok": False, "error": "ratelimited"}
            return web.json_response(body, status=429, headers=_slack_retry(wait))
        return web.json_response({"ok": True, "channel": channel, "ts": f"{next(self._ids)}.0"})

    async def _discord_me(self, request: web.Request) -> web.Response:
        return _json(BOT_USER)

    async def _discord_post(self, request: web.Request) -> web.Response:
        body = await request.json()
        bucket = self.bucket(f"discord:{request.match_info['channel']}", discord_sender.RATE)
        wait = bucket.take(time.monotonic())
        if wait is not None:
            return _discord_limited(wait, bucket)
        message = self._message(body) | {"channel_id": request.match_info["channel"]}
        return _json(message, headers=_discord_headers(bucket))

    def _message(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": str(next(self._ids)),
            "channel_id": "1",
            "type": 0,
            "content": body.get("content") or "",
            "embeds": body.get("embeds") or [],
            "author": BOT_USER,
            "timestamp": "2024-05-09T10:00:00+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "pinned": False,
        }


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON as Discord sends it: discord.py reads a body as JSON only when the
    Content-Type is exactly ``application/json``."""
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


def _slack_retry(wait: float) -> dict[str, str]:
    return {"Retry-After": str(math.ceil(wait))}


def _discord_headers(bucket: Bucket) -> dict[str, str]:
    """Discord's bucket headers, so that discord.py paces itself as it does there."""
    remaining = math.floor(bucket.tokens)
    reset_after = 0.0 if remaining else (1 - bucket.tokens) / bucket.rate
    return {
        "X-RateLimit-Limit": str(int(bucket.limit.messages)),
        "X-RateLimit-Remaining": str(max(remaining, 0)),
        "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        "X-RateLimit-Bucket": "messages",
    }


def _discord_limited(wait: float, bucket: Bucket) -> web.Response:
    body = {"message": "You are being rate limited.", "retry_after": wait, "global": False}
    headers = _discord_headers(bucket) | {"Retry-After": str(math.ceil(wait)), "Via": "1.1 google"}
    return _json(body, status=429, headers=headers)


@asynccontextmanager
async def serving(double: Double) -> AsyncIterator[None]:
    runner = web.AppRunner(double.app(), access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    double.base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        yield
    finally:
        await runner.cleanup()


# --- The outbox and the workers --------------------------------------------------------------


async def queued_store(path: Path, targets: list[str]) -> Store:
    """A store whose outbox holds ALERTS_PER_TARGET alerts per target, interleaved
    as one poll queues them (change by change, every subscription)."""
    store = await Store.open(path)
    now = time.time()
    subscriptions = [
        await store.add_subscription(
            target, "research", [ChangeKind.NEW], origin="config", created_by=None, now=now
        )
        for target in targets
    ]
    await store.register_sources([("bench", "greenhouse", "file:bench.json")])
    postings = [
        Posting(
            source="bench",
            id=str(n),
            title=f"Research Scientist {n}",
            company="Acme Labs",
            locations=("London, UK",),
            url=f"https://jobs.example.com/{n}",
            description="Neural rendering research.",
        )
        for n in range(ALERTS_PER_TARGET)
    ]
    result = diff({}, postings, baseline=False, close_after=2)
    matches = [Match(i, s) for i in range(len(result.changes)) for s in subscriptions]
    await store.apply_poll("bench", result, matches, now)
    return store


@dataclass(frozen=True)
class Scenario:
    name: str  # names its webhooks and environment variables
    label: str
    one_worker: bool  # all targets on one worker, or one worker each
    starts_empty: bool  # the platform's limit was used up just before
    slack_channel: str
    discord_channel: int


SCENARIOS = (
    Scenario("fresh", "one worker per target, limits unused", False, False, "C0FRESH", 111),
    Scenario("drained", "one worker per target, limits just used up", False, True, "C0USED", 222),
    Scenario("shared", "all four targets on one worker, limits unused", True, False, "C0ALL", 333),
)


def wiring(double: Double, scenario: Scenario) -> tuple[Config, dict[str, str], dict[str, str]]:
    """The config and environment of a scenario, and its targets with their buckets."""
    env = scenario.name.upper()
    config = Config(
        webhooks={
            f"{scenario.name}-slack": WebhookConfig(kind="slack", url_env=f"{env}_SLACK_URL"),
            f"{scenario.name}-discord": WebhookConfig(kind="discord", url_env=f"{env}_DISCORD_URL"),
        },
        slack=SlackSettings(api_base_url=f"{double.base}/slack/api/"),
        discord=DiscordSettings(api_base=f"{double.base}/discord/api"),
    )
    environ = {
        f"{env}_SLACK_URL": f"{double.base}/slack-hook/{scenario.name}",
        f"{env}_DISCORD_URL": f"{double.base}/discord-hook/{scenario.name}",
    }
    buckets = {
        f"webhook:{scenario.name}-slack": f"/slack-hook/{scenario.name}",
        f"webhook:{scenario.name}-discord": f"/discord-hook/{scenario.name}",
        f"slack:{scenario.slack_channel}": f"slack:{scenario.slack_channel}",
        f"discord:{scenario.discord_channel}": f"discord:{scenario.discord_channel}",
    }
    if scenario.starts_empty:
        double.starts_empty.update(buckets.values())
    return config, environ, buckets


async def drain(workers: list[DeliveryWorker], seconds: float) -> float:
    """Run the workers for ``seconds``; returns when they were told to stop."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker.run(stop)) for worker in workers]
    await asyncio.sleep(seconds)
    stop.set()
    ended = time.monotonic()
    await asyncio.gather(*tasks)
    return ended


def report(double: Double, scenario: Scenario, buckets: dict[str, str], ended: float) -> None:
    print(f"{scenario.label}:")
    for target, key in buckets.items():
        bucket = double.buckets.get(key)
        if bucket is None:
            print(f"  {target:<24} nothing sent")
            continue
        window = ended - bucket.first_request
        allowed = bucket.allowed(ended)
        sent = sum(1 for arrival in bucket.arrivals if arrival <= ended)
        verdict = "met" if sent >= 0.9 * allowed and bucket.refused <= 1 else "MISSED"
        print(
            f"  {target:<24} {sent:3d} of {allowed:3d} allowed in {window:4.1f} s"
            f" ({sent / window:4.2f}/s of {allowed / window:4.2f}/s, {sent / allowed:4.0%}),"
            f" {bucket.refused:2d} x 429   target >= 90 %, <= 1 x 429: {verdict}"
        )


async def bench(work: Path) -> None:
    double = Double()
    secrets = Secrets.from_env({"SLACK_BOT_TOKEN": SLACK_TOKEN, "DISCORD_TOKEN": DISCORD_TOKEN})
    async with serving(double), make_client() as client, AsyncExitStack() as stack:
        workers: list[DeliveryWorker] = []
        wired: list[tuple[Scenario, dict[str, str]]] = []
        for scenario in SCENARIOS:
            config, environ, buckets = wiring(double, scenario)
            wired.append((scenario, buckets))
            chat = await stack.enter_async_context(one_shot_senders(config, secrets))
            fixed = fixed_senders(config, client, environ)

            def sender_for(
                target: str, fixed: Any = fixed, chat: Any = chat
            ) -> tuple[Sender, RateLimit | None] | None:
                found: tuple[Sender, RateLimit | None] | None = fixed.get(target)
                return found or chat.sender_for(target)

            groups = [list(buckets)] if scenario.one_worker else [[t] for t in buckets]
            for number, group in enumerate(groups):
                store = await queued_store(work / f"{scenario.name}{number}.sqlite3", group)
                stack.push_async_callback(store.close)
                workers.append(DeliveryWorker(store, sender_for))
        print(
            f"{ALERTS_PER_TARGET} alerts queued per target; the workers run {WINDOW:.0f} s;"
            f" the double's buckets allow {JITTER * 1000:.0f} ms of network jitter"
        )
        ended = await drain(workers, WINDOW)
    for scenario, buckets in wired:
        report(double, scenario, buckets, ended)


def main() -> None:
    with TemporaryDirectory(prefix="careerbot-bench-") as tmp:
        asyncio.run(bench(Path(tmp)))


if __name__ == "__main__":
    main()
