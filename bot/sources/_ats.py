"""Helpers shared by the ATS JSON API sources: JSON loading, field coercion, salary, paging."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypedDict, TypeVar

from bot.errors import SourceError
from bot.models import Posting
from bot.normalize import currency_code, pay_period
from bot.sources.base import Collected, SourceSpec, body_kind
from bot.text import encodable, html_to_text, iso_date, normalize_space, text_or_none

log = logging.getLogger(__name__)

Cursor = TypeVar("Cursor")

_WORKPLACE_REMOTE = {"remote": True, "onsite": False, "hybrid": False}
_EMPLOYMENT_LABELS = {
    "full": "Full-time",
    "fulltime": "Full-time",
    "part": "Part-time",
    "parttime": "Part-time",
    "contract": "Contract",
    "temporary": "Temporary",
    "intern": "Internship",
    "internship": "Internship",
}


# --- JSON ------------------------------------------------------------------------


def load_json(kind: str, body: bytes) -> Any:
    """The decoded document; ``SourceError`` naming the position (and what the body
    looks like instead, when that is plain) when it is not JSON."""
    try:
        return json.loads(body)
    except json.JSONDecodeError as error:
        looks_like = body_kind(body)
        if looks_like not in (None, "JSON"):
            hint = f" (got {looks_like})"
        elif error.pos >= len(error.doc.rstrip()):
            hint = " (it ends early: a truncated response?)"
        else:
            hint = ""
        raise SourceError(
            f"{kind}: invalid JSON at line {error.lineno}, column {error.colno}{hint}"
        ) from None
    except (ValueError, RecursionError) as error:  # bad UTF-8, over-long numbers, deep nesting
        raise SourceError(f"{kind}: invalid JSON ({type(error).__name__})") from None


def identify(
    kind: str, job: Any, index: int, *, id_key: str = "id", title_key: str = "title"
) -> tuple[dict[str, Any], str, str]:
    """A job object with its id and title; ``SourceError`` when it lacks either."""
    if not isinstance(job, dict):
        raise SourceError(f"{kind}: job #{index + 1} is not an object")
    job_id = job.get(id_key)
    if isinstance(job_id, bool) or not isinstance(job_id, int | str) or not str(job_id).strip():
        raise SourceError(f"{kind}: job #{index + 1} has no id")
    title = job.get(title_key)
    if not isinstance(title, str):
        raise SourceError(f"{kind}: job {job_id} has no title")
    return job, encodable(str(job_id)).strip(), normalize_space(encodable(title))


def mapping(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (absent or malformed parts)."""
    return value if isinstance(value, dict) else {}


def text(value: Any) -> str | None:
    """``text_or_none``, made ``encodable``."""
    found = text_or_none(value)
    return encodable(found) if found else None


def items(value: Any) -> list[Any]:
    """``value`` if it is a JSON list, else an empty one."""
    return value if isinstance(value, list) else []


def texts(values: Any) -> list[str]:
    """The non-blank strings of a JSON list."""
    return [item for item in (text(value) for value in items(values)) if item]


def date(value: Any) -> str | None:
    if not isinstance(value, str | int | float):
        return None
    try:
        return iso_date(value)
    except OverflowError:  # an integer too large for a float
        return None


def flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def unique(values: Iterable[Any]) -> tuple[str, ...]:
    """The distinct non-blank values, in order of first appearance."""
    return tuple(dict.fromkeys(item for value in values if value and (item := text(value))))


def place(*parts: Any) -> str | None:
    """The non-blank parts joined with ", " (``Dubai, , UAE`` parts become ``Dubai, UAE``)."""
    return ", ".join(item for part in parts if (item := text(part))) or None


def workplace_remote(value: Any) -> bool | None:
    """A workplace type (``remote``, ``on-site``/``OnSite``/``on_site``, ``hybrid``) as a
    remote flag; None for ``unspecified`` and unknown values."""
    key = re.sub(r"[^a-z]", "", (text(value) or "").casefold())
    return _WORKPLACE_REMOTE.get(key)


def employment_type(value: Any) -> str | None:
    """An employment type, with the API codes (``FullTime``, ``full``) spelled as labels."""
    label = text(value)
    if label is None:
        return None
    return _EMPLOYMENT_LABELS.get(re.sub(r"[^a-z]", "", label.casefold()), label)


def description(html: Any, plain: Any = None) -> str | None:
    """Plain text of the HTML field, else of the plain-text field."""
    converted = html_to_text(html) if isinstance(html, str) else ""
    return converted or text(plain)


def join_blocks(*blocks: str | None) -> str | None:
    """Text blocks separated by a blank line; None when all are empty."""
    return "\n\n".join(block for block in blocks if block) or None


# --- salary ----------------------------------------------------------------------


class Salary(TypedDict):
    salary_min: float | None
    salary_max: float | None
    salary_currency: str | None
    salary_period: str | None


NO_SALARY = Salary(salary_min=None, salary_max=None, salary_currency=None, salary_period=None)


def salary(minimum: Any, maximum: Any, currency: Any, per: str | None) -> Salary:
    """Structured pay for the period ``per``, or ``NO_SALARY`` without a currency or
    without any amount."""
    low, high, code = amount(minimum), amount(maximum), currency_code(text(currency))
    if code is None or (low is None and high is None):
        return NO_SALARY
    return Salary(salary_min=low, salary_max=high, salary_currency=code, salary_period=per)


def salary_span(candidates: Iterable[Salary]) -> Salary:
    """The span of the ranges that share the first range's currency and period."""
    ranges = [candidate for candidate in candidates if candidate != NO_SALARY]
    if not ranges:
        return NO_SALARY
    first = ranges[0]
    same = [
        r
        for r in ranges
        if (r["salary_currency"], r["salary_period"])
        == (first["salary_currency"], first["salary_period"])
    ]
    lows = [low for r in same if (low := r["salary_min"]) is not None]
    highs = [high for r in same if (high := r["salary_max"]) is not None]
    return Salary(
        salary_min=min(lows, default=None),
        salary_max=max(highs, default=None),
        salary_currency=first["salary_currency"],
        salary_period=first["salary_period"],
    )


def amount(value: Any, scale: int = 1) -> float | None:
    """A non-negative finite JSON number divided by ``scale`` (100: cents as units)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number: float = value / scale
    except OverflowError:  # an integer too large for a float
        return None
    return number if math.isfinite(number) and number >= 0 else None


def period(interval: Any) -> str | None:
    """``per-year-salary`` / ``1 YEAR`` → ``year``; the same for hour, day, week and month."""
    return pay_period(text(interval))


# --- paging ----------------------------------------------------------------------


async def collect_pages(
    spec: SourceSpec,
    first: Cursor,
    read_page: Callable[[Cursor], Awaitable[tuple[list[Posting], Cursor | None]]],
) -> Collected:
    """Every page from ``first`` on, each naming the cursor of the next; the first copy
    of an id wins. Stops at the last page, at a page with no new id (a server that ignores
    the paging parameter), or at ``spec.max_pages``: only that cut makes it incomplete."""
    postings: dict[str, Posting] = {}
    cursor = first
    for _ in range(spec.max_pages):
        page, next_cursor = await read_page(cursor)
        new = [posting for posting in page if posting.id not in postings]
        for posting in new:
            postings.setdefault(posting.id, posting)
        if next_cursor is None or not new:
            return Collected(list(postings.values()))
        cursor = next_cursor
    log.warning("%s: stopped after max_pages=%d with pages left", spec.name, spec.max_pages)
    return Collected(list(postings.values()), complete=False)
