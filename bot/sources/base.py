"""The source contract: a registry of source types, each an async collector.

A collector fetches a source's pages through the shared ``Fetcher`` and turns
them into postings with *pure* parse functions (bytes in, postings out), so
every parser is testable on fixture bytes alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.errors import SourceError
from bot.models import Posting

DEFAULT_MAX_PAGES = 20


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


@dataclass(frozen=True, slots=True)
class Collected:
    """A poll's postings. ``complete`` is false when some pages were not read
    (the page limit was hit), so a posting's absence proves nothing."""

    postings: list[Posting]
    complete: bool = True


Collector = Callable[[SourceSpec, Fetcher], Awaitable[Collected]]

_REGISTRY: dict[str, Collector] = {}


def register(type_name: str) -> Callable[[Collector], Collector]:
    def decorate(collector: Collector) -> Collector:
        _REGISTRY[type_name] = collector
        return collector

    return decorate


def source_types() -> list[str]:
    return sorted(_REGISTRY)


def collector_for(type_name: str) -> Collector:
    try:
        return _REGISTRY[type_name]
    except KeyError:
        known = ", ".join(source_types())
        raise SourceError(f"unknown source type {type_name!r} (known: {known})") from None
