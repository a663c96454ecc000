"""Wires config → store → HTTP client → pipeline → scheduler → delivery; owns start and stop."""

from __future__ import annotations

import asyncio
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

from bot.chat.console import ConsoleSender
from bot.chat.webhook import DiscordWebhookSender, SlackWebhookSender
from bot.config import Config, LoadedConfig, SourceConfig
from bot.delivery import DeliveryWorker, RateLimit, Sender, SenderLookup
from bot.fetch import FetchLimits, HttpFetcher, make_client
from bot.lock import exclusive
from bot.pipeline import Pipeline, PollOutcome, poll_due
from bot.store import Store

log = logging.getLogger(__name__)

# Incoming-webhook pacing: Slack allows about one message a second per webhook;
# Discord about 30 a minute per channel (a burst of 5, then one every 2 s).
SLACK_WEBHOOK_RATE = RateLimit(1, 1)
DISCORD_WEBHOOK_RATE = RateLimit(5, 10)
POLL_CONCURRENCY = 8
FIRST_POLL_SPREAD = 10.0  # seconds over which the first polls of `run` are spread
SHUTDOWN_GRACE = 10.0


def sender_lookup(
    config: Config,
    client: httpx.AsyncClient,
    environ: Mapping[str, str],
    console: TextIO | None = None,
) -> SenderLookup:
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
    return senders.get


@dataclass(slots=True)
class OnceReport:
    outcomes: list[PollOutcome]
    delivered: int
    still_queued: int

    @property
    def ok(self) -> bool:
        return all(outcome.ok for outcome in self.outcomes)


class App:
    def __init__(
        self,
        loaded: LoadedConfig,
        store: Store,
        client: httpx.AsyncClient,
        *,
        environ: Mapping[str, str],
        console: TextIO | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = loaded.config
        self.store = store
        self._clock = clock
        bot = self.config.bot
        limits = FetchLimits(bot.max_connections, bot.per_host_connections, bot.per_host_rate)
        self.pipeline = Pipeline(self.config, store, HttpFetcher(client, limits=limits), clock)
        self.worker = DeliveryWorker(
            store,
            sender_lookup(self.config, client, environ, console),
            max_attempts=self.config.bot.delivery_max_attempts,
            clock=clock,
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
                async with make_client(bot.request_timeout, bot.max_connections) as client:
                    app = cls(loaded, store, client, environ=environ, console=console)
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
            return [self.config.source(name)]
        return [s for s in self.config.sources if s.enabled]

    async def once(
        self, source: str | None = None, *, dry_run: bool = False, deliver_within: float = 60.0
    ) -> OnceReport:
        """Poll every enabled source (or one), then deliver what became due."""
        limit = asyncio.Semaphore(POLL_CONCURRENCY)

        async def poll(source_config: SourceConfig) -> PollOutcome:
            async with limit:
                return await self.pipeline.poll(source_config, dry_run=dry_run)

        outcomes = list(await asyncio.gather(*map(poll, self._enabled_sources(source))))
        if dry_run:
            return OnceReport(outcomes, 0, 0)
        delivered = await self.worker.drain(self._clock() + deliver_within)
        queued = (await self.store.outbox_counts()).pending
        return OnceReport(outcomes, delivered, queued)

    async def run(self, stop: asyncio.Event) -> None:
        """The service: scheduled polls and the delivery worker until ``stop`` is set."""
        in_flight: set[asyncio.Task[PollOutcome]] = set()

        async def poll_job(source_config: SourceConfig) -> None:
            state = await self.store.source_state(source_config.name)
            interval = self.config.interval_of(source_config)
            if not poll_due(state, interval, self._clock()):
                log.info("source %s: backing off after failures; poll skipped", source_config.name)
                return
            task = asyncio.ensure_future(self.pipeline.poll(source_config))
            in_flight.add(task)
            try:
                outcome = await task
            finally:
                in_flight.discard(task)
            _log_outcome(outcome)
            if outcome.changes:
                self.worker.wake()

        scheduler = AsyncIOScheduler(timezone=self.config.bot.timezone)
        now = datetime.now(UTC)
        for source_config in self._enabled_sources(None):
            interval = self.config.interval_of(source_config)
            first_poll = random.uniform(0, min(FIRST_POLL_SPREAD, interval))
            scheduler.add_job(
                poll_job,
                IntervalTrigger(seconds=interval, jitter=min(interval * 0.1, 300.0)),
                args=[source_config],
                id=source_config.name,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=max(int(interval), 1),
                next_run_time=now + timedelta(seconds=first_poll),
            )
        scheduler.start()
        log.info("running: %d sources scheduled", len(scheduler.get_jobs()))
        worker = asyncio.create_task(self.worker.run(stop))
        try:
            await stop.wait()
        finally:
            log.info("stopping: waiting for polls in progress")
            scheduler.shutdown(wait=False)
            if in_flight:
                _, pending = await asyncio.wait(in_flight, timeout=SHUTDOWN_GRACE)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            await worker
            log.info("stopped")


def _log_outcome(outcome: PollOutcome) -> None:
    if outcome.ok:
        log.info(
            "source %s: %d postings, %d changes%s",
            outcome.source,
            outcome.postings,
            len(outcome.changes),
            " (baseline)" if outcome.baseline else "",
        )
    else:
        log.warning("source %s failed: %s", outcome.source, outcome.error)


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
