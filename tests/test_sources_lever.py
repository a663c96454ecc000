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
from bot.sources.base import SourceSpec
from bot.sources.lever import api_url, collect, parse_postings

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "lever"
ZOOX_API = "https://api.lever.co/v0/postings/zoox?mode=json"
TEST_ENGINEER = "2b9a0f5e-8c1d-4f7a-a3e6-5d0c7b1e9f42"
PERCEPTION = "1f0a7d1e-6c3b-4a59-8f8e-0b6f9c2d7a41"
SIMULATION = "c4e18a90-27b5-4c8e-9d13-6a2f0e5b7d88"
PREDICTION = "7d2c5b31-90e4-4a6f-b8a2-1e3f4d5c6b70"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(name: str, company: str | None = "Zoox") -> dict[str, Posting]:
    return {p.id: p for p in parse_postings(fixture(name), "zoox", company)}


def posting(**fields: Any) -> dict[str, Any]:
    return {"id": "p1", "text": "Engineer", **fields}


def board(*postings: dict[str, Any]) -> bytes:
    return json.dumps(list(postings)).encode()


# --- parse_postings --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ids"),
    [
        ("postings-v1.json", [TEST_ENGINEER, PERCEPTION, SIMULATION]),
        ("postings-v2.json", [PREDICTION, TEST_ENGINEER, PERCEPTION]),
        (f"posting-{TEST_ENGINEER}.json", [TEST_ENGINEER]),
    ],
)
def test_ids(name: str, ids: list[str]) -> None:
    assert list(parse(name)) == ids


def test_all_fields_of_a_posting() -> None:
    posting = parse("postings-v1.json")[TEST_ENGINEER]
    assert posting.to_json() == {
        "source": "zoox",
        "id": TEST_ENGINEER,
        "title": "Autonomy System Test Engineer",
        "company": "Zoox",
        "locations": ["Foster City, CA"],
        "remote": False,  # hybrid
        "team": "System Design & Mission Assurance",
        "employment_type": "Full-time",
        "posted_at": "2026-05-04",  # createdAt 1777915330000 ms
        "salary_min": 143000,
        "salary_max": 177000,
        "salary_currency": "USD",
        "salary_period": "year",
        "url": f"https://jobs.lever.co/zoox/{TEST_ENGINEER}",
        "apply_url": f"https://jobs.lever.co/zoox/{TEST_ENGINEER}/apply",
        "description": posting.description,
    }


def test_the_single_posting_document_matches_the_board_row() -> None:
    assert parse(f"posting-{TEST_ENGINEER}.json") == {
        TEST_ENGINEER: parse("postings-v1.json")[TEST_ENGINEER]
    }


def test_description_is_composed_like_the_posting_page() -> None:
    description = parse("postings-v1.json")[PERCEPTION].description or ""
    assert description.startswith("At Zoox, you will collaborate with a team")
    assert (
        "In this role, you will...\n\n"
        "• Develop perception models that detect and track every agent around the vehicle\n"
        "• Own the offline evaluation of new models\n\n"
        "Qualifications\n\n"
        "• MS or PhD in Computer Science, Robotics or related field\n"
        "• Experience with PyTorch & C++\n\n"
        "Zoox is committed to providing reasonable accommodations"
    ) in description
    assert description.endswith("to apply for this position.")
    for leftover in ("&amp;", "<li>", "<div>", "&lt;"):
        assert leftover not in description


def test_remote_variants_and_missing_salary() -> None:
    postings = parse("postings-v1.json")
    assert [(p.remote, p.locations) for p in postings.values()] == [
        (False, ("Foster City, CA",)),  # hybrid
        (False, ("Foster City, CA", "San Diego, CA")),  # on-site, two locations
        (True, ("Remote - US",)),  # remote
    ]
    perception = postings[PERCEPTION]
    assert (perception.salary_min, perception.salary_currency, perception.salary_period) == (
        None,
        None,
        None,
    )


def test_v1_to_v2_new_removed_and_edited() -> None:
    old, new = parse("postings-v1.json"), parse("postings-v2.json")
    assert set(new) - set(old) == {PREDICTION}
    assert set(old) - set(new) == {SIMULATION}
    assert old[TEST_ENGINEER] == new[TEST_ENGINEER]
    before, after = old[PERCEPTION].to_json(), new[PERCEPTION].to_json()
    assert {field for field, value in before.items() if after[field] != value} == {"description"}
    assert "detect, classify and track every agent" in after["description"]
    assert new[PREDICTION].salary_min == 184000
    assert new[PREDICTION].team == "Prediction"


@pytest.mark.parametrize(
    ("fields", "company", "expected"),
    [
        pytest.param({}, None, {}, id="minimal"),
        pytest.param({}, "Zoox", {"company": "Zoox"}, id="company-configured"),
        pytest.param({"hostedUrl": "https://jobs.lever.co/zoox/p1"}, None,
                     {"company": "zoox", "url": "https://jobs.lever.co/zoox/p1"},
                     id="company-from-posting-url"),
        pytest.param({"hostedUrl": "https://jobs.lever.co/zoox/p1"}, "Zoox Inc.",
                     {"company": "Zoox Inc.", "url": "https://jobs.lever.co/zoox/p1"},
                     id="configured-company-wins"),
        pytest.param({"text": "  Staff\u00a0Engineer \n"}, None, {"title": "Staff Engineer"},
                     id="title-spaces"),
        pytest.param({"categories": {"location": "London",
                                     "allLocations": ["Paris", "London", ""]}},
                     None, {"locations": ("London", "Paris")}, id="locations-merged"),
        pytest.param({"categories": {"allLocations": "Paris"}}, None, {},
                     id="locations-not-a-list"),
        pytest.param({"categories": {"department": "Engineering"}}, None, {"team": "Engineering"},
                     id="team-falls-back-to-department"),
        pytest.param({"categories": {"team": "Perception", "department": "Engineering"}}, None,
                     {"team": "Perception"}, id="team-over-department"),
        pytest.param({"workplaceType": "remote"}, None, {"remote": True}, id="remote"),
        pytest.param({"workplaceType": "on-site"}, None, {"remote": False}, id="on-site"),
        pytest.param({"workplaceType": "hybrid"}, None, {"remote": False}, id="hybrid"),
        pytest.param({"workplaceType": "unspecified"}, None, {}, id="unspecified"),
        pytest.param({"createdAt": 1715039999000}, None, {"posted_at": "2024-05-06"},
                     id="epoch-ms-utc-date"),
        pytest.param({"createdAt": "soon"}, None, {}, id="bad-date"),
        pytest.param({"createdAt": 10**400}, None, {}, id="epoch-too-large"),
        pytest.param({"text": "A\ud800B"}, None, {"title": "A?B"}, id="lone-surrogate"),
        pytest.param({"salaryRange": {"currency": "gbp", "interval": "per-hour-wage",
                                      "min": 25, "max": 30.5}},
                     None, {"salary_min": 25, "salary_max": 30.5, "salary_currency": "GBP",
                            "salary_period": "hour"}, id="hourly"),
        pytest.param({"salaryRange": {"currency": "EUR", "interval": "per-month-salary",
                                      "min": 4000}},
                     None, {"salary_min": 4000, "salary_currency": "EUR",
                            "salary_period": "month"}, id="monthly-min-only"),
        pytest.param({"salaryRange": {"currency": "USD", "interval": "one-time",
                                      "min": 5000, "max": 5000}},
                     None, {"salary_min": 5000, "salary_max": 5000, "salary_currency": "USD"},
                     id="one-time-has-no-period"),
        pytest.param({"salaryRange": {"interval": "per-year-salary", "min": 1, "max": 2}}, None,
                     {}, id="salary-without-currency"),
        pytest.param({"salaryRange": {"currency": "USD", "min": -1, "max": True}}, None, {},
                     id="salary-bad-amounts"),
        pytest.param({"descriptionPlain": "Plain  text", "additionalPlain": "Bye"}, None,
                     {"description": "Plain text\n\nBye"}, id="plain-fallback"),
        pytest.param({"description": "<p>A &amp;amp; B</p>",
                      "lists": [{"text": "Perks", "content": "<li>Tea</li>"}, "junk", {}]},
                     None, {"description": "A &amp; B\n\nPerks\n\n• Tea"},
                     id="entities-decoded-once"),
        pytest.param({"id": 17}, None, {"id": "17"}, id="numeric-id"),
    ],
)  # fmt: skip
def test_field_mapping(
    fields: dict[str, Any], company: str | None, expected: dict[str, Any]
) -> None:
    (result,) = parse_postings(board(posting(**fields)), "src", company)
    defaults = Posting(source="src", id="p1", title="Engineer").to_json()
    assert result.to_json() == {**defaults, **{k: list(v) if isinstance(v, tuple) else v
                                               for k, v in expected.items()}}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "invalid JSON at line 1, column 1"),
        (b"[\n  {\"id\": 1,}\n]", "invalid JSON at line 2"),
        (b"\xff\xfe\x00garbage", "invalid JSON"),
        (b"[" * 100_000, "invalid JSON"),
        (b'{"ok":false,"error":"Document not found"}',
         "the API answered with an error: Document not found"),
        (b'{"ok":false}', "the API answered with an error: no reason given"),
        (b"{}", "expected a JSON array of postings"),
        (b'"postings"', "expected a JSON array of postings"),
        (b"[1]", "job #1 is not an object"),
        (b'[{"text": "x"}]', "job #1 has no id"),
        (b'[{"id": " ", "text": "x"}]', "job #1 has no id"),
        (b'[{"id": "a"}]', "job a has no title"),
    ],
)  # fmt: skip
def test_malformed_documents(body: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=f"^lever: {message}"):
        parse_postings(body, "src", None)


# --- api_url and collect ---------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://jobs.lever.co/zoox", ZOOX_API),
        ("https://jobs.lever.co/zoox/", ZOOX_API),
        ("http://jobs.lever.co/zoox?lever-source=x", ZOOX_API),
        ("https://jobs.lever.co/zoox?team=Perception&utm=1",
         "https://api.lever.co/v0/postings/zoox?team=Perception&mode=json"),
        ("https://jobs.eu.lever.co/zoox", "https://api.eu.lever.co/v0/postings/zoox?mode=json"),
        (f"https://jobs.lever.co/zoox/{TEST_ENGINEER}",
         f"https://api.lever.co/v0/postings/zoox/{TEST_ENGINEER}?mode=json"),
        (f"https://jobs.lever.co/zoox/{TEST_ENGINEER}/apply",
         f"https://api.lever.co/v0/postings/zoox/{TEST_ENGINEER}?mode=json"),
        ("https://api.lever.co/v0/postings/zoox", ZOOX_API),
        (ZOOX_API, ZOOX_API),
        ("https://api.lever.co/v0/postings/zoox?mode=html&limit=50",
         "https://api.lever.co/v0/postings/zoox?mode=json&limit=50"),
        ("https://api.eu.lever.co/v0/postings/zoox?skip=0",
         "https://api.eu.lever.co/v0/postings/zoox?skip=0&mode=json"),
        ("https://jobs.lever.co/", "https://jobs.lever.co/"),
        ("https://api.lever.co/v1/other", "https://api.lever.co/v1/other"),
        ("file:///srv/lever/postings-v1.json", "file:///srv/lever/postings-v1.json"),
        ("http://127.0.0.1:8123/lever.json", "http://127.0.0.1:8123/lever.json"),
        ("http://[::1", "http://[::1"),
    ],
)  # fmt: skip
def test_api_url(url: str, expected: str) -> None:
    assert api_url(url) == expected


async def test_collect_maps_the_board_page_and_names_the_site() -> None:
    fetcher = FakeFetcher({ZOOX_API: fixture("postings-v1.json")})
    spec = SourceSpec(name="zoox", type="lever", url="https://jobs.lever.co/zoox")
    collected = await collect(spec, fetcher)
    assert fetcher.calls == [ZOOX_API]
    assert collected.complete
    assert [(p.source, p.company) for p in collected.postings] == [("zoox", "zoox")] * 3


async def test_collect_pages_with_skip_when_the_url_sets_a_limit() -> None:
    url = "https://api.lever.co/v0/postings/zoox?mode=json&limit=2"
    rows = [posting(id=f"p{n}") for n in range(5)]
    pages = {url: rows[0:2], f"{url}&skip=2": rows[2:4], f"{url}&skip=4": rows[4:]}
    fetcher = FakeFetcher({page: board(*page_rows) for page, page_rows in pages.items()})
    collected = await collect(SourceSpec(name="z", type="lever", url=url), fetcher)
    assert fetcher.calls == list(pages)
    assert [p.id for p in collected.postings] == ["p0", "p1", "p2", "p3", "p4"]
    assert collected.complete


async def test_collect_stops_at_max_pages_and_says_so() -> None:
    url = "https://api.lever.co/v0/postings/zoox?limit=1&skip=3"
    pages = {
        f"https://api.lever.co/v0/postings/zoox?limit=1&skip={n}&mode=json": board(
            posting(id=f"p{n}")
        )
        for n in range(3, 9)
    }
    spec = SourceSpec(name="z", type="lever", url=url, max_pages=2)
    fetcher = FakeFetcher(pages)
    collected = await collect(spec, fetcher)
    assert [p.id for p in collected.postings] == ["p3", "p4"]
    assert not collected.complete
    assert len(fetcher.calls) == 2


async def test_collect_pages_offline_through_numbered_files(tmp_path: Path) -> None:
    rows = json.loads(fixture("postings-v2.json"))
    (tmp_path / "zoox-skip0.json").write_text(json.dumps(rows[:2]))
    (tmp_path / "zoox-skip2.json").write_text(json.dumps(rows[2:]))
    url = (tmp_path / "zoox-skip0.json").as_uri() + "?limit=2"
    async with httpx.AsyncClient() as client:
        spec = SourceSpec(name="zoox", type="lever", url=url, company="Zoox")
        collected = await collect(spec, HttpFetcher(client))
    assert [p.id for p in collected.postings] == [PREDICTION, TEST_ENGINEER, PERCEPTION]
    assert collected.complete


async def test_collect_reads_a_fixture_file_with_the_real_fetcher() -> None:
    url = (FIXTURES / "postings-v2.json").as_uri()
    async with httpx.AsyncClient() as client:
        spec = SourceSpec(name="zoox", type="lever", url=url)
        collected = await collect(spec, HttpFetcher(client))
    assert [p.id for p in collected.postings] == [PREDICTION, TEST_ENGINEER, PERCEPTION]
    assert {p.company for p in collected.postings} == {"zoox"}  # from the posting URLs


async def test_collect_stops_when_the_server_ignores_skip() -> None:
    url = "https://api.lever.co/v0/postings/zoox?mode=json&limit=3"
    fetcher = FakeFetcher({page: fixture("postings-v1.json") for page in (url, f"{url}&skip=3")})
    collected = await collect(SourceSpec(name="z", type="lever", url=url), fetcher)
    assert len(fetcher.calls) == 2
    assert len(collected.postings) == 3
    assert collected.complete


# --- robustness -----------------------------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=()), max_size=30)  # lone surrogates included

_JSON = json_values(
    ["id", "text", "categories", "location", "allLocations", "team", "department",
     "commitment", "workplaceType", "createdAt", "hostedUrl", "applyUrl", "description",
     "descriptionPlain", "lists", "content", "additional", "additionalPlain",
     "salaryRange", "currency", "interval", "min", "max"],
    text=_TEXT,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.binary())
def test_parse_postings_on_arbitrary_bytes(body: bytes) -> None:
    with contextlib.suppress(SourceError):
        parse_postings(body, "src", None)


@settings(max_examples=200, deadline=None)
@given(st.lists(_JSON, max_size=4))
def test_parse_postings_on_arbitrary_rows(rows: list[Any]) -> None:
    try:
        postings = parse_postings(json.dumps(rows).encode(), "src", None)
    except SourceError:
        return
    assert len(postings) == len(rows)
