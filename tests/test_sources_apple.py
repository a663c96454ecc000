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
from loopback import Reply, serve

from bot.errors import SourceError
from bot.fetch import HttpFetcher
from bot.models import Posting
from bot.sources.apple import Pay, collect, merge_detail, parse_detail, parse_page, parse_pay
from bot.sources.base import SourceSpec

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "apple"
SEARCH = "https://jobs.apple.com/en-us/search?search=machine%20learning&sort=newest"
DETAILS = "https://jobs.apple.com/en-us/details/"
ML_SCIENTIST = DETAILS + "200550562/machine-learning-applied-scientist"
ML_RESEARCHER = DETAILS + "200526165/machine-learning-researcher-multimodal-foundation-models"
SPECIALIST = DETAILS + "114438158/us-specialist-full-time-and-part-time"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def by_id(postings: list[Posting]) -> dict[str, Posting]:
    return {p.id: p for p in postings}


def hydration_page(data: Any) -> bytes:
    # json.dumps of a JSON text is a valid JavaScript string literal.
    literal = json.dumps(json.dumps(data))
    return (
        "<html><body><div id=root></div>"
        f"<script>window.__staticRouterHydrationData = JSON.parse({literal});</script>"
        "</body></html>"
    ).encode()


def search_page(rows: list[Any], total: int | None) -> bytes:
    search = {"searchResults": rows, "totalRecords": total}
    return hydration_page({"loaderData": {"root": {"locale": "en-us"}, "search": search}})


def row(number: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": str(200_000_000 + number),
        "postingTitle": f"Role {number}",
        "transformedPostingTitle": f"role-{number}",
        "postDateInGMT": "2024-05-09T07:00:00.000Z",
        "locations": [{"city": "Austin", "stateProvince": "Texas", "countryName": "United States"}],
        "team": {"teamName": "Software and Services"},
        "homeOffice": False,
        "type": "REGULAR",
        **fields,
    }


def spec(url: str = SEARCH, max_pages: int = 20) -> SourceSpec:
    return SourceSpec(name="apple-ml", type="apple", url=url, max_pages=max_pages)


# --- search pages -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("posting_id", "title", "locations", "team", "posted_at", "url"),
    [
        ("200550562", "Machine Learning Applied Scientist",
         ("Seattle, Washington, United States",), "Machine Learning and AI", "2024-05-09",
         ML_SCIENTIST),
        ("200526165", "Machine Learning Researcher - Multimodal Foundation Models",
         ("Cupertino, California, United States",), "Machine Learning and AI", "2024-05-30",
         ML_RESEARCHER),
        # A pipeline row: its date is the request time, its page sits at its positionId.
        ("PIPE-114438158", "US-Specialist: Full-Time and Part-Time", ("United States",),
         "Apple Retail", None, SPECIALIST),
    ],
)  # fmt: skip
def test_search_rows(
    posting_id: str,
    title: str,
    locations: tuple[str, ...],
    team: str,
    posted_at: str | None,
    url: str,
) -> None:
    posting = by_id(parse_page(fixture("search-page1.html"), SEARCH, "apple-ml").postings)[
        posting_id
    ]
    assert (posting.title, posting.locations, posting.team, posting.posted_at, posting.url) == (
        title,
        locations,
        team,
        posted_at,
        url,
    )
    assert (posting.source, posting.company, posting.remote) == ("apple-ml", "Apple", False)
    assert (posting.salary_min, posting.employment_type, posting.apply_url) == (None, None, None)
    assert (posting.description or "").startswith("Summary\n")


def test_search_page_total_order_and_detail_locations() -> None:
    page = parse_page(fixture("search-page1.html"), SEARCH, "apple-ml")
    assert [p.id for p in page.postings] == ["200550562", "200526165", "PIPE-114438158"]
    assert page.total == 3
    assert page.details == {
        "200550562": ML_SCIENTIST,
        "200526165": ML_RESEARCHER,
        "PIPE-114438158": SPECIALIST,
    }


@pytest.mark.parametrize(
    ("url", "details_base", "role_base"),
    [
        pytest.param("https://jobs.apple.com/en-gb/search?team=MLAI",
                     "https://jobs.apple.com/en-gb/details/", "https://jobs.apple.com/en-gb/details/",
                     id="locale-from-path"),
        pytest.param("https://jobs.apple.com/search", DETAILS, DETAILS, id="locale-from-blob"),
        pytest.param("http://127.0.0.1:8123/en-us/search?search=x",
                     "http://127.0.0.1:8123/en-us/details/", "http://127.0.0.1:8123/en-us/details/",
                     id="loopback"),
        pytest.param("http://127.0.0.1:8123/mirror/en-us/search/",
                     "http://127.0.0.1:8123/mirror/en-us/details/",
                     "http://127.0.0.1:8123/mirror/en-us/details/", id="loopback-prefix"),
        pytest.param("file:///srv/apple/search-page1.html?page=2",
                     "file:///srv/apple/details-", DETAILS, id="file-siblings"),
    ],
)  # fmt: skip
def test_where_roles_live(url: str, details_base: str, role_base: str) -> None:
    page = parse_page(fixture("search-page1.html"), url, "s")
    suffix = ".html" if url.startswith("file:") else "/machine-learning-applied-scientist"
    assert page.details["200550562"] == f"{details_base}200550562{suffix}"
    assert page.postings[0].url == f"{role_base}200550562/machine-learning-applied-scientist"
    assert page.details["PIPE-114438158"].startswith(f"{details_base}114438158")


def test_empty_search() -> None:
    page = parse_page(search_page([], 0), SEARCH, "s")
    assert (page.postings, page.total, page.details) == ([], 0, {})


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({"id": 200616768}, {"id": "200616768"}, id="numeric-id"),
        pytest.param({"id": "200616768-3337"}, {"id": "200616768-3337"}, id="per-location-id"),
        pytest.param({"locations": [
            {"city": "Singapore", "stateProvince": "", "countryName": "Singapore"},
            {"city": "", "stateProvince": "", "countryName": "", "name": "Various"},
            {"city": "Singapore", "countryName": "Singapore"}, "junk"]},
            {"locations": ["Singapore", "Various"]}, id="locations-deduplicated"),
        pytest.param({"homeOffice": True}, {"remote": True}, id="home-office"),
        pytest.param({"homeOffice": "yes"}, {"remote": None}, id="home-office-not-boolean"),
        pytest.param({"postDateInGMT": None, "postingDate": "May 09, 2024"},
                     {"posted_at": "2024-05-09"}, id="posting-date-fallback"),
        pytest.param({"postDateInGMT": "2024-05-09T23:30:00-04:00"}, {"posted_at": "2024-05-10"},
                     id="utc-date"),
        pytest.param({"type": "PIPE"}, {"posted_at": None}, id="pipeline-type"),
        pytest.param({"team": None, "teamNames": ["Hardware"]}, {"team": "Hardware"},
                     id="team-names"),
        pytest.param({"transformedPostingTitle": None}, {"url": DETAILS + "200000001"},
                     id="no-slug"),
        pytest.param({"jobSummary": "<p>Hi &amp; <b>bye</b></p>"},
                     {"description": "Summary\nHi & bye"}, id="html-summary"),
        pytest.param({"postingTitle": "  A \n B "}, {"title": "A B"}, id="title-spaces"),
    ],
)  # fmt: skip
def test_row_mapping(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    (posting,) = parse_page(search_page([row(1, **fields)], 1), SEARCH, "s").postings
    data = posting.to_json()
    assert {key: data[key] for key in expected} == expected


# --- detail pages -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "posting_id", "salary", "posted_at", "locations", "url"),
    [
        ("details-200550562.html", "200550562", (131500, 243300), "2024-05-09",
         ("Seattle, Washington, United States",), ML_SCIENTIST),
        ("details-200526165.html", "200526165", (175800, 312200), "2024-05-30",
         ("Cupertino, California, United States",), ML_RESEARCHER),
    ],
)  # fmt: skip
def test_detail_pages(
    name: str,
    posting_id: str,
    salary: tuple[int, int],
    posted_at: str,
    locations: tuple[str, ...],
    url: str,
) -> None:
    for posting in (
        parse_detail(fixture(name), url, "s"),
        *parse_page(fixture(name), url, "s").postings,
    ):
        assert posting.id == posting_id
        assert (posting.salary_min, posting.salary_max) == salary
        assert (posting.salary_currency, posting.salary_period) == ("USD", "year")
        assert (posting.posted_at, posting.locations, posting.url) == (posted_at, locations, url)
        assert (posting.employment_type, posting.team, posting.remote) == (
            "Full-Time",
            "Machine Learning and AI",
            False,
        )
        description = posting.description or ""
        assert description.startswith("Summary\n")
        assert "\n\nDescription\n" in description
        assert "\n\nKey Qualifications\n• " in description
        assert "\n\nEducation & Experience\n" in description
        assert "Responsibilities" not in description  # an empty section
        assert "\n\n\n" not in description
        for leftover in ("<", ">", "&amp;", "\\n"):
            assert leftover not in description


def test_detail_page_read_as_a_file_has_the_canonical_url() -> None:
    url = (FIXTURES / "details-200550562.html").as_uri()
    page = parse_page(fixture("details-200550562.html"), url, "s")
    assert (page.total, page.details) == (1, {})
    assert page.postings[0].url == ML_SCIENTIST


def test_detail_description_text() -> None:
    description = parse_detail(fixture("details-200550562.html"), ML_SCIENTIST, "s").description
    assert (description or "").startswith(
        "Summary\nThe VCV Science ML Experience Prototyping Team is seeking a highly skilled"
    )
    assert "people every day.\n\nDescription\nAs an ML Applied Scientist" in (description or "")
    assert "• 5+ years of industry or strong academic experience in CVML\n• Experience" in (
        description or ""
    )
    assert (description or "").endswith(
        "Education & Experience\nBS and a minimum of 3 years relevant industry experience"
    )


def test_search_page_is_not_a_detail_page() -> None:
    with pytest.raises(SourceError, match="neither search results nor job details"):
        parse_detail(fixture("search-page1.html"), SEARCH, "s")


def test_vanished_role() -> None:
    body = hydration_page({"loaderData": {"jobDetails": {"jobsData": None}}})
    with pytest.raises(SourceError, match="may no longer exist"):
        parse_page(body, ML_SCIENTIST, "s")


def test_merge_keeps_the_row_and_adds_what_only_the_detail_has() -> None:
    (pipe,) = parse_page(search_page([row(1, id="PIPE-1", type="PIPE")], 1), SEARCH, "s").postings
    detail = Posting(
        source="s", id="1", title="Other", posted_at="2024-06-03", locations=("Elsewhere",),
        employment_type="Part-Time", salary_min=20, salary_max=30, salary_currency="USD",
        salary_period="hour", description="Long text",
    )  # fmt: skip
    merged = merge_detail(pipe, detail)
    assert (merged.id, merged.title, merged.posted_at, merged.locations) == (
        "PIPE-1",
        "Role 1",
        None,
        ("Austin, Texas, United States",),
    )
    assert (merged.employment_type, merged.salary_min, merged.salary_period) == (
        "Part-Time",
        20,
        "hour",
    )
    assert merged.description == "Long text"
    assert merge_detail(pipe, Posting(source="s", id="1", title="x")) == pipe


def test_pay_spans_the_footers_of_all_locations() -> None:
    def footer(text: str) -> dict[str, Any]:
        return {"localizations": {"en_US": [{"name": "Pay & Benefits", "content": text}]}}

    footers = [
        footer("<p>The base pay range for this role is between $120,000 and $200,000.</p>"),
        "junk",
        footer("<p>The base pay range for this role is between $140,000 and $230,000.</p>"),
        footer("<p>The pay range for this role is between £50,000 and £90,000.</p>"),
    ]
    body = hydration_page(
        {"loaderData": {"jobDetails": {"jobsData": row(1, postingFooters=footers)}}}
    )
    posting = parse_detail(body, SEARCH, "s")
    assert (posting.salary_min, posting.salary_max, posting.salary_currency) == (
        120000,
        230000,
        "USD",
    )


# --- the pay parser -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The base pay range for this role is between $131,500 and $243,300, and your base pay "
         "will depend on your skills.", Pay(131500, 243300, "USD", "year")),
        ("$148,500.00 - $222,500.00", Pay(148500, 222500, "USD", "year")),
        ("from £45,000 to £60,000 per annum", Pay(45000, 60000, "GBP", "year")),
        ("€60.000 \u2013 €80.000,50", Pay(60000, 80000.5, "EUR", "year")),
        ("€22,50 - €30", Pay(22.5, 30, "EUR", "year")),
        ("€55,000—€70,000", Pay(55000, 70000, "EUR", "year")),
        ("$150k-$200k", Pay(150000, 200000, "USD", "year")),
        ("$150-200k", Pay(150000, 200000, "USD", "year")),
        ("Pay is between $22.00 and $30.50 per hour. Benefits are great this year.",
         Pay(22, 30.5, "USD", "hour")),
        ("The hourly range is $22 to $30.", Pay(22, 30, "USD", "hour")),
        ("between $5,000 and $7,000 monthly", Pay(5000, 7000, "USD", "month")),
        ("between $90,000 and $120,000 CAD", Pay(90000, 120000, "CAD", "year")),
        ("Worked 5 years. Pay: $100 to $200.", Pay(100, 200, "USD", "year")),
        ("$200,000 and $100,000", None),
        ("$100 - £200", None),
        ("$100,000", None),
        ("no pay stated", None),
        ("", None),
    ],
)  # fmt: skip
def test_parse_pay(text: str, expected: Pay | None) -> None:
    assert parse_pay(text) == expected


# --- the hydration literal ------------------------------------------------------


def test_javascript_escapes_in_the_literal() -> None:
    data = json.dumps({"loaderData": {"search": {"searchResults": [row(1)], "totalRecords": 1}}})
    literal = (
        json.dumps(data)[1:-1]
        .replace("Role 1", "R\\x6fle\\u{20}\\'1\\'\\\n \\ud83d\\ude00")
        .replace("Austin", "\\x41ustin")
    )
    body = f'<script>window.__staticRouterHydrationData = JSON.parse("{literal}")</script>'
    (posting,) = parse_page(body.encode(), SEARCH, "s").postings
    assert posting.title == "Role '1' \U0001f600"
    assert posting.locations == ("Austin, Texas, United States",)


def test_single_quoted_literal_and_lone_surrogates() -> None:
    data = json.dumps(
        {"loaderData": {"search": {"searchResults": [row(1, postingTitle="A\ud800B")]}}}
    )
    body = f"<script>__staticRouterHydrationData=JSON.parse('{data}')</script>"
    (posting,) = parse_page(body.encode(), SEARCH, "s").postings
    assert posting.title == "A\ufffdB"
    posting.title.encode()  # printable


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "no __staticRouterHydrationData"),
        (b"<html><body>Sorry</body></html>", "no __staticRouterHydrationData"),
        (b'<script>window.__staticRouterHydrationData = JSON.parse("{\\"a\\": ");</script>',
         "hydration data is not JSON"),
        (b'<script>window.__staticRouterHydrationData = JSON.parse("\\u{110000}");</script>',
         "invalid"),
        (b'<script>window.__staticRouterHydrationData = JSON.parse("[' + b"[" * 100_000 + b'");',
         "hydration data is not JSON"),
        (b'<script>window.__staticRouterHydrationData = JSON.parse("[]");</script>',
         "no loaderData"),
        (hydration_page({"loaderData": {"root": {}}}), "neither search results nor job details"),
        (hydration_page({"loaderData": {"search": {"searchResults": {}}}}), "no searchResults"),
        (search_page([1], 1), "result #1 is not an object"),
        (search_page([row(1, id=None)], 1), "result #1 has no id"),
        (search_page([row(1, id=True)], 1), "result #1 has no id"),
        (search_page([row(1, postingTitle=" ")], 1), "role 200000001 has no title"),
    ],
)  # fmt: skip
def test_malformed_pages(body: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=f"^apple: .*{message}"):
        parse_page(body, SEARCH, "s")


# --- collect --------------------------------------------------------------------


async def test_collect_completes_each_row_from_its_detail_page() -> None:
    fetcher = FakeFetcher(
        {
            SEARCH: fixture("search-page1.html"),
            ML_SCIENTIST: fixture("details-200550562.html"),
            ML_RESEARCHER: fixture("details-200526165.html"),
        }
    )
    collected = await collect(spec(), fetcher)
    assert collected.complete
    assert fetcher.calls[0] == SEARCH
    assert sorted(fetcher.calls[1:]) == sorted([ML_SCIENTIST, ML_RESEARCHER, SPECIALIST])
    postings = by_id(collected.postings)
    assert list(postings) == ["200550562", "200526165", "PIPE-114438158"]
    for posting_id, name in (("200550562", "details-200550562.html"),
                             ("200526165", "details-200526165.html")):  # fmt: skip
        alone = parse_detail(fixture(name), postings[posting_id].url or "", "apple-ml")
        assert postings[posting_id] == alone
    row_only = parse_page(fixture("search-page1.html"), SEARCH, "apple-ml").postings[2]
    assert postings["PIPE-114438158"] == row_only  # its detail page 404'd


async def test_collect_keeps_the_row_when_a_detail_is_missing_or_broken() -> None:
    fetcher = FakeFetcher(
        {SEARCH: fixture("search-page1.html"), ML_RESEARCHER: b"<html>no data</html>"}
    )
    collected = await collect(spec(), fetcher)
    assert (
        collected.postings == parse_page(fixture("search-page1.html"), SEARCH, "apple-ml").postings
    )


async def test_collect_from_files_reads_sibling_detail_files() -> None:
    url = (FIXTURES / "search-page1.html").as_uri()
    async with httpx.AsyncClient() as client:
        collected = await collect(spec(url), HttpFetcher(client))
    postings = by_id(collected.postings)
    assert collected.complete
    assert list(postings) == ["200550562", "200526165", "PIPE-114438158"]
    assert (postings["200550562"].salary_min, postings["200526165"].salary_max) == (131500, 312200)
    assert postings["200550562"] == parse_detail(
        fixture("details-200550562.html"), ML_SCIENTIST, "apple-ml"
    )
    assert postings["PIPE-114438158"].salary_min is None
    assert postings["PIPE-114438158"].url == SPECIALIST


async def test_collect_a_detail_page_url() -> None:
    fetcher = FakeFetcher({ML_SCIENTIST: fixture("details-200550562.html")})
    collected = await collect(spec(ML_SCIENTIST), fetcher)
    assert fetcher.calls == [ML_SCIENTIST]
    assert [p.id for p in collected.postings] == ["200550562"]
    assert collected.postings[0].salary_max == 243300


async def test_collect_fetches_details_from_a_loopback_origin() -> None:
    base = "http://127.0.0.1:8123/en-us/"
    fetcher = FakeFetcher(
        {
            base + "search?search=ml": fixture("search-page1.html"),
            base + "details/200550562/machine-learning-applied-scientist": fixture(
                "details-200550562.html"
            ),
        }
    )
    collected = await collect(spec(base + "search?search=ml"), fetcher)
    assert collected.postings[0].salary_min == 131500
    assert (
        collected.postings[0].url == base + "details/200550562/machine-learning-applied-scientist"
    )
    assert base + "details/114438158/us-specialist-full-time-and-part-time" in fetcher.calls


async def test_collect_over_http_from_a_loopback_server() -> None:
    async with serve() as server, httpx.AsyncClient() as client:
        server.set("/en-us/search", Reply(200, fixture("search-page1.html")))
        server.set(
            "/en-us/details/200526165/machine-learning-researcher-multimodal-foundation-models",
            Reply(200, fixture("details-200526165.html")),
        )
        collected = await collect(spec(server.url("/en-us/search?search=ml")), HttpFetcher(client))
    postings = by_id(collected.postings)
    assert postings["200526165"].salary_min == 175800
    assert postings["200550562"].salary_min is None  # its detail page 404'd
    assert sorted(r.path_qs for r in server.requests) == [
        "/en-us/details/114438158/us-specialist-full-time-and-part-time",
        "/en-us/details/200526165/machine-learning-researcher-multimodal-foundation-models",
        "/en-us/details/200550562/machine-learning-applied-scientist",
        "/en-us/search?search=ml",
    ]


async def test_collect_follows_pages_until_the_total() -> None:
    page2 = SEARCH + "&page=2"
    fetcher = FakeFetcher(
        {
            SEARCH: search_page([row(n) for n in range(20)], 23),
            page2: search_page([row(n) for n in range(20, 23)], 23),
        }
    )
    collected = await collect(spec(), fetcher)
    assert collected.complete
    assert [c for c in fetcher.calls if "/search" in c] == [SEARCH, page2]
    assert len(fetcher.calls) == 2 + 23  # every detail was asked for (and 404'd)
    assert [p.id for p in collected.postings] == [str(200_000_000 + n) for n in range(23)]


async def test_collect_pages_through_saved_files(tmp_path: Path) -> None:
    (tmp_path / "search-page1.html").write_bytes(search_page([row(n) for n in range(20)], 21))
    (tmp_path / "search-page2.html").write_bytes(search_page([row(20)], 21))
    (tmp_path / "details-200000020.html").write_bytes(fixture("details-200550562.html"))
    async with httpx.AsyncClient() as client:
        collected = await collect(
            spec((tmp_path / "search-page1.html").as_uri()), HttpFetcher(client)
        )
    assert collected.complete
    assert len(collected.postings) == 21
    last = collected.postings[-1]
    assert (last.id, last.title, last.salary_min) == ("200000020", "Role 20", 131500)


@pytest.mark.parametrize(
    ("start", "next_page"),
    [
        (SEARCH, SEARCH + "&page=2"),
        (SEARCH + "&page=3&x=1", SEARCH + "&x=1&page=4"),
        ("file:///srv/apple/search-page1.html", "file:///srv/apple/search-page1.html?page=2"),
    ],
)
async def test_collect_asks_for_the_next_page_number(start: str, next_page: str) -> None:
    fetcher = FakeFetcher(
        {
            start: search_page([row(n) for n in range(20)], 21),
            next_page: search_page([row(20)], 21),
        }
    )
    collected = await collect(spec(start), fetcher)
    assert collected.complete
    assert len(collected.postings) == 21


async def test_collect_cut_by_max_pages_is_incomplete() -> None:
    fetcher = FakeFetcher({SEARCH: search_page([row(n) for n in range(20)], 45)})
    collected = await collect(spec(max_pages=1), fetcher)
    assert not collected.complete
    assert len(collected.postings) == 20
    assert [c for c in fetcher.calls if "/search" in c] == [SEARCH]
    assert len(fetcher.calls) == 1 + 20  # the rows read are still completed


async def test_collect_stops_when_a_page_adds_nothing_new() -> None:
    # A saved page asked for page 2 answers with itself; a full page without a total
    # suggests more.
    body = search_page([row(n) for n in range(20)], None)
    fetcher = FakeFetcher({SEARCH: body, SEARCH + "&page=2": body})
    collected = await collect(spec(), fetcher)
    assert collected.complete
    assert len(collected.postings) == 20
    assert [c for c in fetcher.calls if "/search" in c] == [SEARCH, SEARCH + "&page=2"]


async def test_collect_fails_when_the_search_page_fails() -> None:
    with pytest.raises(SourceError, match="HTTP 404"):
        await collect(spec(), FakeFetcher({}))


# --- robustness -------------------------------------------------------------------

_JSON = json_values(
    ["id", "postingTitle", "transformedPostingTitle", "positionId", "type", "locations",
     "city", "stateProvince", "countryName", "name", "team", "teams", "teamName",
     "teamNames", "homeOffice", "postDateInGMT", "postingDate", "employmentType",
     "jobSummary", "description", "keyQualifications", "postingFooters",
     "localizations", "en_US", "content", "managedPipelineRole"],
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.binary())
def test_parse_page_on_arbitrary_bytes(body: bytes) -> None:
    with contextlib.suppress(SourceError):
        parse_page(body, SEARCH, "s")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="\\\"'xu{}0123456789abcdefABCDEF\n\r", max_size=40))
def test_parse_page_on_arbitrary_literals(literal: str) -> None:
    body = f'window.__staticRouterHydrationData = JSON.parse("{literal}")'
    with contextlib.suppress(SourceError):
        parse_page(body.encode(), SEARCH, "s")


@settings(max_examples=200, deadline=None)
@given(st.lists(_JSON, max_size=4), _JSON, st.sampled_from([SEARCH, "file:///x/s1.html"]))
def test_parse_page_on_arbitrary_rows(rows: list[Any], job: Any, url: str) -> None:
    for data in (
        {"loaderData": {"search": {"searchResults": rows, "totalRecords": len(rows)}}},
        {"loaderData": {"jobDetails": {"jobsData": job}}},
    ):
        try:
            page = parse_page(hydration_page(data), url, "s")
        except SourceError:
            continue
        for posting in page.postings:
            json.dumps(posting.to_json(), ensure_ascii=False).encode()
