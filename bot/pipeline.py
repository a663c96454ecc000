"""Poll one source: fetch → parse → diff → match → save, with no platform code."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.config import Config, SourceConfig
from bot.diff import diff
from bot.errors import CareerbotError
from bot.models import Alert, Change, Subscription, utc_iso
from bot.query import QueryIndex, parse_query
from bot.sources import Collected, Fetcher, SourceSpec, collector_for
from bot.store import Match, Store

log = logging.getLogger(__name__)

# A poll that suddenly finds nothing on a source that had at least this many
# open postings is treated as a broken page, not as every posting closing.
SUSPICIOUS_EMPTY_AFTER = 3


@dataclass(slots=True)
class PollOutcome:
    source: str
    error: str | None = None
    postings: int = 0
    baseline: bool = False
    changes: list[Change] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


class SubscriptionMatcher:
    """The active subscriptions, indexed by query terms; rebuilt when they change."""

    def __init__(self) -> None:
        self._version = -1
        self._index: QueryIndex[int] = QueryIndex()
        self._by_id: dict[int, Subscription] = {}

    async def refresh(self, store: Store) -> None:
        version = await store.subscriptions_version()
        if version == self._version:
            return
        index: QueryIndex[int] = QueryIndex()
        by_id: dict[int, Subscription] = {}
        for subscription in await store.subscriptions():
            if subscription.paused:
                continue
            try:
                index.add(subscription.id, parse_query(subscription.query))
            except CareerbotError as err:
                log.warning("subscription #%d skipped: %s", subscription.id, err)
                continue
            by_id[subscription.id] = subscription
        self._index, self._by_id, self._version = index, by_id, version

    def matches(self, changes: list[Change]) -> list[Match]:
        found: list[Match] = []
        for position, change in enumerate(changes):
            for key in self._index.match(change.posting):
                subscription = self._by_id[key]
                if change.kind in subscription.notify:
                    found.append(Match(position, subscription))
        return found


def source_spec(config: Config, source: SourceConfig) -> SourceSpec:
    options = source.model_dump(
        exclude={"name", "type", "url", "interval", "enabled", "company", "max_pages"},
        exclude_none=True,
    )
    return SourceSpec(
        name=source.name,
        type=source.type,
        url=source.url,
        company=source.company,
        options=options,
        max_pages=source.max_pages or config.bot.max_pages,
    )


class Pipeline:
    def __init__(
        self,
        config: Config,
        store: Store,
        fetcher: Fetcher,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._store = store
        self._fetcher = fetcher
        self._clock = clock
        self._matcher = SubscriptionMatcher()

    async def poll(self, source: SourceConfig, *, dry_run: bool = False) -> PollOutcome:
        """Poll one source; a failure is recorded and reported, never raised."""
        outcome = PollOutcome(source.name)
        try:
            collected = await self._collect(source)
            await self._diff_and_save(source, collected, outcome, dry_run)
        except CareerbotError as err:
            outcome.error = str(err)
        except Exception as err:  # a parser bug must not stop the other sources
            log.exception("source %s: unexpected error", source.name)
            outcome.error = f"internal error: {type(err).__name__}: {err}"
        if outcome.error is not None and not dry_run:
            await self._store.record_failure(source.name, outcome.error, self._clock())
        return outcome

    async def _collect(self, source: SourceConfig) -> Collected:
        collect = collector_for(source.type)
        return await collect(source_spec(self._config, source), self._fetcher)

    async def _diff_and_save(
        self, source: SourceConfig, collected: Collected, outcome: PollOutcome, dry_run: bool
    ) -> None:
        postings = collected.postings
        stored = await self._store.stored_postings(source.name)
        state = await self._store.source_state(source.name)
        open_count = sum(1 for s in stored.values() if not s.closed)
        if not postings and open_count >= SUSPICIOUS_EMPTY_AFTER:
            raise CareerbotError(
                f"returned no postings although {open_count} were open; closing none"
            )
        baseline = state is None or not state.baseline_done
        result = diff(
            stored,
            postings,
            baseline=baseline,
            close_after=self._config.bot.close_after_polls,
            complete=collected.complete,
        )
        await self._matcher.refresh(self._store)
        matches = self._matcher.matches(result.changes)
        now = self._clock()
        outcome.postings = len(postings)
        outcome.baseline = baseline
        outcome.changes = result.changes
        if dry_run:
            detected = utc_iso(now)
            outcome.alerts = [
                Alert(result.changes[m.change_index], m.subscription, detected) for m in matches
            ]
            return
        await self._store.apply_poll(source.name, result, matches, now)
