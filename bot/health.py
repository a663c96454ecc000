"""``/healthz`` and ``/metrics`` on 127.0.0.1:``[bot] health_port`` while ``careerbot run`` runs.

``/healthz`` answers 200 while the service is working, even when some boards are
down ("degraded": a restart would not bring a board back), and 503 only when it
is "stalled": no poll job (a poll, or a poll skipped while its source backs off)
has finished for ``STALL_FACTOR`` times the longest enabled interval, and at
least ``STALL_FLOOR``. That is a careerbot that stopped polling, which a restart
fixes. A network outage is not: its polls keep failing quickly, and each one
counts as a finished job. An event loop too busy to answer fails the health
check by its timeout.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from aiohttp import web

from bot.catalog import SourceCatalog
from bot.config import Config
from bot.errors import CareerbotError
from bot.metrics import Metrics
from bot.store import OutboxCounts, SourceState, Store

log = logging.getLogger(__name__)

STALL_FACTOR = 3.0
# Longer than any sane single poll, so one slow board (hundreds of detail pages)
# polled alone on a short interval never looks stalled.
STALL_FLOOR = 900.0
HOST = "127.0.0.1"

Status = Literal["ok", "degraded", "stalled"]


class HealthPortError(CareerbotError):
    """The health endpoint cannot listen on its port."""


@dataclass(frozen=True, slots=True)
class HealthReport:
    status: Status
    last_successful_poll_age_seconds: float | None  # any source's; None before the first
    last_poll_job_age_seconds: float
    stalled_after_seconds: float
    outbox_pending: int
    outbox_dead: int
    sources: int  # enabled
    failing_sources: list[str]

    @property
    def http_status(self) -> int:
        return 503 if self.status == "stalled" else 200

    def to_json(self) -> dict[str, object]:
        return asdict(self)


class HealthCheck:
    """What ``/healthz`` and ``/metrics`` report; ``poll_job_done`` is the scheduler's heartbeat."""

    def __init__(
        self,
        store: Store,
        catalog: SourceCatalog,
        config: Config,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._config = config
        self._metrics = metrics
        self._clock = clock
        self._last_job_at = clock()

    def poll_job_done(self) -> None:
        self._last_job_at = self._clock()

    async def _read(self) -> tuple[list[str], list[SourceState], OutboxCounts, float]:
        """The enabled sources, their states, the outbox and the stall window."""
        enabled = self._catalog.enabled()
        names = {source.name for source in enabled}
        states = [state for state in await self._store.source_states() if state.name in names]
        intervals = [self._config.interval_of(source) for source in enabled]
        stall_after = max(STALL_FACTOR * max(intervals, default=0.0), STALL_FLOOR)
        return sorted(names), states, await self._store.outbox_counts(), stall_after

    async def report(self) -> HealthReport:
        names, states, outbox, stall_after = await self._read()
        now = self._clock()
        idle = now - self._last_job_at
        successes = [s.last_success_at for s in states if s.last_success_at is not None]
        failing = sorted(s.name for s in states if s.consecutive_failures > 0)
        status: Status = "ok"
        if names and idle > stall_after:
            status = "stalled"
        elif failing:
            status = "degraded"
        return HealthReport(
            status=status,
            last_successful_poll_age_seconds=round(now - max(successes), 3) if successes else None,
            last_poll_job_age_seconds=round(idle, 3),
            stalled_after_seconds=stall_after,
            outbox_pending=outbox.pending,
            outbox_dead=outbox.dead,
            sources=len(names),
            failing_sources=failing,
        )

    async def metrics(self, accept: str = "") -> tuple[bytes, str]:
        """The metrics, with the gauges read from the store brought up to date."""
        names, states, outbox, _ = await self._read()
        self._metrics.observe_store(names, states, outbox)
        return self._metrics.exposition(accept)


@asynccontextmanager
async def serve_health(check: HealthCheck, port: int) -> AsyncIterator[None]:
    from aiohttp import web  # only `run` with a health port needs it: keeps commands quick

    async def healthz(_: web.Request) -> web.Response:
        report = await check.report()
        return web.json_response(report.to_json(), status=report.http_status)

    async def metrics(request: web.Request) -> web.Response:
        body, content_type = await check.metrics(request.headers.get("Accept", ""))
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, HOST, port).start()
    except OSError as err:
        await runner.cleanup()
        reason = os.strerror(err.errno) if err.errno else str(err)
        raise HealthPortError(
            f"bot.health_port: cannot serve health on {HOST}:{port}: {reason}"
        ) from None
    log.info("health: /healthz and /metrics on http://%s:%d", HOST, port)
    try:
        yield
    finally:
        await runner.cleanup()


def health_endpoint(check: HealthCheck, port: int) -> AbstractAsyncContextManager[None]:
    """The endpoint while inside, when ``port`` is set (``[bot] health_port`` > 0)."""
    return serve_health(check, port) if port > 0 else nullcontext()
