"""Poll one source: fetch → parse → diff → match → save, with no platform code."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from bot import __version__, semantic
from bot.conditional import PollFetcher, PollFingerprint, SourceUnchanged
from bot.config import Config, SourceConfig
from bot.diff import DiffResult, StoredPosting, diff
from bot.errors import CareerbotError, SourceError
from bot.models import Alert, Change, Notice, Posting, Subscription, utc_iso
from bot.query import PostingText, QueryIndex, parse_query
from bot.source_health import HealthState, PollFacts, after_poll, details_per_posting
from bot.sources import Collected, Fetcher, SourceSpec, collect_postings
from bot.store import Match, SourceState, Store

log = logging.getLogger(__name__)

# A poll that suddenly finds nothing on a source that had at least this many
# open postings is treated as a broken page, not as every posting closing.
SUSPICIOUS_EMPTY_AFTER = 3
# A failing source is polled at most this rarely while it keeps failing.
MAX_SOURCE_BACKOFF = 6 * 3600.0


def poll_due(state: SourceState | None, interval: float, now: float) -> bool:
    """Whether a scheduled poll should run: honours Retry-After and backs off
    exponentially (2, 4, 8… intervals) while a source keeps failing."""
    if state is None:
        return True
    if state.retry_not_before is not None and now < state.retry_not_before:
        return False
    if state.consecutive_failures < 2 or state.last_poll_at is None:
        return True
    doublings = min(state.consecutive_failures - 1, 32)
    backoff = min(interval * 2.0**doublings, max(interval, MAX_SOURCE_BACKOFF))
    schedule_jitter = 0.2 * interval
    return now >= state.last_poll_at + backoff - schedule_jitter


@dataclass(slots=True)
class PollOutcome:
    source: str
    error: str | None = None
    postings: int = 0
    baseline: bool = False
    unchanged: bool = False  # the source answered exactly as last time
    changes: list[Change] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    details: float | None = None  # per posting, when this poll parsed complete postings

    @property
    def ok(self) -> bool:
        return self.error is None

    def summary(self) -> str:
        if not self.ok:
            return f"source {self.source} failed: {self.error}"
        note = ""
        if self.baseline:
            note = " (first poll: recorded as the baseline, alerts start with the next change)"
        elif self.unchanged:
            note = " (unchanged since the last poll)"
        return f"source {self.source}: {self.postings} postings, {len(self.changes)} changes{note}"


class SubscriptionMatcher:
    """The active subscriptions, indexed by query terms; rebuilt when they change."""

    def __init__(self) -> None:
        self._version = -1
        self._index: QueryIndex[int] = QueryIndex()
        self._by_id: dict[int, Subscription] = {}
        self.semantic = False  # some subscription has a ``~`` term: postings need vectors

    async def refresh(self, store: Store) -> None:
        version = await store.subscriptions_version()
        if version == self._version:
            return
        index: QueryIndex[int] = QueryIndex()
        by_id: dict[int, Subscription] = {}
        any_semantic = False
        for subscription in await store.subscriptions():
            if subscription.paused:
                continue
            try:
                query = parse_query(subscription.query)
            except CareerbotError as err:
                log.warning("subscription #%d skipped: %s", subscription.id, err)
                continue
            index.add(subscription.id, query)
            by_id[subscription.id] = subscription
            any_semantic = any_semantic or query.semantic
        self._index, self._by_id, self._version = index, by_id, version
        self.semantic = any_semantic

    def matches(
        self, changes: list[Change], texts: Sequence[PostingText] | None = None
    ) -> list[Match]:
        """``texts``: the changed postings' texts with their vectors, which subscriptions
        with ``~`` terms need (``bot.semantic.posting_texts``)."""
        found: list[Match] = []
        for position, change in enumerate(changes):
            text = PostingText.of(change.posting) if texts is None else texts[position]
            for key in self._index.match_text(text):
                subscription = self._by_id[key]
                if change.kind in subscription.notify:
                    found.append(Match(position, subscription))
        return found


def _keep_stored_for_partial(collected: Collected, stored: dict[str, StoredPosting]) -> Collected:
    """A posting whose detail could not be fetched this time keeps its stored
    version, so a flaky detail page is not reported as a change."""

    def settled(posting: Posting) -> Posting:
        known = stored.get(posting.id)
        if posting.id in collected.partial and known is not None and not known.closed:
            return known.posting
        return posting

    return replace(collected, postings=[settled(p) for p in collected.postings])


def reading_key(spec: SourceSpec) -> str:
    """What decides how a source's answer becomes postings: its spec and careerbot's version."""
    described = json.dumps(
        [__version__, spec.type, spec.url, spec.company, spec.options, spec.max_pages],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(described.encode()).hexdigest()[:16]


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
        *,
        fetcher_for: Callable[[SourceConfig], Fetcher] | None = None,
    ) -> None:
        """``fetcher_for`` picks the fetcher of each source (default: ``fetcher``
        for all); the app gives sources added from chat a guarded one."""
        self._config = config
        self._store = store
        self._fetcher_for = fetcher_for or (lambda source: fetcher)
        self._clock = clock
        self._matcher = SubscriptionMatcher()
        self._known_health: dict[str, HealthState] = {}  # only this process writes health

    async def poll(self, source: SourceConfig, *, dry_run: bool = False) -> PollOutcome:
        """Poll one source; a failure is recorded and reported, never raised."""
        outcome = PollOutcome(source.name)
        retry_after: float | None = None
        try:
            await self._poll(source, outcome, dry_run)
        except SourceError as err:
            outcome.error, retry_after = str(err), err.retry_after
        except CareerbotError as err:
            outcome.error = str(err)
        except Exception as err:  # a parser bug must not stop the other sources
            log.exception("source %s: unexpected error", source.name)
            outcome.error = f"internal error: {type(err).__name__}: {err}"
        if outcome.error is not None:
            # One line: `careerbot sources` prints it in a tab-separated row.
            outcome.error = " ".join(outcome.error.split())
            if not dry_run:
                now = self._clock()
                retry_not_before = now + retry_after if retry_after is not None else None
                await self._store.record_failure(source.name, outcome.error, now, retry_not_before)
        if not dry_run:
            await self._watch_health(source.name, outcome)
        return outcome

    async def _watch_health(self, name: str, outcome: PollOutcome) -> None:
        """Track the source's health; queue one notice to the operator when it changes."""
        known = self._known_health.get(name)
        if known is HealthState.OK and outcome.ok and outcome.details is None:
            return  # a good poll that parsed nothing new cannot change a healthy source
        state = await self._store.source_state(name)
        if state is None:
            return  # removed while this poll ran
        bot = self._config.bot
        now = self._clock()
        facts = PollFacts(
            outcome.ok, state.consecutive_failures, outcome.error, outcome.details, outcome.postings
        )
        health, text = after_poll(
            name, state.health, facts, failures_to_tell=bot.ops_after_failures, now=now
        )
        self._known_health[name] = health.state
        if health == state.health:
            return
        notice = None
        if text is not None:
            log.warning("%s: %s", text.title, text.detail)
            if bot.ops_target is not None:
                notice = Notice.about(
                    bot.ops_target, name, text.title, text.detail, now, recovered=text.recovered
                )
        await self._store.set_health(name, health, notice)

    async def _poll(self, source: SourceConfig, outcome: PollOutcome, dry_run: bool) -> None:
        state = await self._store.source_state(source.name)
        spec = source_spec(self._config, source)
        previous = state.fingerprint if state else None
        # Read differently now (its config changed, or careerbot did): compare nothing
        # with the last poll, and take this poll as a new silent baseline.
        reread = previous is not None and previous.spec != reading_key(spec)
        fetcher = PollFetcher(
            self._fetcher_for(source), None if reread else previous, reading_key(spec)
        )
        collected: Collected | None
        try:
            collected = await collect_postings(spec, fetcher)
            unchanged = fetcher.same_as_previous()
        except SourceUnchanged:
            collected, unchanged = None, True
        if unchanged and await self._settled_unchanged(source.name, outcome, dry_run):
            return
        stored = await self._store.stored_postings(source.name)
        if collected is None:  # not even parsed: diff the postings of the last poll
            collected = Collected(
                [s.posting for s in stored.values() if not s.closed and s.missing_polls == 0]
            )
        if collected.partial:
            collected = _keep_stored_for_partial(collected, stored)
        fingerprint = fetcher.fingerprint() if collected.complete else None
        baseline = reread or state is None or not state.baseline_done
        await self._diff_and_save(
            source, baseline, stored, collected, fingerprint, outcome, dry_run
        )

    async def _settled_unchanged(self, name: str, outcome: PollOutcome, dry_run: bool) -> bool:
        """Settle a poll that found the source as last time without loading or diffing
        its postings, unless some posting is on its way to closing (False: diff it)."""
        present, closing = await self._store.open_posting_counts(name)
        if closing:
            return False
        outcome.unchanged = True
        outcome.postings = present
        if not dry_run:
            await self._store.record_unchanged(name, self._clock())
        return True

    async def _diff_and_save(
        self,
        source: SourceConfig,
        baseline: bool,
        stored: dict[str, StoredPosting],
        collected: Collected,
        fingerprint: PollFingerprint | None,
        outcome: PollOutcome,
        dry_run: bool,
    ) -> None:
        postings = collected.postings
        open_count = sum(1 for s in stored.values() if not s.closed)
        if not postings and open_count >= SUSPICIOUS_EMPTY_AFTER:
            raise SourceError(f"returned no postings although {open_count} were open; closing none")
        if baseline and not postings:
            # Likely a wrong URL or type: the baseline waits for a poll that finds postings,
            # so fixing the config later does not alert every posting as new.
            log.info("source %s: no postings yet; the baseline waits for some", source.name)
            if not dry_run:
                await self._store.apply_poll(
                    source.name, DiffResult(), [], self._clock(), baseline_done=False
                )
            outcome.baseline = True
            return
        result = diff(
            stored,
            postings,
            baseline=baseline,
            close_after=self._config.bot.close_after_polls,
            complete=collected.complete,
            partial=collected.partial,
        )
        await self._matcher.refresh(self._store)
        texts = None
        if self._matcher.semantic and result.changes:
            texts = await semantic.posting_texts(
                self._store,
                [change.posting for change in result.changes],
                self._config.bot.semantic_threshold,
                save=not dry_run,
            )
        matches = self._matcher.matches(result.changes, texts)
        now = self._clock()
        outcome.postings = len(postings)
        outcome.baseline = baseline
        outcome.changes = result.changes
        if collected.complete and not collected.partial:
            outcome.details = details_per_posting(postings)
        if dry_run:
            detected = utc_iso(now)
            outcome.alerts = [
                Alert(result.changes[m.change_index], m.subscription, detected) for m in matches
            ]
            return
        await self._store.apply_poll(source.name, result, matches, now, fingerprint)
