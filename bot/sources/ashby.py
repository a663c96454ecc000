"""Ashby Job Posting API (api.ashbyhq.com/posting-api/job-board)."""

from __future__ import annotations

from typing import Any

from bot.errors import SourceError
from bot.models import Posting
from bot.sources._ats import (
    NO_SALARY,
    Salary,
    date,
    description,
    employment_type,
    flag,
    identify,
    items,
    load_json,
    mapping,
    period,
    salary,
    salary_span,
    text,
    unique,
    workplace_remote,
)
from bot.sources._urls import board_name, segments, split_url, with_query
from bot.sources.base import Collected, Fetcher, SourceSpec, register

KIND = "ashby"
_BOARD_HOST = "jobs.ashbyhq.com"
_API_HOST = "api.ashbyhq.com"
_API_PATH = ["posting-api", "job-board"]


def api_url(url: str) -> str:
    """The API URL, with compensation, of the board that a board or job page belongs to
    (the API has no single-job document); API URLs get ``includeCompensation=true``."""
    parts = split_url(url)
    if parts is None:
        return url
    path = segments(parts)
    if parts.hostname == _BOARD_HOST and path:
        return f"https://{_API_HOST}/posting-api/job-board/{path[0]}?includeCompensation=true"
    if parts.hostname == _API_HOST and path[:2] == _API_PATH and len(path) == 3:
        return with_query(url.strip(), includeCompensation="true")
    return url


def _board(url: str) -> str | None:
    """The board name in a board page, job page or API URL."""
    return board_name(url, {_BOARD_HOST}, {_API_HOST}, _API_PATH)


def parse_board(body: bytes, source: str, company: str | None) -> list[Posting]:
    """The listed postings of a ``{"apiVersion": "1", "jobs": [...]}`` document."""
    data = load_json(KIND, body)
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        raise SourceError("ashby: expected a JSON object with 'jobs'")
    return [
        _parse_job(job, index, source, company)
        for index, job in enumerate(data["jobs"])
        if mapping(job).get("isListed") is not False
    ]


@register("ashby")
async def collect(spec: SourceSpec, fetcher: Fetcher) -> Collected:
    response = await fetcher.get(api_url(spec.url))
    return Collected(parse_board(response.body, spec.name, spec.company or _board(spec.url)))


def _parse_job(row: Any, index: int, source: str, company: str | None) -> Posting:
    job, job_id, title = identify(KIND, row, index)
    url = text(job.get("jobUrl"))
    secondary = [mapping(extra).get("location") for extra in items(job.get("secondaryLocations"))]
    return Posting(
        source=source,
        id=job_id,
        title=title,
        # The payload names no company; a file: or loopback board is named by its postings.
        company=company or (_board(url) if url else None),
        locations=unique([job.get("location"), *secondary]),
        remote=_remote(job),
        # The team is the finer grouping (a department holds several teams).
        team=text(job.get("team")) or text(job.get("department")),
        employment_type=employment_type(job.get("employmentType")),
        posted_at=date(job.get("publishedAt")),
        **_pay(mapping(job.get("compensation"))),
        url=url,
        apply_url=text(job.get("applyUrl")),
        description=description(job.get("descriptionHtml"), job.get("descriptionPlain")),
    )


def _remote(job: dict[str, Any]) -> bool | None:
    flags = (flag(job.get("isRemote")), workplace_remote(job.get("workplaceType")))
    if True in flags:
        return True
    return False if False in flags else None


def _pay(compensation: dict[str, Any]) -> Salary:
    """The salary span of the summary components, else of every tier's components."""
    tier_components = [
        component
        for tier in items(compensation.get("compensationTiers"))
        for component in items(mapping(tier).get("components"))
    ]
    summary = salary_span(_salaries(compensation.get("summaryComponents")))
    return summary if summary != NO_SALARY else salary_span(_salaries(tier_components))


def _salaries(components: Any) -> list[Salary]:
    return [
        salary(part.get("minValue"), part.get("maxValue"), part.get("currencyCode"),
               period(part.get("interval")))
        for part in map(mapping, items(components))
        if (text(part.get("compensationType")) or "").casefold() == "salary"
    ]  # fmt: skip
