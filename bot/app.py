"""Wires config → store → HTTP client → pipeline → scheduler → delivery; owns start and stop."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import random
import signal
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TextIO

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.catalog import SourceCatalog
from bot.chat.console import ConsoleSender
from bot.chat.platforms import ChatSenders, one_shot_senders, running_front_ends
from bot.chat.webhook import DiscordWebhookSender, SlackWebhookSender
from bot.commands import Commands
from bot.config import Config, LoadedConfig, Secrets, SourceConfig
from bot.delivery import DeliveryWorker, RateLimit, Sender
from bot.fetch import FetchLimits, HttpFetcher, make_client
from bot.health import HealthCheck, health_endpoint
from bot.lock import exclusive
from bot.logs import log_context
from bot.metrics import Metrics
from bot.netguard import AddressGuard
from bot.pipeline import Pipeline, PollOutcome, poll_due
from bot.schedule import added_source_delay, first_poll_delays
from bot.store import HeldDigests, PruneCounts, Store

log = logging.getLogger(__name__)

# Incoming-webhook pacing: Slack allows about one message a second per webhook;
# Discord about 30 a minute per channel (a burst of 5, then one every 2 s).
SLACK_WEBHOOK_RATE = RateLimit(1, 1)
DISCORD_WEBHOOK_RATE = RateLimit(5, 10)
# Sources `once` polls at a time: enough to keep the default 16 connections busy
# (bench/bench_poll_cycle.py: 8 left a 300-source cycle waiting on latency).
POLL_CONCURRENCY = 16
SHUTDOWN_GRACE = 10.0
PRUNE_JOB = ":prune"  # not a valid source name, so it never collides with a source's job
PRUNE_EVERY = 86_400.0
FIRST_PRUNE_AFTER = 60.0


def fixed_senders(
    config: Config,
    client: httpx.AsyncClient,
    environ: Mapping[str, str],
    console: TextIO | None = None,
) -> dict[str, tuple[Sender, RateLimit | None]]:
    """The console and the incoming webhooks whose URLs the environment gives."""
    senders: dict[str, tuple[Sender, RateLimit | None]] = {
        "console": (ConsoleSender(console), None)
    }
    for name, webhook in config.webhooks.items():
        url = environ.get(webhook.url_env)
        if not url:
            continue
        if webhook.kind == "slack":
            senders[f"webhook:{name}"] = (SlackWebhookSender(client, url), SLACK_WEBHOOK_RATE)
        else:
            senders[f"webhook:{name}"] = (DiscordWebhookSender(client, url), DISCORD_WEBHOOK_RATE)
    return senders


@dataclass(slots=True)
class OnceReport:
    outcomes: list[PollOutcome]
    delivered: int
    still_queued: int  # for a retry
    held: HeldDigests  # for digests and the end of quiet hours

    @property
    def ok(self) -> bool:
        return all(outcome.ok for outcome in self.outcomes)


class App:
    def __init__(
        self,
        loaded: LoadedConfig,
        store: Store,
        catalog: SourceCatalog,
        client: httpx.AsyncClient,
        chat_source_client: httpx.AsyncClient,
        *,
        environ: Mapping[str, str],
        console: TextIO | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``chat_source_client`` polls the sources added from chat: one that
        refuses private addresses, unless the config allows them."""
        self.config = loaded.config
        self.store = store
        self.catalog = catalog
        self._clock = clock
        bot = self.config.bot
        limits = FetchLimits(bot.max_connections, bot.per_host_connections, bot.per_host_rate)
        fetcher = HttpFetcher(client, limits=limits)
        chat_fetcher = (
            fetcher if bot.allow_private_sources else HttpFetcher(chat_source_client, limits=limits)
        )
        self.pipeline = Pipeline(
            self.config,
            store,
            fetcher,
            clock,
            fetcher_for=lambda source: chat_fetcher if catalog.is_chat(source.name) else fetcher,
        )
        self.commands = Commands(store, catalog, self.config, clock)
        self._poll_slots = asyncio.Semaphore(POLL_CONCURRENCY)
        self._secrets = Secrets.from_env(environ)
        # Slack and Discord senders exist only while their platforms are open (see
        # `once` and `run`); until then their alerts wait in the outbox.
        self._chat = ChatSenders()
        fixed = fixed_senders(self.config, client, environ, console)

        def sender_for(target: str) -> tuple[Sender, RateLimit | None] | None:
            return fixed.get(target) or self._chat.sender_for(target)

        self.metrics = Metrics()
        self.health = HealthCheck(store, catalog, self.config, self.metrics, clock)
        self.worker = DeliveryWorker(
            store,
            sender_for,
            max_attempts=bot.delivery_max_attempts,
            clock=clock,
            metrics=self.metrics,
            default_timezone=bot.timezone,
            burst_digest_after=bot.burst_digest_after,
        )

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        loaded: LoadedConfig,
        *,
        environ: Mapping[str, str] = os.environ,
        console: TextIO | None = None,
        dry_run: bool = False,
    ) -> AsyncIterator[App]:
        """The app on the configured database; with ``dry_run`` on an in-memory copy
        of it, so nothing on disk changes. Only one non-dry app may use a database."""
        with ExitStack() as hold:
            if dry_run:
                store = await Store.open_snapshot(loaded.database)
            else:
                hold.enter_context(exclusive(loaded.database))
                store = await Store.open(loaded.database)
            try:
                bot = loaded.config.bot
                guard = AddressGuard()
                catalog = await SourceCatalog.load(loaded.config, store, guard=guard)
                async with (
                    make_client(bot.request_timeout, bot.max_connections) as client,
                    guard.make_client(bot.request_timeout, bot.max_connections) as chat_client,
                ):
                    app = cls(
                        loaded,
                        store,
                        catalog,
                        client,
                        chat_client,
                        environ=environ,
                        console=console,
                    )
                    await app._sync_config()
                    yield app
            finally:
                await store.close()

    async def _sync_config(self) -> None:
        await self.store.register_sources((s.name, s.type, s.url) for s in self.config.sources)
        await self.store.sync_config_subscriptions(
            ((s.target, s.query, s.notify) for s in self.config.subscriptions), self._clock()
        )

    def _enabled_sources(self, name: str | None) -> list[SourceConfig]:
        if name is not None:
            return [self.catalog.source(name)]
        return self.catalog.enabled()

    async def once(
        self, source: str | None = None, *, dry_run: bool = False, deliver_within: float = 60.0
    ) -> OnceReport:
        """Poll every enabled source (or one), then deliver what became due."""
        outcomes = list(
            await asyncio.gather(
                *(
                    self._poll(source_config, dry_run=dry_run)
                    for source_config in self._enabled_sources(source)
                )
            )
        )
        if dry_run:
            return OnceReport(outcomes, 0, 0, HeldDigests(0, None))
        async with one_shot_senders(self.config, self._secrets) as chat:
            self._chat = chat
            try:
                delivered = await self.worker.drain(self._clock() + deliver_within)
            finally:
                self._chat = ChatSenders()
        held = await self.store.held_for_digests(self._clock())
        queued = (await self.store.outbox_counts()).pending - held.count
        await self.prune()
        return OnceReport(outcomes, delivered, queued, held)

    async def prune(self) -> PruneCounts:
        """Forget what closed longer ago than ``keep_closed``: the database stays bounded."""
        counts = await self.store.prune(self._clock() - self.config.bot.keep_closed)
        if any(dataclasses.astuple(counts)):
            log.info(
                "pruned %d closed postings, %d changes, %d alerts and %d notices",
                counts.postings,
                counts.changes,
                counts.alerts,
                counts.notices,
            )
        return counts

    async def _poll(self, source: SourceConfig, *, dry_run: bool = False) -> PollOutcome:
        """Poll one source, its log lines tagged with it, and count the poll. At most
        POLL_CONCURRENCY polls run at once: memory and CPU stay bounded however many
        sources fall due together."""
        async with self._poll_slots:
            started = time.monotonic()
            with log_context(source=source.name):
                outcome = await self.pipeline.poll(source, dry_run=dry_run)
        self.metrics.poll_finished(outcome, time.monotonic() - started)
        return outcome

    async def run(self, stop: asyncio.Event) -> None:
        """The service until ``stop`` is set: the health endpoint when configured,
        the chat front-ends that have tokens, scheduled polls and the delivery worker."""
        async with (
            health_endpoint(self.health, self.config.bot.health_port),
            running_front_ends(self.config, self._secrets, self.commands) as chat,
        ):
            self._chat = chat
            try:
                await self._poll_and_deliver(stop)
            finally:
                self._chat = ChatSenders()

    async def _poll_and_deliver(self, stop: asyncio.Event) -> None:
        in_flight: set[asyncio.Task[PollOutcome]] = set()

        async def poll_job(source_config: SourceConfig) -> None:
            with log_context(source=source_config.name):
                await poll_source(source_config)
            self.health.poll_job_done()

        async def poll_source(source_config: SourceConfig) -> None:
            state = await self.store.source_state(source_config.name)
            interval = self.config.interval_of(source_config)
            if not poll_due(state, interval, self._clock()):
                log.info("source %s: backing off after failures; poll skipped", source_config.name)
                return
            task = asyncio.ensure_future(self._poll(source_config))
            in_flight.add(task)
            try:
                outcome = await task
            finally:
                in_flight.discard(task)
            _log_outcome(outcome)
            if outcome.changes:
                self.worker.wake()

        scheduler = AsyncIOScheduler(timezone=self.config.bot.timezone)

        def schedule(source_config: SourceConfig, first_poll: float) -> None:
            interval = self.config.interval_of(source_config)
            scheduler.add_job(
                poll_job,
                IntervalTrigger(seconds=interval, jitter=min(interval * 0.1, 300.0)),
                args=[source_config],
                id=source_config.name,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=max(int(interval), 1),
                next_run_time=datetime.now(UTC) + timedelta(seconds=first_poll),
            )

        def reschedule(name: str, source_config: SourceConfig | None) -> None:
            """A source was added, removed, paused or resumed from chat."""
            if scheduler.get_job(name) is not None:
                scheduler.remove_job(name)
            if source_config is not None and source_config.enabled:
                interval = self.config.interval_of(source_config)
                schedule(source_config, added_source_delay(interval, rng))

        rng = random.Random()
        enabled = self._enabled_sources(None)
        last_polls = {state.name: state.last_poll_at for state in await self.store.source_states()}
        delays = first_poll_delays(
            {source.name: self.config.interval_of(source) for source in enabled}, last_polls, rng
        )
        for source_config in enabled:
            schedule(source_config, delays[source_config.name])
        scheduler.add_job(
            self.prune,
            IntervalTrigger(seconds=PRUNE_EVERY),
            id=PRUNE_JOB,
            coalesce=True,
            max_instances=1,
            next_run_time=datetime.now(UTC) + timedelta(seconds=FIRST_PRUNE_AFTER),
        )
        scheduler.start()
        self.catalog.add_listener(reschedule)
        log.info("running: %d sources scheduled", len(scheduler.get_jobs()) - 1)
        worker = asyncio.create_task(self.worker.run(stop))
        try:
            await stop.wait()
        finally:
            log.info("stopping: finishing polls and sends in progress")
            self.catalog.remove_listener(reschedule)
            scheduler.shutdown(wait=False)
            # Polls and the send in progress share one grace period; whatever is cut
            # short is redone on the next start (a poll lands whole or not at all).
            _, unfinished = await asyncio.wait([*in_flight, worker], timeout=SHUTDOWN_GRACE)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
            if unfinished:
                log.warning(
                    "stopping: %d tasks cut short after %.0fs", len(unfinished), SHUTDOWN_GRACE
                )
            log.info("stopped")


def _log_outcome(outcome: PollOutcome) -> None:
    log.log(logging.INFO if outcome.ok else logging.WARNING, "%s", outcome.summary())


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
