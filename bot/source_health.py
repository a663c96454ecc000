"""Whether a source is healthy, and when its operator should hear about it (pure).

Two problems are worth the operator's attention, each told once when it starts
and once when it ends, never as a stream:

- **failing**: ``ops_after_failures`` polls in a row failed: fetch errors, pages
  that do not parse, a board that suddenly lists nothing after having postings;
- **thin**: the postings carry far fewer details than usual, as when a site is
  redesigned and the parser only half understands the new pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from bot.models import Posting

THIN_BELOW = 0.5  # of the usual details per posting: a redesign, most likely
THICK_AGAIN = 0.8  # of the usual: recovered
LEARNING_WEIGHT = 0.2  # how much one healthy poll moves the usual count
MIN_USUAL_DETAILS = 2.0  # below this, a drop says too little to tell anyone


class HealthState(StrEnum):
    OK = "ok"
    FAILING = "failing"
    THIN = "thin"


@dataclass(frozen=True, slots=True)
class Health:
    state: HealthState = HealthState.OK
    since: float | None = None  # when the current problem began
    usual_details: float | None = None  # details per posting in healthy polls


@dataclass(frozen=True, slots=True)
class PollFacts:
    """What one poll says about a source's health."""

    ok: bool
    failures: int  # failed polls in a row, this one included
    error: str | None = None
    details: float | None = None  # per posting, when this poll parsed complete postings
    postings: int = 0


@dataclass(frozen=True, slots=True)
class NoticeText:
    title: str
    detail: str
    recovered: bool = False


def details_per_posting(postings: Sequence[Posting]) -> float | None:
    """How many of the optional fields the postings fill, on average."""
    if not postings:
        return None
    return sum(_details(posting) for posting in postings) / len(postings)


def _details(posting: Posting) -> int:
    filled = [
        posting.company,
        posting.locations,
        posting.remote is not None,
        posting.team,
        posting.employment_type,
        posting.posted_at,
        posting.salary_min is not None or posting.salary_max is not None,
        posting.url or posting.apply_url,
        posting.description,
    ]
    return sum(1 for value in filled if value)


def after_poll(
    name: str, health: Health, poll: PollFacts, *, failures_to_tell: int, now: float
) -> tuple[Health, NoticeText | None]:
    """The source's health after ``poll``, and what to tell the operator, if anything."""
    if not poll.ok:
        if health.state is not HealthState.FAILING and poll.failures >= failures_to_tell:
            return Health(HealthState.FAILING, now, health.usual_details), NoticeText(
                f"Source {name} is failing",
                f"{poll.failures} polls in a row failed; the last: {poll.error}",
            )
        return health, None
    if health.state is HealthState.FAILING:
        recovered = Health(HealthState.OK, None, health.usual_details)
        notice = NoticeText(
            f"Source {name} has recovered",
            f"polls succeed again ({poll.postings} postings)",
            recovered=True,
        )
        return _learn(recovered, poll), notice
    if poll.details is None:
        return health, None
    usual = health.usual_details
    if health.state is HealthState.THIN:
        assert usual is not None
        if poll.details >= THICK_AGAIN * usual:
            return _learn(Health(HealthState.OK, None, usual), poll), NoticeText(
                f"Source {name} has recovered",
                f"its postings carry their usual details again ({poll.details:.1f} each)",
                recovered=True,
            )
        return health, None
    if usual is not None and usual >= MIN_USUAL_DETAILS and poll.details < THIN_BELOW * usual:
        return Health(HealthState.THIN, now, usual), NoticeText(
            f"Source {name} gives far fewer details than usual",
            f"{poll.details:.1f} per posting, usually {usual:.1f}: the site may have changed"
            " its layout; check the source's type or selectors",
        )
    return _learn(health, poll), None


def _learn(health: Health, poll: PollFacts) -> Health:
    if poll.details is None:
        return health
    usual = health.usual_details
    learned = poll.details if usual is None else usual + LEARNING_WEIGHT * (poll.details - usual)
    return Health(health.state, health.since, learned)


def describe(health: Health, since: str = "") -> str:
    """The health facts `careerbot sources` and `/jobs status` show; ``since`` says
    for how long, in the caller's words ("since 2026-11-23T10:00:00Z", "for 2h")."""
    when = f" {since}" if since and health.since is not None else ""
    if health.state is HealthState.FAILING:
        return f"failing{when}"
    if health.state is HealthState.THIN:
        usual = health.usual_details or 0.0
        return f"thin{when}: far fewer details per posting than the usual {usual:.1f}"
    return "ok"
