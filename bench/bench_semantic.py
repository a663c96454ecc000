"""Semantic terms (``~"phrase"``): how well the default threshold does, and what they cost.

Needs the extra: ``pip install careerbot[semantic]``.

1. Quality: the postings of the shared fixtures (real posting text from CVPR's board and the
   ATS samples) against phrases whose relevant postings were picked by hand (``LABELS``);
   precision, recall and F1 at several thresholds, to choose ``DEFAULT_SEMANTIC_THRESHOLD``.
   Postings labelled "acceptable" count neither way.
2. Cost per 1,000 postings (the fixture postings repeated under new ids): loading the
   model, embedding them and caching the vectors in SQLite, the second poll (all cached),
   the size of the cache, and matching them against 100 semantic subscriptions.

Run: .venv/bin/python bench/bench_semantic.py [POSTINGS]
"""

# ruff: noqa: RUF001 (titles as the boards write them, en dashes included)

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import sys
import tempfile
import time
from contextlib import closing
from dataclasses import replace
from pathlib import Path

from bot import semantic
from bot.conditional import PollFetcher
from bot.fetch import HttpFetcher, make_client
from bot.models import Posting
from bot.query import DEFAULT_SEMANTIC_THRESHOLD, PostingText, QueryIndex, parse_query
from bot.sources import SourceSpec, collect_postings
from bot.store import Store

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
BOARDS = [
    ("cvpr", "page1.html"),  # and page 2, through the board's pagination
    ("greenhouse", "board-v1.json"),
    ("lever", "postings-v1.json"),
    ("ashby", "job-board.json"),
    ("rss", "wwr-programming-v1.rss"),
    ("rss", "university-vacancies.atom"),
    ("jsonld", "anduril-two-postings.html"),
    ("jsonld", "captions-remote-graph.html"),
    ("jsonld", "synthesia-job.html"),
    ("apple", "search-page1.html"),
    ("workday", "jobs-offset0.json"),
    ("smartrecruiters", "postings-offset0.json"),
    ("workable", "widget-account.json"),
]
WAYVE = "Applied Scientist – Neural Rendering (NeRFs & Gaussian Splatting)"
HELM_DRIVING = "Open Roles in Autonomous Driving and Robotics"
BOSCH_DRIVING = "Research Engineer Computer Vision for Automated Driving (f/m/div.)"
TCD_PHD = "Fully Funded PhD Position in 3D Graphics and Vision"
TCD_PHD_ATOM = "Fully Funded PhD Position in 3D Computer Graphics and Vision"
BOSCH_PHD = "PhD Student – 3D Scene Understanding (f/m/div.)"
# phrase: (relevant titles, acceptable titles)
LABELS: dict[str, tuple[set[str], set[str]]] = {
    "neural radiance fields": ({WAYVE}, set()),
    "neural rendering for autonomous driving": ({WAYVE}, {HELM_DRIVING, BOSCH_DRIVING}),
    "speech recognition": ({"Applied Scientist, Speech, Vision and Language"}, set()),
    "phd position": (
        {"PhD Position in Geometric Deep Learning", TCD_PHD, TCD_PHD_ATOM, BOSCH_PHD},
        set(),
    ),
    "robotics": (
        {
            HELM_DRIVING,
            "Robotics and Automation Engineer (General Application)",
            "Machine Learning Engineer - Robotics",
        },
        {"Autonomy System Test Engineer"},
    ),
    "frontend react developer": (
        set(),
        {"Senior Fullstack Developer (Python)", "Senior Fullstack Engineer"},
    ),
    "large language model infrastructure": (
        {
            "Senior Researcher – DeepSpeed",
            "Software Engineer, AI",
            "Machine Learning Infrastructure Engineer",
            "Cloud ML Engineer - Inference",
            "Software Engineer, AI Platform",
        },
        {
            "Machine Learning Applications Engineer – Cloud AI",
            "Machine Learning Applications Engineer - Cloud AI",
        },
    ),
    "computer vision for self-driving cars": (
        {BOSCH_DRIVING, HELM_DRIVING, "Software Engineer - Perception", WAYVE},
        {
            "Autonomy System Test Engineer",
            "Senior Software Engineer - Simulation Infrastructure",
            "Perception Engineer",
            "Senior Machine Learning Engineer – Perception",
            "Research Engineer",
            "Senior Fullstack Engineer",
        },
    ),
    "video compression": ({"Video Compression Research Engineer"}, set()),
    "responsible AI fairness research": (
        {
            "Principal Research Scientist – Responsible AI",
            "Senior Research Scientist – Responsible AI",
        },
        set(),
    ),
    "3D computer graphics": (
        {TCD_PHD, TCD_PHD_ATOM, "Postdoctoral Researcher in 3D Graphics and Vision"},
        {WAYVE, BOSCH_PHD},
    ),
    "customer success account management": ({"Customer Success Manager, Enterprise"}, set()),
    "retail sales": ({"US-Specialist: Full-Time and Part-Time"}, set()),
    "data governance": ({"Data Governance & Platform Manager"}, set()),
    "geometric deep learning": ({"PhD Position in Geometric Deep Learning"}, set()),
    "search and information retrieval": (
        {"Machine Learning Engineer, Search", "Research Engineer, Retrieval"},
        set(),
    ),
    "generative video models": (
        {"Machine Learning Engineer – Generative Video", "Research Engineer – Generative Video"},
        {"Machine Learning Researcher - Multimodal Foundation Models"},
    ),
    "reinforcement learning": (
        {"Senior Researcher – Machine Learning and Reinforcement Learning"},
        set(),
    ),
}
TOPICS = [
    "neural rendering", "speech recognition", "robot learning", "large language models",
    "self-driving perception", "video compression", "responsible AI", "3D graphics",
    "information retrieval", "generative video", "reinforcement learning", "compilers",
    "distributed systems", "computer vision", "data engineering", "security research",
    "recommender systems", "medical imaging", "simulation", "developer relations",
]  # fmt: skip
ANGLES = ["", " research", " engineering", " for startups", " internship"]


async def fixture_postings() -> list[Posting]:
    postings: list[Posting] = []
    async with make_client() as client:
        for source_type, name in BOARDS:
            spec = SourceSpec(source_type, source_type, (FIXTURES / source_type / name).as_uri())
            fetcher = PollFetcher(HttpFetcher(client), None)
            postings += (await collect_postings(spec, fetcher)).postings
    return postings


def quality(postings: list[Posting], texts: list[PostingText]) -> None:
    titles = {posting.title for posting in postings}
    for relevant, acceptable in LABELS.values():
        assert relevant | acceptable <= titles, (relevant | acceptable) - titles
    vectors = [text.semantic for text in texts if text.semantic is not None]
    scores = {
        phrase: [
            (vector.similarity(phrase), p.title)
            for p, vector in zip(postings, vectors, strict=True)
        ]
        for phrase in LABELS
    }
    print(f"quality: {len(LABELS)} hand-labelled phrases over {len(postings)} fixture postings")
    print("  threshold  precision  recall    F1")
    for step in range(9):
        threshold = 0.25 + 0.025 * step
        hits = misses = wrong = 0
        for phrase, (relevant, acceptable) in LABELS.items():
            found = {title for score, title in scores[phrase] if score >= threshold}
            hits += len(found & relevant)
            misses += len(relevant - found)
            wrong += len(found - relevant - acceptable)
        precision = hits / max(hits + wrong, 1)
        recall = hits / (hits + misses)
        f1 = 2 * precision * recall / max(precision + recall, 1e-9)
        mark = "  <- default" if abs(threshold - DEFAULT_SEMANTIC_THRESHOLD) < 1e-9 else ""
        print(f"  {threshold:9.3f}  {precision:9.2f}  {recall:6.2f}  {f1:6.2f}{mark}")
    wayve = dict((title, score) for score, title in scores["neural radiance fields"])[WAYVE]
    print(f'  ~"neural radiance fields" vs the Wayve NeRF posting: {wayve:.3f}')


def thousand(postings: list[Posting], count: int) -> list[Posting]:
    return [
        replace(posting, source="bench", id=str(n))
        for n, posting in zip(range(count), itertools.cycle(postings))
    ]


async def cost(postings: list[Posting]) -> None:
    count = len(postings)
    per = 1000 / count
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.sqlite3"
        store = await Store.open(path)
        try:
            started = time.perf_counter()
            await semantic.posting_vectors(store, postings)
            first = time.perf_counter() - started
            cache_bytes = table_bytes(path, "embeddings")
            started = time.perf_counter()
            texts = await semantic.posting_texts(store, postings, DEFAULT_SEMANTIC_THRESHOLD)
            second = time.perf_counter() - started
            started = time.perf_counter()
            plain = [PostingText.of(posting) for posting in postings]
            tokenising = time.perf_counter() - started
        finally:
            await store.close()
    print(f"cost, {count:,} postings (figures per 1,000 postings):")
    print(f"  first poll: embed and cache   {first * per:6.3f} s")
    print(
        f"  second poll: all cached       {second * per:6.3f} s"
        f" (of which tokenising for keyword terms: {tokenising * per:.3f} s)"
    )
    print(
        f"  cache in SQLite               {cache_bytes * per / 1024:6.0f} KiB"
        f" ({semantic.DESCRIPTION_CHARS}-character excerpts, 256 float32 per posting)"
    )
    queries = [f'~"{topic}{angle}"' for topic in TOPICS for angle in ANGLES]
    for label, extra in (("semantic only", ""), ("with location:london", " location:london")):
        index: QueryIndex[int] = QueryIndex()
        for key, query in enumerate(queries):
            index.add(key, parse_query(query + extra))
        started = time.perf_counter()
        matched = sum(len(index.match_text(text)) for text in texts)
        elapsed = time.perf_counter() - started
        print(
            f"  match {len(queries)} subscriptions, {label + ':':21}"
            f" {elapsed * per:6.3f} s ({matched * per:,.0f} matches)"
        )
    keyword: QueryIndex[int] = QueryIndex()
    for key, topic in enumerate(TOPICS):
        keyword.add(key, parse_query(f'"{topic}"'))
    started = time.perf_counter()
    sum(len(keyword.match_text(text)) for text in plain)
    elapsed = time.perf_counter() - started
    print(f"  for scale, {len(TOPICS)} keyword phrases:{' ' * 17}{elapsed * per:6.3f} s")


def table_bytes(path: Path, table: str) -> int:
    """The pages a table and its indexes take in the database file."""
    with closing(sqlite3.connect(path)) as db:
        (size,) = db.execute(
            "SELECT SUM(pgsize) FROM dbstat WHERE name = ? OR name IN"
            " (SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?)",
            (table, table),
        ).fetchone()
    return int(size)


async def main() -> None:
    if not semantic.available():
        sys.exit(semantic.INSTALL_HINT)
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    postings = await fixture_postings()
    started = time.perf_counter()
    semantic.model()
    print(
        f"model load (numpy, tokenizer, 32,000 x 256 table): {time.perf_counter() - started:.2f} s"
    )
    with tempfile.TemporaryDirectory() as directory:
        store = await Store.open(Path(directory) / "quality.sqlite3")
        try:
            texts = await semantic.posting_texts(store, postings, DEFAULT_SEMANTIC_THRESHOLD)
        finally:
            await store.close()
    quality(postings, texts)
    await cost(thousand(postings, count))


if __name__ == "__main__":
    asyncio.run(main())
