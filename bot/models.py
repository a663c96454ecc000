"""The data that flows through careerbot: postings, changes, subscriptions."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


@dataclass(frozen=True, slots=True)
class Posting:
    """One job posting as a source shows it (the JSON schema of INTERFACE.md)."""

    source: str
    id: str
    title: str
    company: str | None = None
    locations: tuple[str, ...] = ()
    remote: bool | None = None
    team: str | None = None
    employment_type: str | None = None
    posted_at: str | None = None  # ISO date, YYYY-MM-DD
    salary_min: float | None = None
    salary_max: float | None = None
    salary_currency: str | None = None  # ISO 4217 code
    salary_period: str | None = None  # hour, day, week, month or year
    url: str | None = None
    apply_url: str | None = None
    description: str | None = None

    @property
    def ref(self) -> str:
        """How users name the posting (alerts show it; ``/jobs why`` takes it): SOURCE:ID."""
        return f"{self.source}:{self.id}"

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["locations"] = list(self.locations)
        for key in ("salary_min", "salary_max"):
            value = data[key]
            if isinstance(value, float) and value.is_integer():
                data[key] = int(value)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Posting:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["locations"] = tuple(values.get("locations") or ())
        return cls(**values)


# The fields a change can name, in the order alerts show them.
COMPARED_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(Posting) if f.name not in ("source", "id")
)


class ChangeKind(StrEnum):
    NEW = "new"
    CHANGED = "changed"
    CLOSED = "closed"
    REOPENED = "reopened"


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class Change:
    """What happened to one posting in one poll."""

    kind: ChangeKind
    posting: Posting
    fields: tuple[FieldChange, ...] = ()


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    target: str
    query: str
    notify: frozenset[ChangeKind] = field(
        default_factory=lambda: frozenset({ChangeKind.NEW, ChangeKind.CHANGED})
    )
    paused: bool = False
    origin: str = "cli"  # config, cli or chat
    created_by: str | None = None
    delivery: str = "instant"  # or a digest: "daily 09:00", "weekly mon 09:00" (delivery_modes)


@dataclass(frozen=True, slots=True)
class Alert:
    """One change to tell one target about, because of one subscription."""

    change: Change
    subscription: Subscription
    detected_at: str  # ISO timestamp, UTC
    # The outbox idempotency key: a platform that dedupes by a client key gets it.
    key: str | None = None
    # The other open listings of the same job (bot/identity.py), shown as "also on"
    # with their locations; ``sighting``: the subscription already had an alert for
    # the job, so this one tells of another listing of it.
    also: tuple[Posting, ...] = ()
    sighting: bool = False


@dataclass(frozen=True, slots=True)
class Notice:
    """A message to the operator about careerbot itself, such as a source's health."""

    target: str
    title: str
    detail: str
    created_at: float
    source: str | None = None
    recovered: bool = False  # good news: a problem it told of earlier is over
    key: str = ""  # the idempotency key: one notice per source and health change

    @classmethod
    def about(
        cls, target: str, source: str, title: str, detail: str, now: float, *, recovered: bool
    ) -> Notice:
        key = hashlib.sha256(f"{source}\x1f{title}\x1f{now!r}".encode()).hexdigest()[:25]
        return cls(target, title, detail, now, source, recovered, key)


def utc_iso(timestamp: float) -> str:
    """A Unix timestamp as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
