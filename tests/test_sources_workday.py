from __future__ import annotations

import contextlib
import json
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes import FakeFetcher, json_values
from hypothesis import given, settings
from hypothesis import strategies as st
from loopback import Reply, serve

from bot.errors import SourceError
from bot.fetch import HttpFetcher
from bot.models import Posting
from bot.sources.base import SourceSpec
from bot.sources.workday import (
    collect,
    list_endpoint,
    merge_detail,
    parse_job,
    parse_jobs,
    posted_date,
)

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "workday"
SITE = "https://qualcomm.wd5.myworkdayjobs.com/External"
CXS = "https://qualcomm.wd5.myworkdayjobs.com/wday/cxs/qualcomm/External"
ENDPOINT = CXS + "/jobs"
VIDEO_PATH = "/job/San-Diego/Video-Compression-Research-Engineer_3058421"
TODAY = date(2024, 5, 10)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def payload(offset: int) -> str:
    body = {"appliedFacets": {}, "limit": 20, "offset": offset, "searchText": ""}
    return json.dumps(body, sort_keys=True)


def jobs(*rows: dict[str, Any], total: int = 0) -> bytes:
    return json.dumps({"total": total, "jobPostings": list(rows)}).encode()


def row(number: int, **fields: Any) -> dict[str, Any]:
    return {
        "title": f"Engineer {number}",
        "externalPath": f"/job/Berlin/Engineer-{number}_R{number}",
        "locationsText": "Berlin, Germany",
        "postedOn": "Posted Today",
        "bulletFields": [f"R{number}"],
        **fields,
    }


def spec(url: str = SITE, max_pages: int = 20, company: str | None = None) -> SourceSpec:
    return SourceSpec(name="qc", type="workday", url=url, company=company, max_pages=max_pages)


# --- list pages -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "total", "expected"),
    [
        ("jobs-offset0.json", 5, [
            ("3061175", "Machine Learning Engineer - On-Device Generative AI",
             ("San Diego, California",), "2024-05-07",
             "/job/San-Diego/Machine-Learning-Engineer---On-Device-Generative-AI_3061175"),
            ("3058421", "Video Compression Research Engineer", (), None, VIDEO_PATH),
            ("3060377", "Principal Machine Learning Researcher", ("Amsterdam, Netherlands",),
             "2024-05-03", "/job/Amsterdam/Principal-Machine-Learning-Researcher_3060377"),
        ]),
        # Pages after the first say total 0: no total.
        ("jobs-offset3.json", None, [
            # A second posting of requisition 3059764 keeps its "-1".
            ("3059764-1", "Machine Learning Applications Engineer - Cloud AI", (), "2024-05-09",
             "/job/Santa-Clara/Machine-Learning-Applications-Engineer---Cloud-AI_3059764-1"),
            ("3061502", "Edge AI Machine Learning Engineer", ("San Diego, California",),
             "2024-05-10", "/job/San-Diego/Edge-AI-Machine-Learning-Engineer_3061502"),
        ]),
    ],
)  # fmt: skip
def test_list_pages(name: str, total: int | None, expected: list[tuple[Any, ...]]) -> None:
    page = parse_jobs(fixture(name), ENDPOINT, "qc", None, TODAY)
    assert page.total == total
    assert [(p.id, p.title, p.locations, p.posted_at, p.url) for p in page.postings] == [
        (posting_id, title, locations, posted, SITE + path)
        for posting_id, title, locations, posted, path in expected
    ]
    assert page.details == {posting_id: CXS + path for posting_id, _, _, _, path in expected}
    for posting in page.postings:
        assert (posting.source, posting.company, posting.description) == ("qc", "qualcomm", None)
        assert (posting.remote, posting.salary_min, posting.employment_type) == (None, None, None)


def test_list_page_read_from_a_file_finds_details_beside_it() -> None:
    url = (FIXTURES / "jobs-offset0.json").as_uri()
    page = parse_jobs(fixture("jobs-offset0.json"), url, "qc", "Qualcomm", TODAY)
    assert page.details == {
        posting_id: (FIXTURES / f"job-{posting_id}.json").as_uri()
        for posting_id in ("3061175", "3058421", "3060377")
    }
    assert {(p.company, p.url) for p in page.postings} == {("Qualcomm", None)}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({}, {"id": "R1"}, id="requisition"),
        pytest.param({"bulletFields": []}, {"id": "R1"}, id="path-tail"),
        pytest.param({"bulletFields": ["Full time", "R1"]}, {"id": "R1"}, id="not-an-id"),
        pytest.param({"bulletFields": [12345]}, {"id": "12345"}, id="numeric-requisition"),
        pytest.param({"externalPath": "/job/Berlin/Engineer"}, {"id": "R1", "url": SITE +
                     "/job/Berlin/Engineer"}, id="path-without-tail"),
        pytest.param({"externalPath": None}, {"id": "R1", "url": None}, id="no-path"),
        pytest.param({"externalPath": "/job/x/Engineer-1_R1-2"}, {"id": "R1-2"},
                     id="repeat-posting"),
        pytest.param({"externalPath": "/job/x/Engineer-1_R10"}, {"id": "R1"},
                     id="unrelated-tail"),
        pytest.param({"locationsText": "12 Locations"}, {"locations": []}, id="n-locations"),
        pytest.param({"locationsText": "1 Location"}, {"locations": []}, id="one-location"),
        pytest.param({"locationsText": None}, {"locations": []}, id="no-location"),
        pytest.param({"postedOn": "Posted 30+ Days Ago"}, {"posted_at": None}, id="30-plus"),
        pytest.param({"postedOn": 3}, {"posted_at": None}, id="posted-not-text"),
        pytest.param({"title": " A\n B "}, {"title": "A B"}, id="title-spaces"),
    ],
)  # fmt: skip
def test_row_mapping(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    (posting,) = parse_jobs(jobs(row(1, **fields)), ENDPOINT, "qc", None, TODAY).postings
    data = posting.to_json()
    assert {key: data[key] for key in expected} == expected


def test_row_without_any_id_gets_a_stable_one() -> None:
    fields = {"bulletFields": None, "externalPath": "/job/Berlin/Engineer"}
    first = parse_jobs(jobs(row(1, **fields)), ENDPOINT, "qc", None, TODAY).postings[0]
    again = parse_jobs(jobs(row(1, **fields, title="Other")), ENDPOINT, "qc", None).postings[0]
    assert first.id == again.id
    assert len(first.id) == 16


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Posted Today", "2024-05-10"),
        ("Posted Yesterday", "2024-05-09"),
        ("Posted 3 Days Ago", "2024-05-07"),
        ("posted  1 day ago", "2024-05-09"),
        ("Posted 29 Days Ago", "2024-04-11"),
        ("Posted 30+ Days Ago", None),
        ("Today", "2024-05-10"),
        ("Publié aujourd'hui", None),
        ("", None),
    ],
)
def test_posted_date(text: str, expected: str | None) -> None:
    assert posted_date(text, TODAY) == expected


def test_posted_date_before_the_calendar_begins() -> None:
    assert posted_date("Posted 3 Days Ago", date(1, 1, 2)) is None


# --- detail documents -------------------------------------------------------------


def test_detail_mapping() -> None:
    posting = parse_job(fixture("job-3058421.json"), ENDPOINT, "qc", None, TODAY)
    description = posting.description or ""
    assert posting.to_json() == {
        "source": "qc",
        "id": "3058421",
        "title": "Video Compression Research Engineer",
        "company": "Qualcomm Technologies, Inc.",
        "locations": ["San Diego, California", "Munich, Germany", "Hsinchu, Taiwan"],
        "remote": None,
        "team": None,
        "employment_type": "Full time",
        "posted_at": "2024-04-24",
        "salary_min": None,  # pay is only in the description text
        "salary_max": None,
        "salary_currency": None,
        "salary_period": None,
        "url": SITE + VIDEO_PATH,
        "apply_url": None,
        "description": description,
    }
    assert description.startswith("Company:\n\nQualcomm Technologies, Inc.\n\nJob Area:")
    assert "Engineering Group > Systems Engineering" in description
    assert "Qualcomm's Multimedia R&D and Standards Group" in description
    assert "\n• Bachelor's degree" in description
    assert description.endswith("$148,500.00 - $222,500.00")
    assert "<" not in description.replace("Group > Systems", "") and "&amp;" not in description


def test_detail_document_as_a_list_page() -> None:
    page = parse_jobs(fixture("job-3058421.json"), ENDPOINT, "qc", None, TODAY)
    assert (page.total, page.details) == (1, {})
    assert page.postings == [parse_job(fixture("job-3058421.json"), ENDPOINT, "qc", None, TODAY)]


def detail(**info: Any) -> bytes:
    base = {"title": "Engineer", "jobReqId": "R1", "externalUrl": SITE + "/job/x/Engineer_R1"}
    return json.dumps({"jobPostingInfo": {**base, **info}}).encode()


@pytest.mark.parametrize(
    ("info", "company", "expected"),
    [
        pytest.param({"remoteType": "Fully Remote"}, None, {"remote": True}, id="fully-remote"),
        pytest.param({"remoteType": "remote"}, None, {"remote": True}, id="remote"),
        pytest.param({"remoteType": "Hybrid"}, None, {"remote": None}, id="hybrid"),
        pytest.param({"remoteType": "On-site"}, None, {"remote": None}, id="on-site"),
        pytest.param({}, "Qualcomm", {"company": "Qualcomm"}, id="configured-company"),
        pytest.param({}, None, {"company": "qualcomm"}, id="tenant-company"),
        pytest.param({"startDate": None, "postedOn": "Posted Yesterday"}, None,
                     {"posted_at": "2024-05-09"}, id="relative-date-fallback"),
        pytest.param({"location": "Berlin", "additionalLocations": ["Berlin", 7, "Paris"]}, None,
                     {"locations": ["Berlin", "Paris"]}, id="locations"),
        pytest.param({"externalUrl": None, "jobPostingId": "Engineer_R1-1"}, None,
                     {"id": "R1-1", "url": None}, id="posting-id"),
        pytest.param({"jobReqId": None}, None, {"id": "R1"}, id="id-from-url"),
        pytest.param({"jobDescription": "<p>Hi &amp; <b>bye</b></p>"}, None,
                     {"description": "Hi & bye"}, id="description"),
    ],
)  # fmt: skip
def test_detail_field_mapping(
    info: dict[str, Any], company: str | None, expected: dict[str, Any]
) -> None:
    data = parse_job(detail(**info), ENDPOINT, "qc", company, TODAY).to_json()
    assert {key: data[key] for key in expected} == expected


def test_merge_takes_the_detail_under_the_row_id() -> None:
    row_posting = Posting(
        source="qc", id="R1-1", title="Old", locations=("Berlin",), posted_at="2024-05-01",
        url="https://x/job", company="qc",
    )  # fmt: skip
    detail_posting = Posting(source="qc", id="R1", title="New", employment_type="Full time")
    merged = merge_detail(row_posting, detail_posting)
    assert merged == Posting(
        source="qc", id="R1-1", title="New", company="qc", locations=("Berlin",),
        employment_type="Full time", posted_at="2024-05-01", url="https://x/job",
    )  # fmt: skip


# --- endpoints ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (SITE, ENDPOINT),
        (SITE + "/", ENDPOINT),
        ("https://qualcomm.wd5.myworkdayjobs.com/en-US/External", ENDPOINT),
        ("https://qualcomm.wd5.myworkdayjobs.com/en-US/External?locations=abc", ENDPOINT),
        ("http://Qualcomm.wd5.myworkdayjobs.com/External" + VIDEO_PATH, ENDPOINT),
        ("https://nvidia.wd5.myworkdayjobs.com/NVIDIAExternalCareerSite",
         "https://nvidia.wd5.myworkdayjobs.com/wday/cxs/nvidia/NVIDIAExternalCareerSite/jobs"),
        ("https://acme.wd1.myworkdayjobs.com/fr", "https://acme.wd1.myworkdayjobs.com/wday/cxs/acme/fr/jobs"),
        (ENDPOINT, ENDPOINT),
        ("https://qualcomm.wd5.myworkdayjobs.com/", "https://qualcomm.wd5.myworkdayjobs.com/"),
        ("file:///srv/workday/jobs-offset0.json", "file:///srv/workday/jobs-offset0.json"),
        ("http://127.0.0.1:8123/workday/jobs", "http://127.0.0.1:8123/workday/jobs"),
        ("https://example.com/External", "https://example.com/External"),
        ("http://[::1", "http://[::1"),
    ],
)  # fmt: skip
def test_list_endpoint(url: str, expected: str) -> None:
    assert list_endpoint(url) == expected


@pytest.mark.parametrize(
    ("endpoint", "detail", "public"),
    [
        (ENDPOINT, CXS + VIDEO_PATH, SITE + VIDEO_PATH),
        ("http://127.0.0.1:8123/wday/cxs/acme/Site/jobs",
         "http://127.0.0.1:8123/wday/cxs/acme/Site" + VIDEO_PATH,
         "http://127.0.0.1:8123/Site" + VIDEO_PATH),
        ("http://127.0.0.1:8123/workday/list.json", "http://127.0.0.1:8123/workday" + VIDEO_PATH,
         None),
        ("file:///srv/wd/jobs-offset0.json?offset=3", "file:///srv/wd/job-3058421.json", None),
    ],
)  # fmt: skip
def test_detail_and_public_urls(endpoint: str, detail: str, public: str | None) -> None:
    page = parse_jobs(fixture("jobs-offset0.json"), endpoint, "qc", None, TODAY)
    assert page.details["3058421"] == detail
    assert page.postings[1].url == public


# --- malformed input ------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "invalid JSON at line 1, column 1"),
        (b"<html>Service unavailable</html>", "invalid JSON"),
        (b"\xff\xfe\x00", "invalid JSON"),
        (b"[" * 100_000, "invalid JSON"),
        (b"[]", "expected a JSON object with 'jobPostings'"),
        (b'{"errorCode": "HTTP_400"}', "expected a JSON object with 'jobPostings'"),
        (b'{"jobPostings": {}}', "expected a JSON object with 'jobPostings'"),
        (b'{"jobPostings": [1]}', "job #1 is not an object"),
        (b'{"jobPostings": [{"externalPath": "/job/x_1"}]}', "job #1 has no title"),
        (b'{"jobPostings": [{"title": "x"}]}', "job #1 has no externalPath or requisition id"),
        (b'{"jobPostingInfo": {"title": "x"}}', "job document has no jobReqId or externalUrl"),
        (b'{"jobPostingInfo": {"jobReqId": "1"}}', "job document has no title"),
    ],
)
def test_malformed_list_pages(body: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=f"^workday: {message}"):
        parse_jobs(body, ENDPOINT, "qc", None, TODAY)


@pytest.mark.parametrize("body", [b"{}", b'{"jobPostings": []}', b'{"jobPostingInfo": []}'])
def test_parse_job_wants_a_job_document(body: bytes) -> None:
    with pytest.raises(
        SourceError, match=r"^workday: expected a JSON object with 'jobPostingInfo'"
    ):
        parse_job(body, ENDPOINT, "qc", None, TODAY)


def test_lone_surrogates_are_replaced() -> None:
    body = b'{"jobPostings": [{"title": "A\\ud800B", "bulletFields": ["R1"]}]}'
    (posting,) = parse_jobs(body, ENDPOINT, "qc", None, TODAY).postings
    assert posting.title == "A\ufffdB"


# --- collect --------------------------------------------------------------------


def two_pages_fetcher(**details: bytes) -> FakeFetcher:
    return FakeFetcher(
        {CXS + path: body for path, body in details.items()},
        {
            (ENDPOINT, payload(0)): fixture("jobs-offset0.json"),
            (ENDPOINT, payload(3)): fixture("jobs-offset3.json"),
        },
    )


async def test_collect_pages_by_offset_and_reads_details() -> None:
    fetcher = two_pages_fetcher(**{VIDEO_PATH: fixture("job-3058421.json")})
    collected = await collect(spec(), fetcher)
    assert collected.complete
    assert [json.dumps(p, sort_keys=True) for p in fetcher.payloads] == [payload(0), payload(3)]
    assert fetcher.calls[:2] == [ENDPOINT, ENDPOINT]
    assert len(fetcher.calls) == 2 + 5  # a detail request per row
    postings = {p.id: p for p in collected.postings}
    assert list(postings) == ["3061175", "3058421", "3060377", "3059764-1", "3061502"]
    video = postings["3058421"]
    assert video.locations == ("San Diego, California", "Munich, Germany", "Hsinchu, Taiwan")
    assert (video.posted_at, video.company, video.employment_type) == (
        "2024-04-24",
        "Qualcomm Technologies, Inc.",
        "Full time",
    )
    assert postings["3061502"].company == "qualcomm"  # its detail 404'd: the tenant


async def test_ids_are_the_same_with_and_without_details() -> None:
    with_detail = await collect(
        spec(), two_pages_fetcher(**{VIDEO_PATH: fixture("job-3058421.json")})
    )
    without = await collect(spec(), two_pages_fetcher(**{VIDEO_PATH: b"<html>oops</html>"}))
    assert [p.id for p in with_detail.postings] == [p.id for p in without.postings]
    (row_only,) = [p for p in without.postings if p.id == "3058421"]
    assert (row_only.title, row_only.locations, row_only.description) == (
        "Video Compression Research Engineer",
        (),
        None,
    )


async def test_collect_pages_through_saved_files() -> None:
    url = (FIXTURES / "jobs-offset0.json").as_uri()
    async with httpx.AsyncClient() as client:
        collected = await collect(spec(url), HttpFetcher(client))
    assert collected.complete
    postings = {p.id: p for p in collected.postings}
    assert list(postings) == ["3061175", "3058421", "3060377", "3059764-1", "3061502"]
    assert postings["3058421"] == parse_job(fixture("job-3058421.json"), url, "qc", None)
    assert postings["3061175"].company is None  # no tenant in a file name


async def test_collect_over_http_from_a_loopback_server() -> None:
    cxs = "/wday/cxs/qualcomm/External"
    async with serve() as server, httpx.AsyncClient() as client:
        pages = [Reply(200, fixture("jobs-offset0.json")), Reply(200, fixture("jobs-offset3.json"))]
        server.set(cxs + "/jobs", pages)
        server.set(cxs + VIDEO_PATH, Reply(200, fixture("job-3058421.json")))
        collected = await collect(spec(server.url(cxs + "/jobs")), HttpFetcher(client))
    posts = [r for r in server.requests if r.method == "POST"]
    assert [(r.path_qs, r.json()) for r in posts] == [
        (cxs + "/jobs", json.loads(payload(0))),
        (cxs + "/jobs", json.loads(payload(3))),
    ]
    assert len(server.requests) == 2 + 5
    postings = {p.id: p for p in collected.postings}
    assert postings["3058421"].employment_type == "Full time"
    assert postings["3061175"].url == server.url(
        "/External/job/San-Diego/Machine-Learning-Engineer---On-Device-Generative-AI_3061175"
    )
    assert postings["3061175"].company == "qualcomm"


async def test_collect_stops_at_max_pages() -> None:
    fetcher = two_pages_fetcher()
    collected = await collect(spec(max_pages=1), fetcher)
    assert not collected.complete
    assert [p.id for p in collected.postings] == ["3061175", "3058421", "3060377"]
    assert fetcher.payloads == [json.loads(payload(0))]


async def test_collect_without_a_total_stops_at_a_page_with_nothing_new() -> None:
    page = jobs(row(1), row(2))
    fetcher = FakeFetcher(
        {}, {(ENDPOINT, payload(0)): page, (ENDPOINT, payload(2)): jobs(row(2)),
             (ENDPOINT, payload(3)): jobs()}
    )  # fmt: skip
    collected = await collect(spec(), fetcher)
    assert collected.complete
    assert [p.id for p in collected.postings] == ["R1", "R2"]
    assert [p["offset"] for p in fetcher.payloads] == [0, 2]


async def test_collect_a_site_with_no_jobs() -> None:
    fetcher = FakeFetcher({}, {(ENDPOINT, payload(0)): jobs()})
    collected = await collect(spec(), fetcher)
    assert (collected.postings, collected.complete) == ([], True)


async def test_collect_fails_when_the_list_fails() -> None:
    with pytest.raises(SourceError, match="HTTP 404"):
        await collect(spec(), FakeFetcher({}))


# --- robustness -----------------------------------------------------------------

_JSON = json_values(
    ["title", "externalPath", "locationsText", "postedOn", "bulletFields", "total",
     "jobPostings", "jobPostingInfo", "jobReqId", "jobPostingId", "externalUrl",
     "location", "additionalLocations", "startDate", "timeType", "remoteType",
     "jobDescription", "hiringOrganization", "name"],
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.binary())
def test_parse_jobs_on_arbitrary_bytes(body: bytes) -> None:
    with contextlib.suppress(SourceError):
        parse_jobs(body, ENDPOINT, "qc", None, TODAY)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_JSON, max_size=4),
    _JSON,
    _JSON,
    st.sampled_from([ENDPOINT, "file:///srv/wd/jobs-offset0.json", "http://[::1"]),
)
def test_parse_on_arbitrary_structures(rows: list[Any], info: Any, total: Any, url: str) -> None:
    documents = (
        {"total": total, "jobPostings": rows},
        {"jobPostingInfo": info, "hiringOrganization": total},
    )
    for document in documents:
        try:
            page = parse_jobs(json.dumps(document).encode(), url, "qc", None, TODAY)
        except SourceError:
            continue
        for posting in page.postings:
            json.dumps(posting.to_json(), ensure_ascii=False).encode()
