"""Matching cost: N subscriptions by M new postings through the query index.

Prints the index build time, the matching time and the number of matches, beside
the N*M evaluations a brute-force scan would make. Run:
python bench/bench_match.py [N] [M]
"""

from __future__ import annotations

import random
import sys
import time

from bot.models import Posting
from bot.query import QueryIndex, parse_query

WORDS = [f"w{i}" for i in range(20_000)]
FIELDS = ["title", "company", "location"]


def make_query(rng: random.Random) -> str:
    shape = rng.randrange(4)
    a, b, c = rng.sample(WORDS, 3)
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


def main() -> None:
    subscriptions = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    postings = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    rng = random.Random(42)
    started = time.perf_counter()
    index: QueryIndex[int] = QueryIndex()
    for key in range(subscriptions):
        index.add(key, parse_query(make_query(rng)))
    built = time.perf_counter() - started
    batch = [make_posting(rng, n) for n in range(postings)]
    started = time.perf_counter()
    matches = sum(len(index.match(posting)) for posting in batch)
    elapsed = time.perf_counter() - started
    print(f"subscriptions: {subscriptions:,}  postings: {postings:,}")
    print(f"index build:   {built:.2f} s")
    print(f"matching:      {elapsed:.2f} s  ({elapsed / postings * 1e6:.0f} µs per posting)")
    print(f"matches:       {matches:,}  (brute force would evaluate {subscriptions * postings:,})")


if __name__ == "__main__":
    main()
