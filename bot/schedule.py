"""When ``careerbot run`` first polls each source after it starts.

Every source is polled soon after start, but not all at once: a restart of a
deployment with hundreds of sources would otherwise hit every board, and the
database, in the same second. The first polls are spaced evenly at no more than
``START_RATE`` a second (over at least ``START_SPREAD`` seconds), the sources
that have waited longest first, and never later than one interval.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

START_SPREAD = 10.0  # seconds: the shortest window the first polls are spread over
START_RATE = 2.0  # first polls a second, at most, when there are many sources


def first_poll_delays(
    intervals: Mapping[str, float],
    last_polls: Mapping[str, float | None],
    rng: random.Random,
) -> dict[str, float]:
    """Seconds from now until each source's first poll."""
    never_polled = float("-inf")
    order: Sequence[str] = sorted(
        intervals, key=lambda name: (last_polls.get(name) or never_polled, name)
    )
    window = max(START_SPREAD, len(order) / START_RATE)
    slot = window / max(len(order), 1)
    return {
        name: min(position * slot + rng.uniform(0, slot), intervals[name])
        for position, name in enumerate(order)
    }


def added_source_delay(interval: float, rng: random.Random) -> float:
    """Seconds until the first poll of a source added (or resumed) while running."""
    return rng.uniform(0, min(START_SPREAD, interval))
