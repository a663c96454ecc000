# ruff: noqa: RUF001  (fixture text uses typographic dashes)
from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes import FakeFetcher, json_values
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import SourceError
from bot.fetch import HttpFetcher
from bot.models import Posting
from bot.sources.base import Response, SourceSpec
from bot.sources.smartrecruiters import api_url, collect, detail_url, parse_postings

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "smartrecruiters"
BOSCH_API = "https://api.smartrecruiters.com/v1/companies/BoschGroup/postings"
RESEARCH = "744000012788456"
PHD = "744000012655102"
PERCEPTION = "744000012910377"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(name: str) -> tuple[dict[str, Posting], int | None]:
    postings, total = parse_postings(fixture(name), "bosch", None)
    return {p.id: p for p in postings}, total


def row(**fields: Any) -> dict[str, Any]:
    return {"id": "1", "name": "Engineer", **fields}


def page(*rows: dict[str, Any], total: int | None = None) -> bytes:
    return json.dumps({"content": list(rows), "totalFound": total}).encode()


# --- parse_postings --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ids", "total"),
    [
        ("postings-offset0.json", [RESEARCH, PHD], 3),
        ("postings-offset2.json", [PERCEPTION], 3),
        (f"posting-{RESEARCH}.json", [RESEARCH], None),
    ],
)
def test_ids_and_totals(name: str, ids: list[str], total: int | None) -> None:
    postings, found = parse(name)
    assert (list(postings), found) == (ids, total)


def test_all_fields_of_a_list_row() -> None:
    posting = parse("postings-offset0.json")[0][PHD]
    assert posting.to_json() == {
        "source": "bosch",
        "id": PHD,
        "title": "PhD Student – 3D Scene Understanding (f/m/div.)",
        "company": "Bosch Group",
        "locations": ["Hildesheim, NI, Germany"],
        "remote": False,
        "team": "Corporate Research",
        "employment_type": "Fixed-term",
        "posted_at": "2024-05-06",
        "salary_min": None,
        "salary_max": None,
        "salary_currency": None,
        "salary_period": None,
        "url": f"https://jobs.smartrecruiters.com/BoschGroup/{PHD}",
        "apply_url": None,
        "description": None,
    }


def test_the_detail_adds_links_and_the_job_ad() -> None:
    listed = parse("postings-offset0.json")[0][RESEARCH]
    detailed = parse(f"posting-{RESEARCH}.json")[0][RESEARCH]
    slug = f"{RESEARCH}-research-engineer-computer-vision-for-automated-driving-f-m-div"
    assert detailed.url == f"https://jobs.smartrecruiters.com/BoschGroup/{slug}"
    assert detailed.apply_url == f"https://jobs.smartrecruiters.com/BoschGroup/{slug}?oga=true"
    assert detailed.description == (
        "Company Description\n\n"
        "At Bosch, we shape the future by inventing high-quality technologies and services "
        "that spark enthusiasm and enrich people’s lives.\n\n"
        "Job Description\n\n"
        "• You develop deep-learning based methods for 3D object detection & tracking from "
        "camera and radar data.\n"
        "• You transfer research results into product development together with our "
        "business units.\n\n"
        "Qualifications\n\n"
        "• Education: PhD in Computer Science, Electrical Engineering or comparable\n"
        "• Experience and Knowledge: publications at CVPR, ICCV, ECCV or NeurIPS; PyTorch\n\n"
        "Additional Information\n\n"
        "Remote working options, flexible working hours. Need further information about the "
        "job? Contact our recruiting team."
    )
    unchanged = ("title", "company", "locations", "remote", "team", "employment_type")
    assert [getattr(detailed, f) for f in unchanged] == [getattr(listed, f) for f in unchanged]
    assert detailed.posted_at == listed.posted_at == "2024-05-13"


def test_a_hybrid_posting_is_not_remote() -> None:
    posting = parse("postings-offset2.json")[0][PERCEPTION]
    assert (posting.remote, posting.locations) == (False, ("Sunnyvale, CA, United States",))
    assert posting.team == "Bosch Center for Artificial Intelligence"


@pytest.mark.parametrize(
    ("fields", "company", "expected"),
    [
        pytest.param({}, None, {}, id="minimal"),
        pytest.param({}, "Bosch", {"company": "Bosch"}, id="company-configured"),
        pytest.param({"company": {"name": "Visa", "identifier": "Visa"}}, "Conf",
                     {"company": "Visa", "url": "https://jobs.smartrecruiters.com/Visa/1"},
                     id="company-from-data"),
        pytest.param({"location": {"fullLocation": "Dubai, , United Arab Emirates"}}, None,
                     {"locations": ("Dubai, United Arab Emirates",)}, id="full-location-cleaned"),
        pytest.param({"location": {"city": "Berlin", "region": "", "country": "de"}}, None,
                     {"locations": ("Berlin, DE",)}, id="location-from-parts"),
        pytest.param({"location": {"fullLocation": " , ", "city": "Oslo"}}, None,
                     {"locations": ("Oslo",)}, id="empty-full-location"),
        pytest.param({"location": {"remote": True, "fullLocation": "Remote"}}, None,
                     {"remote": True, "locations": ("Remote",)}, id="remote"),
        pytest.param({"function": {"label": "Research"}}, None, {"team": "Research"},
                     id="team-from-function"),
        pytest.param({"department": {"label": "AI"}, "function": {"label": "Research"}}, None,
                     {"team": "AI"}, id="department-over-function"),
        pytest.param({"department": "AI"}, None, {}, id="department-not-an-object"),
        pytest.param({"typeOfEmployment": {"id": "permanent", "label": "Full-time"}}, None,
                     {"employment_type": "Full-time"}, id="employment-type"),
        pytest.param({"releasedDate": "2024-05-13T23:30:00.000-05:00"}, None,
                     {"posted_at": "2024-05-14"}, id="released-utc-date"),
        pytest.param({"id": "a/../b", "company": {"identifier": "X Y"}}, None,
                     {"id": "a/../b", "url": "https://jobs.smartrecruiters.com/X%20Y/a%2F..%2Fb"},
                     id="built-url-quoted"),
        pytest.param({"company": {"identifier": "\ud800"}, "releasedDate": 10**400}, None,
                     {"url": "https://jobs.smartrecruiters.com/%3F/1"},
                     id="lone-surrogate-and-huge-date"),
        pytest.param({"jobAd": {"sections": {
                        "jobDescription": {"title": "Job", "text": "<p>A &amp;amp; B</p>"},
                        "videos": {"urls": []},
                        "other": {"text": "<p>No title</p>"}}}}, None,
                     {"description": "Job\n\nA &amp; B\n\nNo title"}, id="sections"),
    ],
)  # fmt: skip
def test_field_mapping(
    fields: dict[str, Any], company: str | None, expected: dict[str, Any]
) -> None:
    (result,), _ = parse_postings(page(row(**fields)), "src", company)
    defaults = Posting(source="src", id="1", title="Engineer").to_json()
    assert result.to_json() == {**defaults, **{k: list(v) if isinstance(v, tuple) else v
                                               for k, v in expected.items()}}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "invalid JSON at line 1, column 1"),
        (b'{"content": [\n  {"id": 1,}\n]}', "invalid JSON at line 2"),
        (b"\xff\xfe\x00garbage", "invalid JSON"),
        (b"[" * 100_000, "invalid JSON"),
        (b"[]", "expected a JSON object with 'content'"),
        (b'{"content": {}}', "expected a JSON object with 'content'"),
        (b'{"message": "Company not found"}', "expected a JSON object with 'content'"),
        (b'{"content": [1]}', "job #1 is not an object"),
        (b'{"content": [{"name": "x"}]}', "job #1 has no id"),
        (b'{"content": [{"id": "7"}]}', "job 7 has no title"),
    ],
)
def test_malformed_documents(body: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=f"^smartrecruiters: {message}"):
        parse_postings(body, "src", None)


@pytest.mark.parametrize("total", ["3", True, None])
def test_a_malformed_total_is_unknown(total: Any) -> None:
    body = json.dumps({"content": [row()], "totalFound": total}).encode()
    assert parse_postings(body, "src", None)[1] is None


# --- URLs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://careers.smartrecruiters.com/BoschGroup", f"{BOSCH_API}?limit=100&offset=0"),
        ("https://jobs.smartrecruiters.com/BoschGroup/", f"{BOSCH_API}?limit=100&offset=0"),
        ("http://careers.smartrecruiters.com/BoschGroup?search=x",
         f"{BOSCH_API}?limit=100&offset=0"),
        (f"https://jobs.smartrecruiters.com/BoschGroup/{RESEARCH}-research-engineer",
         f"{BOSCH_API}/{RESEARCH}"),
        ("https://jobs.smartrecruiters.com/BoschGroup/about", f"{BOSCH_API}?limit=100&offset=0"),
        (BOSCH_API, f"{BOSCH_API}?limit=100"),
        (f"{BOSCH_API}?limit=20&offset=40", f"{BOSCH_API}?limit=20&offset=40"),
        (f"{BOSCH_API}?offset=0", f"{BOSCH_API}?offset=0&limit=100"),
        (f"{BOSCH_API}/{RESEARCH}", f"{BOSCH_API}/{RESEARCH}"),
        ("https://careers.smartrecruiters.com/", "https://careers.smartrecruiters.com/"),
        ("file:///srv/sr/postings-offset0.json", "file:///srv/sr/postings-offset0.json"),
        ("http://127.0.0.1:8123/sr/postings", "http://127.0.0.1:8123/sr/postings"),
        ("http://[::1", "http://[::1"),
    ],
)  # fmt: skip
def test_api_url(url: str, expected: str) -> None:
    assert api_url(url) == expected


@pytest.mark.parametrize(
    ("list_url", "posting_id", "expected"),
    [
        (f"{BOSCH_API}?limit=100&offset=0", RESEARCH, f"{BOSCH_API}/{RESEARCH}"),
        (f"{BOSCH_API}/?limit=100", RESEARCH, f"{BOSCH_API}/{RESEARCH}"),
        ("file:///srv/sr/postings-offset0.json", RESEARCH,
         f"file:///srv/sr/posting-{RESEARCH}.json"),
        ("http://127.0.0.1:8123/sr/postings-offset0.json?offset=2", "7",
         "http://127.0.0.1:8123/sr/posting-7.json"),
        (BOSCH_API, "../x?y", f"{BOSCH_API}/..%2Fx%3Fy"),
    ],
)  # fmt: skip
def test_detail_url(list_url: str, posting_id: str, expected: str) -> None:
    assert detail_url(list_url, posting_id) == expected


# --- collect ---------------------------------------------------------------------


def bosch(url: str = "https://careers.smartrecruiters.com/BoschGroup", **kw: Any) -> SourceSpec:
    return SourceSpec(name="bosch", type="smartrecruiters", url=url, **kw)


def list_url(offset: int) -> str:
    return f"{BOSCH_API}?limit=100&offset={offset}"


async def test_collect_pages_and_fetches_details() -> None:
    fetcher = FakeFetcher(
        {
            list_url(0): fixture("postings-offset0.json"),
            list_url(2): fixture("postings-offset2.json"),
            f"{BOSCH_API}/{RESEARCH}": fixture(f"posting-{RESEARCH}.json"),
            f"{BOSCH_API}/{PERCEPTION}": b"{not json",
        }
    )
    collected = await collect(bosch(), fetcher)
    assert fetcher.calls[:2] == [list_url(0), list_url(2)]
    assert sorted(fetcher.calls[2:]) == sorted(
        f"{BOSCH_API}/{i}" for i in (RESEARCH, PHD, PERCEPTION)
    )
    assert collected.complete
    postings = {p.id: p for p in collected.postings}
    assert list(postings) == [RESEARCH, PHD, PERCEPTION]
    assert postings[RESEARCH] == parse(f"posting-{RESEARCH}.json")[0][RESEARCH]
    # A missing (404) or broken detail keeps the list posting, with a built URL.
    assert postings[PHD] == parse("postings-offset0.json")[0][PHD]
    assert postings[PERCEPTION].url == f"https://jobs.smartrecruiters.com/BoschGroup/{PERCEPTION}"
    assert postings[PERCEPTION].description is None


async def test_a_detail_for_another_id_is_ignored() -> None:
    fetcher = FakeFetcher(
        {
            list_url(0): page(row(id="1"), total=1),
            f"{BOSCH_API}/1": json.dumps(row(id="2", jobAd={"sections": {
                "s": {"text": "x"}}})).encode(),
        }
    )  # fmt: skip
    (posting,) = (await collect(bosch(), fetcher)).postings
    assert (posting.id, posting.description) == ("1", None)


async def test_collect_stops_on_an_empty_page_and_on_repeated_ids() -> None:
    rows = [row(id=str(n)) for n in range(3)]
    fetcher = FakeFetcher({list_url(0): page(*rows[:2], total=9), list_url(2): page(total=9)})
    assert [p.id for p in (await collect(bosch(), fetcher)).postings] == ["0", "1"]
    assert fetcher.calls[:2] == [list_url(0), list_url(2)]
    ignoring = FakeFetcher({list_url(0): page(*rows, total=9), list_url(3): page(*rows, total=9)})
    collected = await collect(bosch(), ignoring)
    assert [p.id for p in collected.postings] == ["0", "1", "2"]
    assert collected.complete
    assert ignoring.calls[:2] == [list_url(0), list_url(3)]


async def test_collect_stops_at_max_pages_and_says_so() -> None:
    fetcher = FakeFetcher({list_url(n): page(row(id=str(n)), total=5) for n in range(5)})
    collected = await collect(bosch(max_pages=3), fetcher)
    assert [p.id for p in collected.postings] == ["0", "1", "2"]
    assert not collected.complete
    assert fetcher.calls[:3] == [list_url(0), list_url(1), list_url(2)]


async def test_a_configured_job_page_reads_one_posting_without_more_requests() -> None:
    detail = f"{BOSCH_API}/{RESEARCH}"
    fetcher = FakeFetcher({detail: fixture(f"posting-{RESEARCH}.json")})
    url = f"https://jobs.smartrecruiters.com/BoschGroup/{RESEARCH}-research-engineer"
    collected = await collect(bosch(url), fetcher)
    assert fetcher.calls == [detail]
    assert [p.description is not None for p in collected.postings] == [True]


class CountingFetcher(FakeFetcher):
    """Records how many requests were in flight at once."""

    def __init__(self, pages: Mapping[str, bytes]) -> None:
        super().__init__(pages)
        self.in_flight = 0
        self.most = 0

    async def get(self, url: str, *, headers: Mapping[str, str] | None = None) -> Response:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        await asyncio.sleep(0.001)
        try:
            return await super().get(url, headers=headers)
        finally:
            self.in_flight -= 1


async def test_detail_fetches_are_bounded() -> None:
    rows = [row(id=str(n)) for n in range(20)]
    fetcher = CountingFetcher({list_url(0): page(*rows, total=20)})
    collected = await collect(bosch(), fetcher)
    assert len(collected.postings) == 20
    assert len(fetcher.calls) == 21
    assert fetcher.most == 4


async def test_collect_offline_through_the_fixture_files() -> None:
    url = (FIXTURES / "postings-offset0.json").as_uri()
    async with httpx.AsyncClient() as client:
        collected = await collect(bosch(url), HttpFetcher(client))
    postings = {p.id: p for p in collected.postings}
    assert list(postings) == [RESEARCH, PHD, PERCEPTION]
    assert collected.complete
    assert postings[RESEARCH] == parse(f"posting-{RESEARCH}.json")[0][RESEARCH]
    assert postings[PHD] == parse("postings-offset0.json")[0][PHD]
    assert postings[PERCEPTION] == parse("postings-offset2.json")[0][PERCEPTION]


# --- robustness -----------------------------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=()), max_size=30)  # lone surrogates included

_JSON = json_values(
    ["id", "name", "company", "identifier", "releasedDate", "location", "city", "region",
     "country", "remote", "fullLocation", "typeOfEmployment", "department", "function",
     "label", "postingUrl", "applyUrl", "jobAd", "sections", "title", "text"],
    text=_TEXT,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.binary())
def test_parse_postings_on_arbitrary_bytes(body: bytes) -> None:
    with contextlib.suppress(SourceError):
        parse_postings(body, "src", None)


@settings(max_examples=200, deadline=None)
@given(st.lists(_JSON, max_size=4), _JSON)
def test_parse_postings_on_arbitrary_rows(rows: list[Any], total: Any) -> None:
    try:
        postings, _ = parse_postings(
            json.dumps({"content": rows, "totalFound": total}).encode(), "src", None
        )
    except SourceError:
        return
    assert len(postings) == len(rows)
