"""Test doubles shared by the test modules."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from bot.diff import diff
from bot.errors import SourceError
from bot.models import ChangeKind, Posting
from bot.sources.base import Response, SourceSpec
from bot.store import Match, Store


class FakeFetcher:
    """A Fetcher over a dict of URL -> body; unknown URLs fail like a 404.

    A POST is answered from ``pages[url]``, or from ``posts[(url, json-of-body)]``
    when the same URL answers differently per body (offset paging).
    """

    def __init__(
        self,
        pages: Mapping[str, bytes],
        posts: Mapping[tuple[str, str], bytes] | None = None,
    ) -> None:
        self.pages = pages
        self.posts = posts or {}
        self.calls: list[str] = []
        self.payloads: list[Any] = []

    async def get(self, url: str, *, headers: Mapping[str, str] | None = None) -> Response:
        self.calls.append(url)
        if url not in self.pages:
            raise SourceError(f"HTTP 404 for {url}")
        return Response(url=url, status=200, headers={}, body=self.pages[url])

    async def post_json(
        self, url: str, payload: Any, *, headers: Mapping[str, str] | None = None
    ) -> Response:
        self.calls.append(url)
        self.payloads.append(payload)
        key = (url, json.dumps(payload, sort_keys=True))
        if key in self.posts:
            return Response(url=url, status=200, headers={}, body=self.posts[key])
        if url not in self.pages:
            raise SourceError(f"HTTP 404 for {url}")
        return Response(url=url, status=200, headers={}, body=self.pages[url])


def json_values(
    keys: list[str], text: st.SearchStrategy[str] | None = None
) -> st.SearchStrategy[Any]:
    """Random JSON shaped like an API's documents: objects use the API's own keys."""
    leaf = text if text is not None else st.text(max_size=20)
    return st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | leaf,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.sampled_from(keys), children, max_size=8)
        ),
        max_leaves=30,
    )


class FakeClock:
    """Time that only moves when the code under test sleeps (or a test moves it)."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def queue_alert(store: Store, target: str, posting: Posting, now: float, query: str) -> None:
    """One alert in the outbox: a new subscription to ``target`` and ``posting`` as new."""
    subscription = await store.add_subscription(
        target, query, [ChangeKind.NEW], origin="cli", created_by=None, now=now
    )
    result = diff({}, [posting], baseline=False, close_after=2)
    await store.apply_poll(posting.source, result, [Match(0, subscription)], now=now)


HTML_SELECTORS = {"item": "li", "title": "a", "next_page": "a.next@href"}


class AnswersEverything:
    """A fetcher whose every GET and POST returns the same body."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.requests = 0

    async def get(self, url: str, *, headers: Mapping[str, str] | None = None) -> Response:
        self.requests += 1
        return Response(url, 200, {}, self.body)

    async def post_json(
        self, url: str, payload: Any, *, headers: Mapping[str, str] | None = None
    ) -> Response:
        return await self.get(url)


def any_board_spec(source_type: str, name: str = "fuzz", max_pages: int = 3) -> SourceSpec:
    """A source of ``source_type`` at a made-up board (html gets selectors to work with)."""
    options: dict[str, Any] = {"selectors": HTML_SELECTORS} if source_type == "html" else {}
    return SourceSpec(
        name, source_type, "https://example.test/board", options=options, max_pages=max_pages
    )
