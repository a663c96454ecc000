# ruff: noqa: RUF001  (fixture text uses typographic dashes and quotes)
from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from fakes import FakeFetcher
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import SourceError
from bot.models import Posting
from bot.sources.base import SourceSpec
from bot.sources.cvpr import collect, parse_page

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "cvpr"
BOARD = "https://cvpr.thecvf.com/careers/"
PAGE2 = "https://cvpr.thecvf.com/careers/?page=2"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(name: str, url: str = BOARD, company: str | None = None) -> list[Posting]:
    return parse_page(fixture(name), url, "cvpr-2024", company)[0]


def by_title(postings: list[Posting], title: str) -> Posting:
    (posting,) = [p for p in postings if p.title == title]
    return posting


def card(title: str, company: str, apply: str, location: str = "") -> str:
    location_line = f'<p class="job-location">{location}</p>' if location else ""
    return (
        f'<div class="card"><div class="card-header"><button>'
        f'<span class="job-title">{title}</span><span class="job-company">{company}</span>'
        f'</button></div><div class="card-body">{location_line}'
        f'<div class="job-description"><p>About {title}.</p></div>'
        f'<a href="{apply}">Apply</a></div></div>'
    )


def page(cards: str, pagination: str = "") -> bytes:
    return f"<html><body><main>{cards}</main><nav>{pagination}</nav></body></html>".encode()


# --- parse_page ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "count"), [("page1.html", 14), ("page2.html", 12), ("page1-v2.html", 14)]
)
def test_posting_counts(name: str, count: int) -> None:
    postings = parse(name)
    assert len(postings) == count
    assert len({p.id for p in postings}) == count


@pytest.mark.parametrize(
    ("name", "title", "company", "locations", "apply_url", "starts", "ends"),
    [
        (
            "page1.html",
            "Senior Researcher – Machine Learning and Reinforcement Learning",
            "Microsoft Research",
            ("New York, United States",),
            "https://jobs.careers.microsoft.com/global/en/job/1713285/Senior-Researcher",
            "Overview Microsoft Research New York City (MSR NYC) is seeking applicants",
            "used worldwide.",
        ),
        (
            "page1.html",
            "Sr. Applied Scientist, Consumer Electronics Technology",
            "Amazon",
            (),  # empty location field: the location is part of the description
            "https://www.amazon.jobs/en/jobs/2656042/sr-applied-scientist-ce-tech",
            "Location Seattle, WA\n\nDescription Interested in solving challenging problems",
            "Anthropic’s Claude / Mistral, among others.",
        ),
        (
            "page1.html",
            "Applied Scientist – Neural Rendering (NeRFs & Gaussian Splatting)",
            "Wayve",
            ("London",),
            "https://wayve.ai/careers/job/5123456?gh_jid=5123456",
            "Who we are Established in 2017",
            "we even eat lunch together every day",
        ),
        (
            "page2.html",
            "Software Engineer, Platform Engineering",
            "Anduril Industries",
            ("Seattle, WA", "Costa Mesa, CA", "Boston, MA"),
            "https://boards.greenhouse.io/andurilindustries/jobs/4382214007",
            "Anduril Industries is a defense technology company",
            "A bias towards rapid delivery and iteration",
        ),
        (
            "page2.html",
            "Open Roles in Autonomous Driving and Robotics",
            "Helm.ai",
            ("Redwood City, CA", "Remote, US"),  # "or Remote, US" loses the connector
            "https://www.helm.ai/careers",
            "We help make autonomous technologies more efficient, safer, and accessible.",
            "Visit our website to apply for a position.",
        ),
        (
            "page2.html",
            "Research Engineer",
            "Helm.ai",
            (),
            "https://www.helm.ai/careers",
            "Excited to see you at CVPR!",
            "\n• Work closely with software and autonomous vehicle engineers to deploy"
            " algorithms on internal and customer vehicle platforms",
        ),
    ],
)
def test_posting_fields(
    name: str,
    title: str,
    company: str,
    locations: tuple[str, ...],
    apply_url: str,
    starts: str,
    ends: str,
) -> None:
    posting = by_title(parse(name), title)
    assert posting.source == "cvpr-2024"
    assert posting.company == company
    assert posting.locations == locations
    assert posting.url == posting.apply_url == apply_url
    assert posting.description is not None
    assert posting.description.startswith(starts)
    assert posting.description.endswith(ends)
    assert (posting.remote, posting.posted_at, posting.salary_min, posting.team) == (None,) * 4


def test_description_is_plain_text_without_the_apply_link() -> None:
    posting = by_title(parse("page2.html"), "AI Research Scientist")
    assert posting.description is not None
    assert "<" not in posting.description
    assert "\n\nWhat you’ll do at Figma:\n\n• Driving fundamental" in posting.description
    msr = by_title(parse("page1.html"), "Senior Researcher – DeepSpeed")
    assert "Apply" not in (msr.description or "")


def test_description_paragraph_starting_with_apply_is_kept() -> None:
    stanford = by_title(
        parse("page1-v2.html"), "Postdoctoral Research Fellow – AI for Neuroimaging"
    )
    assert stanford.company == "Stanford University"
    assert stanford.apply_url == "https://forms.gle/KPQHPGGeXJcEsD6V6"
    assert stanford.description is not None
    assert stanford.description.endswith(
        "\n\nApply For full consideration, send a complete application via this form: "
        "https://forms.gle/KPQHPGGeXJcEsD6V6"
    )


def test_ids_survive_unrelated_page_changes() -> None:
    old = {p.title: p for p in parse("page1.html")}
    new = {p.title: p for p in parse("page1-v2.html")}
    shared = old.keys() & new.keys()
    assert len(shared) == 13
    assert {title: old[title].id for title in shared} == {title: new[title].id for title in shared}
    assert set(old) - set(new) == {"Senior Fullstack Engineer"}
    cognex = "Principal Software Engineer – Core Vision Technology"
    assert old[cognex].description != new[cognex].description


def test_shared_apply_urls_give_distinct_ids() -> None:
    trinity = [
        p for p in parse("page1.html") + parse("page2.html") if p.url == "https://sonhua.github.io/"
    ]
    assert len(trinity) == 2
    assert trinity[0].id != trinity[1].id


def test_company_falls_back_to_logo_alt_then_configuration() -> None:
    body = page(
        '<div class="posting"><h3>Vision Intern</h3><img alt="Acme Labs" src="x.png">'
        '<p>Summer role.</p><a href="/jobs/1">Apply</a></div>'
        '<div class="posting"><h3>Robotics Intern</h3><p>Winter role.</p>'
        '<a href="/jobs/2">Apply</a></div>'
    )
    postings, _ = parse_page(body, "https://icml.cc/careers/", "icml", "ICML sponsor")
    assert [(p.title, p.company, p.url, p.description) for p in postings] == [
        ("Vision Intern", "Acme Labs", "https://icml.cc/jobs/1", "Summer role."),
        ("Robotics Intern", "ICML sponsor", "https://icml.cc/jobs/2", "Winter role."),
    ]


def test_card_without_title_does_not_swallow_its_neighbours() -> None:
    body = page(
        card("Engineer", "Acme", "https://acme.example/1")
        + '<div class="card"><p>No title here.</p><a href="https://x.example/">Apply</a></div>'
        + card("Scientist", "Acme", "https://acme.example/2")
    )
    postings, _ = parse_page(body, BOARD, "s", None)
    assert [(p.title, p.description) for p in postings] == [
        ("Engineer", "About Engineer."),
        ("Scientist", "About Scientist."),
    ]


def test_page_without_cards_is_empty() -> None:
    assert parse_page(b"<html><body><p>Maintenance</p></body></html>", BOARD, "s", None) == (
        [],
        None,
    )


@pytest.mark.parametrize(
    "body", [b"", b"   \n", b"\x89PNG\r\n\x1a\n\x00\x00<p>", b'{"jobs": []}', b"a < b"]
)
def test_body_that_is_not_html_is_an_error(body: bytes) -> None:
    with pytest.raises(SourceError, match="not an HTML page"):
        parse_page(body, BOARD, "s", None)


# --- pagination ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "url", "expected"),
    [
        ("page1.html", BOARD, PAGE2),
        ("page1.html", BOARD + "?page=1&page=1", PAGE2),
        ("page1.html", "file:///srv/fixtures/cvpr/page1.html", "file:///srv/fixtures/cvpr/page1.html?page=2"),
        ("page2.html", PAGE2, None),
        ("page2.html", BOARD + "?page=1&page=2", None),
        ("page2.html", "file:///srv/fixtures/cvpr/page2.html", None),  # current page from markup
    ],
)  # fmt: skip
def test_next_page_of_fixtures(name: str, url: str, expected: str | None) -> None:
    assert parse_page(fixture(name), url, "s", None)[1] == expected


@pytest.mark.parametrize(
    ("url", "pagination", "expected"),
    [
        pytest.param(
            BOARD + "?page=1&page=2",
            '<a href="?page=1&amp;page=2&amp;page=1">1</a>'
            '<a href="?page=1&amp;page=2&amp;page=3" aria-label="Next">Next »</a>',
            BOARD + "?page=3",
            id="accumulated-query",
        ),
        pytest.param(
            BOARD,
            '<a href="?page=3">3</a><a href="?page=2">2</a><a href="?page=4">4</a>',
            PAGE2,
            id="lowest-higher-number-without-next",
        ),
        pytest.param(
            BOARD,
            '<a href="?page=2">2</a><a href="?page=5" aria-label="Next">Next</a>',
            BOARD + "?page=5",
            id="next-link-wins",
        ),
        pytest.param(
            PAGE2,
            '<a href="?page=1">1</a><li class="disabled"><a href="?page=3">Next</a></li>',
            None,
            id="disabled-next",
        ),
        pytest.param(
            BOARD,
            '<a href="https://example.com/forum?page=2">Next</a><a href="/other/?page=2">2</a>',
            None,
            id="other-boards-ignored",
        ),
        pytest.param(BOARD, '<a href="?page=abc">Next</a><a href="http://[x/?page=2">2</a>', None,
                     id="garbage-links"),
    ],
)  # fmt: skip
def test_next_page_canonicalisation(url: str, pagination: str, expected: str | None) -> None:
    body = page(card("Engineer", "Acme", "https://acme.example/apply"), pagination)
    assert parse_page(body, url, "s", None)[1] == expected


# --- collect -------------------------------------------------------------------


def spec(url: str = BOARD, max_pages: int = 20) -> SourceSpec:
    return SourceSpec(name="cvpr-2024", type="cvpr", url=url, max_pages=max_pages)


async def test_collect_follows_pages() -> None:
    fetcher = FakeFetcher({BOARD: fixture("page1.html"), PAGE2: fixture("page2.html")})
    collected = await collect(spec(), fetcher)
    postings = collected.postings
    assert collected.complete
    assert fetcher.calls == [BOARD, PAGE2]
    assert len(postings) == 26
    assert len({p.id for p in postings}) == 26
    assert postings[0].title == "Senior Researcher – Machine Learning and Reinforcement Learning"
    assert postings[-1].title == "AI Research Scientist"


async def test_collect_dedupes_across_pages_first_copy_wins() -> None:
    # Order is unstable between fetches: page 2 repeats 13 postings of page 1.
    fetcher = FakeFetcher({BOARD: fixture("page1-v2.html"), PAGE2: fixture("page1.html")})
    postings = (await collect(spec(), fetcher)).postings
    assert len(postings) == 15
    cognex = by_title(postings, "Principal Software Engineer – Core Vision Technology")
    assert "(three days a week on site)" in (cognex.description or "")


async def test_collect_stops_on_a_looping_next_link() -> None:
    # Page 2 serves page 1 again, whose Next link points at page 2: fetched already.
    fetcher = FakeFetcher({BOARD: fixture("page1.html"), PAGE2: fixture("page1.html")})
    postings = (await collect(spec(), fetcher)).postings
    assert fetcher.calls == [BOARD, PAGE2]
    assert len(postings) == 14


async def test_collect_stops_at_max_pages() -> None:
    pages = {
        f"{BOARD}?page={n}": page(
            card(f"Role {n}", "Acme", f"https://acme.example/{n}"),
            f'<a href="?page={n}&amp;page={n + 1}" aria-label="Next">Next</a>',
        )
        for n in range(1, 10)
    }
    fetcher = FakeFetcher(pages)
    collected = await collect(spec(BOARD + "?page=1", max_pages=3), fetcher)
    assert fetcher.calls == [f"{BOARD}?page={n}" for n in (1, 2, 3)]
    assert [p.title for p in collected.postings] == ["Role 1", "Role 2", "Role 3"]
    assert not collected.complete, "unread pages: absence must not close postings"


async def test_collect_propagates_a_failed_later_page() -> None:
    fetcher = FakeFetcher({BOARD: fixture("page1.html")})
    with pytest.raises(SourceError, match="404"):
        await collect(spec(), fetcher)


# --- robustness ----------------------------------------------------------------

_HTML_BITS = st.sampled_from(
    [
        "<div class='card'>", "</div>", "<h3>", "</h3>", "<span class='job-title'>", "</span>",
        "<p class='job-location'>", "</p>", "<a href='?page=2&page=x'>", "<a href='http://[::1'>",
        "Apply", "Next", "</a>", "<ul><li>", "</li></ul>", "<img alt='Co'>", ";", " or ",
        "&amp;", "&#0;", "<script>", "<li class='disabled'>", "<span aria-current='page'>",
    ]
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.binary())
def test_parse_page_on_arbitrary_bytes(body: bytes) -> None:
    with contextlib.suppress(SourceError):
        parse_page(body, BOARD, "s", None)


@settings(max_examples=200, deadline=None)
@given(st.lists(_HTML_BITS | st.text(max_size=20), max_size=40).map("".join))
def test_parse_page_on_html_soup(soup: str) -> None:
    # A NUL byte at the start marks binary content; elsewhere it is just text.
    postings, next_url = parse_page(f"<body>{' ' * 8000}{soup}".encode(), BOARD, "s", None)
    assert all(p.title for p in postings)
    assert next_url is None or next_url.startswith(BOARD + "?page=")
