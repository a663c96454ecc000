"""The outbox worker: sends pending alerts, paced per target, with retries.

Each outbox row has an idempotency key per (subscription, posting, change),
so a change is queued at most once per subscription. A row is marked sent
right after the platform accepts it; only a crash between those two steps can
send it again. Targets are served side by side, but a platform that cannot drop
a repeated message itself (anything but Discord's nonce-enforcing bot) gets one
message at a time, sent and recorded before the next: so a crash can repeat at
most one message per such platform.

Before anything is sent, each alert is routed by its subscription's delivery mode
(``bot.delivery_modes``): it goes alone, or is held (``digest``) until its digest
time or the end of quiet hours, or, when more than ``burst_digest_after`` alerts
for one target are due at once, joins a digest sent now. A due digest is every
held alert of the target, rendered by its sender as one or more pages; each page
is sent and then its alerts marked sent in one transaction, so a crash repeats at
most the page in flight.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiolimiter import AsyncLimiter

from bot.delivery_modes import Policy, policy_for, settings_owner
from bot.errors import DeliveryError
from bot.logs import log_context
from bot.metrics import Metrics
from bot.models import Alert, Notice, utc_iso
from bot.render_digest import DigestPage
from bot.store import NoticeItem, OutboxItem, Store

log = logging.getLogger(__name__)

Item = OutboxItem | NoticeItem  # an alert to a subscriber, or a notice to the operator
DIGEST_MAX_ALERTS = 1000  # in one digest; more go in the next
BACKOFF_BASE = 2.0
BACKOFF_CAP = 900.0
RETRY_AFTER_CAP = 86_400.0


class Sender(Protocol):
    async def send(self, alert: Alert, original: str | None = None) -> str | None:
        """Deliver one alert; return the platform's reference to the message it
        posted, when it gives one. A sender whose platform drops a message repeated
        with the same ``alert.key`` says so with a true ``idempotent`` attribute.

        ``original`` is the reference this sender returned for the first alert of
        the same job (the posting, or another listing of it) to the same subscription:
        a sender that can, posts the follow-up in that message's thread (and marks the
        original closed).
        Raises ``DeliveryError`` when it could not be delivered.
        """

    async def send_notice(self, notice: Notice) -> None:
        """Deliver a message to the operator; raises ``DeliveryError`` like ``send``."""

    def digest_pages(self, alerts: Sequence[Alert]) -> list[DigestPage]:
        """The digest of ``alerts`` as this platform's messages, in order."""

    async def send_digest(self, target: str, page: DigestPage) -> None:
        """Deliver one page of a digest; raises ``DeliveryError`` like ``send``."""


@dataclass(frozen=True, slots=True)
class DigestMessage:
    """One page of a digest to ``target``, and the outbox rows whose alerts it shows."""

    target: str
    page: DigestPage
    items: tuple[OutboxItem, ...]


Unit = Item | DigestMessage  # what one send delivers


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
        metrics: Metrics | None = None,
        default_timezone: str = "UTC",
        burst_digest_after: int = 0,
    ) -> None:
        """``burst_digest_after``: more alerts than this for one target, due at once,
        go as one digest (0: never)."""
        self._store = store
        self._default_timezone = default_timezone
        self._burst_digest_after = burst_digest_after
        self._metrics = metrics or Metrics()
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
        """One pass over the due rows; returns how many alerts and notices were sent."""
        sent = await asyncio.gather(*(await self._due_by_target()).values())
        return sum(sent)

    async def _due_by_target(
        self, except_targets: Collection[str] = ()
    ) -> dict[str, Coroutine[Any, Any, int]]:
        """A delivery of each target's due rows (but those of ``except_targets``)."""
        now = self._clock()
        alerts = await self._store.due_deliveries(now, except_targets=except_targets)
        policies = await self._policies(alerts)
        notices = await self._store.due_notices(now, except_targets=except_targets)
        items: list[Item] = [*notices, *alerts]
        by_target: dict[str, list[Item]] = {}
        for item in items:
            by_target.setdefault(item.target, []).append(item)
        return {t: self._deliver_target(t, i, policies, now) for t, i in by_target.items()}

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
        # Each target is served by its own task, so a slowly paced target never holds
        # up the others; a target gets a new task once its last one has finished.
        sending: dict[str, asyncio.Task[int]] = {}
        while not stop.is_set():
            self._wake.clear()  # before looking: a wake from here on is not missed
            try:
                due = await self._due_by_target(except_targets=list(sending))
                for target, delivery in due.items():
                    self._start(sending, target, delivery)
                upcoming = await self._store.next_delivery_at(except_targets=list(sending))
            except Exception:
                log.exception("delivery pass failed; retrying")
                upcoming = None
            wait = idle if upcoming is None else max(0.0, upcoming - self._clock())
            await self._wait(stop, min(wait, idle))
        await asyncio.gather(*sending.values(), return_exceptions=True)

    def _start(
        self,
        sending: dict[str, asyncio.Task[int]],
        target: str,
        delivery: Coroutine[Any, Any, int],
    ) -> None:
        task = asyncio.ensure_future(delivery)
        sending[target] = task

        def finished(done: asyncio.Task[int]) -> None:
            sending.pop(target, None)
            self._wake.set()  # the target may have more rows due
            if not done.cancelled() and done.exception() is not None:
                log.error("delivery to %s failed", target, exc_info=done.exception())

        task.add_done_callback(finished)

    async def _wait(self, stop: asyncio.Event, seconds: float) -> None:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _deliver_target(
        self, target: str, items: list[Item], policies: dict[int, Policy], now: float
    ) -> int:
        """Route a target's rows, then send in order what goes now; stop at its first
        retryable failure."""
        with log_context(target=target):
            ready, digest = await self._route(items, policies, now)
            if not ready and not digest:
                return 0
            found = self._senders(target)
            if found is None:
                unavailable = DeliveryError(f"no sender for {target}", retryable=True)
                await self._failed([*ready, *digest][0], unavailable)
                return 0
            sender, limit = found
            units: list[Unit] = [*ready]
            if digest:
                units += await self._digest(target, sender, now)
            sent = 0
            for unit in units:
                if limit is not None:
                    await self._limiter(target, limit).acquire()
                if not await self._deliver_one(sender, unit):
                    break
                sent += len(_rows(unit))
            return sent

    async def _policies(self, items: Sequence[OutboxItem]) -> dict[int, Policy]:
        """Each subscription's delivery policy, by subscription id."""
        owners = {item.subscription.id: settings_owner(item.subscription) for item in items}
        settings = await self._store.delivery_settings(owners.values())
        return {
            item.subscription.id: policy_for(
                item.subscription.delivery,
                settings.get(owners[item.subscription.id]),
                self._default_timezone,
            )
            for item in items
        }

    async def _route(
        self, items: list[Item], policies: dict[int, Policy], now: float
    ) -> tuple[list[Item], list[OutboxItem]]:
        """Hold the fresh alerts that must wait; return the rows to send alone now, and
        those of this pass in a digest due now (``_digest`` collects all of it)."""
        ready: list[Item] = []
        digest: list[OutboxItem] = []
        holds: dict[float, list[OutboxItem]] = {}
        for item in items:
            if isinstance(item, NoticeItem):
                ready.append(item)
            elif item.digest:
                digest.append(item)
            else:
                release = policies[item.subscription.id].release(now, held=False)
                if release.digest:
                    holds.setdefault(release.at, []).append(item)
                else:
                    ready.append(item)
        alone = [item for item in ready if isinstance(item, OutboxItem)]
        if 0 < self._burst_digest_after < len(alone):
            log.info("%d alerts due at once: sending them as one digest", len(alone))
            holds.setdefault(now, []).extend(alone)
            ready = [item for item in ready if isinstance(item, NoticeItem)]
        for until, held in holds.items():
            await self._store.hold([item.id for item in held], until)
        return ready, [*digest, *holds.get(now, ())]

    async def _digest(self, target: str, sender: Sender, now: float) -> list[DigestMessage]:
        """The target's held alerts that are due, as the sender's pages; those whose
        owner is in quiet hours now are held on until the hours end."""
        held = await self._store.due_deliveries(now, DIGEST_MAX_ALERTS, held_for=target)
        policies = await self._policies(held)
        quiet: dict[float, list[int]] = {}
        due: dict[str | None, OutboxItem] = {}
        for item in held:
            release = policies[item.subscription.id].release(now, held=True)
            if release.at > now:
                quiet.setdefault(release.at, []).append(item.id)
            else:
                due[item.key] = item
        for until, item_ids in quiet.items():
            await self._store.hold(item_ids, until)
        if not due:
            return []
        pages = sender.digest_pages([_alert(item) for item in due.values()])
        return [
            DigestMessage(target, page, tuple(due[alert.key] for alert in page.alerts))
            for page in pages
        ]

    async def _deliver_one(self, sender: Sender, unit: Unit) -> bool:
        if getattr(sender, "idempotent", False):
            return await self._send_and_record(sender, unit)
        lock = self._unrecorded_sends.setdefault(type(sender), asyncio.Lock())
        async with lock:
            return await self._send_and_record(sender, unit)

    async def _send_and_record(self, sender: Sender, unit: Unit) -> bool:
        """Send one row (or digest page) and record the outcome; False when the target
        should wait."""
        if self._stop is not None and self._stop.is_set():
            return False  # stopping: no new send starts
        try:
            message_ref = await _send(sender, unit)
        except DeliveryError as err:
            await self._failed(unit, err)
            return False
        except Exception as err:  # a bug in a sender must not block its target forever
            log.exception("%s to %s: unexpected error", _name(unit), unit.target)
            await self._failed(
                unit, DeliveryError(f"internal error: {type(err).__name__}", retryable=False)
            )
            return False
        if isinstance(unit, DigestMessage):
            await self._store.mark_digest_sent([item.id for item in unit.items], self._clock())
        else:
            await self._store.mark_sent(unit.id, self._clock(), message_ref, table=unit.table)
        for _ in _rows(unit):
            self._metrics.alert_sent(unit.target)
        self._target_outages.pop(unit.target, None)
        return True

    async def _failed(self, unit: Unit, err: DeliveryError) -> None:
        if err.target_down:
            await self._target_is_down(unit, err)
            return
        rows = _rows(unit)
        attempt = max(row.attempts for row in rows) + 1
        if not err.retryable or attempt >= self._max_attempts:
            reason = str(err) if not err.retryable else f"gave up after {attempt} attempts: {err}"
            log.warning("%s to %s dead-lettered: %s", _name(unit), unit.target, reason)
            for row in rows:
                await self._store.mark_dead(row.id, reason, table=row.table)
                self._metrics.alert_dead(unit.target)
            return
        delay = backoff_delay(attempt, err.retry_after, self._rng)
        log.info("%s to %s: %s; retrying in %.1fs", _name(unit), unit.target, err, delay)
        retry_at = self._clock() + delay
        for row in rows:
            await self._store.mark_retry(row.id, retry_at, str(err), table=row.table)
            self._metrics.alert_retried(unit.target)
        # The target is struggling (or asked everyone to wait): hold its other alerts too.
        await self._store.defer_target(unit.target, retry_at, str(err))
        if err.retry_after is not None:
            await self._spend_burst(unit.target)

    async def _spend_burst(self, target: str) -> None:
        """After a rate limit, resume at the steady pace: the platform's burst allowance
        is used up, so spending ours when the wait ends would only earn more 429s."""
        limiter = self._limiters.get(target)
        if limiter is not None:
            spent = AsyncLimiter(limiter.max_rate, limiter.time_period)
            await spent.acquire(spent.max_rate)  # a new limiter has room: no wait
            self._limiters[target] = spent

    async def _target_is_down(self, unit: Unit, err: DeliveryError) -> None:
        outages = self._target_outages.get(unit.target, 0) + 1
        self._target_outages[unit.target] = outages
        delay = backoff_delay(outages, err.retry_after, self._rng)
        log.warning(
            "target %s is unavailable (%s); holding its alerts %.0fs", unit.target, err, delay
        )
        await self._store.defer_target(unit.target, self._clock() + delay, str(err))
        self._metrics.alert_retried(unit.target)

    def _limiter(self, target: str, limit: RateLimit) -> AsyncLimiter:
        limiter = self._limiters.get(target)
        if limiter is None:
            limiter = AsyncLimiter(limit.messages, limit.per_seconds)
            self._limiters[target] = limiter
        return limiter


async def _send(sender: Sender, unit: Unit) -> str | None:
    if isinstance(unit, NoticeItem):
        await sender.send_notice(unit.notice)
        return None
    if isinstance(unit, DigestMessage):
        await sender.send_digest(unit.target, unit.page)
        return None
    return await sender.send(_alert(unit), unit.original_ref)


def _alert(item: OutboxItem) -> Alert:
    return Alert(
        item.change,
        item.subscription,
        utc_iso(item.detected_at),
        item.key,
        also=item.also,
        sighting=item.sighting,
    )


def _rows(unit: Unit) -> Sequence[Item]:
    """The outbox or notice rows one send delivers."""
    return unit.items if isinstance(unit, DigestMessage) else (unit,)


def _name(unit: Unit) -> str:
    """How log lines name a send: ``alert 12``, ``notice 3`` or ``digest of 8 alerts``."""
    if isinstance(unit, DigestMessage):
        return f"digest of {len(unit.items)} alerts"
    return f"{'notice' if isinstance(unit, NoticeItem) else 'alert'} {unit.id}"
