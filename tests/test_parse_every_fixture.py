"""`careerbot parse --type T file:…` prints correct JSON postings for every fixture."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.cli import main

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
HTML_CONFIG = """
[[sources]]
name = "lab"
type = "html"
url = "https://www.chalmers.se/en/departments/e2/research/computer-vision/positions/"
company = "Chalmers University of Technology"
[sources.selectors]
item = "ul.vacancies li.vacancy"
title = "h3 a"
url = "h3 a@href"
location = ".location"
posted = "time@datetime"
next_page = "a[rel=next]@href"
"""
TAG = re.compile(r"</?(p|div|br|li|ul|ol|span|a|strong|em|h\d)\b[^>]*>", re.IGNORECASE)
POSTING_KEYS = {
    "source", "id", "title", "company", "locations", "remote", "team", "employment_type",
    "posted_at", "salary_min", "salary_max", "salary_currency", "salary_period", "url",
    "apply_url", "description",
}  # fmt: skip

EXPECTED = [
    ("apple", "details-200526165.html", 1),
    ("apple", "details-200550562.html", 1),
    ("apple", "search-page1.html", 3),
    ("ashby", "job-board-nocomp.json", 3),
    ("ashby", "job-board.json", 3),
    ("cvpr", "page1-v2.html", 14),
    ("cvpr", "page1.html", 26),  # page 2 read through the board's own pagination
    ("cvpr", "page2.html", 12),
    ("greenhouse", "board-v1.json", 3),
    ("greenhouse", "board-v2.json", 3),
    ("greenhouse", "job-5141321004.json", 1),
    ("html", "lab-positions-page1.html", 3),
    ("html", "lab-positions-page2.html", 1),
    ("jsonld", "anduril-two-postings.html", 2),
    ("jsonld", "captions-remote-graph.html", 1),
    ("jsonld", "synthesia-job.html", 1),
    ("lever", "posting-2b9a0f5e-8c1d-4f7a-a3e6-5d0c7b1e9f42.json", 1),
    ("lever", "postings-v1.json", 3),
    ("lever", "postings-v2.json", 3),
    ("rss", "university-vacancies.atom", 2),
    ("rss", "wwr-programming-v1.rss", 3),
    ("rss", "wwr-programming-v2.rss", 3),
    ("smartrecruiters", "posting-744000012788456.json", 1),
    ("smartrecruiters", "postings-offset0.json", 3),
    ("workable", "v3-jobs-page1.json", 3),
    ("workable", "widget-account.json", 3),
    ("workday", "job-3058421.json", 1),
    ("workday", "jobs-offset0.json", 5),
]


def test_every_fixture_is_covered() -> None:
    covered = {(source_type, name) for source_type, name, _ in EXPECTED}
    stand_alone = {("smartrecruiters", "postings-offset2.json"), ("workday", "jobs-offset3.json"),
                   ("workable", "v3-jobs-page2.json")}  # fmt: skip
    on_disk = {(p.parent.name, p.name) for p in FIXTURES.glob("*/*.*")}
    assert on_disk - covered == stand_alone, "later pages are read through their first page"


@pytest.mark.parametrize(("source_type", "name", "count"), EXPECTED)
def test_parse_prints_postings(
    source_type: str, name: str, count: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["parse", "--type", source_type, (FIXTURES / source_type / name).as_uri()]
    if source_type == "html":
        (tmp_path / "html.toml").write_text(HTML_CONFIG)
        args += ["--config", str(tmp_path / "html.toml")]
    assert main(args) == 0
    postings = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(postings) == count
    assert len({p["id"] for p in postings}) == count
    for posting in postings:
        assert set(posting) == POSTING_KEYS
        assert posting["title"]
        assert posting["source"] == ("lab" if source_type == "html" else "cli")
        assert posting["url"] is None or posting["url"].startswith(("https://", "http://"))
        assert not TAG.search(posting["description"] or ""), "descriptions are plain text"
