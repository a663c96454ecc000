from __future__ import annotations

import asyncio
import itertools
import random

import httpx
import pytest
from fakes import FakeClock, queue_alert
from loopback import Reply, serve

from bot.chat.webhook import DiscordWebhookSender, SlackWebhookSender
from bot.delivery import BACKOFF_CAP, DeliveryWorker, RateLimit, Sender, backoff_delay
from bot.diff import diff
from bot.errors import DeliveryError
from bot.fetch import parse_retry_after
from bot.models import Alert, Change, ChangeKind, Posting, Subscription
from bot.store import Match, Store

POSTING = Posting(
    "src", "7", "Research Scientist @everyone", company="Acme", url="https://jobs.example/7"
)

ALERT = Alert(
    Change(ChangeKind.NEW, POSTING), Subscription(1, "webhook:lab", "x"), "2024-01-01T00:00:00Z"
)


def worker_for(
    store: Store, target: str, sender: Sender, clock: FakeClock, max_attempts: int = 4
) -> DeliveryWorker:
    senders: dict[str, tuple[Sender, RateLimit | None]] = {target: (sender, None)}
    return DeliveryWorker(
        store,
        senders.get,
        max_attempts=max_attempts,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(1),
    )


async def test_slack_webhook_429_with_retry_after_is_delivered_exactly_once(store: Store) -> None:
    clock = FakeClock()
    async with serve() as server, httpx.AsyncClient() as client:
        server.set(
            "/hook",
            [
                Reply(429, "rate_limited", {"Retry-After": "7"}),
                Reply(200, "ok"),
            ],
        )
        await queue_alert(store, "webhook:lab", POSTING, clock.now, "scientist")
        worker = worker_for(
            store, "webhook:lab", SlackWebhookSender(client, server.url("/hook")), clock
        )
        delivered = await worker.drain(deadline=clock.now + 60)
    assert delivered == 1
    assert len(server.requests) == 2
    assert 7 <= clock.slept[0] <= 7.25, "waited what Retry-After asked"
    first, second = (r.json() for r in server.requests)
    assert first == second
    assert "blocks" in second and second["text"]
    assert "<!everyone>" not in second["text"]
    counts = await store.outbox_counts()
    assert (counts.pending, counts.sent, counts.dead) == (0, 1, 0)
    worker_again = worker_for(
        store, "webhook:lab", SlackWebhookSender(client, "http://unused"), clock
    )
    assert await worker_again.drain(deadline=clock.now + 60) == 0


async def test_discord_webhook_waits_for_the_message_and_allows_no_mentions(store: Store) -> None:
    clock = FakeClock()
    async with serve() as server, httpx.AsyncClient() as client:
        server.set("/api/webhooks/1/tok", Reply(200, '{"id": "1234567890"}'))
        sender = DiscordWebhookSender(client, server.url("/api/webhooks/1/tok"))
        await queue_alert(store, "webhook:team", POSTING, clock.now, "scientist")
        assert await worker_for(store, "webhook:team", sender, clock).drain(clock.now + 1) == 1
    (request,) = server.requests
    assert request.path_qs == "/api/webhooks/1/tok?wait=true"
    payload = request.json()
    assert payload["allowed_mentions"] == {"parse": []}
    assert payload["embeds"][0]["url"] == "https://jobs.example/7"


@pytest.mark.parametrize(
    ("replies", "sent", "dead"),
    [
        ([Reply(503), Reply(502), Reply(200, "ok")], 1, 0),  # transient, then fine
        ([Reply(404, "no_service")], 0, 1),  # a deleted webhook is permanent
        ([Reply(400, "invalid_payload")], 0, 1),
        ([Reply(500)], 0, 1),  # never recovers: dead after max attempts
    ],
)
async def test_retry_and_dead_letter(
    store: Store, replies: list[Reply], sent: int, dead: int
) -> None:
    clock = FakeClock()
    async with serve() as server, httpx.AsyncClient() as client:
        server.set("/hook", replies)
        await queue_alert(store, "webhook:lab", POSTING, clock.now, "scientist")
        worker = worker_for(
            store, "webhook:lab", SlackWebhookSender(client, server.url("/hook")), clock
        )
        await worker.drain(deadline=clock.now + 10 * BACKOFF_CAP)
    counts = await store.outbox_counts()
    assert (counts.sent, counts.dead, counts.pending) == (sent, dead, 0)


async def test_errors_never_show_the_webhook_url(store: Store) -> None:
    secret_url = "http://127.0.0.1:9/services/T000/B000/very-secret-token"
    async with httpx.AsyncClient() as client:
        sender = SlackWebhookSender(client, secret_url)
        with pytest.raises(DeliveryError) as caught:
            await sender.send(ALERT)
    assert "very-secret-token" not in str(caught.value)
    assert caught.value.retryable
    assert "very-secret-token" not in repr(sender)


async def test_unavailable_target_backs_off_then_dead_letters(store: Store) -> None:
    clock = FakeClock()
    await queue_alert(store, "slack:C123", POSTING, clock.now, "scientist")
    worker = DeliveryWorker(
        store, lambda target: None, clock=clock, sleep=clock.sleep, max_attempts=3
    )
    assert await worker.drain(deadline=clock.now + 10 * BACKOFF_CAP) == 0
    counts = await store.outbox_counts()
    assert (counts.pending, counts.dead) == (0, 1)
    assert len(clock.slept) == 2, "two backed-off retries before the dead letter"


async def test_a_crashing_sender_dead_letters_the_alert_and_frees_the_target(store: Store) -> None:
    class Broken:
        async def send(self, alert: Alert, original: str | None = None) -> str | None:
            raise ValueError("bug")

    clock = FakeClock()
    await queue_alert(store, "webhook:lab", POSTING, clock.now, "scientist")
    await queue_alert(store, "webhook:lab", POSTING, clock.now, "scientist")
    worker = worker_for(store, "webhook:lab", Broken(), clock)
    await worker.drain(deadline=clock.now + 60)
    counts = await store.outbox_counts()
    assert (counts.pending, counts.dead) == (0, 2)


async def test_retry_after_holds_every_alert_of_the_target(store: Store) -> None:
    clock = FakeClock()
    async with serve() as server, httpx.AsyncClient() as client:
        server.set("/hook", [Reply(429, "slow", {"Retry-After": "30"}), Reply(200, "ok")])
        for _ in range(5):
            await queue_alert(store, "webhook:lab", POSTING, clock.now, "scientist")
        sender = SlackWebhookSender(client, server.url("/hook"))
        worker = worker_for(store, "webhook:lab", sender, clock)
        assert await worker.deliver_due() == 0
        assert await worker.deliver_due() == 0, "the other four wait too"
        assert len(server.requests) == 1
        assert await worker.drain(deadline=clock.now + 60) == 5
    assert clock.slept and clock.slept[0] >= 30


async def test_paced_target_sends_within_its_rate(store: Store) -> None:
    clock = FakeClock()
    sent_at: list[float] = []

    class Recording:
        async def send(self, alert: Alert, original: str | None = None) -> str | None:
            sent_at.append(asyncio.get_running_loop().time())
            return None

    for _ in range(4):
        await queue_alert(store, "webhook:lab", POSTING, clock.now, "scientist")
    senders: dict[str, tuple[Sender, RateLimit | None]] = {
        "webhook:lab": (Recording(), RateLimit(1, 0.05))
    }
    worker = DeliveryWorker(store, senders.get, clock=clock, sleep=clock.sleep)
    assert await worker.deliver_due() == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(sent_at)]
    assert min(gaps) >= 0.04, "one message per 0.05 s"


async def test_after_a_rate_limit_the_target_resumes_at_its_steady_pace(store: Store) -> None:
    clock = FakeClock()
    sent_at: list[float] = []

    class LimitedOnce:
        async def send(self, alert: Alert, original: str | None = None) -> str | None:
            if not sent_at:
                sent_at.append(-1.0)
                raise DeliveryError("HTTP 429", retryable=True, retry_after=0.0)
            sent_at.append(asyncio.get_running_loop().time())
            return None

    for _ in range(4):
        await queue_alert(store, "webhook:lab", POSTING, clock.now, "scientist")
    senders: dict[str, tuple[Sender, RateLimit | None]] = {
        "webhook:lab": (LimitedOnce(), RateLimit(3, 0.3))  # a burst of 3, then one per 0.1 s
    }
    worker = DeliveryWorker(store, senders.get, clock=clock, sleep=clock.sleep)
    assert await worker.deliver_due() == 0
    clock.now += 1
    assert await worker.deliver_due() == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(sent_at[1:])]
    assert min(gaps) >= 0.08, "no burst into a platform that just said 429"


async def test_a_slowly_paced_target_does_not_hold_up_the_others(store: Store) -> None:
    clock = FakeClock()
    sent: list[tuple[str, float]] = []

    class Recording:
        def __init__(self, name: str) -> None:
            self.name = name

        async def send(self, alert: Alert, original: str | None = None) -> str | None:
            sent.append((self.name, asyncio.get_running_loop().time()))
            return None

    senders: dict[str, tuple[Sender, RateLimit | None]] = {
        "webhook:slow": (Recording("slow"), RateLimit(1, 0.4)),
        "webhook:fast": (Recording("fast"), RateLimit(10, 0.1)),
    }
    for target in ("webhook:slow", "webhook:slow", "webhook:slow", "webhook:fast"):
        await queue_alert(store, target, POSTING, clock.now, "scientist")
    worker = DeliveryWorker(store, senders.get, clock=clock, sleep=clock.sleep)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    async with asyncio.timeout(5):
        while [name for name, _ in sent].count("fast") < 1:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await queue_alert(store, "webhook:fast", POSTING, clock.now, "scientist")
        worker.wake()
        while len(sent) < 5:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    stop.set()
    await running
    last_slow = max(at for name, at in sent if name == "slow")
    last_fast = max(at for name, at in sent if name == "fast")
    assert last_fast < last_slow, "the fast target's new alert did not wait for the slow one"


def test_backoff_grows_exponentially_with_jitter_and_honours_retry_after() -> None:
    rng = random.Random(3)
    delays = [backoff_delay(attempt, None, rng) for attempt in range(1, 12)]
    assert all(2 ** (a) / 2 <= d <= 2 ** (a + 1) for a, d in enumerate(delays[:6], start=1))
    assert max(delays) <= BACKOFF_CAP
    assert 30 <= backoff_delay(1, 30, rng) <= 30.25


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("5", 5.0),
        ("0.5", 0.5),
        (None, None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    from email.utils import parsedate_to_datetime

    now = parsedate_to_datetime("Wed, 21 Oct 2015 07:28:00 GMT").timestamp()
    assert parse_retry_after(header, now=now) == seconds


async def test_platform_outage_holds_alerts_without_using_their_attempts(store: Store) -> None:
    class Down:
        calls = 0

        async def send(self, alert: Alert, original: str | None = None) -> str | None:
            Down.calls += 1
            if Down.calls <= 20:
                raise DeliveryError("token revoked", retryable=False, target_down=True)
            return "ts-1"

    clock = FakeClock()
    await queue_alert(store, "slack:C1", POSTING, clock.now, "scientist")
    worker = worker_for(store, "slack:C1", Down(), clock, max_attempts=3)
    for _ in range(20):
        await worker.deliver_due()
        clock.now = (await store.next_delivery_at()) or clock.now
    (item,) = await store.due_deliveries(clock.now)
    assert item.attempts == 0, "twenty outage answers, no attempt used"
    assert await worker.deliver_due() == 1
    assert (await store.outbox_counts()).sent == 1


async def test_follow_ups_carry_the_original_message(store: Store) -> None:
    from dataclasses import replace

    clock = FakeClock()
    sub = await store.add_subscription(
        "slack:C1", "scientist", ChangeKind, origin="cli", created_by=None, now=clock.now
    )
    await store.apply_poll(
        "src", diff({}, [POSTING], baseline=False, close_after=2), [Match(0, sub)], now=1
    )
    seen: list[str | None] = []

    class Threading:
        async def send(self, alert: Alert, original: str | None = None) -> str | None:
            seen.append(original)
            return f"C1:{len(seen)}"

    worker = worker_for(store, "slack:C1", Threading(), clock)
    await worker.deliver_due()
    edited = replace(POSTING, title="Senior Research Scientist")
    stored = await store.stored_postings("src")
    await store.apply_poll(
        "src", diff(stored, [edited], baseline=False, close_after=2), [Match(0, sub)], now=2
    )
    await worker.deliver_due()
    assert seen == [None, "C1:1"]
