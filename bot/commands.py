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
from dataclasses import dataclass
from typing import Literal

from bot.catalog import CatalogError, SourceCatalog
from bot.config import Config, SourceConfig, format_duration, validate_target
from bot.errors import CareerbotError, QueryError
from bot.models import ChangeKind, Subscription
from bot.query import Query, parse_query
from bot.render import discord_escape, format_locations, slack_escape, truncate
from bot.sources import source_types
from bot.store import Store

Platform = Literal["slack", "discord"]

MAX_QUERY_CHARS = 500
PREVIEW_SIZE = 5
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
_SLACK_DIRECT = re.compile(r"slack:[UWD][A-Z0-9]*")
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

_COMMAND_NAMES = "subscribe, list, unsubscribe, pause, resume, preview, sources, status, help"


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
            "sources": self._sources,
            "status": self._status,
            "help": self._help,
            "source": self._source,
        }

    async def run(self, caller: Caller, text: str) -> str:
        """The reply to ``/jobs text``; a user's mistake is explained, never raised."""
        markup = _MARKUP[caller.platform]
        word, args = _first_word(text)
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
            f" {_query_code(text, markup)} will be posted in {where}."
            f" `/jobs preview QUERY` shows what matches now;"
            f" `/jobs unsubscribe {subscription.id}` stops it."
        )

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
        usage = f"Usage: `/jobs {verb} ID`" + ("" if verb == "unsubscribe" else " or `all`")
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

    # --- what there is ---------------------------------------------------------

    async def _preview(self, request: _Request) -> str:
        markup = request.markup
        text = request.args.strip()
        if not text:
            raise CommandError("Usage: `/jobs preview QUERY`. `/jobs help` shows the query syntax.")
        query = _parse(text, markup)
        open_postings = await self._store.open_postings()
        matching = [posting for posting, _ in open_postings if query.matches(posting)]
        shown = _query_code(text, markup)
        if not matching:
            return f"No open posting matches {shown} right now (of {len(open_postings)} open)."
        count = f"{len(matching)} open posting{'s' if len(matching) != 1 else ''}"
        lines = [f"{count} match {shown} right now. Newest first:"]
        for posting in matching[:PREVIEW_SIZE]:
            title = _safe(posting.title, _POSTING_PART_CHARS, markup)
            company = _safe(posting.company or "company unknown", _POSTING_PART_CHARS, markup)
            where = format_locations(posting, _POSTING_PART_CHARS, markup.escape)
            lines.append(f"• {title} — {company} — {where or 'location unknown'}")
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
            lines.append(f"{markup.code(source.name)} {outcome}{self._marks(source)}")
        counts = await self._store.outbox_counts()
        lines.append(f"Alerts waiting to be sent: {counts.pending}. Undeliverable: {counts.dead}.")
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


# --- helpers -------------------------------------------------------------------


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
    note = f" ({', '.join(notes)})" if notes else ""
    return f"`#{subscription.id}` {_query_code(subscription.query, markup)} → {where}{note}"


def _where_and_why(target: str, error: str | None, request: _Request) -> tuple[str, str]:
    """How the status names an alert's target, and ``": reason"``. Someone else's
    direct messages stay anonymous, reason included (it may name them)."""
    caller, markup = request.caller, request.markup
    if target == caller.dm_target:
        where = "your direct messages"
    elif _is_direct_message(target):
        return "someone's direct messages", ""
    else:
        where = markup.code(target)
    return where, f": {_safe(error or 'unknown error', _ERROR_SHOWN_CHARS, markup)}"


def _is_direct_message(target: str) -> bool:
    # Slack user ids start with U or W, and the id of a DM conversation with D.
    return target.startswith("discord:dm:") or _SLACK_DIRECT.fullmatch(target) is not None


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
            f"{code('salary>=150k')} (a currency too: {code('salary>=120kgbp')}).",
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
            "`sources` — the sources and how they are doing",
            "`status` — recent polls and failures, queued and undeliverable alerts",
            "`help` — this help",
            "Admins: `source add NAME TYPE URL [INTERVAL]`, `source remove NAME`,"
            " `source pause NAME`, `source resume NAME`",
            f"Queries: {syntax}",
            f"Example: {code(example)}",
        ]
    )
