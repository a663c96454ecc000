"""Apple's job site (jobs.apple.com): search result pages and job detail pages.

Both are server-rendered React Router pages whose data sits in one script,
``window.__staticRouterHydrationData = JSON.parse("…")``: a JavaScript string
literal holding JSON. Search rows carry the listing fields; each role's detail
page adds the description, the pay footer and the employment type.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, quote, urljoin

from bot.errors import SourceError
from bot.models import Posting
from bot.normalize import pay_period
from bot.sources._urls import split_url, with_raw_param
from bot.sources.base import (
    Collected,
    Fetcher,
    Listing,
    ListPage,
    SourceSpec,
    register,
    with_details,
)
from bot.text import fix_surrogates, fixed_text, has_markup, html_to_text, iso_date, normalize_space

log = logging.getLogger(__name__)

COMPANY = "Apple"
PAGE_SIZE = 20  # search results per page
_CANONICAL_HOST = "jobs.apple.com"
_DEFAULT_LOCALE = "en-us"
_LOCALE = re.compile(r"[a-z]{2}-[a-z]{2}", re.IGNORECASE)

_BLOB = re.compile(
    r"""__staticRouterHydrationData\s*=\s*JSON\.parse\(\s*"""
    r"""("[^"\\]*+(?:\\.[^"\\]*+)*+"|'[^'\\]*+(?:\\.[^'\\]*+)*+')""",
    re.DOTALL,
)
_JS_ESCAPE = re.compile(r"\\(u\{[0-9A-Fa-f]+\}|u[0-9A-Fa-f]{4}|x[0-9A-Fa-f]{2}|\r\n|.)", re.DOTALL)
_JS_SIMPLE_ESCAPES = {
    "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "0": "\0",
    # A backslash before a line break continues the literal on the next line.
    "\n": "", "\r": "", "\r\n": "", "\u2028": "", "\u2029": "",
}  # fmt: skip

# Detail text sections in page order: (field, heading, one bullet per line).
_SECTIONS = (
    ("jobSummary", "Summary", False),
    ("description", "Description", False),
    ("responsibilities", "Responsibilities", True),
    ("minimumQualifications", "Minimum Qualifications", True),
    ("keyQualifications", "Key Qualifications", True),
    ("preferredQualifications", "Preferred Qualifications", True),
    ("educationAndExperience", "Education & Experience", False),
    ("additionalRequirements", "Additional Requirements", True),
)

_CURRENCIES = {"$": "USD", "£": "GBP", "€": "EUR"}
# 131,500 / 148,500.00 / 60.000 / 60.000,50 / 22.50 / 150k
_NUMBER = (
    r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d+(?:[.,]\d{1,2})?)"
    r"(?:\s?([kK])\b)?"
)
_DOT_THOUSANDS = re.compile(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?")
_PAY_RANGE = re.compile(
    rf"([$£€])\s?{_NUMBER}\s*(?:and|to|-|\u2013|\u2014)\s*([$£€])?\s?{_NUMBER}"
    r"(?:\s+(USD|CAD|AUD|NZD|SGD|HKD|GBP|EUR)\b)?"
)
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)|\n")


@dataclass(frozen=True, slots=True)
class Pay:
    minimum: float
    maximum: float
    currency: str  # ISO 4217
    period: str  # hour, day, week, month or year


def parse_page(body: bytes, url: str, source: str) -> ListPage:
    """The postings of a search results page (its ``totalRecords``, its rows' detail pages)
    or of a job detail page fetched from ``url``."""
    loader = _loader_data(body)
    site = _Site.of(url, loader)
    search = loader.get("search")
    if "jobDetails" not in loader and isinstance(search, dict):
        return _search_page(search, site, source)
    return ListPage([_posting(_jobs_data(loader), 0, site, source)], total=1)


def parse_detail(body: bytes, url: str, source: str) -> Posting:
    """The posting of one job detail page; a search page or a vanished role is an error."""
    loader = _loader_data(body)
    return _posting(_jobs_data(loader), 0, _Site.of(url, loader), source)


def merge_detail(row: Posting, detail: Posting) -> Posting:
    """A search row completed with what only its detail page has.

    The row keeps every value it has, so a detail fetch that fails next time
    changes nothing but these fields (and a pipeline row keeps its null date).
    """
    pay = detail if detail.salary_currency else row
    return replace(
        row,
        employment_type=detail.employment_type or row.employment_type,
        salary_min=pay.salary_min,
        salary_max=pay.salary_max,
        salary_currency=pay.salary_currency,
        salary_period=pay.salary_period,
        apply_url=detail.apply_url or row.apply_url,
        description=detail.description or row.description,
    )


def parse_pay(text: str) -> Pay | None:
    """The first pay range stated in ``text``: "between $131,500 and $243,300" and the like.

    Yearly unless the sentence names another period ("per hour", "hourly", ...).
    """
    for match in _PAY_RANGE.finditer(text):
        symbol, low, low_k, symbol2, high, high_k, code = match.groups()
        if symbol2 not in (None, symbol):
            continue
        thousands = bool(low_k or high_k)  # "$150-200k"
        minimum, maximum = _amount(low, thousands), _amount(high, thousands)
        if minimum > maximum:
            continue
        currency = code or _CURRENCIES[symbol]
        return Pay(minimum, maximum, currency, _period(text, match.start(), match.end()))
    return None


@register("apple")
async def collect(spec: SourceSpec, fetcher: Fetcher) -> Collected:
    """Every result of a search (all its pages), each completed from its detail page."""
    listing = Listing()
    first_number = _page_number(spec.url)
    url: str | None = spec.url
    pages_read = 0
    complete = True
    while url is not None:
        if pages_read == spec.max_pages:
            complete = False
            log.warning("%s: stopped after max_pages=%d before %s", spec.name, spec.max_pages, url)
            break
        response = await fetcher.get(url)
        pages_read += 1
        page = parse_page(response.body, response.url, spec.name)
        more = listing.add(page) and _more_results(page, len(listing.rows))
        url = with_raw_param(spec.url, "page", str(first_number + pages_read)) if more else None
    return await with_details(
        listing.collected(complete),
        fetcher,
        listing.details,
        lambda r: parse_detail(r.body, r.url, spec.name),
        merge_detail,
        spec.name,
    )


def _more_results(page: ListPage, seen: int) -> bool:
    if page.total is not None:
        return seen < page.total
    return len(page.postings) >= PAGE_SIZE


# --- the hydration blob ------------------------------------------------------


def _loader_data(body: bytes) -> dict[str, Any]:
    match = _BLOB.search(body.decode("utf-8", errors="replace"))
    if match is None:
        raise SourceError("apple: no __staticRouterHydrationData in the page")
    text = _js_string(match.group(1)[1:-1])
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SourceError(
            f"apple: hydration data is not JSON (line {error.lineno}, column {error.colno})"
        ) from None
    except (ValueError, RecursionError) as error:  # over-long numbers, deep nesting
        raise SourceError(f"apple: hydration data is not JSON ({type(error).__name__})") from None
    loader = data.get("loaderData") if isinstance(data, dict) else None
    if not isinstance(loader, dict):
        raise SourceError("apple: hydration data has no loaderData")
    return loader


def _js_string(literal: str) -> str:
    """The value of a JavaScript string literal's body (JSON escapes plus ``\\x..`` and kin)."""
    decoded = _JS_ESCAPE.sub(_js_unescape, literal)
    # \uD83D\uDE00 decodes to two halves of a pair: join them; lone halves become U+FFFD.
    return fix_surrogates(decoded)


def _js_unescape(match: re.Match[str]) -> str:
    escape = match.group(1)
    if len(escape) > 1 and escape[0] in "ux":
        code = int(escape[1:].strip("{}"), 16)
        if code > 0x10FFFF:
            raise SourceError("apple: invalid \\u{...} escape in hydration data")
        return chr(code)
    return _JS_SIMPLE_ESCAPES.get(escape, escape)


def _jobs_data(loader: dict[str, Any]) -> Any:
    details = loader.get("jobDetails")
    if not isinstance(details, dict):
        raise SourceError("apple: the page has neither search results nor job details")
    job = details.get("jobsData")
    if not isinstance(job, dict):
        raise SourceError("apple: the page has no job details (the role may no longer exist)")
    return job


def _search_page(search: dict[str, Any], site: _Site, source: str) -> ListPage:
    results = search.get("searchResults")
    if not isinstance(results, list):
        raise SourceError("apple: search data has no searchResults list")
    postings: list[Posting] = []
    details: dict[str, str] = {}
    for index, row in enumerate(results):
        posting = _posting(row, index, site, source)
        postings.append(posting)
        details.setdefault(
            posting.id, site.detail_location(_public_id(row, posting.id), _slug(row))
        )
    total = search.get("totalRecords")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        total = None
    return ListPage(postings, total, details)


# --- where pages live ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Site:
    """Where a page's roles live: their public URLs and their detail pages."""

    page_url: str
    details_base: str  # ".../{locale}/details/", the prefix of a role's URL
    is_file: bool

    @classmethod
    def of(cls, url: str, loader: dict[str, Any]) -> _Site:
        parts = split_url(url)
        root = loader.get("root")
        blob_locale = root.get("locale") if isinstance(root, dict) else None
        if parts is None or parts.scheme.lower() not in ("http", "https"):
            is_file = parts is not None and parts.scheme.lower() == "file"
            return cls(url, _canonical_base(blob_locale), is_file)
        segments = parts.path.split("/")
        if (parts.hostname or "") == _CANONICAL_HOST:
            path_locale = segments[1] if len(segments) > 1 else None
            return cls(url, _canonical_base(path_locale, blob_locale), is_file=False)
        # Elsewhere (a mirror, a loopback server) roles live beside the search page.
        marker = max(
            (i for i, segment in enumerate(segments) if segment in ("search", "details")),
            default=len(segments) - 1,
        )
        prefix = "/".join(segments[:marker])
        return cls(url, f"{parts.scheme}://{parts.netloc}{prefix}/details/", is_file=False)

    def role_url(self, public_id: str, slug: str | None) -> str:
        url = self.details_base + quote(public_id, safe="")
        return f"{url}/{quote(slug, safe='')}" if slug else url

    def detail_location(self, public_id: str, slug: str | None) -> str:
        if self.is_file:  # a saved search page keeps its detail pages as siblings
            return urljoin(self.page_url, f"details-{quote(public_id, safe='')}.html")
        return self.role_url(public_id, slug)


def _canonical_base(*locales: Any) -> str:
    """The jobs.apple.com details prefix for the first valid locale given."""
    valid = (c.lower() for c in locales if isinstance(c, str) and _LOCALE.fullmatch(c))
    return f"https://{_CANONICAL_HOST}/{next(valid, _DEFAULT_LOCALE)}/details/"


def _page_number(url: str) -> int:
    parts = split_url(url)
    values = [v for k, v in parse_qsl(parts.query) if k == "page"] if parts else []
    return int(values[-1]) if values and values[-1].isdigit() else 1


# --- one role ------------------------------------------------------------------


def _posting(job: Any, index: int, site: _Site, source: str) -> Posting:
    """A posting from a search row or from a detail page's ``jobsData`` (same field names)."""
    if not isinstance(job, dict):
        raise SourceError(f"apple: result #{index + 1} is not an object")
    job_id = _id(job.get("id"))
    if job_id is None:
        raise SourceError(f"apple: result #{index + 1} has no id")
    title = fixed_text(job.get("postingTitle"))
    if title is None:
        raise SourceError(f"apple: role {job_id} has no title")
    pay = _footer_pay(job.get("postingFooters"))
    home_office = job.get("homeOffice")
    return Posting(
        source=source,
        id=job_id,
        title=title,
        company=COMPANY,
        locations=_locations(job.get("locations")),
        remote=home_office if isinstance(home_office, bool) else None,
        team=_team(job),
        employment_type=fixed_text(job.get("employmentType")),
        # Pipeline roles stamp postDateInGMT with the time of each request.
        posted_at=None if _is_pipeline(job, job_id) else _posted(job),
        salary_min=pay.minimum if pay else None,
        salary_max=pay.maximum if pay else None,
        salary_currency=pay.currency if pay else None,
        salary_period=pay.period if pay else None,
        url=site.role_url(_public_id(job, job_id), _slug(job)),
        description=_description(job),
    )


def _id(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return fixed_text(str(value))


def _is_pipeline(job: dict[str, Any], job_id: str) -> bool:
    return (
        job_id.upper().startswith("PIPE-")
        or job.get("type") == "PIPE"
        or job.get("managedPipelineRole") is True
    )


def _public_id(job: dict[str, Any], job_id: str) -> str:
    """The id in the role's URL: a pipeline role ``PIPE-114438158`` is shown at ``/114438158/``."""
    if not job_id.upper().startswith("PIPE-"):
        return job_id
    return _id(job.get("positionId")) or job_id[len("PIPE-") :]


def _slug(job: dict[str, Any]) -> str | None:
    return fixed_text(job.get("transformedPostingTitle"))


def _posted(job: dict[str, Any]) -> str | None:
    for key in ("postDateInGMT", "postingDate"):
        value = job.get(key)
        if isinstance(value, str) and (date := iso_date(value)):
            return date
    return None


def _locations(locations: Any) -> tuple[str, ...]:
    """ "City, State, Country" per location, repeated parts dropped ("Singapore, Singapore")."""
    found: list[str] = []
    for location in locations if isinstance(locations, list) else []:
        if not isinstance(location, dict):
            continue
        parts: list[str] = []
        for key in ("city", "stateProvince", "countryName"):
            part = fixed_text(location.get(key))
            if part and part.casefold() not in (p.casefold() for p in parts):
                parts.append(part)
        name = ", ".join(parts) or fixed_text(location.get("name"))
        if name and name not in found:
            found.append(name)
    return tuple(found)


def _team(job: dict[str, Any]) -> str | None:
    team = job.get("team")
    teams = job.get("teams")
    candidates = [team, *(teams if isinstance(teams, list) else [])]
    for candidate in candidates:
        if isinstance(candidate, dict) and (name := fixed_text(candidate.get("teamName"))):
            return name
    names = job.get("teamNames")
    return fixed_text(names[0]) if isinstance(names, list) and names else None


def _description(job: dict[str, Any]) -> str | None:
    blocks: list[str] = []
    for key, heading, bulleted in _SECTIONS:
        lines = _lines(job.get(key))
        if bulleted and len(lines) > 1:
            lines = [line if line.startswith("• ") else f"• {line}" for line in lines]
        if lines:
            blocks.append("\n".join([heading, *lines]))
    return "\n\n".join(blocks) or None


def _lines(value: Any) -> list[str]:
    if not isinstance(value, str):
        return []
    text = fix_surrogates(value)
    if has_markup(text):
        text = html_to_text(text)
    return [line for line in (normalize_space(raw) for raw in text.splitlines()) if line]


def _footer_pay(footers: Any) -> Pay | None:
    """The span of the pay ranges in the footers that share the first one's currency and period."""
    found = [pay for content in _footer_contents(footers) if (pay := parse_pay(content))]
    if not found:
        return None
    first = found[0]
    same = [p for p in found if (p.currency, p.period) == (first.currency, first.period)]
    return Pay(
        min(p.minimum for p in same), max(p.maximum for p in same), first.currency, first.period
    )


def _footer_contents(footers: Any) -> Iterator[str]:
    """The text of each footer entry, US English first."""
    for footer in footers if isinstance(footers, list) else []:
        localizations = footer.get("localizations") if isinstance(footer, dict) else None
        if not isinstance(localizations, dict):
            continue
        for _, entries in sorted(localizations.items(), key=lambda item: item[0] != "en_US"):
            for entry in entries if isinstance(entries, list) else []:
                content = entry.get("content") if isinstance(entry, dict) else None
                if isinstance(content, str):
                    yield html_to_text(fix_surrogates(content))


def _amount(number: str, thousands: bool) -> float:
    if _DOT_THOUSANDS.fullmatch(number):
        number = number.replace(".", "").replace(",", ".")
    elif "," in number and "." not in number and len(number.rpartition(",")[2]) < 3:
        number = number.replace(",", ".")  # a decimal comma: "22,50"
    value = float(number.replace(",", ""))
    return value * 1000 if thousands and value < 1000 else value


def _period(text: str, start: int, end: int) -> str:
    """The pay period named in the sentence around ``text[start:end]``; yearly by default."""
    begin = max((m.end() for m in _SENTENCE_END.finditer(text, 0, start)), default=0)
    after = _SENTENCE_END.search(text, end)
    return pay_period(text[begin : after.start() if after else len(text)]) or "year"
