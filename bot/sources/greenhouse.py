"""Greenhouse Job Board API (boards-api.greenhouse.io)."""

from __future__ import annotations

import html
import json
import math
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from bot.errors import SourceError
from bot.models import Posting
from bot.sources.base import Collected, Fetcher, SourceSpec, register
from bot.text import html_to_text, iso_date, normalize_space

_BOARD_HOSTS = {
    "boards.greenhouse.io": "boards-api.greenhouse.io",
    "job-boards.greenhouse.io": "boards-api.greenhouse.io",
    "boards.eu.greenhouse.io": "boards-api.eu.greenhouse.io",
    "job-boards.eu.greenhouse.io": "boards-api.eu.greenhouse.io",
}
_API_HOSTS = frozenset(_BOARD_HOSTS.values())


def api_url(url: str) -> str:
    """The API URL that lists a board with content; other URLs are returned unchanged."""
    parts = _split(url)
    if parts is None:
        return url
    host = parts.hostname or ""
    segments = [segment for segment in parts.path.split("/") if segment]
    if host in _BOARD_HOSTS:
        return _board_api_url(_BOARD_HOSTS[host], parts.query, segments) or url
    if host in _API_HOSTS and segments[:2] == ["v1", "boards"] and segments[3:] == ["jobs"]:
        query = [(key, value) for key, value in parse_qsl(parts.query) if key != "content"]
        query.append(("content", "true"))
        return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
    return url


def _board_api_url(api_host: str, query: str, segments: list[str]) -> str | None:
    if segments == ["embed", "job_board"]:
        token = dict(parse_qsl(query)).get("for")
        return f"https://{api_host}/v1/boards/{token}/jobs?content=true" if token else None
    if len(segments) == 1:
        return f"https://{api_host}/v1/boards/{segments[0]}/jobs?content=true"
    if len(segments) == 3 and segments[1] == "jobs":
        # A single job page: its API document carries pay ranges when asked for them.
        token, _, job_id = segments
        return f"https://{api_host}/v1/boards/{token}/jobs/{job_id}?pay_transparency=true"
    return None


def _board_token(url: str) -> str | None:
    """The board token named by a board page, job page or API URL."""
    parts = _split(url)
    if parts is None:
        return None
    host = parts.hostname or ""
    segments = [segment for segment in parts.path.split("/") if segment]
    if host in _BOARD_HOSTS:
        if segments == ["embed", "job_board"]:
            return dict(parse_qsl(parts.query)).get("for") or None
        return segments[0] if segments else None
    if host in _API_HOSTS and segments[:2] == ["v1", "boards"] and len(segments) > 2:
        return segments[2]
    return None


def _split(url: str) -> SplitResult | None:
    try:
        return urlsplit(url.strip())
    except ValueError:
        return None


def parse_board(body: bytes, source: str, company: str | None, board: str | None) -> list[Posting]:
    """Postings of a ``{"jobs": [...]}`` board document or of a single job document."""
    data = _load_json(body)
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


def _load_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError as error:
        raise SourceError(
            f"greenhouse: invalid JSON at line {error.lineno}, column {error.colno}"
        ) from None
    except (ValueError, RecursionError) as error:  # bad UTF-8, over-long numbers, deep nesting
        raise SourceError(f"greenhouse: invalid JSON ({type(error).__name__})") from None


def _parse_job(job: Any, index: int, source: str, fallback_company: str | None) -> Posting:
    if not isinstance(job, dict):
        raise SourceError(f"greenhouse: job #{index + 1} is not an object")
    job_id = job.get("id")
    if isinstance(job_id, bool) or not isinstance(job_id, int | str) or not str(job_id).strip():
        raise SourceError(f"greenhouse: job #{index + 1} has no id")
    title = job.get("title")
    if not isinstance(title, str):
        raise SourceError(f"greenhouse: job {job_id} has no title")
    url = _text(job.get("absolute_url"))
    salary_min, salary_max, currency = _pay(job.get("pay_input_ranges"))
    return Posting(
        source=source,
        id=str(job_id).strip(),
        title=normalize_space(title),
        company=_text(job.get("company_name")) or fallback_company,
        locations=_locations(job.get("location")),
        team=_first_department(job.get("departments")),
        employment_type=_employment_type(job.get("metadata")),
        posted_at=_date(job.get("first_published")) or _date(job.get("updated_at")),
        salary_min=salary_min,
        salary_max=salary_max,
        salary_currency=currency,
        salary_period="year" if currency else None,
        url=url,
        apply_url=url,
        description=_description(job.get("content")),
    )


def _text(value: Any) -> str | None:
    return (normalize_space(value) or None) if isinstance(value, str) else None


def _date(value: Any) -> str | None:
    return iso_date(value) if isinstance(value, str | int | float) else None


def _locations(location: Any) -> tuple[str, ...]:
    name = location.get("name") if isinstance(location, dict) else None
    if not isinstance(name, str):
        return ()
    return tuple(part for part in (normalize_space(p) for p in name.split(";")) if part)


def _first_department(departments: Any) -> str | None:
    if not isinstance(departments, list):
        return None
    for department in departments:
        if isinstance(department, dict) and (name := _text(department.get("name"))):
            return name
    return None


def _employment_type(metadata: Any) -> str | None:
    """The value of a custom field named like "Employment Type", if the board has one."""
    if not isinstance(metadata, list):
        return None
    for field in metadata:
        if not isinstance(field, dict):
            continue
        name = _text(field.get("name")) or ""
        if "employment type" not in name.casefold():
            continue
        value = field.get("value")
        if isinstance(value, list):
            return ", ".join(text for item in value if (text := _text(item))) or None
        return _text(value)
    return None


def _description(content: Any) -> str | None:
    if not isinstance(content, str):
        return None
    # The API escapes the HTML once more: undo that layer, then the HTML parser decodes the rest.
    return html_to_text(html.unescape(content)) or None


def _pay(ranges: Any) -> tuple[float | None, float | None, str | None]:
    """The span of the pay ranges sharing the first range's currency: (min, max, currency)."""
    valid = [r for r in ranges if isinstance(r, dict)] if isinstance(ranges, list) else []
    if not valid:
        return None, None, None
    currency = _currency(valid[0])
    same = [r for r in valid if _currency(r) == currency]
    minimums = [m for r in same if (m := _units(r.get("min_cents"))) is not None]
    maximums = [m for r in same if (m := _units(r.get("max_cents"))) is not None]
    if not currency or not (minimums or maximums):
        return None, None, None
    return min(minimums, default=None), max(maximums, default=None), currency


def _currency(pay_range: dict[str, Any]) -> str | None:
    code = _text(pay_range.get("currency_type"))
    return code.upper() if code else None


def _units(cents: Any) -> float | None:
    if isinstance(cents, bool) or not isinstance(cents, int | float):
        return None
    try:
        units = cents / 100
    except OverflowError:  # an integer too large for a float
        return None
    return units if math.isfinite(units) and units >= 0 else None
