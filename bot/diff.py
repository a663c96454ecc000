"""Pure diffing: the stored postings of a source + a fresh poll → changes.

Comparison is on a normalised form, so whitespace-only edits, reordered
locations and tracking parameters added to links are not changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bot.models import COMPARED_FIELDS, Change, ChangeKind, FieldChange, Posting

URL_FIELDS = frozenset({"url", "apply_url"})
_TRACKING_PARAMS = frozenset(
    {
        "gclid", "fbclid", "msclkid", "dclid", "yclid", "twclid", "igshid", "mc_cid", "mc_eid",
        "_hsenc", "_hsmi", "gh_src", "lever-source", "lever-origin", "lever-source[]", "trk",
        "trkcampaign", "ref", "referrer", "src", "source",
    }
)  # fmt: skip
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_")


@dataclass(frozen=True, slots=True)
class StoredPosting:
    posting: Posting
    content_hash: str
    closed: bool = False
    missing_polls: int = 0
    partial: bool = False  # stored without its detail document


@dataclass(slots=True)
class DiffResult:
    """What a poll changes: alertable changes plus the bookkeeping the store needs."""

    changes: list[Change] = field(default_factory=list)
    upserts: list[tuple[Posting, str]] = field(default_factory=list)  # new data to write
    seen_unchanged: list[str] = field(default_factory=list)  # present, identical
    missing: dict[str, int] = field(default_factory=dict)  # still open, absent N polls
    closed: list[str] = field(default_factory=list)
    partial: frozenset[str] = frozenset()  # upserted without their detail document


def strip_tracking(url: str) -> str:
    """The URL without marketing/tracking query parameters."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    kept = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key.lower() not in _TRACKING_PARAMS and not key.lower().startswith(_TRACKING_PREFIXES)
    ]
    return urlunsplit(parts._replace(query=urlencode(kept)))


def _normalized(name: str, value: Any) -> Any:
    if isinstance(value, str):
        text = " ".join(value.split())  # every whitespace run (NBSP too) as one space
        return strip_tracking(text) if name in URL_FIELDS else text
    if isinstance(value, tuple):
        return sorted(_normalized(name, item) for item in value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def comparable(posting: Posting) -> dict[str, Any]:
    return {name: _normalized(name, getattr(posting, name)) for name in COMPARED_FIELDS}


def content_hash(posting: Posting) -> str:
    encoded = json.dumps(comparable(posting), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()


def changed_fields(old: Posting, new: Posting) -> tuple[FieldChange, ...]:
    old_view, new_view = comparable(old), comparable(new)
    return tuple(
        FieldChange(name, getattr(old, name), getattr(new, name))
        for name in COMPARED_FIELDS
        if old_view[name] != new_view[name]
    )


def unique_by_id(postings: Iterable[Posting]) -> list[Posting]:
    seen: dict[str, Posting] = {}
    for posting in postings:
        seen.setdefault(posting.id, posting)
    return list(seen.values())


def diff(
    stored: Mapping[str, StoredPosting],
    polled: Iterable[Posting],
    *,
    baseline: bool,
    close_after: int,
    complete: bool = True,
    partial: frozenset[str] = frozenset(),
) -> DiffResult:
    """Compare a successful poll with the stored postings of the same source.

    ``baseline`` is true for the source's first successful poll: everything is
    recorded and nothing is alerted. A posting closes after ``close_after``
    consecutive successful polls without it; an incomplete poll (``complete``
    false) counts no posting as missing. ``partial`` names postings read without
    their detail document: one stored that way becomes complete silently.
    """
    result = DiffResult(partial=partial)
    current = unique_by_id(polled)
    present = {posting.id for posting in current}
    for posting in current:
        _diff_present(stored.get(posting.id), posting, baseline, result)
    for posting_id, old in stored.items():
        if not complete or posting_id in present or old.closed:
            continue
        missing = old.missing_polls + 1
        if missing >= close_after:
            result.closed.append(posting_id)
            if not baseline:
                result.changes.append(Change(ChangeKind.CLOSED, old.posting))
        else:
            result.missing[posting_id] = missing
    return result


def _diff_present(
    old: StoredPosting | None, posting: Posting, baseline: bool, result: DiffResult
) -> None:
    digest = content_hash(posting)
    if old is not None and not old.closed and old.content_hash == digest:
        result.seen_unchanged.append(posting.id)
        return
    result.upserts.append((posting, digest))
    if baseline or (old is not None and old.partial and not old.closed):
        return
    if old is None:
        result.changes.append(Change(ChangeKind.NEW, posting))
    elif old.closed:
        result.changes.append(
            Change(ChangeKind.REOPENED, posting, changed_fields(old.posting, posting))
        )
    else:
        fields = changed_fields(old.posting, posting)
        if fields:
            result.changes.append(Change(ChangeKind.CHANGED, posting, fields))
