"""Diff cost for one large source: no change (hash short-circuit) and 5 % changed.

Run: python bench/bench_diff.py [POSTINGS]
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace

from bot.diff import StoredPosting, content_hash, diff
from bot.models import Posting


def make(n: int) -> Posting:
    return Posting(
        source="bench",
        id=str(n),
        title=f"Research Scientist {n}",
        company="Acme",
        locations=("London, UK", "Remote"),
        url=f"https://jobs.example.com/{n}?utm_source=x",
        description=("Work on neural rendering and gaussian splatting. " * 40) + str(n),
    )


def timed(label: str, stored: dict[str, StoredPosting], polled: list[Posting]) -> None:
    started = time.process_time()
    result = diff(stored, polled, baseline=False, close_after=2)
    cpu = time.process_time() - started
    print(f"{label:<22} {cpu * 1000:7.1f} ms CPU  ({len(result.changes)} changes)")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000
    postings = [make(n) for n in range(count)]
    stored = {p.id: StoredPosting(p, content_hash(p)) for p in postings}
    edited = [
        replace(p, title=p.title + " II") if n % 20 == 0 else p for n, p in enumerate(postings)
    ]
    print(f"postings per poll: {count:,}")
    timed("unchanged poll", stored, postings)
    timed("5% changed poll", stored, edited)


if __name__ == "__main__":
    main()
