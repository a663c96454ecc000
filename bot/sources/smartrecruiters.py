"""SmartRecruiters Posting API (api.smartrecruiters.com/v1/companies/{id}/postings)."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from bot.errors import SourceError
from bot.models import Posting
from bot.sources._ats import (
    collect_pages,
    date,
    description,
    flag,
    identify,
    join_blocks,
    load_json,
    mapping,
    place,
    text,
    unique,
)
from bot.sources._urls import board_name, query_int, segments, split_url, with_query
from bot.sources.base import Collected, Fetcher, Response, SourceSpec, register, with_details

log = logging.getLogger(__name__)

KIND = "smartrecruiters"
_API_HOST = "api.smartrecruiters.com"
_JOB_HOST = "jobs.smartrecruiters.com"
_BOARD_HOSTS = frozenset({"careers.smartrecruiters.com", _JOB_HOST})
_API_PATH = ["v1", "companies"]
_PAGE_SIZE = "100"  # the API's maximum
_POSTING_ID = re.compile(r"\d+")  # job page slugs read "{id}-{title}"


def api_url(url: str) -> str:
    """The postings API URL of a careers page, or the posting API URL of a job page;
    list API URLs get ``limit=100`` unless they set a limit; others are returned unchanged."""
    parts = split_url(url)
    if parts is None:
        return url
    path = segments(parts)
    if parts.hostname in _BOARD_HOSTS and path:
        postings = f"https://{_API_HOST}/v1/companies/{path[0]}/postings"
        posting_id = _POSTING_ID.match(path[1]) if len(path) > 1 else None
        if posting_id:
            return f"{postings}/{posting_id.group()}"
        return f"{postings}?limit={_PAGE_SIZE}&offset=0"
    if parts.hostname == _API_HOST and path[:2] == _API_PATH and path[3:] == ["postings"]:
        return url if query_int(url, "limit") else with_query(url.strip(), limit=_PAGE_SIZE)
    return url


def detail_url(list_url: str, posting_id: str) -> str:
    """Where the detail of a listed posting lives: ``…/postings/{id}`` under an API list
    path, else the list's sibling ``posting-{id}.json`` (saved or loopback copies)."""
    parts = urlsplit(list_url)
    path = parts.path.rstrip("/")
    name = quote(posting_id, safe="")
    if path.endswith("/postings"):
        path = f"{path}/{name}"
    else:
        path = f"{path.rpartition('/')[0]}/posting-{name}.json"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def parse_postings(
    body: bytes, source: str, company: str | None
) -> tuple[list[Posting], int | None]:
    """Postings of a list page with its ``totalFound``, or of one posting document (None)."""
    data = load_json(KIND, body)
    if isinstance(data, dict) and isinstance(data.get("content"), list):
        rows: list[Any] = data["content"]
        total = data.get("totalFound")
        postings = [_parse_posting(row, index, source, company) for index, row in enumerate(rows)]
        return postings, total if isinstance(total, int) and not isinstance(total, bool) else None
    if isinstance(data, dict) and "id" in data and "name" in data:
        return [_parse_posting(data, 0, source, company)], None
    raise SourceError("smartrecruiters: expected a JSON object with 'content'")


@register("smartrecruiters")
async def collect(spec: SourceSpec, fetcher: Fetcher) -> Collected:
    """Every list page (``offset`` += the page's length until ``totalFound``), then the
    detail of each posting that the list gave without a description."""
    url = api_url(spec.url)
    company = spec.company or _company_id(spec.url)
    start = query_int(url, "offset") or 0

    async def read_page(offset: int) -> tuple[list[Posting], int | None]:
        page_url = url if offset == start else with_query(url, offset=str(offset))
        postings, total = parse_postings((await fetcher.get(page_url)).body, spec.name, company)
        end = offset + len(postings)
        return postings, (end if total is not None and end < total else None)

    listed = await collect_pages(spec, start, read_page)
    # A posting that came with its description is already a detail document.
    wanted = {p.id: detail_url(url, p.id) for p in listed.postings if p.description is None}

    def read_detail(response: Response) -> Posting:
        found, _ = parse_postings(response.body, spec.name, company)
        if len(found) != 1 or found[0].id not in wanted:
            raise SourceError("smartrecruiters: the detail is not the posting asked for")
        return found[0]

    return await with_details(listed, fetcher, wanted, read_detail, _detail_only, spec.name)


def _detail_only(_row: Posting, detail: Posting) -> Posting:
    """A detail document holds every field that its list row has."""
    return detail


def _company_id(url: str) -> str | None:
    """The company identifier in a careers page, job page or API URL."""
    return board_name(url, _BOARD_HOSTS, {_API_HOST}, _API_PATH)


def _parse_posting(row: Any, index: int, source: str, company: str | None) -> Posting:
    job, posting_id, title = identify(KIND, row, index, title_key="name")
    owner = mapping(job.get("company"))
    location = mapping(job.get("location"))
    return Posting(
        source=source,
        id=posting_id,
        title=title,
        company=text(owner.get("name")) or company,
        locations=unique([_location(location)]),
        remote=flag(location.get("remote")),
        team=_label(job.get("department")) or _label(job.get("function")),
        employment_type=_label(job.get("typeOfEmployment")),
        posted_at=date(job.get("releasedDate")),
        url=text(job.get("postingUrl")) or _public_url(text(owner.get("identifier")), posting_id),
        apply_url=text(job.get("applyUrl")),
        description=_description(mapping(job.get("jobAd")).get("sections")),
    )


def _public_url(identifier: str | None, posting_id: str) -> str | None:
    """The job page of a posting known only from the list (which carries no link)."""
    if identifier is None:
        return None
    return f"https://{_JOB_HOST}/{quote(identifier, safe='')}/{quote(posting_id, safe='')}"


def _location(location: dict[str, Any]) -> str | None:
    full = location.get("fullLocation")
    if isinstance(full, str) and (cleaned := place(*full.split(","))):
        return cleaned
    country = text(location.get("country"))
    # The separate fields give the country as a lower-case ISO code ("de").
    return place(location.get("city"), location.get("region"), country and country.upper())


def _label(value: Any) -> str | None:
    return text(mapping(value).get("label"))


def _description(sections: Any) -> str | None:
    """The job ad's sections in the order given, each under its title."""
    return join_blocks(
        *(
            join_blocks(text(section.get("title")), body)
            for section in map(mapping, mapping(sections).values())
            if (body := description(section.get("text")))
        )
    )
