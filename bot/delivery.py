"""The outbox worker: sends pending alerts, paced per target, with retries.

Each outbox row has an idempotency key per (subscription, posting, change),
so a change is queued at most once per subscription. A row is marked sent
right after the platform accepts it; only a crash between those two steps can
send it again. Targets are served side by side, but a platform that cannot drop
a repeated message itself (anything but Discord's nonce-enforcing bot) gets one
message at a time, sent and recorded before the next: so a crash can repeat at
most one message per such platform.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from aiolimiter import AsyncLimiter

from bot.errors import DeliveryError
from bot.models import Alert, utc_iso
from bot.store import OutboxItem, Store

log = logging.getLogger(__name__)

BACKOFF_BASE = 2.0
BACKOFF_CAP = 900.0
RETRY_AFTER_CAP = 86_400.0


class Sender(Protocol):
    async def send(self, alert: Alert, original: str | None = None) -> str | None:
        """Deliver one alert; return the platform's reference to the message it
        posted, when it gives one. A sender whose platform drops a message repeated
        with the same ``alert.key`` says so with a true ``idempotent`` attribute.

        ``original`` is the reference this sender returned for the first alert of
        the same posting to the same subscription: a sender that can, posts the
        follow-up in that message's thread (and marks the original closed).
        Raises ``DeliveryError`` when it could not be delivered.
        """


@dataclass(frozen=True, slots=True)
class RateLimit:
    messages: float
    per_seconds: float


SenderLookup = Callable[[str], tuple[Sender, RateLimit | None] | None]


def backoff_delay(attempt: int, retry_after: float | None, rng: random.Random) -> float:
    """Seconds before attempt ``attempt + 1``: the platform's word, else jittered exponential."""
    if retry_after is not None and retry_after >= 0:
        return min(retry_after, RETRY_AFTER_CAP) + rng.uniform(0, 0.25)
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)
    return rng.uniform(ceiling / 2, ceiling)


class DeliveryWorker:
    def __init__(
        self,
        store: Store,
        senders: SenderLookup,
        *,
        max_attempts: int = 8,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._senders = senders
        self._max_attempts = max_attempts
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._limiters: dict[str, AsyncLimiter] = {}
        self._target_outages: dict[str, int] = {}  # consecutive "target down" answers
        self._unrecorded_sends: dict[type, asyncio.Lock] = {}  # one per non-idempotent platform
        self._wake = asyncio.Event()
        self._stop: asyncio.Event | None = None

    def wake(self) -> None:
        """Tell the worker new rows may be due (after a poll saved some)."""
        self._wake.set()

    async def deliver_due(self) -> int:
        """One pass over the due rows; returns how many were sent."""
        items = await self._store.due_deliveries(self._clock())
        by_target: dict[str, list[OutboxItem]] = {}
        for item in items:
            by_target.setdefault(item.target, []).append(item)
        sent = await asyncio.gather(*(self._deliver_target(t, i) for t, i in by_target.items()))
        return sum(sent)

    async def drain(self, deadline: float) -> int:
        """Deliver until nothing is due before ``deadline`` (for ``careerbot once``)."""
        total = 0
        while True:
            total += await self.deliver_due()
            upcoming = await self._store.next_delivery_at()
            if upcoming is None or upcoming > deadline:
                return total
            # Every pass either sends, or pushes a row's next attempt into the future.
            await self._sleep(max(0.0, upcoming - self._clock()))

    async def run(self, stop: asyncio.Event, idle: float = 30.0) -> None:
        """Deliver until ``stop`` is set; a send in progress is finished first, and
        no other starts after it."""
        self._stop = stop
        while not stop.is_set():
            try:
                await self.deliver_due()
                upcoming = await self._store.next_delivery_at()
            except Exception:
                log.exception("delivery pass failed; retrying")
                upcoming = None
            wait = idle if upcoming is None else max(0.0, upcoming - self._clock())
            await self._wait(stop, min(wait, idle))

    async def _wait(self, stop: asyncio.Event, seconds: float) -> None:
        self._wake.clear()
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _deliver_target(self, target: str, items: list[OutboxItem]) -> int:
        """Send a target's rows in order; stop at its first retryable failure."""
        found = self._senders(target)
        if found is None:
            unavailable = DeliveryError(f"no sender for {target}", retryable=True)
            await self._failed(items[0], unavailable)
            return 0
        sender, limit = found
        sent = 0
        for item in items:
            if limit is not None:
                await self._limiter(target, limit).acquire()
            if not await self._deliver_one(sender, item):
                break
            sent += 1
        return sent

    async def _deliver_one(self, sender: Sender, item: OutboxItem) -> bool:
        if getattr(sender, "idempotent", False):
            return await self._send_and_record(sender, item)
        lock = self._unrecorded_sends.setdefault(type(sender), asyncio.Lock())
        async with lock:
            return await self._send_and_record(sender, item)

    async def _send_and_record(self, sender: Sender, item: OutboxItem) -> bool:
        """Send one row and record the outcome; False when the target should wait."""
        if self._stop is not None and self._stop.is_set():
            return False  # stopping: no new send starts
        alert = Alert(item.change, item.subscription, utc_iso(item.detected_at), item.key)
        try:
            message_ref = await sender.send(alert, item.original_ref)
        except DeliveryError as err:
            await self._failed(item, err)
            return False
        except Exception as err:  # a bug in a sender must not block its target forever
            log.exception("alert %d to %s: unexpected error", item.id, item.target)
            await self._failed(
                item, DeliveryError(f"internal error: {type(err).__name__}", retryable=False)
            )
            return False
        await self._store.mark_sent(item.id, self._clock(), message_ref)
        self._target_outages.pop(item.target, None)
        return True

    async def _failed(self, item: OutboxItem, err: DeliveryError) -> None:
        if err.target_down:
            await self._target_is_down(item, err)
            return
        attempt = item.attempts + 1
        if not err.retryable or attempt >= self._max_attempts:
            reason = str(err) if not err.retryable else f"gave up after {attempt} attempts: {err}"
            log.warning("alert %d to %s dead-lettered: %s", item.id, item.target, reason)
            await self._store.mark_dead(item.id, reason)
            return
        delay = backoff_delay(attempt, err.retry_after, self._rng)
        log.info("alert %d to %s: %s; retrying in %.1fs", item.id, item.target, err, delay)
        retry_at = self._clock() + delay
        await self._store.mark_retry(item.id, retry_at, str(err))
        # The target is struggling (or asked everyone to wait): hold its other alerts too.
        await self._store.defer_target(item.target, retry_at, str(err))

    async def _target_is_down(self, item: OutboxItem, err: DeliveryError) -> None:
        outages = self._target_outages.get(item.target, 0) + 1
        self._target_outages[item.target] = outages
        delay = backoff_delay(outages, err.retry_after, self._rng)
        log.warning(
            "target %s is unavailable (%s); holding its alerts %.0fs", item.target, err, delay
        )
        await self._store.defer_target(item.target, self._clock() + delay, str(err))

    def _limiter(self, target: str, limit: RateLimit) -> AsyncLimiter:
        limiter = self._limiters.get(target)
        if limiter is None:
            limiter = AsyncLimiter(limit.messages, limit.per_seconds)
            self._limiters[target] = limiter
        return limiter
