"""Postings parsed from ../shared/fixtures by the sources' pure parsers, by ``SOURCE:ID``."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from bot.models import Posting
from bot.sources import apple, ashby, cvpr, greenhouse, jsonld, lever, smartrecruiters

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


def _read(path: str) -> bytes:
    return (FIXTURES / path).read_bytes()


@cache
def fixture_postings() -> dict[str, Posting]:
    apple_url, cvpr_url = "https://jobs.apple.com/", "https://cvpr.thecvf.com/careers/"
    found = [
        *greenhouse.parse_board(_read("greenhouse/job-5141321004.json"), "figma", None, "figma"),
        *greenhouse.parse_board(_read("greenhouse/board-v2.json"), "figma-board", None, "figma"),
        *lever.parse_postings(_read("lever/postings-v1.json"), "zoox", "Zoox"),
        *ashby.parse_board(_read("ashby/job-board.json"), "notion", "Notion"),
        apple.parse_detail(_read("apple/details-200526165.html"), apple_url, "apple"),
        apple.parse_detail(_read("apple/details-200550562.html"), apple_url, "apple"),
        *jsonld.parse_page(_read("jsonld/synthesia-job.html"), "https://s.io/", "synthesia", None),
        *jsonld.parse_page(
            _read("jsonld/anduril-two-postings.html"), "https://a.com/", "anduril", None
        ),
        *smartrecruiters.parse_postings(
            _read("smartrecruiters/postings-offset0.json"), "bosch", None
        )[0],
        *cvpr.parse_page(_read("cvpr/page1.html"), cvpr_url, "cvpr", None)[0],
    ]
    return {posting.ref: posting for posting in found}
