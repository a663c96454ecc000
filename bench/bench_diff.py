"""Diff and store: polls of one 2,000-posting source in a 100,000-posting database.

Builds a real SQLite database through ``bot.store.Store`` (50 greenhouse sources of
2,000 postings, 1,000 subscriptions), then times the real ``Pipeline.poll`` of one
source, read from a ``file:`` URL, in three cases:

- unchanged: the same bytes again (the body-hash short-circuit)      target < 200 ms CPU
- reformatted: the same postings in different bytes (parsed, diffed, no change)
- 5 % changed: 100 postings retitled, one gone, one new               target < 1 s CPU

Each case runs three times; the median is printed, CPU (``time.process_time``, every
thread of the process) and wall. Then ``diff()`` alone on the same postings.

Run: .venv/bin/python bench/bench_diff.py [POSTINGS_PER_SOURCE]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from boards import board_body, subscription_queries

from bot.config import Config, SourceConfig, SubscriptionConfig
from bot.diff import StoredPosting, diff
from bot.fetch import HttpFetcher, make_client
from bot.models import ChangeKind, Posting
from bot.pipeline import Pipeline, PollOutcome
from bot.sources.greenhouse import parse_board
from bot.store import Store

SOURCES = 50
SUBSCRIPTIONS = 1_000
ROUNDS = 3


def filler(source: str, count: int) -> list[Posting]:
    """Postings of the other sources: made directly, which is quicker than parsing."""
    body = board_body(source, 40)  # 40 distinct descriptions, reused
    sample = parse_board(body, source, None, source)
    return [
        Posting(
            source=source,
            id=str(number),
            title=f"{sample[number % 40].title} {number}",
            company=sample[0].company,
            locations=sample[number % 40].locations,
            team=sample[number % 40].team,
            posted_at=sample[number % 40].posted_at,
            url=f"https://boards.greenhouse.io/{source}/jobs/{number}",
            description=sample[number % 40].description,
        )
        for number in range(count)
    ]


async def build(store: Store, pipeline: Pipeline, polled: SourceConfig, count: int) -> float:
    started = time.perf_counter()
    others = [f"other{index:02d}" for index in range(SOURCES - 1)]
    await store.register_sources([(name, "greenhouse", f"file:{name}.json") for name in others])
    for name in others:
        result = diff({}, filler(name, count), baseline=True, close_after=2)
        await store.apply_poll(name, result, [], time.time())
    outcome = await pipeline.poll(polled)
    assert outcome.ok and outcome.baseline, outcome.summary()
    return time.perf_counter() - started


async def measure(poll: Callable[[], Awaitable[PollOutcome]]) -> tuple[float, float, str]:
    wall, cpu = time.perf_counter(), time.process_time()
    outcome = await poll()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert outcome.ok, outcome.summary()
    note = "short-circuited" if outcome.unchanged else f"{len(outcome.changes)} changes"
    return cpu, wall, note


def line(label: str, runs: list[tuple[float, float, str]], target: float | None) -> None:
    cpu = statistics.median(run[0] for run in runs)
    wall = statistics.median(run[1] for run in runs)
    verdict = ""
    if target is not None:
        verdict = f"target < {target * 1000:.0f} ms CPU: {'met' if cpu < target else 'MISSED'}"
    print(
        f"  {label:<34} {cpu * 1000:7.1f} ms CPU {wall * 1000:7.1f} ms wall"
        f"  ({runs[-1][2]})  {verdict}".rstrip()
    )


async def bench(work: Path, count: int) -> None:
    board = work / "board.json"
    versions = {
        "same": board_body("polled", count),
        "reformatted": board_body("polled", count, indent=1),
        "changed": board_body("polled", count, changed_fraction=0.05),
    }
    polled = SourceConfig(name="polled", type="greenhouse", url=board.as_uri())
    config = Config(
        sources=(polled,),
        subscriptions=tuple(
            SubscriptionConfig(target="console", query=query)
            for query in subscription_queries(SUBSCRIPTIONS)
        ),
    )
    store = await Store.open(work / "bench.sqlite3")
    try:
        await store.register_sources([(polled.name, polled.type, polled.url)])
        await store.sync_config_subscriptions(
            ((s.target, s.query, s.notify) for s in config.subscriptions), time.time()
        )
        async with make_client() as client:
            pipeline = Pipeline(config, store, HttpFetcher(client))
            board.write_bytes(versions["same"])
            built = await build(store, pipeline, polled, count)
            print(
                f"database: {SOURCES} sources x {count:,} postings = {SOURCES * count:,} postings,"
                f" {SUBSCRIPTIONS:,} subscriptions (built in {built:.1f} s);"
                f" one poll reads {len(versions['same']) / 1e6:.1f} MB"
            )
            runs: dict[str, list[tuple[float, float, str]]] = {name: [] for name in versions}

            async def poll() -> PollOutcome:
                return await pipeline.poll(polled)

            for _ in range(ROUNDS):
                board.write_bytes(versions["same"])
                # Back to the first version, until the posting the last round added closes.
                for _ in range(3):
                    if (await poll()).unchanged:
                        break
                runs["same"].append(await measure(poll))
                board.write_bytes(versions["reformatted"])
                runs["reformatted"].append(await measure(poll))
                board.write_bytes(versions["changed"])
                runs["changed"].append(await measure(poll))
    finally:
        await store.close()
    print(f"Pipeline.poll of a {count:,}-posting source (median of {ROUNDS}):")
    line("unchanged (same bytes)", runs["same"], 0.2)
    line("unchanged content, different bytes", runs["reformatted"], None)
    line("5% changed", runs["changed"], 1.0)


def diff_alone(count: int) -> None:
    postings = parse_board(board_body("polled", count), "polled", None, "polled")
    changed = parse_board(
        board_body("polled", count, changed_fraction=0.05), "polled", None, "polled"
    )
    stored = {
        p.id: StoredPosting(p, content_hash)
        for p, content_hash in diff({}, postings, baseline=True, close_after=2).upserts
    }
    print("diff() alone, on the same postings:")
    for label, polled in (("no change", postings), ("5% changed", changed)):
        started = time.process_time()
        result = diff(stored, polled, baseline=False, close_after=2)
        cpu = time.process_time() - started
        kinds = sorted(ChangeKind(change.kind).value for change in result.changes)
        summary = ", ".join(f"{kinds.count(k)} {k}" for k in sorted(set(kinds))) or "no changes"
        print(f"  {label:<34} {cpu * 1000:7.1f} ms CPU  ({summary})")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000
    with tempfile.TemporaryDirectory(prefix="careerbot-bench-") as tmp:
        asyncio.run(bench(Path(tmp), count))
    diff_alone(count)


if __name__ == "__main__":
    main()
