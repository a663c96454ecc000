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
from bot.sources.workable import api_url, collect, parse_jobs

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "workable"
WIDGET_API = "https://apply.workable.com/api/v1/widget/accounts/huggingface?details=true"
V3_API = "https://apply.workable.com/api/v3/accounts/huggingface/jobs"
EMPTY_QUERY = {"query": "", "location": [], "department": [], "worktype": [], "remote": []}
ROBOTICS, ADVOCATE, INFERENCE = "8F2A1C7B3D", "0C9E4B6A21", "5D3B7E9F10"
V3_TOKEN = "WzE3MTQ5NDcyMDAwMDAsNDAxMTkwNF0="


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(name: str, company: str | None = None) -> dict[str, Posting]:
    return {p.id: p for p in parse_jobs(fixture(name), "hf", company)[0]}


def widget(*jobs: dict[str, Any], name: str | None = None) -> bytes:
    return json.dumps({"name": name, "jobs": list(jobs)}).encode()


def v3(*jobs: dict[str, Any], next_page: str | None = None) -> bytes:
    return json.dumps({"total": 9, "results": list(jobs), "nextPage": next_page}).encode()


def job(**fields: Any) -> dict[str, Any]:
    return {"shortcode": "ABC", "title": "Engineer", **fields}


# --- parse_jobs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ids", "next_page"),
    [
        ("widget-account.json", [ROBOTICS, ADVOCATE, INFERENCE], None),
        ("v3-jobs-page1.json", [ROBOTICS, ADVOCATE], V3_TOKEN),
        ("v3-jobs-page2.json", [INFERENCE], None),
    ],
)
def test_ids_and_next_page(name: str, ids: list[str], next_page: str | None) -> None:
    postings, token = parse_jobs(fixture(name), "hf", None)
    assert ([p.id for p in postings], token) == (ids, next_page)


def test_all_fields_of_a_widget_job() -> None:
    posting = parse("widget-account.json", company="Configured")[ROBOTICS]
    assert posting.to_json() == {
        "source": "hf",
        "id": ROBOTICS,
        "title": "Machine Learning Engineer - Robotics",
        "company": "Hugging Face",  # the document's name wins over the configuration
        "locations": ["Paris, Île-de-France, France", "United States"],
        "remote": True,
        "team": "Open Source",
        "employment_type": "Full-time",
        "posted_at": "2024-05-15",
        "salary_min": None,
        "salary_max": None,
        "salary_currency": None,
        "salary_period": None,
        "url": f"https://apply.workable.com/j/{ROBOTICS}",
        "apply_url": f"https://apply.workable.com/j/{ROBOTICS}/apply",
        "description": (
            "We are looking for a Machine Learning Engineer to push open-source robotics "
            "forward: datasets, models & the LeRobot library.\n\n"
            "About you\n\n"
            "• Experience training policies for real robots\n"
            "• Strong Python & PyTorch"
        ),
    }


def test_v3_rows_match_the_widget_except_for_the_description() -> None:
    from_widget = parse("widget-account.json", company="Hugging Face")
    from_v3 = parse("v3-jobs-page1.json", company="Hugging Face")
    from_v3 |= parse("v3-jobs-page2.json", company="Hugging Face")
    assert sorted(from_v3) == sorted(from_widget)
    for shortcode, posting in from_v3.items():
        assert posting.description is None  # the v3 list carries none
        assert posting.to_json() == from_widget[shortcode].to_json() | {"description": None}


@pytest.mark.parametrize(
    ("shortcode", "remote", "locations"),
    [
        (ROBOTICS, True, ("Paris, Île-de-France, France", "United States")),
        (ADVOCATE, True, ("New York, New York, United States",)),
        (INFERENCE, False, ("Paris, Île-de-France, France",)),
    ],
)
def test_remote_and_locations(shortcode: str, remote: bool, locations: tuple[str, ...]) -> None:
    posting = parse("widget-account.json")[shortcode]
    assert (posting.remote, posting.locations) == (remote, locations)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({}, {}, id="minimal"),
        pytest.param({"locations": [], "city": "Athens", "state": "", "country": "Greece"},
                     {"locations": ("Athens, Greece",)}, id="city-state-country"),
        pytest.param({"locations": [{"city": "Paris", "hidden": True}, {"country": "Greece"}]},
                     {"locations": ("Greece",)}, id="hidden-location-skipped"),
        pytest.param({"telecommuting": False}, {"remote": False}, id="not-remote"),
        pytest.param({"telecommuting": "true"}, {}, id="remote-not-a-boolean"),
        pytest.param({"shortlink": "https://apply.workable.com/j/ABC"},
                     {"url": "https://apply.workable.com/j/ABC"}, id="shortlink"),
        pytest.param({"published_on": None, "created_at": "2024-05-01"},
                     {"posted_at": "2024-05-01"}, id="created-at-fallback"),
        pytest.param({"description": "<p>Q&amp;amp;A</p>"}, {"description": "Q&amp;A"},
                     id="entities-decoded-once"),
        pytest.param({"shortcode": 12}, {"id": "12"}, id="numeric-shortcode"),
    ],
)  # fmt: skip
def test_widget_field_mapping(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    (result,), _ = parse_jobs(widget(job(**fields)), "src", "Acme")
    defaults = Posting(source="src", id="ABC", title="Engineer", company="Acme").to_json()
    assert result.to_json() == {**defaults, **{k: list(v) if isinstance(v, tuple) else v
                                               for k, v in expected.items()}}  # fmt: skip


V3_LINKS = {
    "url": "https://apply.workable.com/j/ABC",
    "apply_url": "https://apply.workable.com/j/ABC/apply",
}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({}, {}, id="minimal"),
        pytest.param({"remote": True, "workplace": "on_site"}, {"remote": True},
                     id="remote-flag-wins"),
        pytest.param({"workplace": "remote"}, {"remote": True}, id="workplace-remote"),
        pytest.param({"workplace": "hybrid"}, {"remote": False}, id="workplace-hybrid"),
        pytest.param({"workplace": "on_site"}, {"remote": False}, id="workplace-on-site"),
        pytest.param({"location": {"city": "Paris", "region": "", "country": "France"}},
                     {"locations": ("Paris, France",)}, id="single-location"),
        pytest.param({"department": ["Research", "Science"]}, {"team": "Research"},
                     id="first-department"),
        pytest.param({"department": "Research"}, {}, id="department-not-a-list"),
        pytest.param({"type": "part"}, {"employment_type": "Part-time"}, id="type-part"),
        pytest.param({"type": "other"}, {"employment_type": "other"}, id="type-unknown"),
        pytest.param({"published": "2024-05-15T23:00:00.000-03:00"}, {"posted_at": "2024-05-16"},
                     id="published-utc-date"),
        pytest.param({"shortcode": "A/B"}, {"id": "A/B", "url": "https://apply.workable.com/j/A%2FB",
                                            "apply_url": "https://apply.workable.com/j/A%2FB/apply"},
                     id="shortcode-quoted"),
        pytest.param({"shortcode": "\ud800", "published": 10**400},
                     {"id": "?", "url": "https://apply.workable.com/j/%3F",
                      "apply_url": "https://apply.workable.com/j/%3F/apply"},
                     id="lone-surrogate-and-huge-date"),
    ],
)  # fmt: skip
def test_v3_field_mapping(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    (result,), _ = parse_jobs(v3(job(**fields)), "src", "Acme")
    defaults = Posting(source="src", id="ABC", title="Engineer", company="Acme").to_json()
    assert result.to_json() == {**defaults, **V3_LINKS,
                                **{k: list(v) if isinstance(v, tuple) else v
                                   for k, v in expected.items()}}  # fmt: skip


def test_widget_company_falls_back_to_the_configuration() -> None:
    (posting,), _ = parse_jobs(widget(job(), name=None), "src", "Acme")
    assert posting.company == "Acme"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "invalid JSON at line 1, column 1"),
        (b'{"jobs": [\n  {"shortcode": 1,}\n]}', "invalid JSON at line 2"),
        (b"\xff\xfe\x00garbage", "invalid JSON"),
        (b"[" * 100_000, "invalid JSON"),
        (b"[]", "expected a JSON object with 'jobs' or 'results'"),
        (b'{"name": "Acme"}', "expected a JSON object with 'jobs' or 'results'"),
        (b'{"results": {}}', "expected a JSON object with 'jobs' or 'results'"),
        (b'{"jobs": [1]}', "job #1 is not an object"),
        (b'{"results": [{"title": "x", "id": 4}]}', "job #1 has no id"),
        (b'{"jobs": [{"shortcode": "X"}]}', "job X has no title"),
    ],
)
def test_malformed_documents(body: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=f"^workable: {message}"):
        parse_jobs(body, "src", None)


# --- api_url and collect ---------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://apply.workable.com/huggingface", WIDGET_API),
        ("https://apply.workable.com/huggingface/", WIDGET_API),
        ("http://apply.workable.com/huggingface/?lng=en", WIDGET_API),
        (f"https://apply.workable.com/huggingface/j/{ROBOTICS}/", WIDGET_API),
        ("https://apply.workable.com/api/v1/widget/accounts/huggingface", WIDGET_API),
        ("https://apply.workable.com/api/v1/widget/accounts/huggingface?details=false",
         WIDGET_API),
        (WIDGET_API, WIDGET_API),
        (V3_API, V3_API),
        (f"https://apply.workable.com/j/{ROBOTICS}", f"https://apply.workable.com/j/{ROBOTICS}"),
        ("https://apply.workable.com/", "https://apply.workable.com/"),
        ("file:///srv/workable/widget-account.json", "file:///srv/workable/widget-account.json"),
        ("http://127.0.0.1:8123/api/v3/accounts/hf/jobs",
         "http://127.0.0.1:8123/api/v3/accounts/hf/jobs"),
        ("http://[::1", "http://[::1"),
    ],
)  # fmt: skip
def test_api_url(url: str, expected: str) -> None:
    assert api_url(url) == expected


def spec(url: str, **kw: Any) -> SourceSpec:
    return SourceSpec(name="hf", type="workable", url=url, **kw)


async def test_collect_reads_the_widget_for_a_board_page() -> None:
    fetcher = FakeFetcher({WIDGET_API: widget(job(), name="Hugging Face")})
    collected = await collect(spec("https://apply.workable.com/huggingface/"), fetcher)
    assert (fetcher.calls, fetcher.payloads) == ([WIDGET_API], [])
    assert [(p.id, p.company) for p in collected.postings] == [("ABC", "Hugging Face")]
    assert collected.complete


def v3_post(token: str | None = None) -> tuple[str, str]:
    payload = EMPTY_QUERY if token is None else {**EMPTY_QUERY, "token": token}
    return V3_API, json.dumps(payload, sort_keys=True)


async def test_collect_pages_the_v3_api_with_tokens() -> None:
    fetcher = FakeFetcher(
        {},
        {
            v3_post(): v3(job(shortcode="A"), next_page="t1"),
            v3_post("t1"): v3(job(shortcode="B"), next_page="t2"),
            v3_post("t2"): v3(job(shortcode="C")),
        },
    )
    collected = await collect(spec(V3_API), fetcher)
    assert fetcher.calls == [V3_API] * 3
    assert fetcher.payloads == [EMPTY_QUERY, {**EMPTY_QUERY, "token": "t1"},
                                {**EMPTY_QUERY, "token": "t2"}]  # fmt: skip
    assert [(p.id, p.company) for p in collected.postings] == [
        ("A", "huggingface"),
        ("B", "huggingface"),
        ("C", "huggingface"),
    ]
    assert collected.complete


async def test_collect_stops_at_max_pages_and_says_so() -> None:
    fetcher = FakeFetcher(
        {},
        {
            v3_post(): v3(job(shortcode="A"), next_page="t1"),
            v3_post("t1"): v3(job(shortcode="B"), next_page="t2"),
        },
    )
    collected = await collect(spec(V3_API, max_pages=2, company="HF"), fetcher)
    assert [(p.id, p.company) for p in collected.postings] == [("A", "HF"), ("B", "HF")]
    assert not collected.complete
    assert len(fetcher.calls) == 2


async def test_a_v3_document_at_another_address_pages_by_post() -> None:
    url = "http://127.0.0.1:8123/hf/jobs.json"
    payload = json.dumps({**EMPTY_QUERY, "token": "t1"}, sort_keys=True)
    fetcher = FakeFetcher(
        {url: v3(job(shortcode="A"), next_page="t1")},
        {(url, payload): v3(job(shortcode="B"))},
    )
    collected = await collect(spec(url), fetcher)
    assert fetcher.calls == [url, url]
    assert fetcher.payloads == [{**EMPTY_QUERY, "token": "t1"}]
    assert [p.id for p in collected.postings] == ["A", "B"]


@pytest.mark.parametrize(
    ("name", "ids"),
    [
        ("widget-account.json", [ROBOTICS, ADVOCATE, INFERENCE]),
        ("v3-jobs-page1.json", [ROBOTICS, ADVOCATE, INFERENCE]),
        ("v3-jobs-page2.json", [INFERENCE]),
    ],
)
async def test_collect_offline_through_the_fixture_files(name: str, ids: list[str]) -> None:
    async with httpx.AsyncClient() as client:
        collected = await collect(spec((FIXTURES / name).as_uri()), HttpFetcher(client))
    assert [p.id for p in collected.postings] == ids
    assert collected.complete


async def test_a_file_v3_page_whose_next_file_is_missing_stops(tmp_path: Path) -> None:
    (tmp_path / "jobs-page1.json").write_bytes(v3(job(shortcode="A"), next_page="t1"))
    async with httpx.AsyncClient() as client:
        url = (tmp_path / "jobs-page1.json").as_uri()
        collected = await collect(spec(url), HttpFetcher(client))
    # ?page=2 has no sibling file, so the fetcher reads page 1 again: no new id, stop.
    assert [p.id for p in collected.postings] == ["A"]
    assert collected.complete


# --- robustness -----------------------------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=()), max_size=30)  # lone surrogates included

_JSON = json_values(
    ["shortcode", "title", "department", "employment_type", "telecommuting", "city",
     "state", "country", "region", "hidden", "locations", "location", "url", "shortlink",
     "application_url", "published_on", "created_at", "description", "remote",
     "published", "workplace", "type"],
    text=_TEXT,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.binary())
def test_parse_jobs_on_arbitrary_bytes(body: bytes) -> None:
    with contextlib.suppress(SourceError):
        parse_jobs(body, "src", None)


@settings(max_examples=200, deadline=None)
@given(st.lists(_JSON, max_size=4), st.sampled_from(["jobs", "results"]), _JSON)
def test_parse_jobs_on_arbitrary_rows(rows: list[Any], key: str, extra: Any) -> None:
    document = {key: rows, "name": extra, "nextPage": extra}
    try:
        postings, _ = parse_jobs(json.dumps(document).encode(), "src", None)
    except SourceError:
        return
    assert len(postings) == len(rows)
