"""Matching cost: N subscriptions by M new postings through the query index, on one core.

Postings have ~130 words (a 6-word title, a company, a location and a 120-word
description) over a 20,000-word vocabulary; queries are words, ORs, phrases with an
exclusion and field terms. Prints the headline run (target: 10,000 x 10,000 in under
2 s), then how the time scales: with the number of subscriptions, and with
subscriptions that match nothing (their cost should not show), beside the estimated
cost of evaluating every query on every posting.

Run: .venv/bin/python bench/bench_match.py [N] [M]
"""

from __future__ import annotations

import os
import random
import sys
import time

from bot.models import Posting
from bot.query import PostingText, QueryIndex, parse_query

WORDS = [f"w{i}" for i in range(20_000)]
ABSENT = [f"nowhere{i}" for i in range(20_000)]  # in no posting
FIELDS = ["title", "company", "location"]
TARGET = 2.0


def make_query(rng: random.Random, words: list[str]) -> str:
    shape = rng.randrange(4)
    a, b, c = rng.sample(words, 3)
    if shape == 0:
        return a
    if shape == 1:
        return f"{a} OR {b}"
    if shape == 2:
        return f'"{a} {b}" -{c}'
    return f"{rng.choice(FIELDS)}:{a} {b}"


def make_posting(rng: random.Random, n: int) -> Posting:
    return Posting(
        source="bench",
        id=str(n),
        title=" ".join(rng.sample(WORDS, 6)),
        company=rng.choice(WORDS),
        locations=(f"{rng.choice(WORDS)}, {rng.choice(WORDS)}",),
        description=" ".join(rng.choices(WORDS, k=120)),
    )


def index_of(matching: int, absent: int, seed: int = 42) -> QueryIndex[int]:
    rng = random.Random(seed)
    index: QueryIndex[int] = QueryIndex()
    for key in range(matching):
        index.add(key, parse_query(make_query(rng, WORDS)))
    for key in range(matching, matching + absent):
        index.add(key, parse_query(make_query(rng, ABSENT)))
    return index


def timed_match(index: QueryIndex[int], batch: list[Posting]) -> tuple[float, int]:
    started = time.process_time()
    matches = sum(len(index.match(posting)) for posting in batch)
    return time.process_time() - started, matches


def brute_force_estimate(index: QueryIndex[int], batch: list[Posting], sample: int = 20) -> float:
    """Seconds to evaluate every query on every posting, from a sample of postings."""
    queries = [
        parse_query(q) for q in (make_query(random.Random(k), WORDS) for k in range(len(index)))
    ]
    started = time.process_time()
    for posting in batch[:sample]:
        text = PostingText.of(posting)
        for query in queries:
            query.matches_text(text)
    return (time.process_time() - started) / sample * len(batch)


def main() -> None:
    subscriptions = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    postings = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    rng = random.Random(7)
    batch = [make_posting(rng, n) for n in range(postings)]
    started = time.process_time()
    index = index_of(subscriptions, 0)
    built = time.process_time() - started
    elapsed, matches = timed_match(index, batch)
    verdict = "met" if elapsed < TARGET else "MISSED"
    print(f"{subscriptions:,} subscriptions x {postings:,} postings (one core, CPU time):")
    print(f"  index build  {built:5.2f} s")
    print(
        f"  matching     {elapsed:5.2f} s  ({elapsed / postings * 1e6:.0f} µs per posting,"
        f" {matches:,} matches)   target < {TARGET:.0f} s: {verdict}"
    )
    print(
        f"  brute force  ~{brute_force_estimate(index, batch):.0f} s (every query on every posting)"
    )
    tokenising, _ = timed_match(QueryIndex(), batch)
    print(f"scaling, {postings:,} postings (tokenising them alone: {tokenising:.2f} s):")
    print("  subscriptions  match nothing    matches    time   beyond tokenising")
    for matching, absent in (
        (subscriptions // 10, 0),
        (subscriptions // 2, 0),
        (subscriptions, 0),
        (subscriptions // 10, subscriptions - subscriptions // 10),
    ):
        elapsed, matches = timed_match(index_of(matching, absent), batch)
        beyond = elapsed - tokenising
        print(
            f"  {matching + absent:13,}  {absent:13,}  {matches:9,}  {elapsed:5.2f} s"
            f"   {beyond:5.2f} s = {beyond / max(matches, 1) * 1e6:.1f} µs per match"
        )


if __name__ == "__main__":
    main()
