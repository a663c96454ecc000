from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes import FakeFetcher
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import SourceError
from bot.fetch import HttpFetcher
from bot.models import Posting
from bot.sources.base import SourceSpec
from bot.sources.html import Layout, collect, layout_from_options, parse_page
from bot.text import stable_id

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "html"
LAB = "https://www.chalmers.se/en/departments/e2/research/computer-vision/"
CHALMERS = "Chalmers University of Technology"
# The selectors of the fixture pages, as a config would give them.
SELECTORS = {
    "item": "ul.vacancies li.vacancy",
    "title": "h3 a",
    "url": "h3 a@href",
    "location": ".location",
    "posted": "time@datetime",
    "description": ".summary",
    "next_page": "a[rel=next]@href",
}
LAYOUT = layout_from_options({"selectors": SELECTORS})
PHD_URL = LAB + "positions/phd-geometric-deep-learning/"
POSTDOC_URL = LAB + "positions/postdoc-neural-rendering/"
ENGINEER_URL = (
    "https://www.chalmers.se/en/about-chalmers/work-with-us/vacancies/?rmpage=job&rmjob=12876"
)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


BOTH_PAGES = {
    LAB: fixture("lab-positions-page1.html"),
    LAB + "?page=2": fixture("lab-positions-page2.html"),
}


def parse(name: str, url: str = LAB) -> tuple[list[Posting], str | None]:
    return parse_page(fixture(name), url, "lab", CHALMERS, LAYOUT)


def page(items: str, head: str = "", after: str = "") -> bytes:
    return f"<html><head>{head}</head><body><ul>{items}</ul>{after}</body></html>".encode()


def layout(**selectors: Any) -> Layout:
    separator = selectors.pop("location_separator", None)
    options: dict[str, Any] = {"selectors": {"item": "li", "title": "h3", **selectors}}
    if separator:
        options["location_separator"] = separator
    return layout_from_options(options)


def postings_of(
    body: bytes, lay: Layout, url: str = LAB, company: str | None = None
) -> list[Posting]:
    return parse_page(body, url, "lab", company, lay)[0]


def spec(url: str, max_pages: int = 20, selectors: dict[str, str] = SELECTORS) -> SourceSpec:
    return SourceSpec(name="lab", type="html", url=url, company=CHALMERS,
                      options={"selectors": selectors}, max_pages=max_pages)  # fmt: skip


# --- fixtures -------------------------------------------------------------------


def test_page1_postings_and_next_page() -> None:
    postings, next_url = parse("lab-positions-page1.html")
    assert next_url == LAB + "?page=2"
    assert [p.to_json() for p in postings] == [
        {
            "source": "lab",
            "id": stable_id(PHD_URL),
            "title": "PhD Position in Geometric Deep Learning",
            "company": CHALMERS,
            "locations": ["Gothenburg, Sweden"],
            "remote": None,
            "team": None,
            "employment_type": None,
            "posted_at": "2024-05-20",
            "salary_min": None,
            "salary_max": None,
            "salary_currency": None,
            "salary_period": None,
            "url": PHD_URL,  # relative href, against <base href>
            "apply_url": None,
            "description": "Fully-funded PhD position on 3D scene analysis & 3D generative "
            "diffusion models. Contact Prof. Fredrik Kahl.",
        },
        {
            "source": "lab",
            "id": stable_id(POSTDOC_URL),
            "title": "Postdoc in Neural Rendering & 3D Reconstruction",  # &amp; decoded once
            "company": CHALMERS,
            "locations": ["Gothenburg, Sweden"],
            "remote": None,
            "team": None,
            "employment_type": None,
            "posted_at": "2024-05-02",
            "salary_min": None,
            "salary_max": None,
            "salary_currency": None,
            "salary_period": None,
            "url": POSTDOC_URL,  # root-relative href
            "apply_url": None,
            "description": "Two-year postdoc on NeRFs and Gaussian splatting for outdoor scenes.",
        },
    ]


def test_page2_posting_and_no_next_page() -> None:
    (posting,), next_url = parse("lab-positions-page2.html", LAB + "?page=2")
    assert next_url is None  # only rel=prev
    assert posting.url == ENGINEER_URL  # absolute href, &amp; decoded
    assert posting.id == stable_id(ENGINEER_URL)
    assert (posting.title, posting.locations, posting.posted_at) == (
        "Research Engineer (Autonomous Driving Datasets)",
        ("Gothenburg / Lindholmen, Sweden",),
        "2024-04-11",
    )


def test_fixture_selectors_in_attribute_css_form_read_the_same() -> None:
    # FORMATS.md spells them "h3 a[href]", "time[datetime]", "a[rel=next][href]".
    css_form = {**SELECTORS, "url": "h3 a[href]", "posted": "time[datetime]",
                "next_page": "a[rel=next][href]"}  # fmt: skip
    body = fixture("lab-positions-page1.html")
    assert parse_page(body, LAB, "lab", CHALMERS, layout_from_options({"selectors": css_form})) == (
        parse("lab-positions-page1.html")
    )


# --- links ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "href", "expected"),
    [
        ("", "jobs/1", "https://site.test/careers/jobs/1"),
        ("", "/jobs/1", "https://site.test/jobs/1"),
        ('<base href="https://cdn.test/en/">', "jobs/1", "https://cdn.test/en/jobs/1"),
        ('<base href="https://cdn.test/en/">', "/jobs/1", "https://cdn.test/jobs/1"),
        ('<base href="https://cdn.test/en/">', "https://other.test/j", "https://other.test/j"),
        ('<base href="/intl/de/">', "jobs/1", "https://site.test/intl/de/jobs/1"),  # base relative
        ('<base href="sub/">', "?id=1", "https://site.test/careers/sub/?id=1"),
        ('<base target="_blank">', "jobs/1", "https://site.test/careers/jobs/1"),  # no href
        ("", "javascript:apply(1)", None),
        ("", "  ", None),
        ("", "http://[::1", None),
    ],
)
def test_links_resolve_against_base_href(base: str, href: str, expected: str | None) -> None:
    body = page(f'<li><h3><a href="{href}">Engineer</a></h3></li>', head=base)
    (posting,) = postings_of(body, layout(), "https://site.test/careers/")
    assert posting.url == expected


@pytest.mark.parametrize(
    ("item", "selectors", "expected"),
    [
        pytest.param('<li><h3><a href="/a">T</a></h3></li>', {}, "https://s.test/a",
                     id="first-link-inside-title"),
        pytest.param('<li><a href="/card"><h3>T</h3></a></li>', {}, "https://s.test/card",
                     id="link-around-title"),
        pytest.param('<li><h3>T</h3><a class="more" href="/m">More</a></li>', {}, None,
                     id="no-link-at-title"),
        pytest.param('<li><h3>T</h3><a class="more" href="/m">More</a></li>', {"url": "a.more"},
                     "https://s.test/m", id="link-selector-without-attr"),
        pytest.param('<li data-href="/d"><h3>T</h3></li>', {"url": "@data-href"},
                     "https://s.test/d", id="item-own-attribute"),
        pytest.param('<li><h3 data-u="/x">T</h3></li>', {"url": "h3 @data-u"},
                     "https://s.test/x", id="space-before-at"),
    ],
)  # fmt: skip
def test_url_selector(item: str, selectors: dict[str, str], expected: str | None) -> None:
    (posting,) = postings_of(page(item), layout(**selectors), "https://s.test/list")
    assert posting.url == expected


# --- fields ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "selectors", "expected"),
    [
        pytest.param("<li><h3> Senior&nbsp;Engineer &amp;\n Lead </h3></li>", {},
                     {"title": "Senior Engineer & Lead"}, id="title-text-normalised"),
        pytest.param("<li><h3>Post<b>doc</b><br>Vision</h3></li>", {},
                     {"title": "Postdoc Vision"}, id="title-inline-and-break"),
        pytest.param('<li><h3><a title="Full &quot;title&quot;">Short</a></h3></li>',
                     {"title": "h3 a@title"}, {"title": 'Full "title"'}, id="title-attr"),
        pytest.param('<li><h3>T</h3><p class="loc">Berlin; Remote ;;Munich</p></li>',
                     {"location": ".loc", "location_separator": ";"},
                     {"locations": ("Berlin", "Remote", "Munich")}, id="location-separator"),
        pytest.param('<li><h3>T</h3><p class="loc">Berlin; Munich</p></li>',
                     {"location": ".loc"}, {"locations": ("Berlin; Munich",)},
                     id="no-separator-no-split"),
        pytest.param('<li><h3>T</h3><i class="loc">Berlin</i><i class="loc">Oslo</i>'
                     '<i class="loc">Berlin</i></li>', {"location": ".loc"},
                     {"locations": ("Berlin", "Oslo")}, id="every-location-match"),
        pytest.param('<li data-where="Lund · Malmö"><h3>T</h3></li>',
                     {"location": "@data-where", "location_separator": "·"},
                     {"locations": ("Lund", "Malmö")}, id="location-attr"),
        pytest.param('<li><h3>T</h3><span class="co">Acme &amp; Co</span></li>',
                     {"company": ".co"}, {"company": "Acme & Co"}, id="company-from-page"),
        pytest.param('<li><h3>T</h3><span class="co"> </span></li>', {"company": ".co"},
                     {"company": "Configured"}, id="blank-company-uses-configured"),
        pytest.param('<li><h3>T</h3><span class="d">Posted <time '
                     'datetime="2024-05-09T23:30:00-02:00">May 9</time></span></li>',
                     {"posted": "time"}, {"posted_at": "2024-05-10"}, id="posted-datetime-utc"),
        pytest.param('<li><h3>T</h3><span class="d">09 May 2024</span></li>',
                     {"posted": ".d"}, {"posted_at": "2024-05-09"}, id="posted-text"),
        pytest.param('<li><h3>T</h3><span class="d">Posted recently</span></li>',
                     {"posted": ".d"}, {}, id="posted-unparseable"),
        pytest.param('<li><h3>T</h3><div class="s"><p>One &amp; two</p><ul><li>x</li></ul>'
                     "</div></li>", {"description": ".s", "item": "ul.jobs > li"},
                     {"description": "One & two\n\n• x"}, id="description-html"),
        pytest.param('<li data-s="Short &lt;summary&gt;"><h3>T</h3></li>',
                     {"description": "@data-s"}, {"description": "Short <summary>"},
                     id="description-attr"),
    ],
)  # fmt: skip
def test_field_selectors(item: str, selectors: dict[str, Any], expected: dict[str, Any]) -> None:
    body = f'<html><body><ul class="jobs">{item}</ul></body></html>'.encode()
    (posting,) = postings_of(body, layout(**selectors), company="Configured")
    defaults = {"title": "T", "company": "Configured", "locations": (), "posted_at": None,
                "description": None}  # fmt: skip
    actual = {key: getattr(posting, key) for key in defaults}
    assert actual == {**defaults, **expected}


def test_items_without_a_title_are_skipped() -> None:
    body = page("<li><h3> </h3></li><li><p>no heading</p></li><li><h3>Kept</h3></li>")
    assert [p.title for p in postings_of(body, layout())] == ["Kept"]


def test_no_matching_items_is_an_empty_page() -> None:
    assert parse_page(page(""), LAB, "lab", None, LAYOUT) == ([], None)


# --- ids ------------------------------------------------------------------------


def test_id_comes_from_the_url_without_fragment() -> None:
    one = postings_of(page('<li><h3><a href="/j/1#apply">A</a></h3></li>'), layout())
    other = postings_of(page('<li><h3><a href="/j/1">Renamed</a></h3></li>'), layout())
    assert one[0].id == other[0].id == stable_id("https://www.chalmers.se/j/1")


def test_links_back_to_the_listing_identify_by_company_title_and_locations() -> None:
    items = (
        '<li><h3><a href="#job-1">A</a></h3><p class="l">Oslo</p></li>'
        '<li><h3><a href="#job-2">B</a></h3><p class="l">Oslo</p></li>'
        '<li><h3>C</h3><span class="co">Acme</span></li>'
    )
    postings = postings_of(page(items), layout(location=".l", company=".co"), company="Config")
    assert [p.url for p in postings] == [LAB + "#job-1", LAB + "#job-2", None]
    assert [p.id for p in postings] == [
        stable_id("", "A", "Oslo"),  # the configured company is not part of the id
        stable_id("", "B", "Oslo"),
        stable_id("Acme", "C"),
    ]


# --- next page ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "head", "href", "expected"),
    [
        pytest.param("https://s.test/jobs/", "", "?page=2", "https://s.test/jobs/?page=2",
                     id="relative"),
        pytest.param("https://s.test/jobs/", '<base href="/en/jobs/">', "?page=2",
                     "https://s.test/en/jobs/?page=2", id="same-site-base"),
        pytest.param("file:///srv/saved/list1.html", f'<base href="{LAB}">', "?page=2",
                     "file:///srv/saved/list1.html?page=2", id="saved-copy-pages-beside-it"),
        pytest.param("http://127.0.0.1:8000/list.html", f'<base href="{LAB}">', "?page=2",
                     "http://127.0.0.1:8000/list.html?page=2", id="mirror-stays-on-mirror"),
        pytest.param("https://s.test/jobs/", "", "/jobs/2#top", "https://s.test/jobs/2",
                     id="fragment-dropped"),
        pytest.param("https://s.test/jobs/", "", "mailto:x@s.test", None, id="not-a-page"),
    ],
)  # fmt: skip
def test_next_page(url: str, head: str, href: str, expected: str | None) -> None:
    body = page("", head=head, after=f'<a rel="next" href="{href}">Next</a>')
    assert parse_page(body, url, "lab", None, LAYOUT)[1] == expected


def test_next_page_selector_without_attr_reads_the_link() -> None:
    body = page("", after='<nav class="pager"><a href="?p=2">2</a></nav>')
    lay = layout(next_page="nav.pager")
    assert parse_page(body, "https://s.test/j", "lab", None, lay)[1] == "https://s.test/j?p=2"


# --- options --------------------------------------------------------------------


NEEDS = "html source needs selectors: item and title"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, NEEDS),
        ({"selectors": None}, NEEDS),
        ({"selectors": {"item": "li"}}, NEEDS),
        ({"selectors": {"title": "h3"}}, NEEDS),
        ({"selectors": {"item": " ", "title": "h3"}}, NEEDS),
        ({"selectors": {"item": "li", "title": 3}}, NEEDS),
        ({"selectors": {"item": "li[", "title": "h3"}}, "html: invalid CSS in selector 'item'"),
        ({"selectors": {"item": "li", "title": "h3", "url": "a,@href"}},
         "html: invalid CSS in selector 'url'"),
        ({"selectors": {"item": "li", "title": "h3", "posted": 7}},
         "html: selector 'posted' must be a string"),
    ],
)  # fmt: skip
def test_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(SourceError, match=f"^{message}"):
        layout_from_options(options)


async def test_collect_without_selectors_fails_before_fetching() -> None:
    fetcher = FakeFetcher({})
    with pytest.raises(SourceError, match="needs selectors"):
        await collect(SourceSpec(name="x", type="html", url=LAB), fetcher)
    assert fetcher.calls == []


@pytest.mark.parametrize("body", [b"\x00\x01\x02<html>", b"just text, no markup", b""])
def test_not_html_is_an_error(body: bytes) -> None:
    with pytest.raises(SourceError, match=r"^html: .* is not an HTML page"):
        parse_page(body, LAB, "lab", None, LAYOUT)


# --- collect --------------------------------------------------------------------


async def test_collect_follows_next_page_links() -> None:
    fetcher = FakeFetcher(BOTH_PAGES)
    collected = await collect(spec(LAB), fetcher)
    assert fetcher.calls == [LAB, LAB + "?page=2"]
    assert collected.complete
    assert [p.url for p in collected.postings] == [PHD_URL, POSTDOC_URL, ENGINEER_URL]
    assert {p.company for p in collected.postings} == {CHALMERS}


async def test_collect_pages_through_saved_files_with_the_real_fetcher() -> None:
    first = (FIXTURES / "lab-positions-page1.html").as_uri()
    async with httpx.AsyncClient() as client:
        collected = await collect(spec(first), HttpFetcher(client))
    assert collected.complete
    # The links still point at the live site named by the saved pages' <base href>.
    assert [p.url for p in collected.postings] == [PHD_URL, POSTDOC_URL, ENGINEER_URL]


async def test_collect_stops_at_max_pages() -> None:
    fetcher = FakeFetcher(BOTH_PAGES)
    collected = await collect(spec(LAB, max_pages=1), fetcher)
    assert fetcher.calls == [LAB]
    assert len(collected.postings) == 2
    assert not collected.complete, "unread pages: absence must not close postings"


async def test_collect_never_fetches_a_page_twice() -> None:
    looping = page("<li><h3><a href='/j/1'>A</a></h3></li>",
                   after='<a class="next" href="?page=2">n</a>')  # fmt: skip
    fetcher = FakeFetcher({"https://s.test/j": looping, "https://s.test/j?page=2": looping})
    selectors = {"item": "li", "title": "h3", "next_page": "a.next@href"}
    collected = await collect(spec("https://s.test/j", selectors=selectors), fetcher)
    assert fetcher.calls == ["https://s.test/j", "https://s.test/j?page=2"]
    assert collected.complete
    assert [p.title for p in collected.postings] == ["A"]  # the first copy of an id wins


async def test_collect_propagates_a_failed_later_page() -> None:
    fetcher = FakeFetcher({LAB: fixture("lab-positions-page1.html")})
    with pytest.raises(SourceError, match="404"):
        await collect(spec(LAB), fetcher)


# --- robustness -----------------------------------------------------------------

_HTML_BITS = st.sampled_from(
    ["<ul class='vacancies'>", "<li class='vacancy'>", "</li>", "<h3>", "</h3>", "<a href='",
     "'>", "</a>", "<a rel=next href='?page=2'>", "<a rel='next' href='http://[::1'>",
     "<span class='location'>", "</span>", "<time datetime='", "<base href='", "&amp;",
     "&#0;", "<script>", "javascript:", "//", "#", "\x00"]
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.binary())
def test_parse_page_on_arbitrary_bytes(body: bytes) -> None:
    with contextlib.suppress(SourceError):
        parse_page(body, LAB, "lab", None, LAYOUT)


@settings(max_examples=300, deadline=None)
@given(st.lists(_HTML_BITS | st.text(max_size=20), max_size=40).map("".join))
def test_parse_page_on_html_soup(soup: str) -> None:
    postings, next_url = parse_page(f"<body>{' ' * 8000}{soup}".encode(), LAB, "lab", None, LAYOUT)
    assert all(p.title and p.id for p in postings)
    assert next_url is None or next_url.startswith(("http://", "https://", "file:"))
