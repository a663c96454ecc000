"""Synthetic Greenhouse job boards and subscription queries shared by the benchmarks.

A board is the JSON the Greenhouse Job Board API answers for
``/v1/boards/TOKEN/jobs?content=true``: every field the real API sends, with an
HTML-escaped description of about 130 words. Everything is derived from a seed,
so each process builds the same bytes.
"""

from __future__ import annotations

import html
import json
import random
from typing import Any

COMMON_WORDS = (
    "research", "scientist", "engineer", "machine", "learning", "computer", "vision",
    "robotics", "perception", "graphics", "rendering", "neural", "gaussian", "splatting",
    "reconstruction", "geometry", "language", "model", "training", "inference", "systems",
    "platform", "infrastructure", "data", "product", "design", "senior", "staff", "principal",
    "intern", "lead", "manager", "team", "python", "pytorch", "cuda", "distributed",
    "optimization", "simulation", "autonomy", "mapping", "localization", "3d", "video",
    "generative", "diffusion", "multimodal", "speech", "audio", "search", "ranking",
    "recommendation", "safety", "evaluation", "hardware", "compiler", "kernel", "mobile",
    "backend", "frontend", "cloud", "security", "privacy", "analytics", "statistics", "theory",
)  # fmt: skip
PLACES = (
    "London, UK",
    "New York, NY",
    "San Francisco, CA",
    "Zürich, Switzerland",
    "Paris, France",
    "Remote (US)",
    "Seattle, WA",
    "Toronto, Canada",
    "Berlin, Germany",
    "Tokyo, Japan",
)
TEAMS = ("Research", "Machine Learning", "Engineering", "Graphics", "Infrastructure")
_SYLLABLES = (
    "ka", "lo", "mi", "ne", "ru", "sa", "te", "vo", "zi",
    "pa", "be", "do", "fu", "gi", "ha", "ju", "ko",
)  # fmt: skip


def vocabulary(size: int = 20_000, seed: int = 7) -> list[str]:
    """Common job words plus invented ones, so that most queries are selective."""
    rng = random.Random(seed)
    invented = {"".join(rng.choices(_SYLLABLES, k=4)) for _ in range(size * 2)}
    return list(COMMON_WORDS) + sorted(invented)[: size - len(COMMON_WORDS)]


WORDS = vocabulary()


def _description(rng: random.Random) -> str:
    paragraphs = [" ".join(rng.choices(WORDS, k=40)).capitalize() + "." for _ in range(2)]
    bullets = "".join(f"<li>{' '.join(rng.choices(WORDS, k=10))}</li>" for _ in range(5))
    return (
        f"<p>{paragraphs[0]}</p><h2>What you\u2019ll do</h2><ul>{bullets}</ul>"
        f"<p>{paragraphs[1]} Pay: $150,000&mdash;$250,000 &amp; equity.</p>"
    )


def job(board: str, number: int, *, revision: int = 0) -> dict[str, Any]:
    """One job of ``board``; a later ``revision`` has a different title."""
    rng = random.Random(f"{board}/{number}")
    job_id = 4_000_000_000 + number
    title = " ".join(rng.choices(WORDS[:60], k=2) + rng.choices(WORDS, k=2)).title()
    if revision:
        title += f" (Level {revision + 1})"
    return {
        "absolute_url": f"https://boards.greenhouse.io/{board}/jobs/{job_id}",
        "data_compliance": [
            {
                "type": "gdpr",
                "requires_consent": False,
                "requires_processing_consent": False,
                "requires_retention_consent": False,
                "retention_period": None,
                "demographic_data_consent_applies": False,
            }
        ],
        "internal_job_id": 3_000_000_000 + number,
        "location": {"name": "; ".join(rng.sample(PLACES, rng.randint(1, 2)))},
        "metadata": None,
        "id": job_id,
        "updated_at": f"2024-05-{1 + number % 28:02d}T14:32:11-04:00",
        "requisition_id": f"REQ-{number}",
        "title": title,
        "company_name": board.title(),
        "first_published": f"2024-04-{1 + number % 28:02d}T10:15:03-04:00",
        "language": "en",
        "content": html.escape(_description(rng)),
        "departments": [{"id": 1, "name": rng.choice(TEAMS), "child_ids": [], "parent_id": None}],
        "offices": [],
    }


def board_jobs(board: str, count: int, *, changed_fraction: float = 0.0) -> list[dict[str, Any]]:
    """The jobs of a board; with ``changed_fraction`` that share of them edited (new
    title), and, when any are, one posting gone and one new one added."""
    edited = round(count * changed_fraction)
    jobs = [job(board, n, revision=1 if n < edited else 0) for n in range(count)]
    if edited:
        jobs = [*jobs[:-1], job(board, count)]
    return jobs


def board_body(
    board: str, count: int, *, changed_fraction: float = 0.0, indent: int | None = None
) -> bytes:
    """The API answer for a board (``indent`` changes the bytes, not the content)."""
    jobs = board_jobs(board, count, changed_fraction=changed_fraction)
    document = {"jobs": jobs, "meta": {"total": len(jobs)}}
    return json.dumps(document, ensure_ascii=False, indent=indent).encode()


def subscription_queries(count: int, seed: int = 11) -> list[str]:
    """Queries of the shapes people write, over the boards' vocabulary."""
    rng = random.Random(seed)
    queries = []
    for _ in range(count):
        a, b, c = rng.sample(WORDS, 3)
        shape = rng.randrange(6)
        if shape == 0:
            queries.append(a)
        elif shape == 1:
            queries.append(f"{a} OR {b}")
        elif shape == 2:
            queries.append(f'"{a} {b}" -{c}')
        elif shape == 3:
            queries.append(f"title:{rng.choice(COMMON_WORDS)} {b}")
        elif shape == 4:
            queries.append(f'{a} location:"{rng.choice(PLACES).split(",")[0]}"')
        else:
            queries.append(f"{a} remote:yes")
    return queries
