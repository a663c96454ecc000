"""The ``careerbot`` command line: parse arguments, call the app, print results.

Every error a user can cause ends as one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bot import __version__, semantic
from bot.app import App, install_stop_signals
from bot.catalog import SourceCatalog
from bot.commands import (
    PLAIN,
    SUBSCRIBE_PREVIEW_SIZE,
    backfill,
    backfill_span,
    open_matches,
    why_lines,
)
from bot.conditional import PollFetcher
from bot.config import (
    Config,
    LoadedConfig,
    SourceConfig,
    environment_problems,
    format_duration,
    load_config,
    resolve_config_path,
    validate_target,
)
from bot.delivery_modes import (
    INSTANT,
    DeliveryMode,
    Policy,
    QuietHours,
    format_local,
    parse_zone,
    policy_for,
    settings_owner,
)
from bot.errors import CareerbotError, ConfigError, QueryError
from bot.fetch import HttpFetcher, make_client
from bot.health import HOST as HEALTH_HOST
from bot.identity import Job, group_jobs
from bot.logs import LOG_FORMATS, configure_logging
from bot.models import ChangeKind, Posting, utc_iso
from bot.pipeline import source_spec
from bot.query import parse_query
from bot.render import render_text
from bot.source_health import describe
from bot.sources import SourceSpec, collect_postings, collector_for, source_types
from bot.store import Store, backup_database

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_SEARCH_LIMIT = 20
MAX_ID = 2**63 - 1  # SQLite's largest integer
HEALTH_TIMEOUT = 5.0

log = logging.getLogger("bot")


class UsageError(CareerbotError):
    """A command was called with arguments it cannot use."""


def _common_options(defaults: bool) -> argparse.ArgumentParser:
    """``--config``, ``--log-level`` and ``--log-format``, accepted before and after the command.

    The copy on each command has no defaults, so it never overwrites a value
    given before the command.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        default=None if defaults else argparse.SUPPRESS,
        help="config file (default: $CAREERBOT_CONFIG, ./config.toml)",
    )
    common.add_argument(
        "--log-level",
        default="INFO" if defaults else argparse.SUPPRESS,
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level on stderr (default INFO)",
    )
    common.add_argument(
        "--log-format",
        default="auto" if defaults else argparse.SUPPRESS,
        choices=LOG_FORMATS,
        help="log lines on stderr: json, text, or auto (default: text on a terminal, else json)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options(defaults=False)
    parser = argparse.ArgumentParser(
        prog="careerbot", description="Self-hosted job-alert bot.", parents=[_common_options(True)]
    )
    parser.add_argument("--version", action="version", version=f"careerbot {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, description=help_text, parents=[common])

    command("run", "run the service until SIGTERM/SIGINT")
    once = command("once", "poll every enabled source (or one) once, deliver, exit")
    once.add_argument("--dry-run", action="store_true", help="print alerts, change no state")
    once.add_argument("--source", metavar="NAME", help="poll only this source")
    parse = command("parse", "fetch and parse one source; print postings as JSON lines")
    parse.add_argument("--type", dest="source_type", metavar="TYPE", help="source type")
    parse.add_argument("--source", metavar="NAME", help="parse this configured source")
    parse.add_argument("location", nargs="?", metavar="LOCATION", help="http(s):// URL or file:")
    search = command("search", "search stored open postings")
    search.add_argument("query", metavar="QUERY")
    search.add_argument("--json", action="store_true", help="one JSON posting per line")
    search.add_argument("--limit", type=_positive_int, default=DEFAULT_SEARCH_LIMIT)
    subscribe = command("subscribe", "add a subscription")
    subscribe.add_argument("query", metavar="QUERY")
    subscribe.add_argument("--target", required=True, help="console, webhook:NAME, slack:C…")
    subscribe.add_argument(
        "--notify",
        default="new,changed",
        help="comma-separated kinds: new, changed, closed, reopened (default new,changed)",
    )
    subscribe.add_argument(
        "--digest",
        metavar="WHEN",
        default=INSTANT,
        help="'daily HH:MM' or 'weekly DAY HH:MM': one digest instead of one message per"
        " alert, in the target's time zone (careerbot tz); default instant",
    )
    command("subscriptions", "list subscriptions")
    digest = command("digest", "send a subscription's alerts instantly or as a daily/weekly digest")
    digest.add_argument("id", type=_positive_int, metavar="ID")
    digest.add_argument(
        "when", nargs="+", metavar="WHEN", help="instant, daily HH:MM or weekly DAY HH:MM"
    )
    timezone = command("tz", "show or set the time zone of a target's digests and quiet hours")
    timezone.add_argument("--target", required=True, help="console, webhook:NAME, slack:C…")
    timezone.add_argument("zone", nargs="?", metavar="ZONE", help="an IANA name: Europe/Zurich")
    quiet = command("quiet", "show or set a target's quiet hours: alerts wait for their end")
    quiet.add_argument("--target", required=True, help="console, webhook:NAME, slack:C…")
    quiet.add_argument("hours", nargs="?", metavar="HOURS", help="HH:MM-HH:MM, or off")
    unsubscribe = command("unsubscribe", "remove a subscription")
    unsubscribe.add_argument("id", type=_positive_int, metavar="ID")
    backfill = command("backfill", "queue alerts, once, for what a subscription matches now")
    backfill.add_argument("id", type=_positive_int, metavar="ID")
    why = command("why", "which subscriptions match a posting, and which of their terms")
    why.add_argument("posting", metavar="SOURCE:ID", help="as alerts and search show it")
    command("sources", "show each source's state")
    command("check-config", "validate the config and the environment it needs")
    command("health", "ask the running service's /healthz (for container health checks)")
    backup = command("backup", "write a consistent copy of the database (safe while running)")
    backup.add_argument("path", type=Path, metavar="PATH", help="where to write the copy")
    return parser


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 1 <= number <= MAX_ID:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_ID}")
    return number


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, args.log_format, sys.stderr)
    handler = COMMANDS[args.command]
    try:
        return asyncio.run(handler(args))
    except CareerbotError as err:
        print(f"careerbot: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`careerbot parse … | head`): not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _load(args: argparse.Namespace) -> LoadedConfig:
    return load_config(resolve_config_path(args.config))


def _require_environment(config: Config) -> None:
    problems = environment_problems(config)
    if problems:
        raise ConfigError(problems[0])


async def cmd_run(args: argparse.Namespace) -> int:
    loaded = _load(args)
    _require_environment(loaded.config)
    stop = asyncio.Event()
    install_stop_signals(stop)
    async with App.open(loaded) as app:
        await app.run(stop)
    return EXIT_OK


async def cmd_once(args: argparse.Namespace) -> int:
    loaded = _load(args)
    _require_environment(loaded.config)
    async with App.open(loaded, dry_run=args.dry_run) as app:
        report = await app.once(args.source, dry_run=args.dry_run)
    for outcome in report.outcomes:
        if not outcome.ok:
            print(f"careerbot: source {outcome.source} failed: {outcome.error}", file=sys.stderr)
            continue
        for alert in outcome.alerts:
            print(render_text(alert) + "\n")
        log.info("%s", outcome.summary(), extra={"source": outcome.source})
    if report.still_queued:
        log.warning("%d alerts are still queued for retry", report.still_queued)
    if report.held.next_at is not None:
        log.info(
            "%d alerts are held for digests or quiet hours; the next goes out at %s"
            " (careerbot run sends it, or a later once)",
            report.held.count,
            utc_iso(report.held.next_at),
        )
    return EXIT_OK if report.ok else EXIT_FAILED


async def cmd_parse(args: argparse.Namespace) -> int:
    spec = _parse_spec(args)
    async with make_client() as client:
        collected = await collect_postings(spec, PollFetcher(HttpFetcher(client), None))
    for posting in collected.postings:
        print(json.dumps(posting.to_json(), ensure_ascii=False))
    return EXIT_OK


def _parse_spec(args: argparse.Namespace) -> SourceSpec:
    if args.source is not None:
        loaded = _load(args)
        return source_spec(loaded.config, loaded.config.source(args.source))
    if not args.source_type or not args.location:
        raise UsageError("parse needs --type TYPE LOCATION (or --config FILE --source NAME)")
    collector_for(args.source_type)  # unknown type: clear error
    location = _location_url(args.location)
    if args.config is None:
        return SourceSpec(name="cli", type=args.source_type, url=location)
    config = _load(args).config
    same_type = [s for s in config.sources if s.type == args.source_type]
    chosen = next((s for s in same_type if s.url == location), None)
    if chosen is None and len(same_type) == 1:
        chosen = same_type[0]
    if chosen is None:
        return SourceSpec(name="cli", type=args.source_type, url=location)
    spec = source_spec(config, chosen)
    return SourceSpec(spec.name, spec.type, location, spec.company, spec.options, spec.max_pages)


def _location_url(location: str) -> str:
    try:
        scheme = urlsplit(location).scheme.lower()
    except ValueError:
        raise UsageError(f"{location!r} is not a valid URL") from None
    if scheme in ("http", "https"):
        return location
    if scheme == "file":
        path = location.removeprefix("file:")
        if path.startswith("//"):
            return location
        return Path(path).resolve().as_uri()
    if scheme == "" and Path(location).exists():
        return Path(location).resolve().as_uri()
    raise UsageError(f"{location!r} is not an http(s):// URL or a file: path")


async def _with_store(args: argparse.Namespace, action: Callable[[Store], Any]) -> Any:
    loaded = _load(args)
    store = await Store.open(loaded.database)
    try:
        return await action(store)
    finally:
        await store.close()


async def cmd_search(args: argparse.Namespace) -> int:
    query = _query(args.query)
    loaded = _load(args)
    store = await Store.open(loaded.database)
    try:
        open_postings = [posting for posting, _ in await store.open_postings()]
        threshold = loaded.config.bot.semantic_threshold
        matching = await semantic.matching(store, query, open_postings, threshold)
        found = group_jobs(matching, open_postings, await store.open_jobs())[: args.limit]
    finally:
        await store.close()
    for job in found:
        if args.json:
            print(json.dumps(_job_json(job), ensure_ascii=False))
        else:
            print(_job_line(job))
    if not args.json:
        print(f"{len(found)} shown", file=sys.stderr)
    return EXIT_OK


def _job_line(job: Job) -> str:
    """One line per job: the posting found, every location, and the other sources."""
    posting = job.lead
    where = "; ".join(job.locations) or "-"
    link = posting.url or posting.apply_url or ""
    also = f" (also on: {', '.join(job.also_on)})" if job.also_on else ""
    return f"{posting.title} — {posting.company or '?'} — {where} [{posting.ref}] {link}{also}"


def _job_json(job: Job) -> dict[str, Any]:
    """The posting found, plus its job and the other listings of that job."""
    others = [
        {"source": o.source, "id": o.id, "url": o.url, "locations": list(o.locations)}
        for o in job.others
    ]
    return {**job.lead.to_json(), "job": job.key, "also_on": others}


def _query(text: str) -> Any:
    try:
        return parse_query(text)
    except QueryError as err:
        raise UsageError(f"invalid query: {err}") from None


async def cmd_subscribe(args: argparse.Namespace) -> int:
    _query(args.query)
    mode = DeliveryMode.parse(args.digest)
    try:
        target = validate_target(args.target)
        kinds = [ChangeKind(k.strip()) for k in args.notify.split(",") if k.strip()]
    except ValueError as err:
        raise UsageError(str(err).removeprefix("Value error, ")) from None
    loaded = _load(args)
    if (
        target.startswith("webhook:")
        and target.removeprefix("webhook:") not in loaded.config.webhooks
    ):
        raise UsageError(f"no [webhooks.{target.removeprefix('webhook:')}] in the config")
    if not kinds:
        raise UsageError("--notify needs at least one of new, changed, closed, reopened")
    store = await Store.open(loaded.database)
    try:
        sub = await store.add_subscription(
            target,
            args.query,
            kinds,
            origin="cli",
            created_by=os.environ.get("USER"),
            now=time.time(),
            delivery=str(mode),
        )
        matching = await open_matches(store, loaded.config, parse_query(sub.query))
    finally:
        await store.close()
    how = f" ({mode.describe()})" if mode.is_digest else ""
    print(f"subscription #{sub.id}: {sub.query} → {sub.target}{how}")
    if not matching:
        print("no open posting matches it right now")
        return EXIT_OK
    print(f"{len(matching)} open postings match it right now; the newest:")
    for posting in matching[:SUBSCRIBE_PREVIEW_SIZE]:
        print(f"  {_posting_line(posting)}")
    print(f"`careerbot backfill {sub.id}` queues alerts for {backfill_span(len(matching))} now")
    return EXIT_OK


def _posting_line(posting: Posting) -> str:
    where = "; ".join(posting.locations) or "-"
    return f"{posting.title} — {posting.company or '?'} — {where} [{posting.ref}]"


async def cmd_backfill(args: argparse.Namespace) -> int:
    loaded = _load(args)
    store = await Store.open(loaded.database)
    try:
        subscription = await store.subscription(args.id)
        if subscription is None:
            raise UsageError(f"no subscription #{args.id}")
        if subscription.paused:
            raise UsageError(f"subscription #{args.id} is paused")
        done = await backfill(store, loaded.config, subscription, time.time())
    except QueryError as err:
        raise UsageError(f"subscription #{args.id} has an invalid query: {err}") from None
    finally:
        await store.close()
    print(
        f"subscription #{args.id}: {done.matching} open postings match, {done.queued} alerts"
        f" queued for {subscription.target} (sent by `careerbot once` or the running service)"
    )
    return EXIT_OK


async def cmd_why(args: argparse.Namespace) -> int:
    loaded = _load(args)
    store = await Store.open(loaded.database)
    try:
        found = await store.find_postings(args.posting)
        if not found:
            raise UsageError(f"no posting {args.posting!r} (use SOURCE:ID, as search shows it)")
        if len(found) > 1:
            names = ", ".join(posting.ref for posting, _ in found)
            raise UsageError(f"{args.posting!r} names several postings: {names}")
        posting, is_open = found[0]
        lines = [_posting_line(posting) + ("" if is_open else " (closed)")]
        for subscription in await store.subscriptions():
            lines += await why_lines(store, loaded.config, subscription, posting, PLAIN)
    finally:
        await store.close()
    print("\n".join(lines))
    return EXIT_OK


async def cmd_subscriptions(args: argparse.Namespace) -> int:
    for sub in await _with_store(args, Store.subscriptions):
        kinds = ",".join(sorted(sub.notify))
        notes = ["paused"] if sub.paused else []
        if sub.delivery != INSTANT:
            notes.append(f"digest {sub.delivery}")
        state = f" ({', '.join(notes)})" if notes else ""
        print(f"#{sub.id}\t{sub.target}\t{kinds}\t{sub.origin}{state}\t{sub.query}")
    return EXIT_OK


async def cmd_digest(args: argparse.Namespace) -> int:
    mode = DeliveryMode.parse(" ".join(args.when))
    loaded = _load(args)
    store = await Store.open(loaded.database)
    try:
        subscription = await store.subscription(args.id)
        if subscription is None:
            raise UsageError(f"no subscription #{args.id}")
        now = time.time()
        await store.set_delivery(args.id, str(mode), now)
        zone = (await _policy_of(store, settings_owner(subscription), loaded.config)).zone
    finally:
        await store.close()
    if mode.is_digest:
        next_at = format_local(mode.next_digest(now, zone), zone)
        print(f"subscription #{args.id}: {mode.describe()} ({zone.key}), the next on {next_at}")
    else:
        print(f"subscription #{args.id}: instant, one message per alert")
    return EXIT_OK


async def cmd_tz(args: argparse.Namespace) -> int:
    """The time zone of the target's subscriptions made from the CLI or the config."""
    target = _target(args.target)
    loaded = _load(args)
    store = await Store.open(loaded.database)
    try:
        if args.zone is not None:
            await store.set_timezone(target, parse_zone(args.zone), time.time())
        zone = (await _policy_of(store, target, loaded.config)).zone
        settings = (await store.delivery_settings([target])).get(target)
    finally:
        await store.close()
    default = "" if settings and settings.timezone else " ([bot] timezone)"
    print(f"{target}: time zone {zone.key}{default}")
    return EXIT_OK


async def cmd_quiet(args: argparse.Namespace) -> int:
    """The quiet hours of the target's subscriptions made from the CLI or the config."""
    target = _target(args.target)
    hours = args.hours
    quiet = None if hours is None or hours.strip().lower() == "off" else QuietHours.parse(hours)
    loaded = _load(args)
    store = await Store.open(loaded.database)
    try:
        if hours is not None:
            await store.set_quiet_hours(target, str(quiet) if quiet else None, time.time())
        policy = await _policy_of(store, target, loaded.config)
    finally:
        await store.close()
    shown = f"{policy.quiet} ({policy.zone.key})" if policy.quiet else "none"
    print(f"{target}: quiet hours {shown}")
    return EXIT_OK


def _target(text: str) -> str:
    try:
        return validate_target(text)
    except ValueError as err:
        raise UsageError(str(err)) from None


async def _policy_of(store: Store, owner: str, config: Config) -> Policy:
    """An owner's time zone and quiet hours (the mode part is not used)."""
    settings = (await store.delivery_settings([owner])).get(owner)
    return policy_for(INSTANT, settings, config.bot.timezone)


async def cmd_unsubscribe(args: argparse.Namespace) -> int:
    async def remove(store: Store) -> None:
        subscription = await store.subscription(args.id)
        if subscription is None:
            raise UsageError(f"no subscription #{args.id}")
        if subscription.origin == "config":
            raise UsageError(
                f"subscription #{args.id} is declared in the config file; remove it there"
            )
        await store.remove_subscription(args.id)

    await _with_store(args, remove)
    print(f"subscription #{args.id} removed")
    return EXIT_OK


async def cmd_sources(args: argparse.Namespace) -> int:
    loaded = _load(args)
    store = await Store.open(loaded.database)
    try:
        states = {s.name: s for s in await store.source_states()}
        catalog = await SourceCatalog.load(loaded.config, store)
    finally:
        await store.close()
    print("name\ttype\tinterval\tlast poll\tlast success\topen\tfailures\thealth\tlast error")
    for source in catalog.sources():
        state = states.get(source.name)
        interval = format_duration(loaded.config.interval_of(source))
        name = source.name + _source_marks(source, catalog.is_chat(source.name))
        if state is None:
            print(f"{name}\t{source.type}\t{interval}\tnever\tnever\t0\t0\tok\t")
            continue
        health = describe(state.health, f"since {_when(state.health.since)}")
        print(
            f"{name}\t{source.type}\t{interval}\t{_when(state.last_poll_at)}\t"
            f"{_when(state.last_success_at)}\t{state.open_postings}\t"
            f"{state.consecutive_failures}\t{health}\t{state.last_error or ''}"
        )
    return EXIT_OK


def _source_marks(source: SourceConfig, chat: bool) -> str:
    """`` (chat)``, `` (disabled)``, `` (chat, paused)`` or nothing."""
    if chat:
        return " (chat)" if source.enabled else " (chat, paused)"
    return "" if source.enabled else " (disabled)"


def _when(timestamp: float | None) -> str:
    return utc_iso(timestamp) if timestamp is not None else "never"


async def cmd_check_config(args: argparse.Namespace) -> int:
    loaded = _load(args)
    _require_environment(loaded.config)
    config = loaded.config
    print(
        f"{loaded.path}: OK — {len(config.sources)} sources, "
        f"{len(config.subscriptions)} subscriptions, {len(config.webhooks)} webhooks; "
        f"database {loaded.database}; source types: {', '.join(source_types())}"
    )
    return EXIT_OK


async def cmd_backup(args: argparse.Namespace) -> int:
    loaded = _load(args)
    report = await asyncio.to_thread(backup_database, loaded.database, args.path)
    print(f"backed up {loaded.database} to {args.path} ({report.pages} pages, {report.size} bytes)")
    return EXIT_OK


async def cmd_health(args: argparse.Namespace) -> int:
    port = _load(args).config.bot.health_port
    if port == 0:
        print("nothing to check: [bot] health_port is 0, so run serves no /healthz")
        return EXIT_OK
    url = f"http://{HEALTH_HOST}:{port}/healthz"
    try:
        async with make_client(HEALTH_TIMEOUT, 1, trust_env=False) as client:
            response = await client.get(url)
        report = response.json()
        line = _health_line(response.status_code, report)
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as err:  # not our report
        reason = str(err) or type(err).__name__
        print(f"careerbot: unhealthy: no health report from {url}: {reason}", file=sys.stderr)
        return EXIT_FAILED
    print(line)
    return EXIT_OK if response.status_code == 200 else EXIT_FAILED


def _health_line(code: int, report: dict[str, Any]) -> str:
    """``ok (HTTP 200): last successful poll 12s ago; 0 alerts pending, 0 dead``."""
    age = report["last_successful_poll_age_seconds"]
    parts = [
        "no successful poll yet" if age is None else f"last successful poll {age:.0f}s ago",
        f"{report['outbox_pending']} alerts pending, {report['outbox_dead']} dead",
    ]
    if report["failing_sources"]:
        parts.append("failing: " + ", ".join(report["failing_sources"]))
    if report["status"] == "stalled":
        parts.append(
            f"no poll finished for {report['last_poll_job_age_seconds']:.0f}s "
            f"(stalled after {report['stalled_after_seconds']:.0f}s)"
        )
    return f"{report['status']} (HTTP {code}): " + "; ".join(parts)


COMMANDS: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "run": cmd_run,
    "once": cmd_once,
    "parse": cmd_parse,
    "search": cmd_search,
    "subscribe": cmd_subscribe,
    "subscriptions": cmd_subscriptions,
    "digest": cmd_digest,
    "tz": cmd_tz,
    "quiet": cmd_quiet,
    "unsubscribe": cmd_unsubscribe,
    "backfill": cmd_backfill,
    "why": cmd_why,
    "sources": cmd_sources,
    "check-config": cmd_check_config,
    "backup": cmd_backup,
    "health": cmd_health,
}

__all__ = ["build_parser", "main"]
