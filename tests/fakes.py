"""Test doubles shared by the test modules."""

from __future__ import annotations

from collections.abc import Mapping

from bot.errors import SourceError
from bot.sources.base import Response


class FakeFetcher:
    """A Fetcher over a dict of URL -> body; unknown URLs fail like a 404."""

    def __init__(self, pages: Mapping[str, bytes]) -> None:
        self.pages = pages
        self.calls: list[str] = []

    async def get(self, url: str, *, headers: Mapping[str, str] | None = None) -> Response:
        self.calls.append(url)
        if url not in self.pages:
            raise SourceError(f"HTTP 404 for {url}")
        return Response(url=url, status=200, headers={}, body=self.pages[url])
