"""The ``/jobs`` chat commands, platform-neutral: (caller, text) → the reply.

The Slack and Discord adapters hand over everything typed after ``/jobs`` and
show the returned text to the caller alone. Replies are plain text with `code`
spans, which both platforms render alike; every piece of text that comes from
a user, a posting or a source is escaped for the caller's platform, so it can
neither mention anyone nor inject formatting.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Literal

from bot import semantic
from bot.catalog import CatalogError, SourceCatalog
from bot.config import (
    Config,
    SourceConfig,
    format_duration,
    is_direct_message,
    validate_target,
)
from bot.delivery_modes import (
    INSTANT,
    DeliveryMode,
    ModeError,
    Policy,
    QuietHours,
    format_local,
    parse_zone,
    policy_for,
)
from bot.errors import CareerbotError, QueryError
from bot.identity import group_jobs
from bot.models import ChangeKind, Posting, Subscription
from bot.query import PostingText, Query, TermResult, explain, parse_query
from bot.render import discord_escape, format_locations, slack_escape, truncate
from bot.source_health import HealthState, describe
from bot.sources import source_types
from bot.store import Store
from bot.text import encodable

Platform = Literal["slack", "discord"]

MAX_QUERY_CHARS = 500
PREVIEW_SIZE = 5
SUBSCRIBE_PREVIEW_SIZE = 3
BACKFILL_MAX = 20  # alerts one backfill may queue: the newest matching postings
DEAD_LETTERS_SHOWN = 5
HELD_TARGETS_SHOWN = 5
MAX_REPLY_CHARS = 1900  # Discord refuses messages over 2000 characters
_QUERY_SHOWN_CHARS = 200
_POSTING_PART_CHARS = 100
_ERROR_SHOWN_CHARS = 200
_MAX_ID = 2**63 - 1  # SQLite's largest integer
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FIRST_WORD = re.compile(r"\s*(\S*)\s*(.*)", re.DOTALL)
_SUBSCRIPTION_ID = re.compile(r"#?(\d{1,19})")
_BACKTICK_LOOKALIKE = "\u02cb"  # keeps user text from closing a code span


@dataclass(frozen=True, slots=True)
class Caller:
    platform: Platform
    user_id: str
    channel_id: str  # where the command was typed
    is_admin: Callable[[], Awaitable[bool]]  # asked only when an admin command runs

    @property
    def key(self) -> str:
        """How subscriptions record their creator."""
        return f"{self.platform}:{self.user_id}"

    @property
    def channel_target(self) -> str:
        return f"{self.platform}:{self.channel_id}"

    @property
    def dm_target(self) -> str:
        # A Slack user id is also the id of that user's DM with the bot.
        if self.platform == "slack":
            return f"slack:{self.user_id}"
        return f"discord:dm:{self.user_id}"


class CommandError(CareerbotError):
    """A command cannot be done as typed; the message is the reply."""


@dataclass(frozen=True, slots=True)
class _Markup:
    """How text from elsewhere is made safe on one platform: ``escape`` for prose,
    ``escape_code`` inside code (Discord shows code as typed; Slack still reads
    its ``&``, ``<`` and ``>`` entities there)."""

    escape: Callable[[str], str]
    escape_code: Callable[[str], str]

    def code(self, text: str) -> str:
        return f"`{self._inert(text)}`"

    def code_block(self, text: str) -> str:
        return f"```\n{self._inert(text)}\n```"

    def _inert(self, text: str) -> str:
        return self.escape_code(text.replace("`", _BACKTICK_LOOKALIKE))


_MARKUP: dict[Platform, _Markup] = {
    "slack": _Markup(slack_escape, slack_escape),
    "discord": _Markup(discord_escape, str),
}

_ADMIN_NEEDED: dict[Platform, str] = {
    "discord": "Only server admins can manage sources: that needs the Manage Server permission"
    " (or a role listed in the bot's `admin_role_ids`).",
    "slack": "Only admins can manage sources: that needs a workspace admin or owner"
    " (or a user listed in the bot's `admin_user_ids`).",
}

_COMMAND_NAMES = (
    "subscribe, list, unsubscribe, pause, resume, preview, backfill, why, digest, quiet, tz,"
    " sources, status, help"
)


@dataclass(frozen=True, slots=True)
class _Request:
    caller: Caller
    args: str  # the raw text after the subcommand
    markup: _Markup


class Commands:
    def __init__(
        self,
        store: Store,
        catalog: SourceCatalog,
        config: Config,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._config = config
        self._clock = clock
        self._subscribing = asyncio.Lock()  # the limit check and the insert as one step
        self._handlers: dict[str, Callable[[_Request], Awaitable[str]]] = {
            "subscribe": self._subscribe,
            "list": self._list,
            "unsubscribe": self._unsubscribe,
            "pause": self._pause,
            "resume": self._resume,
            "preview": self._preview,
            "backfill": self._backfill,
            "why": self._why,
            "sources": self._sources,
            "status": self._status,
            "help": self._help,
            "source": self._source,
            "digest": self._digest,
            "quiet": self._quiet,
            "tz": self._tz,
        }

    async def run(self, caller: Caller, text: str) -> str:
        """The reply to ``/jobs text``; a user's mistake is explained, never raised."""
        markup = _MARKUP[caller.platform]
        word, args = _first_word(encodable(text))  # lone surrogates cannot be stored
        if not word:
            return _help_text(markup)
        handler = self._handlers.get(word.lower())
        if handler is None:
            return (
                f"There is no {markup.code('/jobs ' + _one_line(word)[:40])} command."
                f" Commands: {_COMMAND_NAMES} (and source, for admins)."
                " `/jobs help` explains them."
            )
        try:
            reply = await handler(_Request(caller, args, markup))
        except CommandError as err:
            reply = str(err)
        except ModeError as err:  # its message quotes what the user typed
            reply = f"{markup.escape(str(err))}."
        return _fit(reply)

    # --- subscriptions ---------------------------------------------------------

    async def _subscribe(self, request: _Request) -> str:
        caller, markup = request.caller, request.markup
        word, rest = _first_word(request.args)
        direct = word.lower() == "dm"
        text = (rest if direct else request.args).strip()
        if not text:
            raise CommandError(
                "Usage: `/jobs subscribe QUERY` (alerts here) or `/jobs subscribe dm QUERY`"
                " (alerts in your direct messages). `/jobs help` shows the query syntax."
            )
        _parse(text, markup)
        target = caller.dm_target if direct else caller.channel_target
        try:
            validate_target(target)
        except ValueError:
            raise CommandError("Alerts cannot be sent there; try another channel.") from None
        bot = self._config.bot
        async with self._subscribing:
            mine = await self._store.subscriptions_created_by(caller.key)
            for existing in mine:
                if (existing.target, existing.query) == (target, text):
                    return f"You already have that subscription: `#{existing.id}`."
            if len(mine) >= bot.max_subscriptions_per_user:
                raise CommandError(
                    f"You have {len(mine)} subscriptions, the most allowed"
                    " (`max_subscriptions_per_user`). Remove one with"
                    " `/jobs unsubscribe ID` first."
                )
            if len(await self._store.subscriptions_for_target(target)) >= (
                bot.max_subscriptions_per_channel
            ):
                where = "Your direct messages have" if direct else "This channel has"
                raise CommandError(
                    f"{where} {bot.max_subscriptions_per_channel} subscriptions, the most allowed"
                    " (`max_subscriptions_per_channel`)."
                )
            subscription = await self._store.add_subscription(
                target,
                text,
                (ChangeKind.NEW, ChangeKind.CHANGED),
                origin="chat",
                created_by=caller.key,
                now=self._clock(),
            )
        where = "your direct messages" if direct else "this channel"
        return (
            f"Subscribed (`#{subscription.id}`): new and changed postings matching"
            f" {_query_code(text, markup)} will be posted in {where};"
            f" `/jobs unsubscribe {subscription.id}` stops it.\n"
        ) + await self._matching_now(subscription, where, markup)

    async def _matching_now(self, subscription: Subscription, where: str, markup: _Markup) -> str:
        """What a new subscription matches already, and the offer to send it once."""
        matching = await open_matches(self._store, self._config, parse_query(subscription.query))
        if not matching:
            return "No open posting matches it right now."
        count = len(matching)
        lines = [f"{_postings(count)} match it right now. Newest first:"]
        lines += [_posting_line(p, markup) for p in matching[:SUBSCRIBE_PREVIEW_SIZE]]
        lines.append(
            f"`/jobs backfill {subscription.id}` posts {backfill_span(count)} in {where} now"
            " (once)."
        )
        return "\n".join(lines)

    async def _list(self, request: _Request) -> str:
        caller, markup = request.caller, request.markup
        mine = await self._store.subscriptions_created_by(caller.key)
        others_here = [
            s
            for s in await self._store.subscriptions_for_target(caller.channel_target)
            if s.created_by != caller.key
        ]
        limit = self._config.bot.max_subscriptions_per_user
        if mine:
            lines = [f"Your subscriptions ({len(mine)} of {limit}):"]
            lines += [_subscription_line(s, caller, markup) for s in mine]
            settings = (await self._store.delivery_settings([caller.key])).get(caller.key)
            if settings is not None and (settings.timezone or settings.quiet):
                zone = settings.timezone or self._config.bot.timezone
                quiet = markup.code(settings.quiet) if settings.quiet else "none"
                lines.append(f"Your time zone: {markup.code(zone)}; quiet hours: {quiet}.")
        else:
            lines = ["You have no subscriptions; start one with `/jobs subscribe QUERY`."]
        if others_here:
            lines.append("Others in this channel:")
            lines += [_subscription_line(s, caller, markup) for s in others_here]
        return "\n".join(lines)

    async def _unsubscribe(self, request: _Request) -> str:
        subscription = await self._own_subscription(request.caller, request.args, "unsubscribe")
        await self._store.remove_subscription(subscription.id)
        return f"Removed `#{subscription.id}` ({_query_code(subscription.query, request.markup)})."

    async def _pause(self, request: _Request) -> str:
        return await self._set_paused(request, paused=True)

    async def _resume(self, request: _Request) -> str:
        return await self._set_paused(request, paused=False)

    async def _set_paused(self, request: _Request, *, paused: bool) -> str:
        verb = "pause" if paused else "resume"
        done = "paused" if paused else "resumed"
        if request.args.strip().lower() == "all":
            mine = await self._store.subscriptions_created_by(request.caller.key)
            if not mine:
                return "You have no subscriptions."
            changed = await self._store.set_subscriptions_paused((s.id for s in mine), paused)
            if not changed:
                return f"All your subscriptions were already {done}."
            return f"{changed} of your subscriptions {_was(changed)} {done}."
        subscription = await self._own_subscription(request.caller, request.args, verb)
        if subscription.paused == paused:
            return f"`#{subscription.id}` is already {done}."
        await self._store.set_subscriptions_paused([subscription.id], paused)
        if paused:
            return f"Paused `#{subscription.id}`; `/jobs resume {subscription.id}` restarts it."
        return f"Resumed `#{subscription.id}`."

    async def _own_subscription(self, caller: Caller, args: str, verb: str) -> Subscription:
        usage = f"Usage: `/jobs {verb} ID`" + (" or `all`" if verb in ("pause", "resume") else "")
        found = _SUBSCRIPTION_ID.fullmatch(args.strip())
        if found is None:
            raise CommandError(f"{usage} (the numbers `/jobs list` shows).")
        subscription_id = int(found.group(1))
        subscription = (
            await self._store.subscription(subscription_id) if subscription_id <= _MAX_ID else None
        )
        if subscription is None:
            raise CommandError(f"There is no subscription `#{subscription_id}`.")
        if subscription.origin == "config":
            raise CommandError(
                f"`#{subscription_id}` is declared in the config file;"
                " only the operator can change it there."
            )
        if subscription.created_by != caller.key:
            raise CommandError(
                f"`#{subscription_id}` is not yours: only the person who created it can {verb} it."
            )
        return subscription

    # --- delivery modes (bot/delivery_modes.py) ---------------------------------

    async def _digest(self, request: _Request) -> str:
        caller, markup = request.caller, request.markup
        word, rest = _first_word(request.args)
        if _SUBSCRIPTION_ID.fullmatch(word) is None or not rest.strip():
            raise CommandError(
                "Usage: `/jobs digest ID daily HH:MM`, `/jobs digest ID weekly DAY HH:MM`"
                " or `/jobs digest ID instant` (ID as `/jobs list` shows it; times in your"
                " time zone, see `/jobs tz`)."
            )
        subscription = await self._own_subscription(caller, word, "change")
        mode = DeliveryMode.parse(rest)
        now = self._clock()
        await self._store.set_delivery(subscription.id, str(mode), now)
        if not mode.is_digest:
            return f"`#{subscription.id}` is instant again: one message per alert."
        zone = (await self._policy_of(caller)).zone
        next_at = format_local(mode.next_digest(now, zone), zone)
        return (
            f"`#{subscription.id}` now comes as {mode.describe()} ({markup.code(zone.key)}),"
            f" the next on {markup.code(next_at)}."
            f" `/jobs digest {subscription.id} instant` goes back to one message per alert."
        )

    async def _quiet(self, request: _Request) -> str:
        caller, markup = request.caller, request.markup
        text = request.args.strip()
        now = self._clock()
        if text.lower() == "off":
            await self._store.set_quiet_hours(caller.key, None, now)
            return "Quiet hours off: your alerts go out as they come (or in your digests)."
        if text:
            hours = QuietHours.parse(text)
            await self._store.set_quiet_hours(caller.key, str(hours), now)
        policy = await self._policy_of(caller)
        if policy.quiet is None:
            return (
                "You have no quiet hours. `/jobs quiet 22:00-07:00` holds the alerts of your"
                " subscriptions overnight and sends them as one digest at 07:00."
            )
        hours_text = markup.code(str(policy.quiet))
        zone = markup.code(policy.zone.key)
        ends = markup.code(str(policy.quiet).partition("-")[2])
        lead = "Quiet hours set" if text else "Your quiet hours"
        return (
            f"{lead}: {hours_text} ({zone}). Alerts of your subscriptions that arrive then"
            f" are held and sent as one digest at {ends}. `/jobs quiet off` ends them."
        )

    async def _tz(self, request: _Request) -> str:
        caller, markup = request.caller, request.markup
        text = request.args.strip()
        if text:
            name = parse_zone(text)
            await self._store.set_timezone(caller.key, name, self._clock())
        policy = await self._policy_of(caller)
        local = markup.code(format_local(self._clock(), policy.zone))
        shown = f"{markup.code(policy.zone.key)} (it is {local} there)"
        if text:
            return f"Your time zone is now {shown}: your digests and quiet hours follow it."
        settings = (await self._store.delivery_settings([caller.key])).get(caller.key)
        if settings is None or settings.timezone is None:
            return (
                f"Your time zone is the bot's default, {shown}."
                " Set yours with `/jobs tz Europe/Zurich` (any IANA name)."
            )
        return f"Your time zone is {shown}."

    async def _policy_of(self, caller: Caller) -> Policy:
        """The caller's time zone and quiet hours (the mode part is not used)."""
        settings = (await self._store.delivery_settings([caller.key])).get(caller.key)
        return policy_for(INSTANT, settings, self._config.bot.timezone)

    # --- what there is ---------------------------------------------------------

    async def _preview(self, request: _Request) -> str:
        markup = request.markup
        text = request.args.strip()
        if not text:
            raise CommandError("Usage: `/jobs preview QUERY`. `/jobs help` shows the query syntax.")
        query = _parse(text, markup)
        open_postings = await self._store.open_postings()
        matching = await semantic.matching(
            self._store,
            query,
            [posting for posting, _ in open_postings],
            self._config.bot.semantic_threshold,
        )
        shown = _query_code(text, markup)
        if not matching:
            return f"No open posting matches {shown} right now (of {len(open_postings)} open)."
        count = f"{len(matching)} open posting{'s' if len(matching) != 1 else ''}"
        # One line per job: the same role on several sources or in several cities.
        jobs = group_jobs(matching, [p for p, _ in open_postings], await self._store.open_jobs())
        if len(jobs) < len(matching):
            count += f" ({len(jobs)} job{'s' if len(jobs) != 1 else ''})"
        lines = [f"{count} match {shown} right now. Newest first:"]
        for job in jobs[:PREVIEW_SIZE]:
            posting = replace(job.lead, locations=job.locations)
            also = ", ".join(job.also_on)
            also = f" (also on: {_safe(also, _POSTING_PART_CHARS, markup)})" if also else ""
            lines.append(_posting_line(posting, markup) + also)
        return "\n".join(lines)

    async def _backfill(self, request: _Request) -> str:
        subscription = await self._own_subscription(request.caller, request.args, "backfill")
        number = f"`#{subscription.id}`"
        if subscription.paused:
            raise CommandError(f"{number} is paused; `/jobs resume {subscription.id}` it first.")
        done = await backfill(self._store, self._config, subscription, self._clock())
        if not done.matching:
            return f"No open posting matches {number} right now."
        if not done.queued:
            return f"Nothing to send: {number} already had alerts about those postings."
        alerts = f"{done.queued} alert{'s' if done.queued != 1 else ''}"
        return f"Queued {alerts} for {number}; they will be posted within a minute."

    async def _why(self, request: _Request) -> str:
        caller, markup = request.caller, request.markup
        reference = request.args.strip().strip("`")  # as copied from a code span
        if not reference:
            raise CommandError(
                "Usage: `/jobs why SOURCE:ID`, with the ID an alert or `/jobs preview` shows."
            )
        found = await self._store.find_postings(reference)
        shown = _query_code(reference, markup)
        if not found:
            raise CommandError(
                f"There is no posting {shown}; copy the ID from an alert or `/jobs preview`."
            )
        if len(found) > 1:
            refs = ", ".join(markup.code(posting.ref) for posting, _ in found)
            raise CommandError(f"{shown} names several postings: {refs}. Which one?")
        posting, is_open = found[0]
        mine = await self._store.subscriptions_created_by(caller.key)
        here = await self._store.subscriptions_for_target(caller.channel_target)
        lines = [_posting_line(posting, markup) + ("" if is_open else " (closed)")]
        if not mine and not here:
            lines.append("You have no subscriptions, and none posts in this channel.")
        for subscription in sorted({s.id: s for s in [*mine, *here]}.values(), key=_by_id):
            lines += await why_lines(self._store, self._config, subscription, posting, markup)
        return "\n".join(lines)

    async def _sources(self, request: _Request) -> str:
        markup = request.markup
        states = {state.name: state for state in await self._store.source_states()}
        sources = self._catalog.sources()
        if not sources:
            return "No sources yet."
        now = self._clock()
        lines = ["Sources:"]
        for source in sources:
            state = states.get(source.name)
            last_success = _ago(state.last_success_at if state else None, now)
            open_postings = state.open_postings if state else 0
            failures = state.consecutive_failures if state else 0
            lines.append(
                f"{markup.code(source.name)} {source.type} · every"
                f" {format_duration(self._config.interval_of(source))} · last success"
                f" {last_success} · {open_postings} open · {failures} failures"
                f"{self._marks(source)}"
            )
        return "\n".join(lines)

    def _marks(self, source: SourceConfig) -> str:
        marks = ["chat"] if self._catalog.is_chat(source.name) else []
        if not source.enabled:
            marks.append("paused" if marks else "disabled")
        return f" ({', '.join(marks)})" if marks else ""

    async def _status(self, request: _Request) -> str:
        markup = request.markup
        now = self._clock()
        states = {state.name: state for state in await self._store.source_states()}
        lines = ["Sources:"]
        for source in self._catalog.sources():
            state = states.get(source.name)
            if state is None or state.last_poll_at is None:
                outcome = "not polled yet"
            elif state.consecutive_failures:
                error = _safe(state.last_error or "unknown error", _ERROR_SHOWN_CHARS, markup)
                outcome = (
                    f"last poll {_ago(state.last_poll_at, now)} failed"
                    f" ({state.consecutive_failures} in a row): {error}"
                )
            else:
                outcome = f"last poll {_ago(state.last_poll_at, now)} ok"
            if state is not None and state.health.state is not HealthState.OK:
                since = now - (state.health.since or now)
                outcome += f"; health: {describe(state.health, f'for {_span(since)}')}"
            lines.append(f"{markup.code(source.name)} {outcome}{self._marks(source)}")
        counts = await self._store.outbox_counts()
        lines.append(f"Alerts waiting to be sent: {counts.pending}. Undeliverable: {counts.dead}.")
        digests = await self._store.held_for_digests(now)
        if digests.next_at is not None:
            lines.append(
                f"Held for digests and quiet hours: {digests.count},"
                f" the next going out in {_span(digests.next_at - now)}."
            )
        held = await self._store.held_targets(now)
        for target in held[:HELD_TARGETS_SHOWN]:
            where, reason = _where_and_why(target.target, target.reason, request)
            lines.append(
                f"Held back: {target.waiting} to {where},"
                f" next try in {_span(target.next_try - now)}{reason}"
            )
        if len(held) > HELD_TARGETS_SHOWN:
            lines.append(f"… and {len(held) - HELD_TARGETS_SHOWN} more targets held back.")
        dead_letters = await self._store.recent_dead_letters(DEAD_LETTERS_SHOWN)
        if dead_letters:
            lines.append("Most recent undeliverable alerts:")
        for dead in dead_letters:
            where, reason = _where_and_why(dead.target, dead.last_error, request)
            lines.append(f"`#{dead.id}` to {where}, queued {_ago(dead.created_at, now)}{reason}")
        return "\n".join(lines)

    async def _help(self, request: _Request) -> str:
        return _help_text(request.markup)

    # --- sources (admins) ------------------------------------------------------

    async def _source(self, request: _Request) -> str:
        caller, markup = request.caller, request.markup
        if not await caller.is_admin():
            return _ADMIN_NEEDED[caller.platform]
        usage = (
            "Usage: `/jobs source add NAME TYPE URL [INTERVAL]`, `/jobs source remove NAME`,"
            " `/jobs source pause NAME`, `/jobs source resume NAME`."
            f" Types: {', '.join(t for t in source_types() if t != 'html')}."
        )
        try:
            words = shlex.split(request.args)
        except ValueError:
            raise CommandError(usage) from None
        action, args = (words[0].lower(), words[1:]) if words else ("", [])
        if not (action == "add" and len(args) in (3, 4)) and not (
            action in ("remove", "pause", "resume") and len(args) == 1
        ):
            raise CommandError(usage)
        name = args[0]
        try:
            return await self._change_source(caller, action, args, markup)
        except CatalogError as err:
            raise CommandError(
                f"Cannot {action} source {markup.code(name)}: {markup.escape(str(err))}."
            ) from None

    async def _change_source(
        self, caller: Caller, action: str, args: list[str], markup: _Markup
    ) -> str:
        name = args[0]
        if action == "add":
            interval = args[3] if len(args) == 4 else None
            source = await self._catalog.add(
                name, args[1], args[2], interval, added_by=caller.key, now=self._clock()
            )
            every = format_duration(self._config.interval_of(source))
            return (
                f"Added source {markup.code(name)} ({source.type}, every {every}). Its first"
                " poll records what is there now; alerts start with the changes after it."
            )
        if action == "remove":
            await self._catalog.remove(name)
            return f"Removed source {markup.code(name)} and its stored postings."
        if not await self._catalog.set_enabled(name, action == "resume"):
            return f"Source {markup.code(name)} is already {action}d."
        return f"Source {markup.code(name)} {action}d."


# --- shared with the command line ----------------------------------------------

PLAIN = _Markup(str, str)  # for a terminal


async def open_matches(store: Store, config: Config, query: Query) -> list[Posting]:
    """The stored open postings that ``query`` matches, newest first."""
    postings = [posting for posting, _ in await store.open_postings()]
    return await semantic.matching(store, query, postings, config.bot.semantic_threshold)


@dataclass(frozen=True, slots=True)
class Backfill:
    matching: int  # open postings the subscription matches now
    queued: int  # alerts queued: of the newest BACKFILL_MAX, those never alerted before


async def backfill(
    store: Store, config: Config, subscription: Subscription, now: float
) -> Backfill:
    """Queue alerts, once, for the open postings a subscription already matches."""
    matching = await open_matches(store, config, parse_query(subscription.query))
    queued = await store.backfill(subscription.id, matching[:BACKFILL_MAX], now)
    return Backfill(len(matching), queued)


def backfill_span(matching: int) -> str:
    """Which of ``matching`` postings a backfill sends: "these 3", "the newest 20"."""
    return f"these {matching}" if matching <= BACKFILL_MAX else f"the newest {BACKFILL_MAX}"


async def why_lines(
    store: Store, config: Config, subscription: Subscription, posting: Posting, markup: _Markup
) -> list[str]:
    """Whether the subscription matches the posting, and how each of its terms fared."""
    head = f"`#{subscription.id}` {_query_code(subscription.query, markup)}"
    try:
        query = parse_query(subscription.query)
    except QueryError as err:
        return [f"{head}: its query is not valid ({markup.escape(str(err))})"]
    text = PostingText.of(posting)
    if query.semantic:
        threshold = config.bot.semantic_threshold
        [text] = await semantic.posting_texts(store, [posting], threshold, save=False)
    verdict = "matches" if query.matches_text(text) else "does not match"
    lines = [f"{head} {verdict}:"]
    for result in explain(query, posting, text):
        mark = "✓" if result.satisfied else "✗"
        lines.append(f"  {mark} {markup.code(result.term)} — {_evidence(result, markup)}")
    return lines


def _evidence(result: TermResult, markup: _Markup) -> str:
    """Where a term was found ("in location "San Francisco, CA""), or what was measured."""
    if result.field is not None:
        where = f"in {result.field}"
        if result.value:
            where += f' "{_safe(result.value, _POSTING_PART_CHARS, markup)}"'
        return where + (": excluded" if result.excluded else "")
    if result.value:
        return markup.escape(result.value)
    return "yes" if result.found else "not found"


# --- helpers -------------------------------------------------------------------


def _posting_line(posting: Posting, markup: _Markup) -> str:
    """One line per posting: "• Title — Company — Where · `source:id`"."""
    title = _safe(posting.title, _POSTING_PART_CHARS, markup)
    company = _safe(posting.company or "company unknown", _POSTING_PART_CHARS, markup)
    where = format_locations(posting, _POSTING_PART_CHARS, markup.escape)
    ref = markup.code(truncate(_one_line(posting.ref), _QUERY_SHOWN_CHARS))
    return f"• {title} — {company} — {where or 'location unknown'} · {ref}"


def _postings(count: int) -> str:
    return f"{count} open posting{'s' if count != 1 else ''}"


def _by_id(subscription: Subscription) -> int:
    return subscription.id


def _first_word(text: str) -> tuple[str, str]:
    """The first word of ``text`` and the rest, as typed."""
    found = _FIRST_WORD.match(text)
    assert found is not None  # the pattern matches any text
    return found.group(1), found.group(2)


def _parse(text: str, markup: _Markup) -> Query:
    """The query, or a ``CommandError`` that points at its problem."""
    if len(text) > MAX_QUERY_CHARS:
        raise CommandError(f"That query is too long: at most {MAX_QUERY_CHARS} characters.")
    try:
        return parse_query(text)
    except QueryError as err:
        # The pointer lines up under the query only when the query is one line.
        pointer = QueryError(err.reason, _one_line(err.query), err.position).pointer()
        block = f"\n{markup.code_block(pointer)}" if err.position is not None else ""
        raise CommandError(f"That query is not valid: {markup.escape(str(err))}{block}") from None


def _one_line(text: str) -> str:
    """Control characters as spaces, one for one, so positions in ``text`` still hold."""
    return _CONTROL.sub(" ", text)


def _query_code(query: str, markup: _Markup) -> str:
    return markup.code(truncate(_one_line(query), _QUERY_SHOWN_CHARS))


def _safe(text: str, limit: int, markup: _Markup) -> str:
    return markup.escape(truncate(" ".join(text.split()), limit))


def _subscription_line(subscription: Subscription, caller: Caller, markup: _Markup) -> str:
    if subscription.target == caller.channel_target:
        where = "here"
    elif subscription.target == caller.dm_target:
        where = "your direct messages"
    else:
        where = markup.code(subscription.target)
    notes = []
    if subscription.paused:
        notes.append("paused")
    if subscription.origin == "config":
        notes.append("from the config file")
    mode = DeliveryMode.parse(subscription.delivery)
    if mode.is_digest:
        notes.append(mode.describe())
    note = f" ({', '.join(notes)})" if notes else ""
    return f"`#{subscription.id}` {_query_code(subscription.query, markup)} → {where}{note}"


def _where_and_why(target: str, error: str | None, request: _Request) -> tuple[str, str]:
    """How the status names an alert's target, and ``": reason"``. Someone else's
    direct messages stay anonymous, reason included (it may name them)."""
    caller, markup = request.caller, request.markup
    if target == caller.dm_target:
        where = "your direct messages"
    elif is_direct_message(target):
        return "someone's direct messages", ""
    else:
        where = markup.code(target)
    return where, f": {_safe(error or 'unknown error', _ERROR_SHOWN_CHARS, markup)}"


def _ago(timestamp: float | None, now: float) -> str:
    return "never" if timestamp is None else f"{_span(now - timestamp)} ago"


def _span(seconds: float) -> str:
    whole = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def _was(count: int) -> str:
    return "was" if count == 1 else "were"


def _fit(reply: str) -> str:
    """The reply within one message, cut at a line boundary when too long."""
    if len(reply) <= MAX_REPLY_CHARS:
        return reply
    more = "\n… (more not shown)"
    cut = reply[: MAX_REPLY_CHARS - len(more)]
    if "\n" in cut:
        cut = cut[: cut.rindex("\n")]
    return cut + more


def _help_text(markup: _Markup) -> str:
    code = markup.code
    phrase = '"exact phrase"'
    topic = '~"a topic"'
    example = '"gaussian splatting" OR nerf location:london'
    syntax = " ".join(
        [
            "Words match whole words in the title, company, team, locations and description,"
            " ignoring case and accents;",
            f"{code(phrase)} a phrase;",
            f"{code('a b')} both;",
            f"{code('a OR b')} either (OR binds tighter than the implicit AND);",
            f"{code('( … )')} groups;",
            f"{code('-word')} excludes;",
            f"{code('title:')} {code('company:')} {code('location:')} {code('team:')}"
            f" {code('source:')} look in one field;",
            f"{code('remote:yes')};",
            f"{code('salary>=150k')} (a currency too: {code('salary>=120kgbp')});",
            f"{code(topic)} close in meaning (where the semantic extra is installed).",
        ]
    )
    return "\n".join(
        [
            "/jobs commands:",
            "`subscribe QUERY` — alerts for new and changed postings matching QUERY, here",
            "`subscribe dm QUERY` — the same, in your direct messages",
            "`list` — your subscriptions and this channel's",
            "`unsubscribe ID` — remove one of your subscriptions",
            "`pause ID|all`, `resume ID|all` — stop or restart alerts of yours",
            "`preview QUERY` — how many open postings match now, and the newest few",
            "`backfill ID` — post, once, the open postings a subscription of yours matches",
            "`why SOURCE:ID` — which of your subscriptions match a posting (the ID under"
            " each alert), and which terms matched where",
            "`digest ID daily HH:MM`, `digest ID weekly DAY HH:MM`, `digest ID instant` —"
            " one message a day or a week instead of one per alert",
            "`quiet HH:MM-HH:MM`, `quiet off` — hold your alerts then; they come as one digest"
            " when the quiet hours end",
            "`tz ZONE` — your time zone for digests and quiet hours, e.g. `Europe/Zurich`",
            "`sources` — the sources and how they are doing",
            "`status` — recent polls and failures, queued and undeliverable alerts",
            "`help` — this help",
            "Admins: `source add NAME TYPE URL [INTERVAL]`, `source remove NAME`,"
            " `source pause NAME`, `source resume NAME`",
            f"Queries: {syntax}",
            f"Example: {code(example)}",
        ]
    )
