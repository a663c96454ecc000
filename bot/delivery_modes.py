"""When a subscription's alerts go out: instantly, or held for a digest (pure).

A subscription's mode is ``instant`` (one message per alert, the default) or a
``daily HH:MM`` / ``weekly DAY HH:MM`` digest. Besides, whoever owns the
subscription's settings may have a time zone and quiet hours: alerts that arrive
in quiet hours are held and sent as one digest when they end. A subscription made
in chat follows its creator's settings (``/jobs tz``, ``/jobs quiet``); one from
the CLI or the config file follows its target's (``careerbot tz --target``).
Without settings: ``[bot] timezone`` and no quiet hours.

Wall-clock times are resolved in the owner's zone on the day they fall: a time a
daylight-saving jump skips is taken as the moment just after the jump, and a time
that happens twice as its first occurrence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from bot.errors import CareerbotError
from bot.models import Subscription
from bot.store import DeliverySettings

INSTANT = "instant"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_WINDOW = re.compile(r"\s*(\S+?)\s*[-\u2013]\s*(\S+)\s*")
_SHOWN_CHARS = 40  # of the user's text, quoted back in an error
_MAX_ZONE_CHARS = 64


class ModeError(CareerbotError):
    """A delivery mode, time, day, time zone or quiet window that cannot be used;
    the message (plain text, no markup) says what to type instead."""


def _shown(text: str) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…")


def parse_clock(text: str) -> time:
    """``"09:00"`` or ``"9:00"`` (24-hour) as a time of day."""
    found = _CLOCK.fullmatch(text.strip())
    if found is None:
        raise ModeError(f"{_shown(text)} is not a time: use HH:MM on a 24-hour clock, e.g. 09:00")
    return time(int(found.group(1)), int(found.group(2)))


def parse_day(text: str) -> int:
    """``"mon"`` or ``"Monday"`` as 0 (Monday) … 6 (Sunday)."""
    word = text.strip().lower()
    for number, (short, name) in enumerate(zip(DAYS, _DAY_NAMES, strict=True)):
        if word in (short, name.lower()):
            return number
    raise ModeError(f"{_shown(text)} is not a day: use {', '.join(DAYS)}")


@cache
def _zone_names() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def parse_zone(text: str) -> str:
    """An IANA time zone name, spelt as the database spells it (any case accepted)."""
    name = text.strip()
    canonical = _zone_names().get(name.lower()) if len(name) <= _MAX_ZONE_CHARS else None
    if canonical is None:
        raise ModeError(
            f"{_shown(text)} is not a time zone: use a name from the IANA database,"
            " such as Europe/Zurich, America/New_York or UTC"
        )
    return canonical


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ModeError(f"{_shown(name)} is not a time zone") from None


def _clock_text(clock: time) -> str:
    return clock.strftime("%H:%M")


def _instant_of(day: date, clock: time, zone: ZoneInfo) -> float:
    """When the wall clock in ``zone`` shows ``clock`` on ``day`` (see the module notes)."""
    return datetime.combine(day, clock, tzinfo=zone).timestamp()


@dataclass(frozen=True, slots=True)
class DeliveryMode:
    kind: Literal["instant", "daily", "weekly"] = "instant"
    at: time = time(0, 0)  # the digest's local time (daily and weekly)
    weekday: int = 0  # 0 = Monday (weekly)

    @classmethod
    def parse(cls, text: str) -> DeliveryMode:
        """``instant``, ``daily HH:MM`` or ``weekly DAY HH:MM``."""
        words = text.lower().split()
        if words == [INSTANT]:
            return cls()
        if len(words) == 2 and words[0] == "daily":
            return cls("daily", parse_clock(words[1]))
        if len(words) == 3 and words[0] == "weekly":
            return cls("weekly", parse_clock(words[2]), parse_day(words[1]))
        raise ModeError(
            f"{_shown(text)} is not a delivery mode: use instant, daily HH:MM or"
            " weekly DAY HH:MM, e.g. daily 09:00 or weekly mon 09:00"
        )

    @property
    def is_digest(self) -> bool:
        return self.kind != "instant"

    def __str__(self) -> str:
        """The stored form, which ``parse`` reads back."""
        if self.kind == "daily":
            return f"daily {_clock_text(self.at)}"
        if self.kind == "weekly":
            return f"weekly {DAYS[self.weekday]} {_clock_text(self.at)}"
        return INSTANT

    def describe(self) -> str:
        """``"a daily digest at 09:00"``, for people."""
        if self.kind == "daily":
            return f"a daily digest at {_clock_text(self.at)}"
        if self.kind == "weekly":
            return f"a weekly digest on {_DAY_NAMES[self.weekday]}s at {_clock_text(self.at)}"
        return "instant alerts"

    def next_digest(self, now: float, zone: ZoneInfo) -> float:
        """The first digest time at or after ``now``."""
        today = datetime.fromtimestamp(now, zone).date()
        for offset in range(9):  # a week, and a day either side for zone jumps
            day = today + timedelta(days=offset)
            if self.kind == "weekly" and day.weekday() != self.weekday:
                continue
            at = _instant_of(day, self.at, zone)
            if at >= now:
                return at
        raise AssertionError("a digest time exists within every nine days")


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """``"22:00-07:00"``: the window may span midnight."""
        found = _WINDOW.fullmatch(text)
        if found is None:
            raise ModeError(
                f"{_shown(text)} is not a quiet window: use HH:MM-HH:MM, e.g. 22:00-07:00, or off"
            )
        start, end = parse_clock(found.group(1)), parse_clock(found.group(2))
        if start == end:
            raise ModeError("quiet hours must end at another time than they start")
        return cls(start, end)

    def __str__(self) -> str:
        return f"{_clock_text(self.start)}-{_clock_text(self.end)}"

    def end_of(self, at: float, zone: ZoneInfo) -> float | None:
        """When the quiet window that ``at`` falls in ends, or None outside quiet hours."""
        local = datetime.fromtimestamp(at, zone)
        clock = local.time()
        if self.start < self.end:
            quiet, ends_tomorrow = self.start <= clock < self.end, False
        else:  # across midnight
            quiet, ends_tomorrow = clock >= self.start or clock < self.end, clock >= self.start
        if not quiet:
            return None
        end = _instant_of(local.date() + timedelta(days=int(ends_tomorrow)), self.end, zone)
        return end if end > at else None  # a repeated hour can put the end behind us


@dataclass(frozen=True, slots=True)
class Release:
    """When an alert may go out, and whether in a digest with the target's other held alerts."""

    at: float
    digest: bool


@dataclass(frozen=True, slots=True)
class Policy:
    """How one subscription's alerts go out: its mode, in its owner's zone and quiet hours."""

    mode: DeliveryMode
    zone: ZoneInfo
    quiet: QuietHours | None = None

    def release(self, now: float, *, held: bool) -> Release:
        """For an alert due at ``now``: a fresh one waits for its digest time, and any
        one for the end of quiet hours; ``held`` ones are already a digest's."""
        at = self.mode.next_digest(now, self.zone) if self.mode.is_digest and not held else now
        quiet_end = self.quiet.end_of(at, self.zone) if self.quiet is not None else None
        if quiet_end is not None:
            at = quiet_end
        return Release(at, held or self.mode.is_digest or quiet_end is not None)


def settings_owner(subscription: Subscription) -> str:
    """Whose time zone and quiet hours a subscription follows (see the module notes)."""
    if subscription.origin == "chat" and subscription.created_by:
        return subscription.created_by
    return subscription.target


def policy_for(mode: str, settings: DeliverySettings | None, default_timezone: str) -> Policy:
    """A subscription's policy from its mode and its owner's settings (None: none set)."""
    if settings is None:
        return _policy(mode, None, None, default_timezone)
    return _policy(mode, settings.timezone, settings.quiet, default_timezone)


@cache
def _policy(mode: str, timezone: str | None, quiet: str | None, default_timezone: str) -> Policy:
    """A setting that no longer parses (a zone gone from the time zone database) falls
    back to the default rather than blocking alerts."""
    try:
        parsed_mode = DeliveryMode.parse(mode)
    except ModeError:
        parsed_mode = DeliveryMode()
    try:
        zone = zone_of(timezone or default_timezone)
    except ModeError:
        zone = zone_of(default_timezone)
    try:
        hours = QuietHours.parse(quiet) if quiet else None
    except ModeError:
        hours = None
    return Policy(parsed_mode, zone, hours)


def format_local(timestamp: float, zone: ZoneInfo) -> str:
    """``"Tue 24 Nov 09:00 CET"``: a moment as the owner's wall clock shows it."""
    return datetime.fromtimestamp(timestamp, zone).strftime("%a %d %b %H:%M %Z")
