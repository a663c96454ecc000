"""The source contract: a registry of source types, each an async collector.

A collector fetches a source's pages through the shared ``Fetcher`` and turns
them into postings with *pure* parse functions (bytes in, postings out), so
every parser is testable on fixture bytes alone. The ways of collecting that
several types share live here too: following next-page links, and completing
listed rows from their detail documents.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from bot.errors import SourceError
from bot.models import Posting
from bot.text import encodable

DEFAULT_MAX_PAGES = 20

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Response:
    url: str  # the final URL, after redirects
    status: int
    headers: Mapping[str, str]
    body: bytes


def body_kind(body: bytes) -> str | None:
    """What a body that failed to parse looks like, when that is plain to see:
    ``"an empty response"``, ``"an HTML page"`` or ``"JSON"`` (wrong URL, error pages)."""
    start = body[:512].lstrip().lower()
    if not start:
        return "an empty response"
    if start.startswith((b"<!doctype html", b"<html")) or b"<body" in start:
        return "an HTML page"
    if start.startswith((b"{", b"[")):
        return "JSON"
    return None


class Fetcher(Protocol):
    """Fetches ``http(s)://`` and ``file:`` locations; raises ``SourceError``.

    ``file:`` locations paginate offline: a ``page``, ``offset`` or ``skip``
    query parameter selects the sibling file whose name has that number in
    place of its last number (``jobs-offset0.json?offset=3`` reads
    ``jobs-offset3.json``), and the file itself when there is none. A POST to a
    ``file:`` location reads the file; the body is ignored.
    """

    async def get(self, url: str, *, headers: Mapping[str, str] | None = None) -> Response: ...

    async def post_json(
        self, url: str, payload: Any, *, headers: Mapping[str, str] | None = None
    ) -> Response: ...


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """What a collector needs to know about one configured source."""

    name: str
    type: str
    url: str
    company: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    max_pages: int = DEFAULT_MAX_PAGES


DETAIL_CONCURRENCY = 4


@dataclass(frozen=True, slots=True)
class Collected:
    """A poll's postings. ``complete`` is false when some pages were not read
    (the page limit was hit), so a posting's absence proves nothing.
    ``partial`` names postings built without their detail document (its fetch
    failed): their fields are not comparable with a full posting's."""

    postings: list[Posting]
    complete: bool = True
    partial: frozenset[str] = frozenset()


async def fetch_details(
    fetcher: Fetcher,
    wanted: Mapping[str, str],
    read: Callable[[Response], Posting],
    source: str,
) -> dict[str, Posting]:
    """The detail posting for each ``posting id -> detail URL`` that can be read,
    a few requests at a time; a failure leaves that id out."""
    slots = asyncio.Semaphore(DETAIL_CONCURRENCY)
    found: dict[str, Posting] = {}

    async def fetch(posting_id: str, url: str) -> None:
        async with slots:
            try:
                found[posting_id] = read(await fetcher.get(url))
            except SourceError as error:
                log.debug("%s: no detail for %s: %s", source, posting_id, error)

    async with asyncio.TaskGroup() as group:
        for posting_id, url in wanted.items():
            group.create_task(fetch(posting_id, url))
    if missing := len(wanted) - len(found):
        log.warning("%s: no detail for %d of %d postings", source, missing, len(wanted))
    return found


async def with_details(
    listed: Collected,
    fetcher: Fetcher,
    wanted: Mapping[str, str],
    read: Callable[[Response], Posting],
    merge: Callable[[Posting, Posting], Posting],
    source: str,
) -> Collected:
    """``listed`` with each posting of ``wanted`` (``posting id -> detail URL``) merged with
    its detail (``merge(row, detail)``); those whose detail cannot be read stay partial."""
    found = await fetch_details(fetcher, wanted, read, source)
    postings = [merge(row, found[row.id]) if row.id in found else row for row in listed.postings]
    return Collected(postings, listed.complete, frozenset(wanted) - frozenset(found))


@dataclass(frozen=True, slots=True)
class ListPage:
    """One list page: a posting per row (listing fields only), the total of rows that it
    states (None when it states none) and where each row's detail document is. A detail
    document read as a page gives its one posting, complete."""

    postings: list[Posting]
    total: int | None = None
    details: dict[str, str] = field(default_factory=dict)  # posting id -> detail location


@dataclass(slots=True)
class Listing:
    """The rows of list pages read so far, by id, and the detail location of each."""

    rows: dict[str, Posting] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)

    def add(self, page: ListPage) -> list[Posting]:
        """Adds the page's postings whose ids are new (an earlier page's copy wins) and
        returns them."""
        new = [posting for posting in page.postings if posting.id not in self.rows]
        for posting in new:
            self.rows[posting.id] = posting
            if posting.id in page.details:
                self.details[posting.id] = page.details[posting.id]
        return new

    def collected(self, complete: bool) -> Collected:
        return Collected(list(self.rows.values()), complete)


async def follow_pages(
    spec: SourceSpec,
    fetcher: Fetcher,
    read_page: Callable[[Response], tuple[list[Posting], str | None]],
) -> Collected:
    """Every page from ``spec.url`` on, each naming the URL of the next; the first copy of an
    id wins. Stops at a page that names no next page or one already fetched (as asked for or
    as redirected to), or at ``spec.max_pages``: only that cut makes it incomplete."""
    postings: dict[str, Posting] = {}
    fetched: set[str] = set()
    url: str | None = spec.url
    for _ in range(spec.max_pages):
        if url is None or url in fetched:
            return Collected(list(postings.values()))
        response = await fetcher.get(url)
        fetched.update((url, response.url))
        page, url = read_page(response)
        for posting in page:
            postings.setdefault(posting.id, posting)
    complete = url is None or url in fetched
    if not complete:
        log.warning("%s: stopped after max_pages=%d before %s", spec.name, spec.max_pages, url)
    return Collected(list(postings.values()), complete)


Collector = Callable[[SourceSpec, Fetcher], Awaitable[Collected]]

_REGISTRY: dict[str, Collector] = {}


def register(type_name: str) -> Callable[[Collector], Collector]:
    def decorate(collector: Collector) -> Collector:
        _REGISTRY[type_name] = collector
        return collector

    return decorate


def source_types() -> list[str]:
    return sorted(_REGISTRY)


async def collect_postings(spec: SourceSpec, fetcher: Fetcher) -> Collected:
    """Run the collector of ``spec.type``; its postings come back safe to store and print."""
    collected = await collector_for(spec.type)(spec, fetcher)
    return replace(collected, postings=[_scrubbed(p) for p in collected.postings])


def _scrubbed(posting: Posting) -> Posting:
    """Lone surrogates (valid in JSON, e.g. ``"\\ud800"``) cannot be encoded as UTF-8."""
    changes: dict[str, Any] = {}
    for name in ("title", "company", "team", "employment_type", "url", "apply_url", "description"):
        value = getattr(posting, name)
        if isinstance(value, str) and _has_surrogate(value):
            changes[name] = encodable(value)
    if any(_has_surrogate(location) for location in posting.locations):
        changes["locations"] = tuple(encodable(loc) for loc in posting.locations)
    return replace(posting, **changes) if changes else posting


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def collector_for(type_name: str) -> Collector:
    try:
        return _REGISTRY[type_name]
    except KeyError:
        known = ", ".join(source_types())
        raise SourceError(f"unknown source type {type_name!r} (known: {known})") from None
