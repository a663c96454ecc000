"""Any page carrying schema.org ``JobPosting`` JSON-LD (``<script type="application/ld+json">``).

A script holds one object, an array of them, or an object with a ``@graph``; other
types (BreadcrumbList, Organization, WebPage) sit beside the postings, and an
organization may be named only by an ``@id`` reference into the graph.
"""

from __future__ import annotations

import html
import json
import math
import re
from typing import Any
from urllib.parse import urldefrag, urljoin

from selectolax.lexbor import LexborHTMLParser

from bot.errors import SourceError
from bot.models import Posting
from bot.normalize import currency_code, pay_period
from bot.sources.base import Collected, Fetcher, SourceSpec, register
from bot.text import has_markup, html_to_text, iso_date, page_text, stable_id, text_or_none

_SCHEMA_PREFIX = re.compile(r"^(?:https?://schema\.org/|schema:)", re.IGNORECASE)
_ESCAPED_TAG = re.compile(r"&lt;[A-Za-z/!]")
# schema.org's employmentType enumeration, spelled like the other sources' labels.
_EMPLOYMENT_LABELS = {
    "FULL_TIME": "Full-time",
    "PART_TIME": "Part-time",
    "CONTRACTOR": "Contract",
    "TEMPORARY": "Temporary",
    "INTERN": "Internship",
    "VOLUNTEER": "Volunteer",
    "PER_DIEM": "Per diem",
    "OTHER": "Other",
}


def parse_page(body: bytes, url: str, source: str, company: str | None) -> list[Posting]:
    """The JobPostings of a page fetched from ``url``; ``[]`` when it carries none."""
    documents, failures = _documents(page_text("jsonld", body, url))
    nodes = [node for document in documents for node in _nodes(document)]
    by_id = {node["@id"]: node for node in nodes if isinstance(node.get("@id"), str)}
    jobs = [node for node in nodes if _is_job_posting(node)]
    if not jobs and failures:
        raise SourceError(f"jsonld: no JobPosting, and {failures} JSON-LD script(s) are invalid")
    postings = [_parse_job(job, by_id, url, source, company) for job in jobs]
    return [posting for posting in postings if posting is not None]


@register("jsonld")
async def collect(spec: SourceSpec, fetcher: Fetcher) -> Collected:
    response = await fetcher.get(spec.url)
    return Collected(parse_page(response.body, response.url, spec.name, spec.company))


# --- documents and nodes ---------------------------------------------------------


def _documents(page: str) -> tuple[list[Any], int]:
    """The decoded JSON-LD scripts of a page, and how many failed to decode."""
    documents: list[Any] = []
    failures = 0
    for script in LexborHTMLParser(page).css('script[type="application/ld+json" i]'):
        try:
            # strict=False: pages put literal tabs and newlines inside strings.
            documents.append(json.loads(script.text(deep=True), strict=False))
        except (ValueError, RecursionError):  # bad JSON, over-long numbers, deep nesting
            failures += 1
    return documents, failures


def _nodes(document: Any) -> list[dict[str, Any]]:
    """The top-level objects of a document: itself, its array items and its ``@graph``."""
    items = document if isinstance(document, list) else [document]
    nodes: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        nodes.append(item)
        graph = item.get("@graph")
        nodes.extend(node for node in _list(graph) if isinstance(node, dict))
    return nodes


def _is_job_posting(node: dict[str, Any]) -> bool:
    return any(
        isinstance(name, str) and _SCHEMA_PREFIX.sub("", name.strip()) == "JobPosting"
        for name in _list(node.get("@type"))
    )


def _list(value: Any) -> list[Any]:
    """A JSON-LD value that may be one item or an array, as a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _resolve(value: Any, by_id: dict[str, dict[str, Any]]) -> Any:
    """A node for an ``{"@id": ...}`` reference into the page's graph; else ``value``."""
    if isinstance(value, dict) and isinstance(value.get("@id"), str):
        return by_id.get(value["@id"], value)
    return value


# --- one posting -----------------------------------------------------------------


def _parse_job(
    job: dict[str, Any],
    by_id: dict[str, dict[str, Any]],
    page_url: str,
    source: str,
    configured_company: str | None,
) -> Posting | None:
    title = text_or_none(job.get("title"))
    if title is None:
        return None
    company = _name(_resolve(job.get("hiringOrganization"), by_id))
    locations = _job_locations(job.get("jobLocation"), by_id) or _names(
        job.get("applicantLocationRequirements"), by_id
    )
    own_url = _url(job.get("url"), page_url)
    # Without an identifier or a URL of its own, the page's company (not the configured one)
    # keeps the id stable when the config is edited.
    posting_id = _identifier(job.get("identifier")) or own_url
    url = own_url or page_url
    return Posting(
        source=source,
        id=posting_id or stable_id(company or "", title, *locations),
        title=title,
        company=company or configured_company,
        locations=locations,
        remote=True if _is_telecommute(job.get("jobLocationType")) else None,
        employment_type=_employment_type(job.get("employmentType")),
        posted_at=iso_date(job["datePosted"]) if isinstance(job.get("datePosted"), str) else None,
        **_salary(job.get("baseSalary")),
        url=url,
        apply_url=url if job.get("directApply") is True else None,
        description=_description(job.get("description")),
    )


def _name(value: Any) -> str | None:
    """The name of an Organization/Place/Country object, or a bare string naming one."""
    if isinstance(value, dict):
        return text_or_none(value.get("name"))
    return text_or_none(value)


def _names(values: Any, by_id: dict[str, dict[str, Any]]) -> tuple[str, ...]:
    names = (_name(_resolve(value, by_id)) for value in _list(values))
    return tuple(dict.fromkeys(name for name in names if name))


def _job_locations(places: Any, by_id: dict[str, dict[str, Any]]) -> tuple[str, ...]:
    locations = (_place(_resolve(place, by_id), by_id) for place in _list(places))
    return tuple(dict.fromkeys(location for location in locations if location))


def _place(place: Any, by_id: dict[str, dict[str, Any]]) -> str | None:
    """ "Locality, Region, Country" of a Place's PostalAddress, else the Place's name."""
    if not isinstance(place, dict):
        return text_or_none(place)
    address = _resolve(place.get("address"), by_id)
    if isinstance(address, dict):
        parts = (
            text_or_none(address.get("addressLocality")),
            text_or_none(address.get("addressRegion")),
            _name(address.get("addressCountry")),
        )
        if joined := ", ".join(dict.fromkeys(part for part in parts if part)):
            return joined
    elif text := text_or_none(address):
        return text
    return text_or_none(place.get("name"))


def _is_telecommute(value: Any) -> bool:
    return any(
        isinstance(kind, str) and _SCHEMA_PREFIX.sub("", kind.strip()).upper() == "TELECOMMUTE"
        for kind in _list(value)
    )


def _employment_type(value: Any) -> str | None:
    kinds = (
        text_or_none(_SCHEMA_PREFIX.sub("", kind)) for kind in _list(value) if isinstance(kind, str)
    )
    labels = (_EMPLOYMENT_LABELS.get(kind.upper(), kind) for kind in kinds if kind)
    return ", ".join(dict.fromkeys(labels)) or None


def _identifier(value: Any) -> str | None:
    """The first value of PropertyValue identifiers, or of bare string/number ones."""
    for identifier in _list(value):
        item = identifier.get("value") if isinstance(identifier, dict) else identifier
        if isinstance(item, int) and not isinstance(item, bool):
            return str(item)
        if text := text_or_none(item):
            return text
    return None


def _url(value: Any, page_url: str) -> str | None:
    """An absolute URL without its fragment, resolved against the page."""
    href = text_or_none(value)
    if href is None:
        return None
    try:
        return urldefrag(urljoin(page_url, href)).url or None
    except ValueError:  # e.g. a malformed IPv6 host
        return None


def _salary(base_salary: Any) -> dict[str, Any]:
    """The salary fields of a MonetaryAmount with a QuantitativeValue (or a bare number)."""
    none = {"salary_min": None, "salary_max": None, "salary_currency": None, "salary_period": None}
    money = next((item for item in _list(base_salary) if isinstance(item, dict)), None)
    currency = text_or_none(money.get("currency")) if money else None
    if money is None or currency is None:
        return none
    value = money.get("value")
    if isinstance(value, dict):
        low = _amount(value.get("minValue"))
        high = _amount(value.get("maxValue"))
        if low is None and high is None:
            low = high = _amount(value.get("value"))
        unit = text_or_none(value.get("unitText"))
    else:
        low = high = _amount(value)
        unit = None
    if low is None and high is None:
        return none
    return {
        "salary_min": low,
        "salary_max": high,
        "salary_currency": currency_code(currency),
        "salary_period": pay_period(unit),
    }


def _amount(value: Any) -> float | None:
    """A non-negative finite number, also from a numeric string ("90000")."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _description(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    # Some sites escape the HTML once more ("&lt;p&gt;"): markup that exists only in
    # escaped form is unescaped first, then the HTML parser decodes the entities it holds.
    if not has_markup(value) and _ESCAPED_TAG.search(value):
        value = html.unescape(value)
    return html_to_text(value) or None
