"""Workable public job boards: the account widget API (v1) and the careers-site API (v3)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from bot.errors import SourceError
from bot.models import Posting
from bot.sources._ats import (
    collect_pages,
    date,
    description,
    employment_type,
    flag,
    identify,
    items,
    load_json,
    mapping,
    place,
    text,
    texts,
    unique,
    workplace_remote,
)
from bot.sources._urls import segments, split_url, with_query
from bot.sources.base import Collected, Fetcher, SourceSpec, register

KIND = "workable"
_HOST = "apply.workable.com"
_WIDGET_PATH = ["api", "v1", "widget", "accounts"]
_NOT_ACCOUNTS = frozenset({"api", "j"})  # apply.workable.com/api/…, /j/{shortcode} short links
# An empty search: every published job.
_V3_QUERY: dict[str, Any] = {
    "query": "",
    "location": [],
    "department": [],
    "worktype": [],
    "remote": [],
}
_Cursor = tuple[int, str | None]  # page number, token


def api_url(url: str) -> str:
    """The widget API URL, with descriptions, of the account a board or job page belongs
    to; widget API URLs get ``details=true``; others (v3 included) are returned unchanged."""
    parts = split_url(url)
    if parts is None or parts.hostname != _HOST:
        return url
    path = segments(parts)
    if path[:4] == _WIDGET_PATH and len(path) == 5:
        return with_query(url.strip(), details="true")
    if path and path[0] not in _NOT_ACCOUNTS:
        return f"https://{_HOST}/api/v1/widget/accounts/{path[0]}?details=true"
    return url


def _account(url: str) -> str | None:
    """The account named by a board or job page, or by a widget or v3 API URL."""
    parts = split_url(url)
    if parts is None:
        return None
    path = segments(parts)
    if path[:4] == _WIDGET_PATH and len(path) == 5:
        return path[4]
    if _is_v3_path(path):
        return path[3]
    if parts.hostname == _HOST and path and path[0] not in _NOT_ACCOUNTS:
        return path[0]
    return None


def _is_v3_path(path: list[str]) -> bool:
    """``/api/v3/accounts/{account}/jobs`` on any host (loopback copies included)."""
    return len(path) == 5 and path[:3] == ["api", "v3", "accounts"] and path[4] == "jobs"


def parse_jobs(body: bytes, source: str, company: str | None) -> tuple[list[Posting], str | None]:
    """Postings of a widget document or of one v3 page, and the v3 next-page token."""
    data = load_json(KIND, body)
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        rows: list[Any] = data["results"]
        postings = [_parse_v3_job(job, index, source, company) for index, job in enumerate(rows)]
        return postings, text(data.get("nextPage"))
    if isinstance(data, dict) and isinstance(data.get("jobs"), list):
        owner = text(data.get("name")) or company
        jobs: list[Any] = data["jobs"]
        widget = [_parse_widget_job(job, index, source, owner) for index, job in enumerate(jobs)]
        return widget, None
    raise SourceError("workable: expected a JSON object with 'jobs' or 'results'")


@register("workable")
async def collect(spec: SourceSpec, fetcher: Fetcher) -> Collected:
    """The widget document, or every v3 page: POSTs that carry the previous page's token
    (a ``file:`` v3 page is followed by the same URL with ``?page=N``)."""
    url = api_url(spec.url)
    company = spec.company or _account(spec.url)
    parts = split_url(url)
    v3 = parts is not None and _is_v3_path(segments(parts))

    async def read_page(cursor: _Cursor) -> tuple[list[Posting], _Cursor | None]:
        number, token = cursor
        if number == 1 and not v3:
            response = await fetcher.get(url)
        else:
            payload = _V3_QUERY if token is None else {**_V3_QUERY, "token": token}
            response = await fetcher.post_json(_page_url(url, number), payload)
        postings, next_token = parse_jobs(response.body, spec.name, company)
        return postings, (number + 1, next_token) if next_token else None

    first: _Cursor = (1, None)
    return await collect_pages(spec, first, read_page)


def _page_url(url: str, number: int) -> str:
    """Offline pages are numbered files; a live API pages by the token in the body alone."""
    if number == 1 or not url.lower().startswith("file:"):
        return url
    return with_query(url, page=str(number))


def _parse_widget_job(row: Any, index: int, source: str, company: str | None) -> Posting:
    job, shortcode, title = identify(KIND, row, index, id_key="shortcode")
    return Posting(
        source=source,
        id=shortcode,
        title=title,
        company=company,
        locations=_locations(job)
        or unique([place(job.get("city"), job.get("state"), job.get("country"))]),
        remote=flag(job.get("telecommuting")),
        team=text(job.get("department")),
        employment_type=text(job.get("employment_type")),
        posted_at=date(job.get("published_on")) or date(job.get("created_at")),
        url=text(job.get("url")) or text(job.get("shortlink")),
        apply_url=text(job.get("application_url")),
        description=description(job.get("description")),
    )


def _parse_v3_job(row: Any, index: int, source: str, company: str | None) -> Posting:
    job, shortcode, title = identify(KIND, row, index, id_key="shortcode")
    remote = flag(job.get("remote"))
    # v3 rows carry no links: use the account-free short link that the widget gives as `url`.
    url = f"https://{_HOST}/j/{quote(shortcode, safe='')}"
    return Posting(
        source=source,
        id=shortcode,
        title=title,
        company=company,
        locations=_locations(job) or unique([_place(job.get("location"))]),
        remote=remote if remote is not None else workplace_remote(job.get("workplace")),
        team=next(iter(texts(job.get("department"))), None),
        employment_type=employment_type(job.get("type")),
        posted_at=date(job.get("published")),
        url=url,
        apply_url=f"{url}/apply",
    )


def _locations(job: dict[str, Any]) -> tuple[str, ...]:
    """The visible entries of ``locations[]``."""
    return unique(
        _place(location)
        for location in items(job.get("locations"))
        if mapping(location).get("hidden") is not True
    )


def _place(location: Any) -> str | None:
    fields = mapping(location)
    return place(fields.get("city"), fields.get("region"), fields.get("country"))
