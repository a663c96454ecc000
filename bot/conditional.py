"""Cheap polls of unchanged sources.

A ``PollFetcher`` wraps the shared fetcher for one poll. It fingerprints the
poll (the validators of its first response and a hash over every body) and,
when the previous poll of the source was a single request, asks the server
conditionally (ETag / Last-Modified). A 304, or the same body again, raises
``SourceUnchanged`` before any parsing happens.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from bot.errors import SourceError
from bot.sources.base import Fetcher, Response


class SourceUnchanged(Exception):
    """The source answered exactly as in its previous poll."""


@dataclass(frozen=True, slots=True)
class PollFingerprint:
    first_url: str
    etag: str | None
    last_modified: str | None
    body_hash: str  # over every response body of the poll, in order
    requests: int
    spec: str = ""  # how the answer was read (see pipeline.reading_key)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | None) -> PollFingerprint | None:
        if not text:
            return None
        try:
            return cls(**json.loads(text))
        except (TypeError, ValueError):
            return None


class PollFetcher:
    """A ``Fetcher`` for one poll of one source."""

    def __init__(self, inner: Fetcher, previous: PollFingerprint | None, spec: str = "") -> None:
        self._inner = inner
        self._previous = previous
        self._spec = spec
        self._hash = hashlib.sha256()
        self._requests = 0
        self._first: tuple[str, Response] | None = None  # (requested URL, response)
        self._origin_scheme = ""

    async def get(self, url: str, *, headers: Mapping[str, str] | None = None) -> Response:
        conditional = dict(headers or {})
        if self._is_repeat_of_single_request(url):
            assert self._previous is not None
            if self._previous.etag:
                conditional["If-None-Match"] = self._previous.etag
            if self._previous.last_modified:
                conditional["If-Modified-Since"] = self._previous.last_modified
        return await self._fetch(url, lambda: self._inner.get(url, headers=conditional or None))

    async def post_json(
        self, url: str, payload: Any, *, headers: Mapping[str, str] | None = None
    ) -> Response:
        return await self._fetch(url, lambda: self._inner.post_json(url, payload, headers=headers))

    def fingerprint(self) -> PollFingerprint | None:
        if self._first is None:
            return None
        first_url, first = self._first
        return PollFingerprint(
            first_url=first_url,
            etag=_header(first, "etag"),
            last_modified=_header(first, "last-modified"),
            body_hash=self._hash.hexdigest(),
            requests=self._requests,
            spec=self._spec,
        )

    def same_as_previous(self) -> bool:
        """Whether the whole poll returned what the previous one did."""
        current = self.fingerprint()
        previous = self._previous
        return (
            current is not None
            and previous is not None
            and (current.requests, current.body_hash) == (previous.requests, previous.body_hash)
        )

    def _refuse_local_files_from_the_network(self, url: str) -> None:
        """A poll that began on the network may not read local files: a page's
        links (next page, details) are the site's to choose, not the operator's."""
        self._origin_scheme = self._origin_scheme or _scheme(url)
        if _scheme(url) == "file" and self._origin_scheme != "file":
            raise SourceError(f"refused to follow a link from the network to a local file: {url}")

    def _is_repeat_of_single_request(self, url: str) -> bool:
        previous = self._previous
        return (
            self._requests == 0
            and previous is not None
            and previous.requests == 1
            and previous.first_url == url
        )

    async def _fetch(self, url: str, send: Callable[[], Awaitable[Response]]) -> Response:
        self._refuse_local_files_from_the_network(url)
        single_repeat = self._is_repeat_of_single_request(url)
        response = await send()
        self._requests += 1
        if self._first is None:
            self._first = (url, response)
        if single_repeat and response.status == 304:
            raise SourceUnchanged
        self._hash.update(len(response.body).to_bytes(8, "big"))
        self._hash.update(response.body)
        if single_repeat and self.same_as_previous():
            raise SourceUnchanged
        return response


def _scheme(url: str) -> str:
    return url.split(":", 1)[0].lower() if ":" in url else ""


def _header(response: Response, name: str) -> str | None:
    for key, value in response.headers.items():
        if key.lower() == name:
            return value
    return None
