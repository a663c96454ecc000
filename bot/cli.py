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

from bot import __version__
from bot.app import App, install_stop_signals
from bot.catalog import SourceCatalog
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
from bot.errors import CareerbotError, ConfigError, QueryError
from bot.fetch import HttpFetcher, make_client
from bot.models import ChangeKind, Posting, utc_iso
from bot.pipeline import source_spec
from bot.query import parse_query
from bot.render import render_text
from bot.sources import SourceSpec, collect_postings, collector_for, source_types
from bot.store import Store, backup_database

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_SEARCH_LIMIT = 20
MAX_ID = 2**63 - 1  # SQLite's largest integer

log = logging.getLogger("bot")


class UsageError(CareerbotError):
    """A command was called with arguments it cannot use."""


def _common_options(defaults: bool) -> argparse.ArgumentParser:
    """``--config`` and ``--log-level``, accepted before and after the command.

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
    command("subscriptions", "list subscriptions")
    unsubscribe = command("unsubscribe", "remove a subscription")
    unsubscribe.add_argument("id", type=_positive_int, metavar="ID")
    command("sources", "show each source's state")
    command("check-config", "validate the config and the environment it needs")
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
    _configure_logging(args.log_level)
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


def _configure_logging(level: str) -> None:
    # Libraries stay at WARNING whatever --log-level says: httpx, httpcore and
    # hpack log request URLs and headers, and webhook URLs are secrets.
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("bot").setLevel(getattr(logging, level))


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
        log.info("%s", outcome.summary())
    if report.still_queued:
        log.warning("%d alerts are still queued for retry", report.still_queued)
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
    open_postings: list[tuple[Posting, float]] = await _with_store(args, Store.open_postings)
    found = [p for p, _ in open_postings if query.matches(p)][: args.limit]
    for posting in found:
        if args.json:
            print(json.dumps(posting.to_json(), ensure_ascii=False))
        else:
            print(_posting_line(posting))
    if not args.json:
        print(f"{len(found)} shown", file=sys.stderr)
    return EXIT_OK


def _posting_line(posting: Posting) -> str:
    where = "; ".join(posting.locations) or "-"
    link = posting.url or posting.apply_url or ""
    return f"{posting.title} — {posting.company or '?'} — {where} [{posting.source}] {link}"


def _query(text: str) -> Any:
    try:
        return parse_query(text)
    except QueryError as err:
        raise UsageError(f"invalid query: {err}") from None


async def cmd_subscribe(args: argparse.Namespace) -> int:
    _query(args.query)
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
        )
    finally:
        await store.close()
    print(f"subscription #{sub.id}: {sub.query} → {sub.target}")
    return EXIT_OK


async def cmd_subscriptions(args: argparse.Namespace) -> int:
    for sub in await _with_store(args, Store.subscriptions):
        kinds = ",".join(sorted(sub.notify))
        state = " (paused)" if sub.paused else ""
        print(f"#{sub.id}\t{sub.target}\t{kinds}\t{sub.origin}{state}\t{sub.query}")
    return EXIT_OK


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
    print("name\ttype\tinterval\tlast poll\tlast success\topen\tfailures\tlast error")
    for source in catalog.sources():
        state = states.get(source.name)
        interval = format_duration(loaded.config.interval_of(source))
        name = source.name + _source_marks(source, catalog.is_chat(source.name))
        if state is None:
            print(f"{name}\t{source.type}\t{interval}\tnever\tnever\t0\t0\t")
            continue
        print(
            f"{name}\t{source.type}\t{interval}\t{_when(state.last_poll_at)}\t"
            f"{_when(state.last_success_at)}\t{state.open_postings}\t"
            f"{state.consecutive_failures}\t{state.last_error or ''}"
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


COMMANDS: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "run": cmd_run,
    "once": cmd_once,
    "parse": cmd_parse,
    "search": cmd_search,
    "subscribe": cmd_subscribe,
    "subscriptions": cmd_subscriptions,
    "unsubscribe": cmd_unsubscribe,
    "sources": cmd_sources,
    "check-config": cmd_check_config,
    "backup": cmd_backup,
}

__all__ = ["build_parser", "main"]
