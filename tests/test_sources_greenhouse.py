# ruff: noqa: RUF001  (fixture text uses typographic dashes and quotes)
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeFetcher, json_values
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import SourceError
from bot.models import Posting
from bot.sources.base import SourceSpec
from bot.sources.greenhouse import api_url, collect, parse_board

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "greenhouse"
FIGMA_API = "https://boards-api.greenhouse.io/v1/boards/figma/jobs?content=true"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(name: str) -> dict[str, Posting]:
    return {p.id: p for p in parse_board(fixture(name), "figma", None, "figma")}


def board(*jobs: dict[str, Any]) -> bytes:
    return json.dumps({"jobs": list(jobs), "meta": {"total": len(jobs)}}).encode()


# --- parse_board ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ids"),
    [
        ("board-v1.json", ["5141321004", "5098877004", "5120045004"]),
        ("board-v2.json", ["5162290004", "5141321004", "5120045004"]),
        ("job-5141321004.json", ["5141321004"]),
    ],
)
def test_ids(name: str, ids: list[str]) -> None:
    assert list(parse(name)) == ids


def test_all_fields_of_a_board_posting() -> None:
    posting = parse("board-v1.json")["5141321004"]
    assert posting.to_json() == {
        "source": "figma",
        "id": "5141321004",
        "title": "AI Research Scientist",
        "company": "Figma",
        "locations": ["San Francisco, CA", "New York, NY"],
        "remote": None,
        "team": "Machine Learning",
        "employment_type": None,
        "posted_at": "2024-05-09",
        "salary_min": None,  # pay lives only in the text unless pay_transparency=true
        "salary_max": None,
        "salary_currency": None,
        "salary_period": None,
        "url": "https://boards.greenhouse.io/figma/jobs/5141321004",
        "apply_url": "https://boards.greenhouse.io/figma/jobs/5141321004",
        "description": posting.description,
    }


def test_edited_posting_differs_only_where_the_board_changed() -> None:
    old, new = parse("board-v1.json"), parse("board-v2.json")
    assert old["5141321004"] == new["5141321004"]
    before, after = old["5120045004"], new["5120045004"]
    assert before.locations == ("San Francisco, CA", "New York, NY")
    assert after.locations == ("San Francisco, CA", "New York, NY", "United States (Remote)")
    assert "3+ years of experience" in (before.description or "")
    assert "4+ years of experience" in (after.description or "")
    assert (after.description or "").endswith("remote candidates in the United States.")
    assert after.posted_at == before.posted_at == "2024-05-14"  # first_published, not updated_at
    changed = {
        field for field, value in before.to_json().items() if after.to_json()[field] != value
    }
    assert changed == {"locations", "description"}


def test_content_is_unescaped_exactly_once() -> None:
    postings = list(parse("board-v1.json").values()) + list(parse("board-v2.json").values())
    for posting in postings:
        assert posting.description
        for leftover in ("&lt;", "&gt;", "<p>", "</li>", "&amp;", "&mdash;", "&#x27;"):
            assert leftover not in posting.description
    figma = parse("board-v1.json")["5141321004"].description or ""
    assert figma.startswith("Figma is growing our team of passionate people")
    assert "\n\nWhat you’ll do at Figma:\n\n• Driving fundamental and applied research" in figma
    assert "We'd love to hear from you if you have:" in figma
    assert "$168,000—$294,000" in figma
    assert figma.endswith("This range is for the San Francisco & New York hubs.")
    assert "retrieval & ranking models" in (parse("board-v1.json")["5120045004"].description or "")


def test_job_detail_with_pay() -> None:
    posting = parse("job-5141321004.json")["5141321004"]
    assert (posting.salary_min, posting.salary_max) == (168000, 294000)
    assert (posting.salary_currency, posting.salary_period) == ("USD", "year")
    assert posting.to_json()["salary_min"] == 168000
    assert posting.title == "AI Research Scientist"
    assert posting.description == parse("board-v1.json")["5141321004"].description


def job(**fields: Any) -> dict[str, Any]:
    return {"id": 1, "title": "Engineer", **fields}


@pytest.mark.parametrize(
    ("fields", "company", "board_token", "expected"),
    [
        pytest.param({}, None, None, {}, id="minimal"),
        pytest.param({"company_name": "Acme"}, "Conf", "acme", {"company": "Acme"},
                     id="company-from-data"),
        pytest.param({}, "Acme Inc.", "acme", {"company": "Acme Inc."}, id="company-configured"),
        pytest.param({}, None, "acme", {"company": "acme"}, id="company-board-token"),
        pytest.param({"location": {"name": " Berlin ;; Remote; "}}, None, None,
                     {"locations": ("Berlin", "Remote")}, id="locations-split"),
        pytest.param({"departments": [{"name": ""}, {"name": "Research"}, {"name": "X"}]},
                     None, None, {"team": "Research"}, id="first-named-department"),
        pytest.param({"metadata": [{"name": "Level", "value": "L5"},
                                   {"name": "Employment Type", "value": "Full-time"}]},
                     None, None, {"employment_type": "Full-time"}, id="employment-type"),
        pytest.param({"metadata": [{"name": "employment type", "value": ["Full-time", "Intern"]}]},
                     None, None, {"employment_type": "Full-time, Intern"}, id="employment-list"),
        pytest.param({"first_published": None, "updated_at": "2024-06-01T23:30:00-04:00"},
                     None, None, {"posted_at": "2024-06-02"}, id="posted-from-updated-utc"),
        pytest.param({"pay_input_ranges": [
                        {"min_cents": 10000000, "max_cents": 15000000, "currency_type": "usd"},
                        {"min_cents": 9000000, "max_cents": 12000000, "currency_type": "USD"},
                        {"min_cents": 1, "max_cents": 99999999999, "currency_type": "EUR"}]},
                     None, None,
                     {"salary_min": 90000, "salary_max": 150000, "salary_currency": "USD",
                      "salary_period": "year"}, id="pay-span-of-first-currency"),
        pytest.param({"pay_input_ranges": [{"min_cents": None, "currency_type": "USD"}]},
                     None, None, {}, id="pay-without-amounts"),
        pytest.param({"content": "&lt;p&gt;Hi &amp;amp; bye&lt;/p&gt;", "title": "  A  B "},
                     None, None, {"description": "Hi & bye", "title": "A B"}, id="content"),
        pytest.param({"id": "abc"}, None, None, {"id": "abc"}, id="string-id"),
    ],
)  # fmt: skip
def test_field_mapping(
    fields: dict[str, Any], company: str | None, board_token: str | None, expected: dict[str, Any]
) -> None:
    (posting,) = parse_board(board(job(**fields)), "src", company, board_token)
    defaults = Posting(source="src", id="1", title="Engineer").to_json()
    assert posting.to_json() == {**defaults, **{k: list(v) if isinstance(v, tuple) else v
                                                for k, v in expected.items()}}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "invalid JSON at line 1, column 1"),
        (b'{"jobs": [\n  {"id": 1,}\n]}', "invalid JSON at line 2"),
        (b"\xff\xfe\x00garbage", "invalid JSON"),
        (b"[" * 100_000, "invalid JSON"),
        (b"[]", "expected a JSON object with 'jobs'"),
        (b'{"jobs": {}}', "expected a JSON object with 'jobs'"),
        (b'{"error": "not found"}', "expected a JSON object with 'jobs'"),
        (b'{"jobs": [1]}', "job #1 is not an object"),
        (b'{"jobs": [{"title": "x"}]}', "job #1 has no id"),
        (b'{"jobs": [{"id": true, "title": "x"}]}', "job #1 has no id"),
        (b'{"jobs": [{"id": 7}]}', "job 7 has no title"),
    ],
)
def test_malformed_documents(body: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=f"^greenhouse: {message}"):
        parse_board(body, "src", None, None)


# --- api_url and collect ---------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://boards.greenhouse.io/figma", FIGMA_API),
        ("https://boards.greenhouse.io/figma/", FIGMA_API),
        ("http://job-boards.greenhouse.io/figma?gh_src=abc", FIGMA_API),
        ("https://boards.greenhouse.io/embed/job_board?for=figma&b=https://x", FIGMA_API),
        ("https://job-boards.eu.greenhouse.io/figma",
         "https://boards-api.eu.greenhouse.io/v1/boards/figma/jobs?content=true"),
        ("https://boards.greenhouse.io/figma/jobs/5141321004",
         "https://boards-api.greenhouse.io/v1/boards/figma/jobs/5141321004?pay_transparency=true"),
        ("https://boards-api.greenhouse.io/v1/boards/figma/jobs", FIGMA_API),
        ("https://boards-api.greenhouse.io/v1/boards/figma/jobs?content=false", FIGMA_API),
        ("https://boards-api.eu.greenhouse.io/v1/boards/figma/jobs?x=1",
         "https://boards-api.eu.greenhouse.io/v1/boards/figma/jobs?x=1&content=true"),
        (FIGMA_API, FIGMA_API),
        ("https://boards-api.greenhouse.io/v1/boards/figma/jobs/5141321004?pay_transparency=true",
         "https://boards-api.greenhouse.io/v1/boards/figma/jobs/5141321004?pay_transparency=true"),
        ("file:///srv/fixtures/greenhouse/board-v1.json",
         "file:///srv/fixtures/greenhouse/board-v1.json"),
        ("http://127.0.0.1:8123/greenhouse/board.json", "http://127.0.0.1:8123/greenhouse/board.json"),
        ("https://boards.greenhouse.io/embed/job_board", "https://boards.greenhouse.io/embed/job_board"),
        ("http://[::1", "http://[::1"),
    ],
)  # fmt: skip
def test_api_url(url: str, expected: str) -> None:
    assert api_url(url) == expected


async def test_collect_fetches_the_api_and_names_the_board() -> None:
    body = board(job(), job(id=2, company_name="Figma"))
    fetcher = FakeFetcher({FIGMA_API: body})
    spec = SourceSpec(name="figma", type="greenhouse", url="https://boards.greenhouse.io/figma")
    postings = (await collect(spec, fetcher)).postings
    assert fetcher.calls == [FIGMA_API]
    assert [(p.source, p.id, p.company) for p in postings] == [
        ("figma", "1", "figma"),
        ("figma", "2", "Figma"),
    ]


async def test_collect_reads_a_file_url_as_given() -> None:
    url = (FIXTURES / "board-v2.json").as_uri()
    fetcher = FakeFetcher({url: fixture("board-v2.json")})
    spec = SourceSpec(name="gh", type="greenhouse", url=url, company="Figma Inc.")
    postings = (await collect(spec, fetcher)).postings
    assert [p.id for p in postings] == ["5162290004", "5141321004", "5120045004"]
    assert {p.company for p in postings} == {"Figma"}  # the data wins over the configuration


# --- robustness -----------------------------------------------------------------

_JSON = json_values(
    ["id", "title", "company_name", "location", "name", "departments", "metadata",
     "value", "first_published", "updated_at", "content", "absolute_url",
     "pay_input_ranges", "min_cents", "max_cents", "currency_type", "jobs"],
    text=st.text(max_size=30),
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.binary())
def test_parse_board_on_arbitrary_bytes(body: bytes) -> None:
    with contextlib.suppress(SourceError):
        parse_board(body, "src", None, None)


@settings(max_examples=200, deadline=None)
@given(st.lists(_JSON, max_size=4))
def test_parse_board_on_arbitrary_jobs(jobs: list[Any]) -> None:
    try:
        postings = parse_board(json.dumps({"jobs": jobs}).encode(), "src", None, None)
    except SourceError:
        return
    assert len(postings) == len(jobs)
