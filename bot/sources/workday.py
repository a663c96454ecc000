"""Workday job sites (``{tenant}.wd{N}.myworkdayjobs.com``) through their CXS JSON endpoint.

The list endpoint pages by POSTed offset and fills ``total`` on the first page
only. Its rows are thin (relative dates, "3 Locations", no description), so each
row's detail document is fetched for the description, date and locations.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from bot.errors import SourceError
from bot.models import Posting
from bot.sources._ats import load_json
from bot.sources._urls import join_url, segments, split_url, with_raw_param
from bot.sources.base import (
    Collected,
    Fetcher,
    Listing,
    ListPage,
    SourceSpec,
    register,
    with_details,
)
from bot.text import fix_surrogates, fixed_text, html_to_text, iso_date, normalize_space, stable_id

log = logging.getLogger(__name__)

PAGE_LIMIT = 20  # Workday often rejects larger pages
_SITE_HOST = re.compile(r"(?P<tenant>[a-z0-9][a-z0-9-]*)\.wd\d+\.myworkdayjobs\.com")
_LOCALE = re.compile(r"[a-z]{2}(?:-[a-z]{2})?", re.IGNORECASE)
_REQUISITION = re.compile(r"(?=\S*\d)\S{1,64}")
_SOME_LOCATIONS = re.compile(r"\d+\s+locations?", re.IGNORECASE)
_POSTED = re.compile(
    r"(?:posted\s+)?(?:(today)|(yesterday)|(\d{1,5})\s+days?\s+ago)", re.IGNORECASE
)
_REMOTE = re.compile(
    r"(?:fully\s+|full\s+|100%\s+|completely\s+)?remote(?:\s+only)?", re.IGNORECASE
)


def list_endpoint(url: str) -> str:
    """The CXS list endpoint of a Workday site URL; any other URL is returned unchanged."""
    parts = split_url(url)
    match = _SITE_HOST.fullmatch(parts.hostname or "") if parts else None
    if parts is None or match is None:
        return url
    path = segments(parts)
    if path[:2] == ["wday", "cxs"]:
        return url
    if len(path) > 1 and _LOCALE.fullmatch(path[0]):
        path = path[1:]
    if not path:
        return url
    return f"https://{parts.netloc.lower()}/wday/cxs/{match['tenant']}/{path[0]}/jobs"


def parse_jobs(
    body: bytes, url: str, source: str, company: str | None, today: date | None = None
) -> ListPage:
    """The rows of a list page read from the endpoint ``url`` (or a detail document's posting).

    ``today`` dates the rows' relative "Posted 3 Days Ago"; default: today in UTC.
    """
    data = load_json("workday", body)
    site = _Site.of(url)
    today = today or datetime.now(UTC).date()
    if isinstance(data, dict) and isinstance(data.get("jobPostingInfo"), dict):
        return ListPage([_detail_posting(data, site, source, company, today)], total=1)
    if not isinstance(data, dict) or not isinstance(data.get("jobPostings"), list):
        raise SourceError("workday: expected a JSON object with 'jobPostings'")
    postings: list[Posting] = []
    details: dict[str, str] = {}
    for index, row in enumerate(data["jobPostings"]):
        posting, external_path = _row_posting(row, index, site, source, company, today)
        postings.append(posting)
        location = site.detail_location(posting.id, external_path)
        if location:
            details.setdefault(posting.id, location)
    total = data.get("total")
    if isinstance(total, bool) or not isinstance(total, int) or total <= 0:
        total = None  # pages after the first say 0
    return ListPage(postings, total, details)


def parse_job(
    body: bytes, url: str, source: str, company: str | None, today: date | None = None
) -> Posting:
    """The posting of one detail document (``{"jobPostingInfo": …}``) of the endpoint ``url``."""
    data = load_json("workday", body)
    if not isinstance(data, dict) or not isinstance(data.get("jobPostingInfo"), dict):
        raise SourceError("workday: expected a JSON object with 'jobPostingInfo'")
    return _detail_posting(data, _Site.of(url), source, company, today or datetime.now(UTC).date())


def merge_detail(row: Posting, detail: Posting) -> Posting:
    """The detail's posting under the row's id, with the row filling what the detail lacks."""
    gaps = {
        f.name: getattr(row, f.name)
        for f in fields(Posting)
        if getattr(detail, f.name) in (None, ())
    }
    return replace(detail, **{**gaps, "id": row.id})


def posted_date(text: str, today: date) -> str | None:
    """ "Posted Today" / "Posted Yesterday" / "Posted 3 Days Ago" as a date; "30+ Days" is None."""
    match = _POSTED.fullmatch(normalize_space(text))
    if match is None:
        return None
    days = 0 if match[1] else 1 if match[2] else int(match[3])
    try:
        return (today - timedelta(days=days)).isoformat()
    except OverflowError:
        return None


@register("workday")
async def collect(spec: SourceSpec, fetcher: Fetcher) -> Collected:
    """Every row of the site (all pages), each completed from its detail document."""
    endpoint = list_endpoint(spec.url)
    today = datetime.now(UTC).date()
    listing = Listing()
    total: int | None = None
    offset = 0
    complete = False
    for number in range(spec.max_pages):
        response = await fetcher.post_json(_page_url(endpoint, offset), _payload(offset))
        page = parse_jobs(response.body, endpoint, spec.name, spec.company, today)
        total = page.total if number == 0 else total
        new = listing.add(page)
        offset += len(page.postings)  # not the limit: a page may hold fewer rows
        if not new or (total is not None and offset >= total):
            complete = True
            break
    if not complete:
        log.warning(
            "%s: stopped after max_pages=%d at offset %d", spec.name, spec.max_pages, offset
        )
    return await with_details(
        listing.collected(complete),
        fetcher,
        listing.details,
        lambda r: parse_job(r.body, endpoint, spec.name, spec.company, today),
        merge_detail,
        spec.name,
    )


def _payload(offset: int) -> dict[str, Any]:
    return {"appliedFacets": {}, "limit": PAGE_LIMIT, "offset": offset, "searchText": ""}


def _page_url(endpoint: str, offset: int) -> str:
    """The endpoint itself, except that a saved ``file:`` page names its offset in the query
    (the fetcher then reads the sibling file with that number)."""
    parts = split_url(endpoint)
    if offset == 0 or parts is None or parts.scheme.lower() != "file":
        return endpoint
    return with_raw_param(endpoint, "offset", str(offset))


# --- the site -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Site:
    """What the endpoint URL tells: the tenant, the public site and where details live."""

    endpoint: str
    tenant: str | None
    public_base: str | None  # "https://{host}/{site}": a row's externalPath is relative to it
    detail_base: str | None  # the CXS prefix of detail documents; None: sibling files

    @classmethod
    def of(cls, endpoint: str) -> _Site:
        parts = split_url(endpoint)
        if parts is None or parts.scheme.lower() not in ("http", "https"):
            return cls(endpoint, None, None, None)
        host = _SITE_HOST.fullmatch(parts.hostname or "")
        names = segments(parts)
        tenant = host["tenant"] if host else None
        public_base = None
        if names[:2] == ["wday", "cxs"] and len(names) >= 4:
            tenant = names[2]
            public_base = f"{parts.scheme}://{parts.netloc}/{names[3]}"
        path = parts.path.rstrip("/")
        path = path.removesuffix("/jobs") if path.endswith("/jobs") else path.rpartition("/")[0]
        return cls(endpoint, tenant, public_base, f"{parts.scheme}://{parts.netloc}{path}")

    def public_url(self, external_path: str | None) -> str | None:
        if self.public_base is None or not external_path:
            return None
        return self.public_base + _rooted(external_path)

    def detail_location(self, posting_id: str, external_path: str | None) -> str | None:
        if self.detail_base is None:  # a saved list page keeps its details as siblings
            return join_url(self.endpoint, f"job-{quote(posting_id, safe='')}.json")
        return self.detail_base + _rooted(external_path) if external_path else None


def _rooted(path: str) -> str:
    return path if path.startswith("/") else f"/{path}"


# --- postings -------------------------------------------------------------------


def _row_posting(
    row: Any, index: int, site: _Site, source: str, company: str | None, today: date
) -> tuple[Posting, str | None]:
    """The posting of a list row and the row's externalPath."""
    if not isinstance(row, dict):
        raise SourceError(f"workday: job #{index + 1} is not an object")
    title = fixed_text(row.get("title"))
    if title is None:
        raise SourceError(f"workday: job #{index + 1} has no title")
    external_path = fixed_text(row.get("externalPath"))
    bullets = row.get("bulletFields")
    requisition = _requisition(bullets[0] if isinstance(bullets, list) and bullets else None)
    if external_path is None and requisition is None:
        raise SourceError(f"workday: job #{index + 1} has no externalPath or requisition id")
    locations_text = fixed_text(row.get("locationsText"))
    posted = row.get("postedOn")
    posting = Posting(
        source=source,
        id=_posting_id(requisition, external_path),
        title=title,
        company=company or site.tenant,
        # "3 Locations" names none of them; the detail document lists them.
        locations=(locations_text,)
        if locations_text and not _SOME_LOCATIONS.fullmatch(locations_text)
        else (),
        posted_at=posted_date(posted, today) if isinstance(posted, str) else None,
        url=site.public_url(external_path),
    )
    return posting, external_path


def _detail_posting(
    data: dict[str, Any], site: _Site, source: str, company: str | None, today: date
) -> Posting:
    info: dict[str, Any] = data["jobPostingInfo"]
    title = fixed_text(info.get("title"))
    if title is None:
        raise SourceError("workday: job document has no title")
    external_url = fixed_text(info.get("externalUrl"))
    parts = split_url(external_url) if external_url else None
    posting_path = parts.path if parts else fixed_text(info.get("jobPostingId"))
    requisition = _requisition(info.get("jobReqId"))
    if posting_path is None and requisition is None:
        raise SourceError("workday: job document has no jobReqId or externalUrl")
    organization = data.get("hiringOrganization")
    posted = info.get("postedOn")
    return Posting(
        source=source,
        id=_posting_id(requisition, posting_path),
        title=title,
        company=company
        or (fixed_text(organization.get("name")) if isinstance(organization, dict) else None)
        or site.tenant,
        locations=_detail_locations(info),
        remote=_remote(info.get("remoteType")),
        employment_type=fixed_text(info.get("timeType")),
        posted_at=_date(info.get("startDate"))
        or (posted_date(posted, today) if isinstance(posted, str) else None),
        url=external_url,
        description=_description(info.get("jobDescription")),
    )


def _requisition(value: Any) -> str | None:
    """An id-like value (one token with a digit): ``3058421``, ``JR1979416``, ``R-12345``."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = fixed_text(value)
    return text if text and _REQUISITION.fullmatch(text) else None


def _posting_id(requisition: str | None, external_path: str | None) -> str:
    """The requisition id; a repeat posting of one requisition keeps its path's ``-1`` suffix.

    Paths end in ``_{requisition}`` (``…/Video-Compression-Research-Engineer_3058421``),
    or ``_{requisition}-{n}`` when the requisition is posted more than once.
    """
    segment = (external_path or "").rstrip("/").rpartition("/")[2]
    tail = segment.rpartition("_")[2] if "_" in segment else None
    if requisition and tail and tail.startswith(f"{requisition}-"):
        return tail
    return requisition or tail or stable_id(external_path or "")


def _detail_locations(info: dict[str, Any]) -> tuple[str, ...]:
    additional = info.get("additionalLocations")
    candidates = [info.get("location"), *(additional if isinstance(additional, list) else [])]
    found: list[str] = []
    for candidate in candidates:
        text = fixed_text(candidate)
        if text and text not in found:
            found.append(text)
    return tuple(found)


def _remote(value: Any) -> bool | None:
    """True when ``remoteType`` says fully remote; hybrid, on-site or absent say nothing."""
    text = fixed_text(value)
    return True if text and _REMOTE.fullmatch(text) else None


def _date(value: Any) -> str | None:
    return iso_date(value) if isinstance(value, str) else None


def _description(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return html_to_text(fix_surrogates(value)) or None
