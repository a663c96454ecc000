"""Greenhouse Job Board API (boards-api.greenhouse.io)."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlunsplit

from bot.errors import SourceError
from bot.models import Posting
from bot.normalize import currency_code
from bot.sources._ats import (
    Salary,
    amount,
    date,
    identify,
    items,
    load_json,
    mapping,
    salary,
    salary_span,
    text,
    texts,
)
from bot.sources._urls import board_name, segments, split_url
from bot.sources.base import Collected, Fetcher, SourceSpec, register
from bot.text import html_to_text

KIND = "greenhouse"
_BOARD_HOSTS = {
    "boards.greenhouse.io": "boards-api.greenhouse.io",
    "job-boards.greenhouse.io": "boards-api.greenhouse.io",
    "boards.eu.greenhouse.io": "boards-api.eu.greenhouse.io",
    "job-boards.eu.greenhouse.io": "boards-api.eu.greenhouse.io",
}
_API_HOSTS = frozenset(_BOARD_HOSTS.values())
_API_PATH = ["v1", "boards"]


def api_url(url: str) -> str:
    """The API URL that lists a board with content; other URLs are returned unchanged."""
    parts = split_url(url)
    if parts is None:
        return url
    host = parts.hostname or ""
    path = segments(parts)
    if host in _BOARD_HOSTS:
        return _board_api_url(_BOARD_HOSTS[host], parts.query, path) or url
    if host in _API_HOSTS and path[:2] == _API_PATH and path[3:] == ["jobs"]:
        query = [(key, value) for key, value in parse_qsl(parts.query) if key != "content"]
        query.append(("content", "true"))
        return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
    return url


def _board_api_url(api_host: str, query: str, path: list[str]) -> str | None:
    if path == ["embed", "job_board"]:
        token = dict(parse_qsl(query)).get("for")
        return f"https://{api_host}/v1/boards/{token}/jobs?content=true" if token else None
    if len(path) == 1:
        return f"https://{api_host}/v1/boards/{path[0]}/jobs?content=true"
    if len(path) == 3 and path[1] == "jobs":
        # A single job page: its API document carries pay ranges when asked for them.
        token, _, job_id = path
        return f"https://{api_host}/v1/boards/{token}/jobs/{job_id}?pay_transparency=true"
    return None


def _board_token(url: str) -> str | None:
    """The board token named by a board page, job page or API URL."""
    parts = split_url(url)
    if parts and parts.hostname in _BOARD_HOSTS and segments(parts) == ["embed", "job_board"]:
        return dict(parse_qsl(parts.query)).get("for") or None
    return board_name(url, _BOARD_HOSTS, _API_HOSTS, _API_PATH)


def parse_board(body: bytes, source: str, company: str | None, board: str | None) -> list[Posting]:
    """Postings of a ``{"jobs": [...]}`` board document or of a single job document."""
    data = load_json(KIND, body)
    if isinstance(data, dict) and isinstance(data.get("jobs"), list):
        jobs: list[Any] = data["jobs"]
    elif isinstance(data, dict) and "id" in data and "title" in data:
        jobs = [data]
    else:
        raise SourceError("greenhouse: expected a JSON object with 'jobs'")
    return [_parse_job(job, index, source, company or board) for index, job in enumerate(jobs)]


@register("greenhouse")
async def collect(spec: SourceSpec, fetcher: Fetcher) -> Collected:
    response = await fetcher.get(api_url(spec.url))
    return Collected(parse_board(response.body, spec.name, spec.company, _board_token(spec.url)))


def _parse_job(row: Any, index: int, source: str, fallback_company: str | None) -> Posting:
    job, job_id, title = identify(KIND, row, index)
    url = text(job.get("absolute_url"))
    return Posting(
        source=source,
        id=job_id,
        title=title,
        company=text(job.get("company_name")) or fallback_company,
        locations=_locations(job.get("location")),
        team=_first_department(job.get("departments")),
        employment_type=_employment_type(job.get("metadata")),
        posted_at=date(job.get("first_published")) or date(job.get("updated_at")),
        **_pay(job.get("pay_input_ranges")),
        url=url,
        apply_url=url,
        description=_description(job.get("content")),
    )


def _locations(location: Any) -> tuple[str, ...]:
    name = mapping(location).get("name")
    return tuple(texts(name.split(";"))) if isinstance(name, str) else ()


def _first_department(departments: Any) -> str | None:
    names = (text(mapping(department).get("name")) for department in items(departments))
    return next((name for name in names if name), None)


def _employment_type(metadata: Any) -> str | None:
    """The value of a custom field named like "Employment Type", if the board has one."""
    for field in map(mapping, items(metadata)):
        if "employment type" not in (text(field.get("name")) or "").casefold():
            continue
        value = field.get("value")
        if isinstance(value, list):
            return ", ".join(texts(value)) or None
        return text(value)
    return None


def _description(content: Any) -> str | None:
    if not isinstance(content, str):
        return None
    # The API escapes the HTML once more: undo that layer, then the HTML parser decodes the rest.
    return html_to_text(html.unescape(content)) or None


def _pay(ranges: Any) -> Salary:
    """The span of the (yearly) pay ranges that share the first range's currency."""
    valid = [pay for pay in items(ranges) if isinstance(pay, dict)]
    currency = _currency(valid[0]) if valid else None
    return salary_span(
        salary(
            amount(pay.get("min_cents"), 100), amount(pay.get("max_cents"), 100), currency, "year"
        )
        for pay in valid
        if _currency(pay) == currency
    )


def _currency(pay_range: dict[str, Any]) -> str | None:
    return currency_code(text(pay_range.get("currency_type")))
