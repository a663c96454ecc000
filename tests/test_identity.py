# ruff: noqa: RUF001  (titles are quoted as the fixtures spell them, en dashes included)
"""Which postings are one job: real look-alike pairs from the shared fixtures, both ways."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from functools import cache
from pathlib import Path

import pytest

from bot.identity import (
    JobIndex,
    company_key,
    group_jobs,
    identity,
    merged_locations,
    same_job,
)
from bot.models import Posting
from bot.sources import cvpr, greenhouse, html, jsonld, rss, smartrecruiters, workday

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
WORKDAY = "https://qualcomm.wd5.myworkdayjobs.com/wday/cxs/qualcomm/External/jobs"
LAB = "https://www.chalmers.se/en/departments/e2/research/computer-vision/"
LAB_LAYOUT = html.layout_from_options(
    {"selectors": {"item": "ul.vacancies li.vacancy", "title": "h3 a", "location": ".location"}}
)


def read(path: str) -> bytes:
    return (FIXTURES / path).read_bytes()


@cache
def fixture_postings() -> dict[str, list[Posting]]:
    """Every posting of the fixtures used below, by source name."""
    board = "https://cvpr.thecvf.com/careers/"
    return {
        "cvpr-2024": [
            *cvpr.parse_page(read("cvpr/page1.html"), board, "cvpr-2024", None)[0],
            *cvpr.parse_page(read("cvpr/page2.html"), board + "?page=2", "cvpr-2024", None)[0],
        ],
        "figma": greenhouse.parse_board(read("greenhouse/board-v2.json"), "figma", "Figma", None),
        "qualcomm": [
            workday.parse_job(read("workday/job-3058421.json"), WORKDAY, "qualcomm", None),
            *(
                posting
                for page in ("jobs-offset0.json", "jobs-offset3.json")
                for posting in workday.parse_jobs(
                    read(f"workday/{page}"), WORKDAY, "qualcomm", "Qualcomm", date(2024, 5, 10)
                ).postings
            ),
        ],
        "tcd": rss.parse_feed(
            read("rss/university-vacancies.atom"), "https://www.scss.tcd.ie/", "tcd", None
        ),
        "lab": html.parse_page(
            read("html/lab-positions-page1.html"),
            LAB,
            "lab",
            "Chalmers University of Technology",
            LAB_LAYOUT,
        )[0],
        "anduril": jsonld.parse_page(
            read("jsonld/anduril-two-postings.html"), "https://www.anduril.com/", "anduril", None
        ),
        "synthesia": jsonld.parse_page(
            read("jsonld/synthesia-job.html"), "https://www.synthesia.io/", "synthesia", None
        ),
        "bosch": smartrecruiters.parse_postings(
            read("smartrecruiters/postings-offset0.json"), "bosch", None
        )[0],
    }


def real(source: str, title: str, company: str | None = None) -> Posting:
    """The posting of ``source`` with this title (and company, where titles repeat)."""
    (found,) = [
        p
        for p in fixture_postings()[source]
        if p.title == title and (company is None or p.company == company)
    ]
    return found


# Hand-made listings, each in the shape of a real format; the comment says what it stands for.
APPLE_CUPERTINO = Posting(
    "apple",
    "200616768-3337",  # Apple's per-location requisition ids: one role, one id per city
    "Machine Learning Engineer - Siri",
    company="Apple",
    locations=("Cupertino, California, United States",),
    team="Machine Learning and AI",
    employment_type="Full-Time",
    url="https://jobs.apple.com/en-us/details/200616768-3337/machine-learning-engineer-siri",
)
APPLE_SEATTLE = replace(
    APPLE_CUPERTINO,
    id="200616768-0836",
    locations=("Seattle, Washington, United States",),
    url="https://jobs.apple.com/en-us/details/200616768-0836/machine-learning-engineer-siri",
)
# Wayve's own Greenhouse board, for the CVPR card that links wayve.ai/...?gh_jid=5123456.
WAYVE_GREENHOUSE = Posting(
    "wayve",
    "5123456",
    "Applied Scientist - Neural Rendering",
    company="Wayve Technologies Ltd",
    locations=("London",),
    url="https://boards.greenhouse.io/wayve/jobs/5123456",
)
# The Bosch role as a conference board card would name it.
BOSCH_CARD = Posting(
    "cvpr-2024",
    "b05c4",
    "Research Engineer – Computer Vision for Automated Driving",
    company="Bosch",
    url="https://www.bosch.com/careers/",
)

MERGED: list[tuple[str, Posting, Posting, str]] = [
    (
        "CVPR card whose Apply link is the Greenhouse posting",
        real("cvpr-2024", "AI Research Scientist"),
        real("figma", "AI Research Scientist"),
        "shared ATS id 5141321004",
    ),
    (
        "CVPR card and the Workday detail of a legal-entity company name",
        real("cvpr-2024", "Video Compression Research Engineer"),
        real("qualcomm", "Video Compression Research Engineer", "Qualcomm Technologies, Inc."),
        "shared ATS id 3058421",
    ),
    (
        "CVPR card and the Workday row with a re-posted path (_3059764-1)",
        real("cvpr-2024", "Machine Learning Applications Engineer – Cloud AI"),
        real("qualcomm", "Machine Learning Applications Engineer - Cloud AI"),
        "shared ATS id 3059764",
    ),
    (
        "CVPR card and the Workday row, same seniority",
        real("cvpr-2024", "Principal Machine Learning Researcher"),
        real("qualcomm", "Principal Machine Learning Researcher"),
        "shared ATS id 3060377",
    ),
    (
        "CVPR card and the university's Atom feed, one word more",
        real("cvpr-2024", "Fully Funded PhD Position in 3D Graphics and Vision"),
        real("tcd", "Fully Funded PhD Position in 3D Computer Graphics and Vision"),
        "same company, title similarity 91",
    ),
    (
        "CVPR card and the university's Atom feed, same title",
        real("cvpr-2024", "Postdoctoral Researcher in 3D Graphics and Vision"),
        real("tcd", "Postdoctoral Researcher in 3D Graphics and Vision"),
        "same company, title similarity 100",
    ),
    (
        "CVPR card and the lab's own careers page",
        real("cvpr-2024", "PhD Position in Geometric Deep Learning"),
        real("lab", "PhD Position in Geometric Deep Learning"),
        "same company, title similarity 100",
    ),
    (
        "one Apple role listed per city (hand-made, real id format)",
        APPLE_CUPERTINO,
        APPLE_SEATTLE,
        "shared ATS id 200616768",
    ),
    (
        "CVPR card with ?gh_jid= and the shorter Greenhouse title (hand-made Greenhouse side)",
        real("cvpr-2024", "Applied Scientist – Neural Rendering (NeRFs & Gaussian Splatting)"),
        WAYVE_GREENHOUSE,
        "shared ATS id 5123456",
    ),
    (
        "SmartRecruiters title with a gender note (hand-made board card)",
        real("bosch", "Research Engineer Computer Vision for Automated Driving (f/m/div.)"),
        BOSCH_CARD,
        "same company, title similarity 100",
    ),
]

KEPT_APART: list[tuple[str, Posting, Posting, str]] = [
    (
        "Trinity's PhD and postdoc cards share one Apply link",
        real("cvpr-2024", "Fully Funded PhD Position in 3D Graphics and Vision"),
        real("cvpr-2024", "Postdoctoral Researcher in 3D Graphics and Vision"),
        "different seniority (phd / postdoctoral)",
    ),
    (
        "Helm.ai cards share helm.ai/careers",
        real("cvpr-2024", "Research Engineer", "Helm.ai"),
        real("cvpr-2024", "Open Roles in Autonomous Driving and Robotics"),
        "titles differ",
    ),
    (
        "same Microsoft role, different seniority",
        real("cvpr-2024", "Principal Research Scientist – Responsible AI"),
        real("cvpr-2024", "Senior Research Scientist – Responsible AI"),
        "different seniority (principal / senior)",
    ),
    (
        "Synthesia: ML engineer vs research engineer, same team words",
        real("cvpr-2024", "Machine Learning Engineer – Generative Video"),
        real("synthesia", "Research Engineer – Generative Video"),
        "titles differ (similarity 82, words nest: False)",
    ),
    (
        "Qualcomm: two on-device ML engineer roles",
        real("qualcomm", "Machine Learning Engineer - On-Device Generative AI"),
        real("qualcomm", "Edge AI Machine Learning Engineer"),
        "titles differ (similarity 76, words nest: False)",
    ),
    (
        "Amazon: two Sr. Applied Scientist roles",
        real("cvpr-2024", "Sr. Applied Scientist, Consumer Electronics Technology"),
        real("cvpr-2024", "Sr. Applied Scientist, Compliance Shared Services"),
        "titles differ",
    ),
    (
        "Microsoft Research is not Microsoft",
        real("cvpr-2024", "Senior Researcher – Machine Learning and Reinforcement Learning"),
        real("cvpr-2024", "Senior Researcher – DeepSpeed"),
        "different or unknown companies",
    ),
    (
        "same title at different companies",
        real("cvpr-2024", "Research Engineer", "Helm.ai"),
        replace(real("figma", "Research Engineer, Generative AI"), title="Research Engineer"),
        "different or unknown companies",
    ),
    (
        # A conservative miss: probably one role, but a qualifier this long on a short
        # title is also how two different roles look.
        "Anduril's CVPR card and its careers page, title extended by a word",
        real("cvpr-2024", "Software Engineer, Platform Engineering"),
        real("anduril", "Software Engineer, Platform"),
        "titles differ (similarity 81, words nest: True)",
    ),
    (
        "same title, different teams (hand-made second team)",
        real("figma", "Machine Learning Engineer, Search"),
        replace(real("figma", "Machine Learning Engineer, Search"), id="1", team="Design Systems"),
        "different teams (machine learning / design systems)",
    ),
    (
        "one letter apart: Search vs Speech (hand-made)",
        real("figma", "Machine Learning Engineer, Search"),
        replace(
            real("figma", "Machine Learning Engineer, Search"),
            id="5120045099",
            title="ML Engineer, Speech",
            url="https://boards.greenhouse.io/figma/jobs/5120045099",
            apply_url=None,
        ),
        "titles differ (similarity 94, words nest: False)",
    ),
    (
        "same Apple role, contract vs full-time (hand-made)",
        APPLE_CUPERTINO,
        replace(APPLE_SEATTLE, employment_type="Contract"),
        "different employment types (fulltime / contract)",
    ),
]


@pytest.mark.parametrize(
    ("a", "b", "reason"), [case[1:] for case in MERGED], ids=[case[0] for case in MERGED]
)
def test_the_same_job_is_recognised(a: Posting, b: Posting, reason: str) -> None:
    verdict = same_job(identity(a), identity(b))
    assert verdict.same and verdict.reason.startswith(reason), verdict
    assert same_job(identity(b), identity(a)).same


@pytest.mark.parametrize(
    ("a", "b", "reason"), [case[1:] for case in KEPT_APART], ids=[case[0] for case in KEPT_APART]
)
def test_look_alikes_stay_apart(a: Posting, b: Posting, reason: str) -> None:
    verdict = same_job(identity(a), identity(b))
    assert not verdict.same and verdict.reason.startswith(reason), verdict
    assert not same_job(identity(b), identity(a)).same


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Qualcomm Technologies, Inc.", "qualcomm"),
        ("Qualcomm", "qualcomm"),
        ("Apple Inc.", "apple"),
        ("Anduril Industries", "anduril"),
        ("Wayve Technologies Ltd", "wayve"),
        ("Bosch Group", "bosch"),
        ("Helm.ai", "helmai"),
        ("Helm AI", "helmai"),
        ("Proxify AB", "proxify"),
        ("The Walt Disney Company", "waltdisney"),
        ("Chalmers University of Technology", "chalmersuniversityoftechnology"),
        ("Microsoft Research", "microsoftresearch"),
        ("ETH Zürich", "ethzurich"),
        ("Inc.", "inc"),
        ("  ", None),
        (None, None),
    ],
)
def test_company_key(name: str | None, key: str | None) -> None:
    assert company_key(name) == key


def test_a_posting_without_a_company_is_never_merged() -> None:
    anonymous = replace(APPLE_CUPERTINO, company=None)
    assert not same_job(identity(anonymous), identity(replace(anonymous, id="x"))).same
    index = JobIndex()
    index.add(anonymous, "apple:200616768-3337")
    assert index.find(replace(anonymous, id="200616768-0836")) is None


def test_the_index_finds_the_earliest_job_of_the_same_role() -> None:
    index = JobIndex()
    for posting in fixture_postings()["cvpr-2024"]:
        index.add(posting, f"cvpr-2024:{posting.id}")
    figma = real("figma", "AI Research Scientist")
    found = index.find(figma)
    card = real("cvpr-2024", "AI Research Scientist")
    assert found is not None and found.job == f"cvpr-2024:{card.id}"
    assert found.reason.startswith("shared ATS id 5141321004")
    # A second, later listing of the same role joins the job of the first one added.
    index.add(figma, "figma:5141321004")
    again = index.find(replace(figma, source="figma-eu"))
    assert again is not None and again.job == f"cvpr-2024:{card.id}"
    assert index.find(real("figma", "Research Engineer, Generative AI")) is None


def test_jobs_are_grouped_for_search_led_by_what_was_found() -> None:
    card = real("cvpr-2024", "AI Research Scientist")
    board = real("figma", "AI Research Scientist")
    other = real("figma", "Research Engineer, Generative AI")
    job_of = {(p.source, p.id): "figma:5141321004" for p in (card, board)}
    jobs = group_jobs([card, other, board], [board, other, card], job_of)
    assert [(j.key, j.lead, j.others) for j in jobs] == [
        ("figma:5141321004", card, (board,)),
        (f"figma:{other.id}", other, ()),
    ]
    assert jobs[0].also_on == ("figma",)
    assert jobs[0].locations == ("San Francisco, CA", "New York, NY")


def test_merged_locations_keep_the_first_spelling_of_each() -> None:
    postings = [
        replace(APPLE_CUPERTINO, locations=("Cupertino, California", " seattle,  WA")),
        replace(APPLE_SEATTLE, locations=("Seattle, WA", "Austin, TX", "")),
    ]
    assert merged_locations(postings) == ("Cupertino, California", "seattle, WA", "Austin, TX")
