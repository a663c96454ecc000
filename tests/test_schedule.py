"""After a restart the first polls are spread out, longest-waiting first."""

from __future__ import annotations

import random
from collections import Counter

from bot.schedule import START_RATE, START_SPREAD, added_source_delay, first_poll_delays


def test_many_sources_start_at_a_bounded_rate_longest_waiting_first() -> None:
    names = [f"source{n:03}" for n in range(300)]
    intervals = dict.fromkeys(names, 6 * 3600.0)
    last_polls: dict[str, float | None] = {name: 1000.0 + n for n, name in enumerate(names)}
    last_polls["source299"] = None  # never polled: goes first
    delays = first_poll_delays(intervals, last_polls, random.Random(1))

    per_second = Counter(int(delay) for delay in delays.values())
    assert max(per_second.values()) <= START_RATE + 1, "no second sees a herd of first polls"
    assert max(delays.values()) <= len(names) / START_RATE
    order = sorted(delays, key=delays.__getitem__)
    assert order[0] == "source299"
    assert order[1:] == names[:-1], "the source polled longest ago goes next"


def test_a_few_sources_are_polled_soon_and_never_later_than_their_interval() -> None:
    intervals = {"slow": 3600.0, "fast": 2.0, "other": 60.0}
    delays = first_poll_delays(intervals, {}, random.Random(2))
    assert all(0 <= delays[name] <= min(START_SPREAD, intervals[name]) for name in intervals)
    assert len(set(delays.values())) == 3


def test_a_source_added_while_running_is_polled_within_its_interval() -> None:
    rng = random.Random(3)
    assert all(0 <= added_source_delay(1.0, rng) <= 1.0 for _ in range(100))
    assert all(0 <= added_source_delay(3600.0, rng) <= START_SPREAD for _ in range(100))
