"""The source contract: a registry of source types, each an async collector.

A collector fetches a source's pages through the shared ``Fetcher`` and turns
them into postings with *pure* parse functions (bytes in, postings out), so
every parser is testable on fixture bytes alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from bot.errors import SourceError
from bot.models import Posting

DEFAULT_MAX_PAGES = 20

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Response:
    url: str  # the final URL, after redirects
    status: int
    headers: Mapping[str, str]
    body: bytes


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
            changes[name] = _replace_surrogates(value)
    if any(_has_surrogate(location) for location in posting.locations):
        changes["locations"] = tuple(_replace_surrogates(loc) for loc in posting.locations)
    return replace(posting, **changes) if changes else posting


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _replace_surrogates(text: str) -> str:
    return text.encode("utf-8", errors="replace").decode("utf-8")


def collector_for(type_name: str) -> Collector:
    try:
        return _REGISTRY[type_name]
    except KeyError:
        known = ", ".join(source_types())
        raise SourceError(f"unknown source type {type_name!r} (known: {known})") from None
