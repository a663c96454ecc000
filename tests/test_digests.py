"""Delivery modes: daily and weekly digests, quiet hours and burst digests, from the
time arithmetic to the worker, the senders, the commands and the CLI."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route
from fakes import FakeClock

from bot.app import App
from bot.catalog import SourceCatalog
from bot.chat.discord_sender import rest_sender
from bot.chat.slack import SlackSender, make_web_client
from bot.cli import main
from bot.commands import Caller, Commands
from bot.config import Config, SlackSettings, load_config
from bot.delivery import DeliveryWorker, RateLimit, Sender
from bot.delivery_modes import DeliveryMode, ModeError, Policy, QuietHours, Release, parse_zone
from bot.diff import diff
from bot.models import Alert, Change, ChangeKind, FieldChange, Notice, Posting, Subscription
from bot.render_digest import (
    DigestPage,
    by_company,
    discord_digest_pages,
    slack_digest_pages,
    text_digest_pages,
)
from bot.store import HeldDigests, Match, Store, idempotency_key
from tests.discord_double import CHANNEL_ID, embed_problems, serve_discord
from tests.slack_double import BOT_TOKEN, limit_problems, serve_slack

ZURICH = ZoneInfo("Europe/Zurich")
NEW_YORK = ZoneInfo("America/New_York")
HOOK = "webhook:lab"
COMPANIES = ("Zeta Robotics", "Acme", "*Bold* <@123> @everyone", "Nimbus", "", "Orbital", "Helix")
_ids = itertools.count(1)


def at(zone: ZoneInfo, *when: int) -> float:
    return datetime(*when, tzinfo=zone).timestamp()  # type: ignore[misc]


def local(timestamp: float, zone: ZoneInfo = ZURICH) -> tuple[int, int, int, int, int]:
    shown = datetime.fromtimestamp(timestamp, zone)
    return shown.year, shown.month, shown.day, shown.hour, shown.minute


def posting(number: int, *, huge: bool = False) -> Posting:
    company = COMPANIES[number % len(COMPANIES)] or None
    if not huge:
        return Posting("src", f"p{number}", f"Engineer {number}", company=company)
    return Posting(
        "src",
        f"p{number}",
        f"Staff Research Scientist {number} " + "Neural Rendering " * 30,
        company=company,
        locations=tuple(f"City number {n}, Some Long Country Name" for n in range(40)),
        salary_min=100_000,
        salary_max=150_000,
        salary_currency="USD",
        salary_period="year",
        url=f"https://jobs.example/{number}?a=1&b=(2)&ref=" + "x" * 250,
        description="radiance " * 2000,
    )


async def queue(
    store: Store, subscription: Subscription, count: int, now: float, *, huge: bool = False
) -> list[str]:
    """``count`` new postings, all matching ``subscription``; their alerts' keys."""
    postings = [posting(next(_ids), huge=huge) for _ in range(count)]
    result = diff({}, postings, baseline=False, close_after=2)
    matches = [Match(index, subscription) for index in range(len(postings))]
    change_ids = await store.apply_poll("src", result, matches, now=now)
    return [
        idempotency_key(subscription.id, change.posting, change_id)
        for change, change_id in zip(result.changes, change_ids, strict=True)
    ]


async def subscribe(
    store: Store, now: float, delivery: str = "instant", target: str = HOOK
) -> Subscription:
    return await store.add_subscription(
        target, "engineer", [ChangeKind.NEW], origin="cli", created_by=None, now=now,
        delivery=delivery,
    )  # fmt: skip


class Recording:
    """A sender that records what it delivers: alerts alone, and digest pages."""

    def __init__(self, render: Callable[[Sequence[Alert]], list[DigestPage]] = text_digest_pages):
        self.render = render
        self.alone: list[str | None] = []
        self.pages: list[DigestPage] = []
        self.crash_on_page: int | None = None

    async def send(self, alert: Alert, original: str | None = None) -> str | None:
        self.alone.append(alert.key)
        return None

    async def send_notice(self, notice: Notice) -> None:
        raise AssertionError("no notices here")

    def digest_pages(self, alerts: Sequence[Alert]) -> list[DigestPage]:
        return self.render(alerts)

    async def send_digest(self, target: str, page: DigestPage) -> None:
        if self.crash_on_page == len(self.pages) + 1:
            raise Crash
        self.pages.append(page)

    def digested(self) -> list[str | None]:
        return [alert.key for page in self.pages for alert in page.alerts]


class Crash(BaseException):
    """The process dies here (nothing catches it, as nothing catches SIGKILL)."""


def worker_for(
    store: Store, clock: FakeClock, senders: dict[str, Sender], **options: Any
) -> DeliveryWorker:
    lookup: dict[str, tuple[Sender, RateLimit | None]] = {
        target: (sender, None) for target, sender in senders.items()
    }
    return DeliveryWorker(
        store, lookup.get, clock=clock, sleep=clock.sleep, rng=random.Random(1), **options
    )


# ---------------------------------------------------------------- modes, times and zones


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("instant", "instant"),
        ("daily 9:00", "daily 09:00"),
        ("  Daily   23:59 ", "daily 23:59"),
        ("WEEKLY Monday 09:30", "weekly mon 09:30"),
        ("weekly sun 00:00", "weekly sun 00:00"),
    ],
)
def test_modes_parse_to_one_stored_form(typed: str, stored: str) -> None:
    assert str(DeliveryMode.parse(typed)) == stored
    assert DeliveryMode.parse(stored) == DeliveryMode.parse(typed)


@pytest.mark.parametrize(
    ("parse", "typed", "message"),
    [
        (DeliveryMode.parse, "daily 25:00", "'25:00' is not a time: use HH:MM on a 24-hour clock"),
        (DeliveryMode.parse, "daily 9", "'9' is not a time"),
        (DeliveryMode.parse, "daily", "'daily' is not a delivery mode: use instant, daily HH:MM"),
        (DeliveryMode.parse, "hourly", "'hourly' is not a delivery mode"),
        (DeliveryMode.parse, "weekly funday 09:00", "'funday' is not a day: use mon, tue"),
        (QuietHours.parse, "22-7", "'22' is not a time"),
        (QuietHours.parse, "22:00", "'22:00' is not a quiet window: use HH:MM-HH:MM"),
        (QuietHours.parse, "22:00-24:00", "'24:00' is not a time"),
        (QuietHours.parse, "22:00-22:00", "quiet hours must end at another time"),
        (parse_zone, "Mars/Olympus", "'Mars/Olympus' is not a time zone: use a name from the IANA"),
        (parse_zone, "../../etc/passwd", "is not a time zone"),
        (parse_zone, "x" * 5000, "'" + "x" * 39 + "…' is not a time zone"),
    ],
)
def test_bad_input_gets_a_message_that_says_what_to_type(
    parse: Callable[[str], object], typed: str, message: str
) -> None:
    with pytest.raises(ModeError) as raised:
        parse(typed)
    assert message in str(raised.value)


def test_zones_are_spelt_as_the_database_spells_them() -> None:
    assert parse_zone("europe/zurich") == "Europe/Zurich"
    assert parse_zone(" UTC ") == "UTC"


def test_quiet_windows_read_with_spaces_and_dashes() -> None:
    assert QuietHours.parse("22:00 \u2013 7:00") == QuietHours(time(22), time(7))
    assert str(QuietHours.parse("22:00-07:00")) == "22:00-07:00"


def test_daily_digests_stay_at_nine_local_across_the_spring_change() -> None:
    daily = DeliveryMode.parse("daily 09:00")
    moments = [at(ZURICH, 2024, 3, 29, 12, 0)]
    for _ in range(3):
        moments.append(daily.next_digest(moments[-1] + 1, ZURICH))
    digests = moments[1:]
    assert [local(t) for t in digests] == [
        (2024, 3, 30, 9, 0),
        (2024, 3, 31, 9, 0),  # summer time from 02:00 that night
        (2024, 4, 1, 9, 0),
    ]
    gaps = [later - earlier for earlier, later in itertools.pairwise(digests)]
    assert gaps == [23 * 3600, 24 * 3600]


def test_a_digest_time_the_clocks_skip_or_repeat_happens_once() -> None:
    skipped = DeliveryMode.parse("daily 02:30").next_digest(at(ZURICH, 2024, 3, 31, 0, 0), ZURICH)
    assert skipped == datetime(2024, 3, 31, 1, 30, tzinfo=UTC).timestamp()  # 03:30 summer time
    repeated = DeliveryMode.parse("daily 02:30").next_digest(at(ZURICH, 2024, 10, 27, 0, 0), ZURICH)
    assert repeated == datetime(2024, 10, 27, 0, 30, tzinfo=UTC).timestamp()  # the first 02:30


def test_weekly_digests_across_the_autumn_change_in_new_york() -> None:
    weekly = DeliveryMode.parse("weekly mon 09:00")
    monday = at(NEW_YORK, 2024, 10, 28, 9, 0)
    assert weekly.next_digest(at(NEW_YORK, 2024, 10, 27, 12, 0), NEW_YORK) == monday
    assert weekly.next_digest(monday, NEW_YORK) == monday
    following = weekly.next_digest(monday + 60, NEW_YORK)
    assert local(following, NEW_YORK) == (2024, 11, 4, 9, 0)
    assert following - monday == 7 * 86400 + 3600  # the week that was an hour longer


@pytest.mark.parametrize(
    ("now", "ends"),
    [
        ((2024, 5, 1, 23, 30), (2024, 5, 2, 7, 0)),
        ((2024, 5, 2, 3, 0), (2024, 5, 2, 7, 0)),
        ((2024, 5, 1, 22, 0), (2024, 5, 2, 7, 0)),
        ((2024, 5, 2, 6, 59), (2024, 5, 2, 7, 0)),
        ((2024, 5, 2, 7, 0), None),
        ((2024, 5, 1, 12, 0), None),
        ((2024, 5, 1, 21, 59), None),
    ],
)
def test_quiet_hours_across_midnight(
    now: tuple[int, ...], ends: tuple[int, int, int, int, int] | None
) -> None:
    end = QuietHours.parse("22:00-07:00").end_of(at(ZURICH, *now), ZURICH)
    assert (local(end) if end is not None else None) == ends


def test_a_quiet_night_with_the_clock_change_is_an_hour_shorter() -> None:
    start = at(ZURICH, 2024, 3, 30, 23, 0)
    end = QuietHours.parse("22:00-07:00").end_of(start, ZURICH)
    assert end is not None and local(end) == (2024, 3, 31, 7, 0) and end - start == 7 * 3600


def test_quiet_hours_within_one_day() -> None:
    hours = QuietHours.parse("12:00-14:00")
    assert hours.end_of(at(ZURICH, 2024, 5, 1, 13, 0), ZURICH) == at(ZURICH, 2024, 5, 1, 14, 0)
    assert hours.end_of(at(ZURICH, 2024, 5, 1, 14, 0), ZURICH) is None
    assert hours.end_of(at(ZURICH, 2024, 5, 1, 11, 59), ZURICH) is None


def test_release_times() -> None:
    evening = at(ZURICH, 2024, 5, 1, 20, 0)
    instant = Policy(DeliveryMode(), ZURICH)
    assert instant.release(evening, held=False) == Release(evening, False)
    quiet = Policy(DeliveryMode(), ZURICH, QuietHours.parse("19:00-07:00"))
    assert quiet.release(evening, held=False) == Release(at(ZURICH, 2024, 5, 2, 7, 0), True)
    # a digest whose time falls in quiet hours waits for their end
    daily = Policy(DeliveryMode.parse("daily 09:00"), ZURICH, QuietHours.parse("08:00-10:00"))
    assert daily.release(evening, held=False) == Release(at(ZURICH, 2024, 5, 2, 10, 0), True)
    assert daily.release(at(ZURICH, 2024, 5, 2, 9, 0), held=True).at == at(ZURICH, 2024, 5, 2, 10)
    noon = at(ZURICH, 2024, 5, 2, 12, 0)
    assert daily.release(noon, held=True) == Release(noon, True)


# ---------------------------------------------------------------- the worker


async def test_a_daily_digest_holds_alerts_until_its_time_then_sends_one_message(
    store: Store,
) -> None:
    clock = FakeClock(at(ZURICH, 2024, 3, 30, 14, 0))
    subscription = await subscribe(store, clock.now, "daily 09:00")
    await store.set_timezone(HOOK, "Europe/Zurich", clock.now)
    keys = await queue(store, subscription, 3, clock.now)
    sender = Recording()
    worker = worker_for(store, clock, {HOOK: sender})

    assert await worker.drain(clock.now + 60) == 0, "once does not wait for tomorrow"
    held = await store.held_for_digests(clock.now)
    nine = at(ZURICH, 2024, 3, 31, 9, 0)
    assert (held.count, held.next_at) == (3, nine)
    assert await store.next_delivery_at() == nine, "run wakes at the digest time"
    assert (await store.outbox_counts()).pending == 3

    assert await worker.drain(nine + 1) == 3
    assert clock.now == nine
    [page] = sender.pages
    assert sorted(a.key or "" for a in page.alerts) == sorted(keys) and sender.alone == []
    assert (await store.outbox_counts()).sent == 3

    clock.now += 60
    await queue(store, subscription, 1, clock.now)
    await worker.deliver_due()
    assert (await store.held_for_digests(clock.now)).next_at == at(ZURICH, 2024, 4, 1, 9, 0)


async def test_quiet_hours_hold_alerts_and_send_them_as_one_digest_when_they_end(
    store: Store,
) -> None:
    clock = FakeClock(at(ZURICH, 2024, 5, 1, 21, 0))
    subscription = await subscribe(store, clock.now)
    await store.set_timezone(HOOK, "Europe/Zurich", clock.now)
    await store.set_quiet_hours(HOOK, "22:00-07:00", clock.now)
    sender = Recording()
    worker = worker_for(store, clock, {HOOK: sender})
    [before] = await queue(store, subscription, 1, clock.now)
    assert await worker.deliver_due() == 1 and sender.alone == [before]

    clock.now = at(ZURICH, 2024, 5, 1, 23, 30)
    night = await queue(store, subscription, 2, clock.now)
    assert await worker.deliver_due() == 0
    clock.now = at(ZURICH, 2024, 5, 2, 3, 0)
    night += await queue(store, subscription, 1, clock.now)
    assert await worker.deliver_due() == 0
    seven = at(ZURICH, 2024, 5, 2, 7, 0)
    assert await store.held_for_digests(clock.now) == HeldDigests(3, seven)

    assert await worker.drain(seven + 1) == 3
    assert sender.alone == [before] and sorted(sender.digested()) == sorted(night)


async def test_a_burst_for_one_target_becomes_one_digest(store: Store) -> None:
    clock = FakeClock()
    busy, calm = Recording(), Recording()
    worker = worker_for(store, clock, {HOOK: busy, "console": calm}, burst_digest_after=3)
    first = await queue(store, await subscribe(store, clock.now), 2, clock.now)
    second = await queue(store, await subscribe(store, clock.now), 3, clock.now)
    quiet_target = await queue(store, await subscribe(store, clock.now, target="console"), 2, 0)

    assert await worker.deliver_due() == 7
    assert busy.alone == [] and sorted(busy.digested()) == sorted(first + second)
    assert len(busy.pages) == 1
    assert calm.alone == quiet_target and calm.pages == []

    clock.now += 600
    later = await queue(store, await subscribe(store, clock.now), 3, clock.now)
    assert await worker.deliver_due() == 3 and busy.alone == later, "three is not a burst"


async def test_a_new_mode_or_quiet_off_sends_what_was_held(store: Store) -> None:
    clock = FakeClock(at(ZURICH, 2024, 5, 1, 23, 0))
    daily = await subscribe(store, clock.now, "daily 09:00")
    instant = await subscribe(store, clock.now)
    await store.set_timezone(HOOK, "Europe/Zurich", clock.now)
    await store.set_quiet_hours(HOOK, "22:00-07:00", clock.now)
    sender = Recording()
    worker = worker_for(store, clock, {HOOK: sender})
    held_daily = await queue(store, daily, 2, clock.now)
    held_quiet = await queue(store, instant, 1, clock.now)
    assert await worker.deliver_due() == 0

    await store.set_quiet_hours(HOOK, None, clock.now)
    assert await worker.deliver_due() == 1 and sender.alone == held_quiet
    assert (await store.held_for_digests(clock.now)).count == 2, "the daily digest still waits"
    await store.set_delivery(daily.id, "instant", clock.now)
    assert await worker.deliver_due() == 2 and sender.alone == held_quiet + held_daily


async def test_alerts_held_for_a_digest_do_not_hold_up_instant_ones(store: Store) -> None:
    clock = FakeClock()
    await queue(store, await subscribe(store, clock.now, "weekly fri 18:00"), 1, clock.now)
    sender = Recording()
    worker = worker_for(store, clock, {HOOK: sender})
    await worker.deliver_due()
    clock.now += 5
    instant = await queue(store, await subscribe(store, clock.now), 1, clock.now)
    assert await worker.deliver_due() == 1 and sender.alone == instant


async def test_a_chat_subscription_follows_its_creators_zone(store: Store) -> None:
    clock = FakeClock(at(NEW_YORK, 2024, 5, 1, 20, 0))
    mine = await store.add_subscription(
        "slack:C1", "x", [ChangeKind.NEW], origin="chat", created_by="slack:U1", now=clock.now,
        delivery="daily 08:00",
    )  # fmt: skip
    await store.set_timezone("slack:U1", "America/New_York", clock.now)
    await store.set_timezone("slack:C1", "Asia/Tokyo", clock.now)  # the channel's: not used
    await queue(store, mine, 1, clock.now)
    await worker_for(store, clock, {"slack:C1": Recording()}).deliver_due()
    held = await store.held_for_digests(clock.now)
    assert held.next_at is not None and local(held.next_at, NEW_YORK) == (2024, 5, 2, 8, 0)


# ---------------------------------------------------------------- crash safety


async def held_digest(store: Store, clock: FakeClock, count: int) -> list[str]:
    """``count`` long alerts held for a digest, and the clock at its time (several
    Slack pages)."""
    subscription = await subscribe(store, clock.now, "daily 09:00")
    keys = await queue(store, subscription, count, clock.now, huge=True)
    await worker_for(store, clock, {}).deliver_due()  # routes them; no sender is asked
    clock.now = (await store.held_for_digests(clock.now)).next_at or 0.0
    return keys


async def test_a_crash_after_a_page_is_accepted_repeats_only_that_page(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(at(ZURICH, 2024, 5, 1, 12, 0))
    keys = await held_digest(store, clock, 40)
    before = Recording(slack_digest_pages)

    async def killed(*args: object) -> None:
        raise Crash  # the platform has the page; the process dies before recording it

    monkeypatch.setattr(store, "mark_digest_sent", killed)
    with pytest.raises(Crash):
        await worker_for(store, clock, {HOOK: before}).deliver_due()
    [in_flight] = before.pages

    restarted = await Store.open(tmp_path / "state.sqlite3")
    try:
        after = Recording(slack_digest_pages)
        assert await worker_for(restarted, clock, {HOOK: after}).deliver_due() == len(keys)
        assert (await restarted.outbox_counts()).sent == len(keys)
    finally:
        await restarted.close()
    assert len(after.pages) > 1
    delivered = before.digested() + after.digested()
    repeated = {key for key in delivered if delivered.count(key) > 1}
    assert set(delivered) == set(keys)
    assert repeated == {alert.key for alert in in_flight.alerts}


async def test_a_crash_between_pages_loses_and_repeats_nothing(store: Store) -> None:
    clock = FakeClock(at(ZURICH, 2024, 5, 1, 12, 0))
    keys = await held_digest(store, clock, 40)
    before = Recording(slack_digest_pages)
    before.crash_on_page = 3
    with pytest.raises(Crash):
        await worker_for(store, clock, {HOOK: before}).deliver_due()
    assert len(before.pages) == 2
    sent = sum(len(page.alerts) for page in before.pages)
    assert (await store.outbox_counts()).sent == sent, "each accepted page was recorded"

    after = Recording(slack_digest_pages)
    assert await worker_for(store, clock, {HOOK: after}).deliver_due() == len(keys) - sent
    delivered = before.digested() + after.digested()
    assert sorted(delivered) == sorted(keys), "every alert once"


# ---------------------------------------------------------------- rendering and paging


def alerts_for(count: int, *, huge: bool = True) -> list[Alert]:
    alerts = []
    for number in range(count):
        kind = ChangeKind.CHANGED if number % 5 == 0 else ChangeKind.NEW
        fields = (FieldChange("salary_max", 1, 2), FieldChange("title", "a", "b"))
        change = Change(
            kind, posting(number, huge=huge), fields if kind is ChangeKind.CHANGED else ()
        )
        subscription = Subscription(number % 3 + 1, HOOK, "scientist")
        alerts.append(Alert(change, subscription, "2024-05-01T00:00:00Z", key=f"k{number}"))
    return alerts


def slack_problems(payload: dict[str, Any]) -> list[str]:
    sections = sum(len(b["text"]["text"]) for b in payload["blocks"] if b["type"] == "section")
    too_much = [f"{sections} characters of sections"] if sections > 10_000 else []
    return limit_problems(payload) + too_much


def discord_problems(payload: dict[str, Any]) -> list[str]:
    return embed_problems(payload)


@pytest.mark.parametrize(
    ("render", "problems"),
    [(slack_digest_pages, slack_problems), (discord_digest_pages, discord_problems)],
    ids=["slack", "discord"],
)
def test_a_long_digest_is_paged_within_the_platforms_limits(
    render: Callable[[Sequence[Alert]], list[DigestPage]],
    problems: Callable[[dict[str, Any]], list[str]],
) -> None:
    alerts = alerts_for(150)
    pages = render(alerts)
    assert len(pages) > 3
    shown = [alert.key for page in pages for alert in page.alerts]
    assert sorted(shown) == sorted(a.key for a in alerts), "every alert on exactly one page"
    for page in pages:
        assert problems(page.payload) == []
    assert "page 1 of" in str(pages[0].payload) and f"page {len(pages)} of" in str(
        pages[-1].payload
    )


def test_a_short_digest_is_one_page_grouped_by_company() -> None:
    alerts = alerts_for(14, huge=False)
    [page] = text_digest_pages(alerts)
    text = page.payload["text"]
    assert text.startswith("Job digest: 14 alerts from 7 companies\n")
    order = [name for name, _ in by_company(alerts)]
    assert order[-1] == "Company not given" and order[:2] == ["*Bold* <@123> @everyone", "Acme"]
    assert [text.index(f"\n{name}\n") for name in order] == sorted(
        text.index(f"\n{name}\n") for name in order
    )
    assert "Updated: Engineer 0 · changed: salary_max, title · src:p0 · #1" in text
    [slack] = slack_digest_pages(alerts)
    [discord] = discord_digest_pages(alerts)
    assert "page" not in str(slack.payload).lower() and "footer" not in discord.payload["embeds"][0]


def test_posting_text_cannot_format_or_mention_in_a_digest() -> None:
    alerts = alerts_for(7, huge=False)
    [slack] = slack_digest_pages(alerts)
    [discord] = discord_digest_pages(alerts)
    slack_text = slack.payload["text"]
    assert "<@123>" not in slack_text and "&lt;@123&gt;" in slack_text
    assert "*Bold*" not in slack_text and "@everyone" not in slack_text
    description = discord.payload["embeds"][0]["description"]
    assert "<@123>" not in description and "\\*Bold\\*" in description
    assert "@everyone" not in description and discord.payload["allowed_mentions"] == {"parse": []}


def test_bidi_overrides_cannot_spoof_a_digest_line() -> None:
    [alert] = alerts_for(1)
    spoofed = Posting("src", "1", "Engineer \u202egnp.exe", company="Acme\u2066 Corp")
    alert = Alert(Change(ChangeKind.NEW, spoofed), alert.subscription, alert.detected_at, key="k")
    for page in (
        *text_digest_pages([alert]),
        *slack_digest_pages([alert]),
        *discord_digest_pages([alert]),
    ):
        shown = json.dumps(page.payload, ensure_ascii=False)
        assert not any(char in shown for char in "\u202e\u2066"), shown


def test_links_keep_within_their_markup() -> None:
    [alert] = alerts_for(1)
    alert = Alert(
        Change(ChangeKind.NEW, Posting("src", "1", "T", url="https://x.example/a(b)?c=1&d=|")),
        alert.subscription,
        alert.detected_at,
        key="k",
    )
    assert (
        "<https://x.example/a(b)?c=1&amp;d=%7C|T>" in slack_digest_pages([alert])[0].payload["text"]
    )
    description = discord_digest_pages([alert])[0].payload["embeds"][0]["description"]
    assert "[T](https://x.example/a%28b%29?c=1&d=%7C)" in description


def test_a_page_key_depends_only_on_its_alerts() -> None:
    alerts = alerts_for(3, huge=False)
    [first] = discord_digest_pages(alerts)
    [again] = discord_digest_pages(list(reversed(alerts)))
    [other] = discord_digest_pages(alerts[:2])
    assert first.key == again.key != other.key and len(first.key) == 25


# ---------------------------------------------------------------- through the real senders


@pytest.fixture(autouse=True)
def _restore_endpoints() -> Iterator[None]:
    base, gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    yield
    Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = base, gateway


async def test_slack_gets_a_paged_digest_the_double_accepts(store: Store) -> None:
    clock = FakeClock(at(ZURICH, 2024, 5, 1, 12, 0))
    async with serve_slack() as slack:
        settings = SlackSettings(api_base_url=slack.api_url)
        sender = SlackSender(make_web_client(BOT_TOKEN, settings))
        subscription = await subscribe(store, clock.now, "daily 09:00", target="slack:C123")
        await queue(store, subscription, 40, clock.now, huge=True)
        worker = worker_for(store, clock, {"slack:C123": sender})
        await worker.deliver_due()
        assert await worker.drain(clock.now + 86_400) == 40
    posted = slack.accepted("chat.postMessage")
    assert len(posted) > 1 and len(slack.calls_to("chat.postMessage")) == len(posted)
    assert all(call.args["channel"] == "C123" for call in posted)
    assert (await store.outbox_counts()).sent == 40


async def test_discord_gets_a_paged_digest_with_a_nonce_per_page(store: Store) -> None:
    clock = FakeClock(at(ZURICH, 2024, 5, 1, 12, 0))
    async with serve_discord() as double, rest_sender(double.api_base, double.token) as sender:
        target = f"discord:{CHANNEL_ID}"
        subscription = await subscribe(store, clock.now, "daily 09:00", target=target)
        await queue(store, subscription, 40, clock.now, huge=True)
        worker = worker_for(store, clock, {target: sender})
        await worker.deliver_due()
        assert await worker.drain(clock.now + 86_400) == 40
        messages = double.posted(CHANNEL_ID)
    assert len(messages) > 1
    assert len({message["nonce"] for message in messages}) == len(messages)
    assert all(message["content"].startswith("**Job digest:** 40 alerts") for message in messages)


# ---------------------------------------------------------------- chat commands

NOW = at(ZURICH, 2024, 5, 1, 12, 0)


def caller(platform: str = "slack", user: str = "U1", channel: str = "C1") -> Caller:
    async def no() -> bool:
        return False

    return Caller("slack" if platform == "slack" else "discord", user, channel, no)


@pytest.fixture
async def commands(store: Store) -> Commands:
    config = Config.model_validate({"bot": {"timezone": "UTC"}})
    return Commands(store, await SourceCatalog.load(config, store), config, clock=lambda: NOW)


async def test_digest_quiet_and_tz_from_chat(store: Store, commands: Commands) -> None:
    me = caller()
    await commands.run(me, "subscribe nerf")
    [subscription] = await store.subscriptions()

    reply = await commands.run(me, "tz")
    assert reply.startswith("Your time zone is the bot's default, `UTC`")
    reply = await commands.run(me, "tz europe/zurich")
    assert reply.startswith("Your time zone is now `Europe/Zurich` (it is `Wed 01 May 12:00 CEST`")

    reply = await commands.run(me, f"digest {subscription.id} daily 9:00")
    assert reply.startswith(
        f"`#{subscription.id}` now comes as a daily digest at 09:00 (`Europe/Zurich`),"
        " the next on `Thu 02 May 09:00 CEST`."
    )
    assert await store.subscription(subscription.id) == replace(
        subscription, delivery="daily 09:00"
    )
    listed = await commands.run(me, "list")
    assert f"`#{subscription.id}` `nerf` → here (a daily digest at 09:00)" in listed
    assert "Your time zone: `Europe/Zurich`; quiet hours: none." in listed

    reply = await commands.run(me, "quiet 22:00-07:00")
    assert reply.startswith("Quiet hours set: `22:00-07:00` (`Europe/Zurich`).")
    assert "one digest at `07:00`" in reply
    assert (await commands.run(me, "quiet")).startswith("Your quiet hours: `22:00-07:00`")
    assert (await commands.run(me, "quiet off")).startswith("Quiet hours off")
    assert (await commands.run(me, "quiet")).startswith("You have no quiet hours.")

    reply = await commands.run(me, f"digest #{subscription.id} instant")
    assert reply == f"`#{subscription.id}` is instant again: one message per alert."


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        (
            "digest {id} daily 25:00",
            "'25:00' is not a time: use HH:MM on a 24-hour clock, e.g. 09:00.",
        ),
        ("digest {id} sometimes", "is not a delivery mode: use instant, daily HH:MM or weekly"),
        ("digest {id}", "Usage: `/jobs digest ID daily HH:MM`"),
        ("digest nerf daily 09:00", "Usage: `/jobs digest ID daily HH:MM`"),
        ("digest 999 daily 09:00", "There is no subscription `#999`."),
        ("tz Mars/Olympus", "'Mars/Olympus' is not a time zone: use a name from the IANA"),
        ("quiet 22-7", "'22' is not a time"),
        ("quiet 22:00-22:00", "quiet hours must end at another time than they start."),
    ],
)
async def test_bad_settings_are_refused_with_what_to_type(
    store: Store, commands: Commands, text: str, reply: str
) -> None:
    discord = caller("discord", "111", "222")
    await commands.run(discord, "subscribe nerf")
    [subscription] = await store.subscriptions()
    assert reply in await commands.run(discord, text.format(id=subscription.id))
    assert await store.delivery_settings(["discord:111"]) == {}
    assert (await store.subscription(subscription.id)) == subscription


async def test_what_users_type_is_escaped_in_refusals(commands: Commands) -> None:
    reply = await commands.run(caller(), "tz <!channel> *x*")
    assert "<!channel>" not in reply and "&lt;!channel&gt;" in reply


async def test_only_the_creator_sets_a_subscriptions_digest(
    store: Store, commands: Commands
) -> None:
    await commands.run(caller(user="U1"), "subscribe nerf")
    [subscription] = await store.subscriptions()
    reply = await commands.run(caller(user="U2"), f"digest {subscription.id} daily 09:00")
    assert "is not yours: only the person who created it can change it" in reply
    assert (await store.subscription(subscription.id)) == subscription


async def test_help_and_status_name_the_delivery_modes(store: Store, commands: Commands) -> None:
    help_text = await commands.run(caller(), "help")
    for usage in (
        "digest ID daily HH:MM",
        "digest ID weekly DAY HH:MM",
        "quiet HH:MM-HH:MM",
        "tz ZONE",
    ):
        assert usage in help_text
    subscription = await subscribe(store, NOW, "weekly fri 18:00")
    await queue(store, subscription, 2, NOW)
    await worker_for(store, FakeClock(NOW), {}).deliver_due()
    status = await commands.run(caller(), "status")
    assert "Held for digests and quiet hours: 2, the next going out in 2d." in status


# ---------------------------------------------------------------- CLI and once


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        '[bot]\ndatabase = "state.sqlite3"\ntimezone = "Europe/Zurich"\n'
        '[[subscriptions]]\ntarget = "console"\nquery = "engineer"\n'
    )
    return config


def test_digests_quiet_hours_and_zones_from_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path))

    def careerbot(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--config", config])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = careerbot(
        "subscribe", "nerf", "--target", "console", "--digest", "weekly Mon 8:00"
    )
    assert code == 0 and out.startswith(
        "subscription #1: nerf → console (a weekly digest on Mondays at 08:00)"
    )
    code, out, _ = careerbot("subscriptions")
    assert "#1\tconsole\tchanged,new\tcli (digest weekly mon 08:00)\tnerf" in out
    code, out, _ = careerbot("digest", "1", "daily", "07:30")
    assert code == 0 and out.startswith(
        "subscription #1: a daily digest at 07:30 (Europe/Zurich), the next on "
    )
    assert careerbot("tz", "--target", "console") == (
        0,
        "console: time zone Europe/Zurich ([bot] timezone)\n",
        "",
    )
    assert (
        careerbot("tz", "--target", "console", "asia/tokyo")[1] == "console: time zone Asia/Tokyo\n"
    )
    assert careerbot("quiet", "--target", "console", "23:00-06:00")[1] == (
        "console: quiet hours 23:00-06:00 (Asia/Tokyo)\n"
    )
    assert careerbot("quiet", "--target", "console", "off")[1] == "console: quiet hours none\n"
    assert (
        careerbot("digest", "1", "instant")[1]
        == "subscription #1: instant, one message per alert\n"
    )

    for args, message in [
        (("digest", "1", "daily", "25:00"), "careerbot: error: '25:00' is not a time"),
        (("digest", "7", "instant"), "careerbot: error: no subscription #7"),
        (
            ("tz", "--target", "console", "Mars/Olympus"),
            "careerbot: error: 'Mars/Olympus' is not a time zone",
        ),
        (("quiet", "--target", "nowhere", "off"), "careerbot: error: 'nowhere' is not a target"),
        (
            ("subscribe", "x", "--target", "console", "--digest", "hourly"),
            "careerbot: error: 'hourly' is not",
        ),
    ]:
        code, _, err = careerbot(*args)
        assert code == 2 and err.startswith(message) and err.count("\n") == 1, err


def test_once_reports_held_alerts_as_held_not_as_failures(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_config(tmp_path)
    in_two_hours = datetime.now(UTC) + timedelta(hours=2)

    async def hold_two() -> None:
        async with App.open(load_config(config, environ={}), environ={}) as app:
            [subscription] = await app.store.subscriptions()
            await app.store.set_delivery(
                subscription.id, "daily " + in_two_hours.strftime("%H:%M"), 0
            )
            await app.store.set_timezone("console", "UTC", 0)
            await app.store.register_sources([("src", "greenhouse", "https://example.test/src")])
            await queue(
                app.store,
                subscription,
                2,
                in_two_hours.timestamp() - 7200,
            )

    asyncio.run(hold_two())
    with caplog.at_level(logging.INFO, logger="bot"):
        assert main(["once", "--config", str(config)]) == 0
    messages = [record.getMessage() for record in caplog.records]
    assert not any("queued for retry" in message for message in messages)
    [held] = [message for message in messages if "held for digests" in message]
    assert held.startswith("2 alerts are held for digests or quiet hours; the next goes out at ")
