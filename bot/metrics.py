"""Prometheus metrics of one app, in a registry of its own.

The pipeline's polls and the delivery worker's sends are counted as they happen;
what the store knows (queue depth, failures in a row, last success) is read into
gauges when ``/metrics`` is scraped, so it is right even just after a restart.

Alerts are labelled by target, except direct messages: ``slack:dm`` and
``discord:dm`` stand for all of them, so the number of series grows with the
channels and webhooks an operator can see, not with the users who subscribe,
and no user id leaves the database through the metrics.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

from bot.config import is_direct_message
from bot.store import OutboxCounts, SourceState

if TYPE_CHECKING:
    from bot.pipeline import PollOutcome

POLL_OUTCOMES = ("ok", "failed")
# From a file: source or an unchanged answer (milliseconds) to a paged board with a
# detail page per posting (minutes).
POLL_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


def target_label(target: str) -> str:
    if is_direct_message(target):
        return target.split(":", 1)[0] + ":dm"
    return target


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self._polls = Counter(
            "careerbot_polls",
            "Polls finished, by source and outcome (ok, failed).",
            ["source", "outcome"],
            registry=registry,
        )
        self._poll_seconds = Histogram(
            "careerbot_poll_duration_seconds",
            "How long a poll took: fetch, parse, diff, match and save.",
            ["source"],
            buckets=POLL_SECONDS_BUCKETS,
            registry=registry,
        )
        self._postings_seen = Gauge(
            "careerbot_postings_seen",
            "Postings the source listed at its last good poll.",
            ["source"],
            registry=registry,
        )
        self._changes = Counter(
            "careerbot_changes",
            "Changes found, by source and kind (new, changed, closed, reopened).",
            ["source", "kind"],
            registry=registry,
        )
        self._alerts = Counter(
            "careerbot_alerts",
            "Alerts (and operator notices) by target and outcome (sent, retried, dead).",
            ["target", "outcome"],
            registry=registry,
        )
        self._outbox_pending = Gauge(
            "careerbot_outbox_pending", "Alerts waiting to be sent.", registry=registry
        )
        self._outbox_dead = Gauge(
            "careerbot_outbox_dead", "Alerts given up on (dead letters).", registry=registry
        )
        self._open_postings = Gauge(
            "careerbot_open_postings",
            "Open postings stored, by source.",
            ["source"],
            registry=registry,
        )
        self._consecutive_failures = Gauge(
            "careerbot_source_consecutive_failures",
            "Failed polls in a row, by source (0 once a poll succeeds).",
            ["source"],
            registry=registry,
        )
        self._last_success = Gauge(
            "careerbot_last_successful_poll_timestamp_seconds",
            "Unix time of the last successful poll, by source.",
            ["source"],
            registry=registry,
        )

    def poll_finished(self, outcome: PollOutcome, seconds: float) -> None:
        source = outcome.source
        self._polls.labels(source, "ok" if outcome.ok else "failed").inc()
        self._poll_seconds.labels(source).observe(seconds)
        if outcome.ok:
            self._postings_seen.labels(source).set(outcome.postings)
        for change in outcome.changes:
            self._changes.labels(source, change.kind.value).inc()

    def alert_sent(self, target: str) -> None:
        self._alerts.labels(target_label(target), "sent").inc()

    def alert_retried(self, target: str) -> None:
        self._alerts.labels(target_label(target), "retried").inc()

    def alert_dead(self, target: str) -> None:
        self._alerts.labels(target_label(target), "dead").inc()

    def observe_store(
        self, sources: Iterable[str], states: Iterable[SourceState], outbox: OutboxCounts
    ) -> None:
        """Set the gauges read from the store, for the enabled ``sources`` only (a
        source removed or paused since the last scrape drops out)."""
        names = set(sources)
        self._outbox_pending.set(outbox.pending)
        self._outbox_dead.set(outbox.dead)
        for gauge in (self._open_postings, self._consecutive_failures, self._last_success):
            gauge.clear()
        for name in names:
            for outcome in POLL_OUTCOMES:
                self._polls.labels(name, outcome)  # a zero series, so rate() sees the first poll
        for state in states:
            if state.name not in names:
                continue
            self._open_postings.labels(state.name).set(state.open_postings)
            self._consecutive_failures.labels(state.name).set(state.consecutive_failures)
            if state.last_success_at is not None:
                self._last_success.labels(state.name).set(state.last_success_at)

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The registry in the format a scraper's Accept header asks for (Prometheus
        text by default, or OpenMetrics), and its content type."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type
