"""Lever Postings API (api.lever.co/v0/postings)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from bot.errors import SourceError
from bot.models import Posting
from bot.sources._ats import (
    collect_pages,
    date,
    description,
    identify,
    items,
    join_blocks,
    load_json,
    mapping,
    period,
    salary,
    text,
    texts,
    unique,
    workplace_remote,
)
from bot.sources._urls import board_name, query_int, segments, split_url, with_query
from bot.sources.base import Collected, Fetcher, SourceSpec, register

KIND = "lever"
_BOARD_HOSTS = {"jobs.lever.co": "api.lever.co", "jobs.eu.lever.co": "api.eu.lever.co"}
_API_HOSTS = frozenset(_BOARD_HOSTS.values())
_API_PATH = ["v0", "postings"]
# Board page filters that the API takes under the same names.
_FILTERS = frozenset({"team", "location", "commitment", "department", "level", "group"})


def api_url(url: str) -> str:
    """The API URL of a board page (the whole board, its filters kept) or of a job page
    (that posting); API URLs get ``mode=json``; other URLs are returned unchanged."""
    parts = split_url(url)
    if parts is None:
        return url
    host = parts.hostname or ""
    path = segments(parts)
    if host in _BOARD_HOSTS and path:
        filters = {k: v for k, v in parse_qsl(parts.query) if k in _FILTERS}
        api = f"https://{_BOARD_HOSTS[host]}/v0/postings/{'/'.join(path[:2])}"
        return with_query(api, **filters, mode="json")
    if host in _API_HOSTS and path[:2] == _API_PATH and len(path) in (3, 4):
        return with_query(url.strip(), mode="json")
    return url


def _site(url: str) -> str | None:
    """The site name in a board page, job page or API URL."""
    return board_name(url, _BOARD_HOSTS, _API_HOSTS, _API_PATH)


def parse_postings(body: bytes, source: str, company: str | None) -> list[Posting]:
    """Postings of a board (a bare JSON array) or of one posting document."""
    data = load_json(KIND, body)
    if isinstance(data, list):
        rows: list[Any] = data
    elif isinstance(data, dict) and "id" in data and "text" in data:
        rows = [data]
    elif isinstance(data, dict) and data.get("ok") is False:
        reason = text(data.get("error")) or "no reason given"
        raise SourceError(f"lever: the API answered with an error: {reason[:200]}")
    else:
        raise SourceError("lever: expected a JSON array of postings")
    return [_parse_posting(row, index, source, company) for index, row in enumerate(rows)]


@register("lever")
async def collect(spec: SourceSpec, fetcher: Fetcher) -> Collected:
    """The whole board in one request, or ``skip``-paged when the URL sets a ``limit``."""
    url = api_url(spec.url)
    company = spec.company or _site(spec.url)
    limit = query_int(url, "limit")
    start = query_int(url, "skip") or 0

    async def read_page(skip: int) -> tuple[list[Posting], int | None]:
        page_url = url if skip == start else with_query(url, skip=str(skip))
        page = parse_postings((await fetcher.get(page_url)).body, spec.name, company)
        if not limit or len(page) < limit:
            return page, None
        return page, skip + limit

    return await collect_pages(spec, start, read_page)


def _parse_posting(row: Any, index: int, source: str, company: str | None) -> Posting:
    job, posting_id, title = identify(KIND, row, index, title_key="text")
    categories = mapping(job.get("categories"))
    pay = mapping(job.get("salaryRange"))
    url = text(job.get("hostedUrl"))
    return Posting(
        source=source,
        id=posting_id,
        title=title,
        # The payload names no company; a file: or loopback board is named by its postings.
        company=company or (_site(url) if url else None),
        locations=unique([categories.get("location"), *texts(categories.get("allLocations"))]),
        remote=workplace_remote(job.get("workplaceType")),
        # Lever's team is the finer grouping that its board filters by; department groups teams.
        team=text(categories.get("team")) or text(categories.get("department")),
        employment_type=text(categories.get("commitment")),
        posted_at=date(job.get("createdAt")),
        **salary(pay.get("min"), pay.get("max"), pay.get("currency"), period(pay.get("interval"))),
        url=url,
        apply_url=text(job.get("applyUrl")),
        description=_description(job),
    )


def _description(job: dict[str, Any]) -> str | None:
    """The description, then each list under its heading, then the closing text: the
    order of the hosted posting page."""
    sections = [
        join_blocks(text(item.get("text")), description(item.get("content")))
        for item in map(mapping, items(job.get("lists")))
    ]
    return join_blocks(
        description(job.get("description"), job.get("descriptionPlain")),
        *sections,
        description(job.get("additional"), job.get("additionalPlain")),
    )
