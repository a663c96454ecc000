"""URL helpers shared by the sources: splitting, query parameters, joining, board names."""

from __future__ import annotations

from collections.abc import Container
from urllib.parse import SplitResult, parse_qsl, urlencode, urljoin, urlsplit, urlunsplit


def split_url(url: str) -> SplitResult | None:
    try:
        return urlsplit(url.strip())
    except ValueError:
        return None


def segments(parts: SplitResult) -> list[str]:
    return [segment for segment in parts.path.split("/") if segment]


def join_url(base: str, href: str) -> str | None:
    """``href`` resolved against ``base``; None when either cannot be parsed."""
    try:
        return urljoin(base, href)
    except ValueError:  # e.g. a malformed IPv6 host
        return None


def with_query(url: str, **params: str) -> str:
    """``url`` with those query parameters set: replaced in place or appended."""
    parts = urlsplit(url)
    query: list[tuple[str, str]] = []
    pending = dict(params)
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in params:
            query.append((key, value))
        elif key in pending:
            query.append((key, pending.pop(key)))
    query.extend(pending.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def with_raw_param(url: str, key: str, value: str) -> str:
    """``url`` with ``key=value`` last in its query and no other ``key=`` item; unlike
    ``with_query``, the rest of the query is kept as written."""
    parts = split_url(url)
    if parts is None:
        return url
    kept = [item for item in parts.query.split("&") if item and not item.startswith(f"{key}=")]
    query = "&".join([*kept, f"{key}={value}"])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def query_int(url: str, key: str) -> int | None:
    """A non-negative integer query parameter of ``url``, if it has one."""
    parts = split_url(url)
    value = dict(parse_qsl(parts.query)).get(key, "") if parts else ""
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else None


def board_name(
    url: str, board_hosts: Container[str], api_hosts: Container[str], api_path: list[str]
) -> str | None:
    """The board (site, company) that a URL names: the first path segment on a board host,
    the segment after ``api_path`` on an API host."""
    parts = split_url(url)
    if parts is None:
        return None
    path = segments(parts)
    if parts.hostname in board_hosts and path:
        return path[0]
    depth = len(api_path)
    if parts.hostname in api_hosts and path[:depth] == api_path and len(path) > depth:
        return path[depth]
    return None
