from __future__ import annotations

import contextlib
import json
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
from bot.sources.ashby import api_url, collect, parse_board
from bot.sources.base import SourceSpec

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "ashby"
NOTION_API = "https://api.ashbyhq.com/posting-api/job-board/notion?includeCompensation=true"
AI_ENGINEER = "0b5e2a51-7c3d-4e9a-8f10-2d6b4c8a9e13"
RETRIEVAL = "6f1c9d02-4b8e-41a7-b3d5-9e0a7c2f8b64"
SUCCESS = "a93e7b14-2d5f-4c06-8e71-5b2c9d0f3a27"
UNLISTED = "ee2f9a70-1b3c-4d5e-8f60-7a8b9c0d1e2f"
SALARY_FIELDS = ("salary_min", "salary_max", "salary_currency", "salary_period")


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(name: str, company: str | None = "Notion") -> dict[str, Posting]:
    return {p.id: p for p in parse_board(fixture(name), "notion", company)}


def job(**fields: Any) -> dict[str, Any]:
    return {"id": "j1", "title": "Engineer", **fields}


def board(*jobs: dict[str, Any]) -> bytes:
    return json.dumps({"apiVersion": "1", "jobs": list(jobs)}).encode()


def salary_component(**fields: Any) -> dict[str, Any]:
    return {"compensationType": "Salary", "interval": "1 YEAR", "currencyCode": "USD", **fields}


# --- parse_board -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["job-board.json", "job-board-nocomp.json"])
def test_ids_skip_unlisted_jobs(name: str) -> None:
    assert list(parse(name)) == [AI_ENGINEER, RETRIEVAL, SUCCESS]
    assert UNLISTED.encode() in fixture(name)


def test_all_fields_of_a_hybrid_job_with_two_locations() -> None:
    posting = parse("job-board.json")[AI_ENGINEER]
    assert posting.to_json() == {
        "source": "notion",
        "id": AI_ENGINEER,
        "title": "Software Engineer, AI",
        "company": "Notion",
        "locations": ["San Francisco, California", "New York, New York"],
        "remote": False,
        "team": "Notion AI",
        "employment_type": "Full-time",
        "posted_at": "2024-05-16",
        "salary_min": 180000,
        "salary_max": 320000,
        "salary_currency": "USD",
        "salary_period": "year",
        "url": f"https://jobs.ashbyhq.com/notion/{AI_ENGINEER}",
        "apply_url": f"https://jobs.ashbyhq.com/notion/{AI_ENGINEER}/application",
        "description": (
            "Notion AI brings large language models into the tool millions of people use to "
            "think and write. You will build the retrieval, prompting & evaluation systems "
            "behind it.\n\n"
            "• 4+ years of product engineering experience\n"
            "• Experience shipping LLM-powered features"
        ),
    }


@pytest.mark.parametrize(
    ("job_id", "remote", "salary"),
    [
        (AI_ENGINEER, False, (180000, 320000, "USD", "year")),  # Hybrid
        (RETRIEVAL, False, (200000, 340000, "USD", "year")),  # OnSite
        (SUCCESS, True, (None, None, None, None)),  # Remote, no compensation
    ],
)
def test_remote_and_pay_per_job(
    job_id: str, remote: bool, salary: tuple[int | None, int | None, str | None, str | None]
) -> None:
    posting = parse("job-board.json")[job_id]
    assert posting.remote is remote
    assert tuple(getattr(posting, name) for name in SALARY_FIELDS) == salary


def test_without_compensation_only_the_salary_is_missing() -> None:
    with_pay, without = parse("job-board.json"), parse("job-board-nocomp.json")
    assert list(with_pay) == list(without)
    for job_id, posting in without.items():
        assert all(getattr(posting, name) is None for name in SALARY_FIELDS)
        expected = with_pay[job_id].to_json() | dict.fromkeys(SALARY_FIELDS)
        assert posting.to_json() == expected


@pytest.mark.parametrize(
    ("fields", "company", "expected"),
    [
        pytest.param({}, None, {}, id="minimal"),
        pytest.param({"jobUrl": "https://jobs.ashbyhq.com/notion/j1"}, None,
                     {"company": "notion", "url": "https://jobs.ashbyhq.com/notion/j1"},
                     id="company-from-job-url"),
        pytest.param({"jobUrl": "https://jobs.ashbyhq.com/notion/j1"}, "Notion Labs",
                     {"company": "Notion Labs", "url": "https://jobs.ashbyhq.com/notion/j1"},
                     id="configured-company-wins"),
        pytest.param({"isListed": True}, None, {}, id="listed"),
        pytest.param({"department": "Engineering"}, None, {"team": "Engineering"},
                     id="team-falls-back-to-department"),
        pytest.param({"location": "Berlin", "secondaryLocations": [
                        {"location": "Paris"}, {"location": "Berlin"}, "x", {"location": ""}]},
                     None, {"locations": ("Berlin", "Paris")}, id="secondary-locations"),
        pytest.param({"isRemote": True}, None, {"remote": True}, id="is-remote"),
        pytest.param({"workplaceType": "Remote"}, None, {"remote": True}, id="workplace-remote"),
        pytest.param({"isRemote": False, "workplaceType": "Remote"}, None, {"remote": True},
                     id="either-says-remote"),
        pytest.param({"workplaceType": "OnSite"}, None, {"remote": False}, id="on-site"),
        pytest.param({"isRemote": "yes"}, None, {}, id="remote-not-a-boolean"),
        pytest.param({"employmentType": "PartTime"}, None, {"employment_type": "Part-time"},
                     id="part-time"),
        pytest.param({"employmentType": "Intern"}, None, {"employment_type": "Internship"},
                     id="intern"),
        pytest.param({"employmentType": "Seasonal"}, None, {"employment_type": "Seasonal"},
                     id="unknown-employment-type-kept"),
        pytest.param({"publishedAt": "2024-05-16T23:30:00-04:00"}, None,
                     {"posted_at": "2024-05-17"}, id="posted-utc-date"),
        pytest.param({"publishedAt": 10**400, "location": "Z\udfff"}, None,
                     {"locations": ("Z?",)}, id="huge-date-and-lone-surrogate"),
        pytest.param({"descriptionPlain": "Plain  only"}, None, {"description": "Plain only"},
                     id="plain-description"),
        pytest.param({"descriptionHtml": "<p>R&amp;amp;D</p>", "descriptionPlain": "x"}, None,
                     {"description": "R&amp;D"}, id="html-preferred-entities-once"),
        pytest.param({"compensation": {"compensationTiers": [
                        {"components": [salary_component(minValue=100, maxValue=200)]},
                        {"components": [salary_component(minValue=150, maxValue=250),
                                        salary_component(currencyCode="EUR", minValue=1,
                                                         maxValue=999)]}]}},
                     None, {"salary_min": 100, "salary_max": 250, "salary_currency": "USD",
                            "salary_period": "year"}, id="span-of-tiers"),
        pytest.param({"compensation": {
                        "summaryComponents": [{"compensationType": "EquityPercentage",
                                               "minValue": 1, "maxValue": 2}],
                        "compensationTiers": [{"components": [
                            salary_component(interval="1 HOUR", minValue=40, maxValue=55.5)]}]}},
                     None, {"salary_min": 40, "salary_max": 55.5, "salary_currency": "USD",
                            "salary_period": "hour"}, id="tiers-when-summary-has-no-salary"),
        pytest.param({"compensation": {"summaryComponents": [
                        salary_component(interval="1 MONTH", currencyCode="gbp", minValue=5000)]}},
                     None, {"salary_min": 5000, "salary_currency": "GBP",
                            "salary_period": "month"}, id="monthly-min-only"),
        pytest.param({"compensation": {"summaryComponents": [
                        salary_component(interval="NONE", minValue=1, maxValue=2)]}},
                     None, {"salary_min": 1, "salary_max": 2, "salary_currency": "USD"},
                     id="no-interval"),
        pytest.param({"compensation": {"summaryComponents": [
                        salary_component(currencyCode=None, minValue=1, maxValue=2)]}},
                     None, {}, id="no-currency"),
        pytest.param({"compensation": "$100K"}, None, {}, id="compensation-not-an-object"),
    ],
)  # fmt: skip
def test_field_mapping(
    fields: dict[str, Any], company: str | None, expected: dict[str, Any]
) -> None:
    (result,) = parse_board(board(job(**fields)), "src", company)
    defaults = Posting(source="src", id="j1", title="Engineer").to_json()
    assert result.to_json() == {**defaults, **{k: list(v) if isinstance(v, tuple) else v
                                               for k, v in expected.items()}}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "invalid JSON at line 1, column 1"),
        (b'{"jobs": [\n  {"id": 1,}\n]}', "invalid JSON at line 2"),
        (b"\xff\xfe\x00garbage", "invalid JSON"),
        (b"{" * 100_000, "invalid JSON"),
        (b"[]", "expected a JSON object with 'jobs'"),
        (b'{"jobs": {}}', "expected a JSON object with 'jobs'"),
        (b'{"apiVersion": "1"}', "expected a JSON object with 'jobs'"),
        (b'{"jobs": [1]}', "job #1 is not an object"),
        (b'{"jobs": [{"title": "x"}]}', "job #1 has no id"),
        (b'{"jobs": [{"id": "a", "title": null}]}', "job a has no title"),
    ],
)
def test_malformed_documents(body: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=f"^ashby: {message}"):
        parse_board(body, "src", None)


def test_unlisted_jobs_are_skipped_before_validation() -> None:
    assert parse_board(board({"isListed": False}), "src", None) == []


# --- api_url and collect ---------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://jobs.ashbyhq.com/notion", NOTION_API),
        ("https://jobs.ashbyhq.com/notion/", NOTION_API),
        ("http://jobs.ashbyhq.com/notion?departmentId=x", NOTION_API),
        (f"https://jobs.ashbyhq.com/notion/{AI_ENGINEER}", NOTION_API),
        (f"https://jobs.ashbyhq.com/notion/{AI_ENGINEER}/application", NOTION_API),
        ("https://api.ashbyhq.com/posting-api/job-board/notion", NOTION_API),
        ("https://api.ashbyhq.com/posting-api/job-board/notion?includeCompensation=false",
         NOTION_API),
        ("https://api.ashbyhq.com/posting-api/job-board/notion?x=1",
         "https://api.ashbyhq.com/posting-api/job-board/notion?x=1&includeCompensation=true"),
        (NOTION_API, NOTION_API),
        ("https://jobs.ashbyhq.com/", "https://jobs.ashbyhq.com/"),
        ("https://api.ashbyhq.com/other/notion", "https://api.ashbyhq.com/other/notion"),
        ("file:///srv/ashby/job-board.json", "file:///srv/ashby/job-board.json"),
        ("http://localhost:8123/ashby.json", "http://localhost:8123/ashby.json"),
        ("http://[::1", "http://[::1"),
    ],
)  # fmt: skip
def test_api_url(url: str, expected: str) -> None:
    assert api_url(url) == expected


async def test_collect_maps_the_board_page_and_names_the_board() -> None:
    fetcher = FakeFetcher({NOTION_API: board(job(), job(id="j2"))})
    spec = SourceSpec(name="notion", type="ashby", url="https://jobs.ashbyhq.com/notion")
    collected = await collect(spec, fetcher)
    assert fetcher.calls == [NOTION_API]
    assert collected.complete
    assert [(p.id, p.company) for p in collected.postings] == [("j1", "notion"), ("j2", "notion")]


@pytest.mark.parametrize(
    ("company", "expected"), [(None, "notion"), ("Notion Labs, Inc.", "Notion Labs, Inc.")]
)
async def test_collect_reads_a_fixture_file_with_the_real_fetcher(
    company: str | None, expected: str
) -> None:
    url = (FIXTURES / "job-board.json").as_uri()
    async with httpx.AsyncClient() as client:
        spec = SourceSpec(name="notion", type="ashby", url=url, company=company)
        collected = await collect(spec, HttpFetcher(client))
    assert [p.id for p in collected.postings] == [AI_ENGINEER, RETRIEVAL, SUCCESS]
    assert {p.company for p in collected.postings} == {expected}


# --- robustness -----------------------------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=()), max_size=30)  # lone surrogates included

_JSON = json_values(
    ["id", "title", "department", "team", "employmentType", "location",
     "secondaryLocations", "isRemote", "workplaceType", "publishedAt", "jobUrl",
     "applyUrl", "descriptionHtml", "descriptionPlain", "isListed", "compensation",
     "summaryComponents", "compensationTiers", "components", "compensationType",
     "interval", "currencyCode", "minValue", "maxValue"],
    text=_TEXT,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.binary())
def test_parse_board_on_arbitrary_bytes(body: bytes) -> None:
    with contextlib.suppress(SourceError):
        parse_board(body, "src", None)


@settings(max_examples=200, deadline=None)
@given(st.lists(_JSON, max_size=4))
def test_parse_board_on_arbitrary_jobs(jobs: list[Any]) -> None:
    try:
        postings = parse_board(json.dumps({"jobs": jobs}).encode(), "src", None)
    except SourceError:
        return
    listed = [j for j in jobs if not (isinstance(j, dict) and j.get("isListed") is False)]
    assert len(postings) == len(listed)
