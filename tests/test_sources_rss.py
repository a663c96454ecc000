# ruff: noqa: RUF001  (fixture text uses typographic dashes and quotes)
from __future__ import annotations

import contextlib
from pathlib import Path
from xml.sax.saxutils import escape

import httpx
import pytest
from fakes import FakeFetcher
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import SourceError
from bot.fetch import HttpFetcher
from bot.models import Posting
from bot.sources.base import SourceSpec
from bot.sources.rss import collect, parse_feed
from bot.text import stable_id

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "rss"
WWR_URL = "https://weworkremotely.com/categories/remote-programming-jobs.rss"
ATOM_URL = "https://www.scss.tcd.ie/feeds/vacancies.atom"
JOBS = "https://weworkremotely.com/remote-jobs/"
MAPTILER = JOBS + "maptiler-location-services-engineer-maps-platform-remote-in-europe"
PROXIFY = JOBS + "proxify-ab-senior-fullstack-developer-python"
LAWNSTARTER = JOBS + "lawnstarter-data-governance-platform-manager"
VERCEL = JOBS + "vercel-senior-manager-solutions-architect"
PHD = "tag:scss.tcd.ie,2024:vacancy/1187"
POSTDOC = "tag:scss.tcd.ie,2024:vacancy/1192"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(name: str, url: str = WWR_URL, company: str | None = None) -> dict[str, Posting]:
    return {p.id: p for p in parse_feed(fixture(name), url, "feed", company)}


def rss(*items: str, channel: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Jobs</title>'
        f"{channel}{''.join(items)}</channel></rss>"
    ).encode()


def item(title: str = "Acme: Engineer", **elements: str) -> str:
    fields = {"guid": "g1", **elements}
    inner = "".join(f"<{tag}>{value}</{tag}>" for tag, value in fields.items())
    return f"<item><title>{escape(title)}</title>{inner}</item>"


def atom(*entries: str, base: str = "", author: str = "") -> bytes:
    base_attribute = f' xml:base="{base}"' if base else ""
    author_element = f"<author><name>{author}</name></author>" if author else ""
    return (
        f'<feed xmlns="http://www.w3.org/2005/Atom"{base_attribute}><title>Vacancies</title>'
        f"<id>tag:x,2024:feed</id>{author_element}{''.join(entries)}</feed>"
    ).encode()


def entry(inner: str = "", title: str = "Researcher", title_type: str = "text") -> str:
    return f'<entry><id>tag:x,2024:1</id><title type="{title_type}">{title}</title>{inner}</entry>'


def one(body: bytes, url: str = WWR_URL, company: str | None = None) -> Posting:
    (posting,) = parse_feed(body, url, "feed", company)
    return posting


# --- fixtures -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ids"),
    [
        ("wwr-programming-v1.rss", [MAPTILER, PROXIFY, LAWNSTARTER]),
        ("wwr-programming-v2.rss", [VERCEL, MAPTILER, PROXIFY]),
        ("university-vacancies.atom", [PHD, POSTDOC]),
    ],
)
def test_ids(name: str, ids: list[str]) -> None:
    assert list(parse(name)) == ids


def test_v2_adds_one_posting_and_removes_one() -> None:
    old, new = parse("wwr-programming-v1.rss"), parse("wwr-programming-v2.rss")
    assert set(new) - set(old) == {VERCEL}
    assert set(old) - set(new) == {LAWNSTARTER}
    assert all(old[key] == new[key] for key in old.keys() & new.keys())


def test_all_fields_of_a_wwr_item() -> None:
    assert parse("wwr-programming-v1.rss")[MAPTILER].to_json() == {
        "source": "feed",
        "id": MAPTILER,
        "title": "Location Services Engineer | Maps Platform (Remote in Europe)",
        "company": "MapTiler",
        "locations": ["Europe Only"],
        "remote": None,  # the feed has no remote field (every WWR job is remote, says no field)
        "team": "Back-End Programming",
        "employment_type": "Full-Time",
        "posted_at": "2024-05-21",
        "salary_min": None,  # WWR pay is free text in the description only
        "salary_max": None,
        "salary_currency": None,
        "salary_period": None,
        "url": MAPTILER,
        "apply_url": None,
        "description": "Headquarters: Zug, Switzerland\nURL: https://www.maptiler.com\n\n"
        "We are building the geocoding & routing APIs behind MapTiler Cloud.\n\n"
        "• Full-time\n• Remote in Europe",
    }


@pytest.mark.parametrize(
    ("name", "key", "expected"),
    [
        ("wwr-programming-v1.rss", PROXIFY,
         ("Proxify AB", "Senior Fullstack Developer (Python)", ("Anywhere in the World",),
          "Full-Stack Programming", "Contract", "2024-05-20")),
        ("wwr-programming-v1.rss", LAWNSTARTER,
         ("LawnStarter", "Data Governance & Platform Manager", ("Anywhere in the World",),
          "All Other Remote", "Full-Time", "2024-05-17")),
        # The <country> Australia is not the region the job is open to: region only.
        ("wwr-programming-v2.rss", VERCEL,
         ("Vercel", "Senior Manager, Solutions Architect", ("Anywhere in the World",),
          "DevOps and Sysadmin", "Full-Time", "2024-05-25")),
        # Atom: company from the feed's author, several categories name no team.
        ("university-vacancies.atom", PHD,
         ("Trinity College Dublin", "Fully Funded PhD Position in 3D Computer Graphics and Vision",
          (), None, None, "2024-05-10")),
        ("university-vacancies.atom", POSTDOC,
         ("Trinity College Dublin", "Postdoctoral Researcher in 3D Graphics and Vision",
          (), None, None, "2024-05-22")),  # published, not the later updated
    ],
)  # fmt: skip
def test_fixture_fields(name: str, key: str, expected: tuple[object, ...]) -> None:
    p = parse(name, ATOM_URL if name.endswith(".atom") else WWR_URL)[key]
    assert (p.company, p.title, p.locations, p.team, p.employment_type, p.posted_at) == expected


def test_atom_links_resolve_against_xml_base() -> None:
    postings = parse("university-vacancies.atom", "file:///srv/fixtures/rss/vacancies.atom")
    assert [p.url for p in postings.values()] == [
        "https://www.scss.tcd.ie/vacancies/1187-phd-3d-graphics-vision/",
        "https://www.scss.tcd.ie/vacancies/1192-postdoc-3d-graphics-vision/",
    ]


@pytest.mark.parametrize("name", ["wwr-programming-v1.rss", "wwr-programming-v2.rss",
                                  "university-vacancies.atom"])  # fmt: skip
def test_descriptions_are_decoded_exactly_once(name: str) -> None:
    for posting in parse(name).values():
        assert posting.description
        for leftover in ("&lt;", "&gt;", "&amp;", "&quot;", "&ndash;", "<p>", "<img", "logo.gif"):
            assert leftover not in posting.description
    texts = " ".join(p.description or "" for p in parse(name).values())
    if name == "wwr-programming-v1.rss":
        assert '"Remote first" since day one.' in texts
        assert "Salary: $110,000 – $140,000 USD" in texts
    if name.endswith(".atom"):
        assert "rolling basis – email a CV, two referees & two representative papers." in texts


# --- field rules ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "company", "expected"),
    [
        pytest.param(rss(item("Acme: Staff Engineer: Rendering")), None,
                     ("Acme", "Staff Engineer: Rendering"), id="split-on-first-colon"),
        pytest.param(rss(item("Acme:  Engineer ")), None, ("Acme", "Engineer"), id="spaces"),
        pytest.param(rss(item("Engineer (m/f/d)")), None, (None, "Engineer (m/f/d)"),
                     id="no-colon"),
        pytest.param(rss(item("Acme:Engineer")), None, (None, "Acme:Engineer"),
                     id="colon-without-space"),
        pytest.param(rss(item("Acme: ")), None, (None, "Acme:"), id="nothing-after-colon"),
        pytest.param(rss(item("Acme: Engineer", author="jobs@acme.example (Acme Corp)")), None,
                     ("Acme Corp", "Acme: Engineer"), id="item-author-no-split"),
        pytest.param(rss(item("Acme: Engineer", author="Acme Corp &lt;jobs@acme.example&gt;")),
                     None, ("Acme Corp", "Acme: Engineer"), id="item-author-angle-address"),
        pytest.param(rss(item("Acme: Engineer", author="jobs@acme.example")), None,
                     ("Acme", "Engineer"), id="bare-email-author-is-no-company"),
        pytest.param(rss(item("Acme: Engineer"), channel="<managingEditor>ed@wwr.example (Ed)"
                                                         "</managingEditor>"), None,
                     ("Acme", "Engineer"), id="rss-channel-editor-is-no-company"),
        pytest.param(rss(item("Acme: Engineer", **{"dc:creator": "Acme GmbH"})
                         ).replace(b"<rss ", b'<rss xmlns:dc="http://purl.org/dc/elements/1.1/" '),
                     None, ("Acme GmbH", "Acme: Engineer"), id="dc-creator"),
        pytest.param(rss(item("PhD position: Gaussian splatting")), "Chalmers",
                     ("Chalmers", "PhD position: Gaussian splatting"),
                     id="configured-company-no-split"),
        pytest.param(atom(entry(title="PhD: Vision"), author="Trinity"), None,
                     ("Trinity", "PhD: Vision"), id="atom-feed-author-no-split"),
        pytest.param(atom(entry("<author><name>Lab</name></author>", title="PhD: Vision"),
                          author="Trinity"), None, ("Lab", "PhD: Vision"),
                     id="atom-entry-author-wins"),
        pytest.param(atom(entry(title='<![CDATA[PhD &amp; <b>Postdoc</b>]]>')), "Uni",
                     ("Uni", "PhD &amp; <b>Postdoc</b>"), id="atom-text-title-is-literal"),
    ],
)  # fmt: skip
def test_company_and_title(body: bytes, company: str | None, expected: tuple[str, str]) -> None:
    posting = one(body, company=company)
    assert (posting.company, posting.title) == expected


def test_atom_html_title_becomes_text() -> None:
    body = atom(entry(title="PhD &amp;amp; &lt;b&gt;Postdoc&lt;/b&gt;", title_type="html"))
    assert one(body).title == "PhD & Postdoc"


@pytest.mark.parametrize(
    ("body", "url", "expected"),
    [
        pytest.param(rss(item(link="jobs/1")), "https://ex.test/feeds/all.rss",
                     "https://ex.test/feeds/jobs/1", id="relative-to-feed"),
        pytest.param(rss(item(link="/jobs/1")), "https://ex.test/feeds/all.rss",
                     "https://ex.test/jobs/1", id="root-relative"),
        pytest.param(rss(item(link="jobs/1")), "file:///srv/feeds/all.rss",
                     "file:///srv/feeds/jobs/1", id="relative-to-file"),
        pytest.param(atom(entry('<link rel="alternate" href="j/1"/>'), base="/vacancies/"),
                     "https://uni.test/feed.atom", "https://uni.test/vacancies/j/1",
                     id="relative-xml-base"),
        pytest.param(atom(entry('<link rel="self" href="x.atom"/><link href="j/1"/>'),
                          base="https://uni.test/v/"),
                     ATOM_URL, "https://uni.test/v/j/1", id="alternate-not-self"),
        pytest.param(rss(item(link="https://acme.test/j/1")), "file:///srv/feeds/all.rss",
                     "https://acme.test/j/1", id="absolute"),
    ],
)  # fmt: skip
def test_links_are_absolute(body: bytes, url: str, expected: str) -> None:
    assert one(body, url).url == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(rss(item(pubDate="Fri, 10 May 2024 23:30:00 -0500")), "2024-05-11",
                     id="rss-offset-to-utc"),
        pytest.param(atom(entry("<published>2024-05-10T00:30:00+02:00</published>")),
                     "2024-05-09", id="atom-offset-to-utc"),
        pytest.param(atom(entry("<updated>2024-05-29T11:15:00+01:00</updated>")),
                     "2024-05-29", id="atom-updated-without-published"),
        pytest.param(rss(item(pubDate="sometime soon")), None, id="unparseable"),
        pytest.param(rss(item()), None, id="absent"),
    ],
)  # fmt: skip
def test_posted_at_is_the_utc_date(body: bytes, expected: str | None) -> None:
    assert one(body).posted_at == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(rss(item(guid="  g-7 ", link="https://x.test/j/7")), "g-7", id="guid"),
        pytest.param(rss('<item><title>A: B</title><link>/j/7</link></item>'),
                     "https://ex.test/j/7", id="link"),
        pytest.param(rss("<item><title>A: B</title></item>"), stable_id("A: B"), id="title"),
    ],
)  # fmt: skip
def test_id_fallbacks(body: bytes, expected: str) -> None:
    assert one(body, "https://ex.test/feed.rss").id == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # WWR: HTML escaped inside XML; a literal "&lt;b&gt;" in the text stays literal.
        pytest.param(rss(item(description="&lt;p&gt;Use &amp;amp;lt;b&amp;amp;gt; tags &amp;amp;"
                                          " more&lt;/p&gt;&lt;ul&gt;&lt;li&gt;A&lt;/li&gt;"
                                          "&lt;/ul&gt;")),
                     "Use &lt;b&gt; tags & more\n\n• A", id="escaped-html"),
        pytest.param(rss(item(description="<![CDATA[<p>R&amp;D</p><p>Two</p>]]>")),
                     "R&D\n\nTwo", id="cdata-html"),
        pytest.param(atom(entry('<summary>short</summary><content type="html">'
                                "&lt;p&gt;Long &amp;amp; full&lt;/p&gt;</content>")),
                     "Long & full", id="content-over-summary"),
        pytest.param(atom(entry('<content type="text">Line one\nLine &amp; two</content>')),
                     "Line one\nLine & two", id="plain-text-content"),
        pytest.param(rss(item()), None, id="none"),
    ],
)  # fmt: skip
def test_description(body: bytes, expected: str | None) -> None:
    assert one(body).description == expected


def test_single_category_is_the_team_and_region_the_location() -> None:
    body = rss(item(category="Design", region="USA Only", type="Contract"))
    posting = one(body)
    assert (posting.team, posting.locations, posting.employment_type) == (
        "Design",
        ("USA Only",),
        "Contract",
    )


def test_items_without_a_title_are_skipped() -> None:
    body = rss("<item><guid>x</guid><description>orphan</description></item>", item())
    assert [p.id for p in parse_feed(body, WWR_URL, "feed", None)] == ["g1"]


def test_slightly_malformed_feed_that_yields_entries_is_accepted() -> None:
    body = rss(item("Acme: R&D Engineer"))  # a bare "&": not well-formed XML
    assert one(body).title == "R&D Engineer"


def test_empty_feed_has_no_postings() -> None:
    assert parse_feed(rss(), WWR_URL, "feed", None) == []
    assert parse_feed(atom(), ATOM_URL, "feed", None) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not an RSS or Atom feed"),
        (b"hello", "not an RSS or Atom feed"),
        (b'{"jobs": []}', "not an RSS or Atom feed"),
        (b"<html><body><h1>Careers</h1></body></html>", "not an RSS or Atom feed"),
        (b"\x00\x01\x02", "not an RSS or Atom feed"),
        (b'<rss version="2.0"><channel><title>x</title>', "malformed feed"),
    ],
)
def test_not_a_feed(body: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=f"^rss: {message}"):
        parse_feed(body, WWR_URL, "feed", None)


def test_a_body_naming_a_local_file_is_not_read(tmp_path: Path) -> None:
    # feedparser opens a string that names a file; the parser must only parse the body.
    secret = tmp_path / "feed.rss"
    secret.write_bytes(rss(item()))
    with pytest.raises(SourceError):
        parse_feed(str(secret).encode(), WWR_URL, "feed", None)


# --- collect --------------------------------------------------------------------


async def test_collect_parses_the_fetched_feed() -> None:
    fetcher = FakeFetcher({WWR_URL: fixture("wwr-programming-v2.rss")})
    collected = await collect(SourceSpec(name="wwr", type="rss", url=WWR_URL), fetcher)
    assert fetcher.calls == [WWR_URL]
    assert collected.complete
    assert [(p.source, p.id) for p in collected.postings] == [
        ("wwr", VERCEL),
        ("wwr", MAPTILER),
        ("wwr", PROXIFY),
    ]


async def test_collect_reads_a_file_url_and_resolves_links_against_it(tmp_path: Path) -> None:
    feed = tmp_path / "feeds" / "jobs.rss"
    feed.parent.mkdir()
    feed.write_bytes(rss(item(link="vacancies/7.html")))
    async with httpx.AsyncClient() as client:
        spec = SourceSpec(name="local", type="rss", url=feed.as_uri())
        (posting,) = (await collect(spec, HttpFetcher(client))).postings
    assert posting.url == (tmp_path / "feeds" / "vacancies" / "7.html").as_uri()


# --- robustness -----------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.binary())
def test_parse_feed_on_arbitrary_bytes(body: bytes) -> None:
    with contextlib.suppress(SourceError):
        parse_feed(body, WWR_URL, "feed", None)


_XML_BITS = st.sampled_from(
    ["<", ">", "&", "&amp;", "&lt;p&gt;", "</item>", "<item>", "<title>", "</title>", ": ",
     "<![CDATA[", "]]>", "<link>", "</link>", "http://[::1", "<guid>", "</guid>", "\x00"]
)  # fmt: skip
_FIELD = st.lists(_XML_BITS | st.text(max_size=15), max_size=12).map("".join)


@settings(max_examples=200, deadline=None)
@given(title=_FIELD, link=_FIELD, date=_FIELD, description=_FIELD)
def test_parse_feed_on_mangled_items(title: str, link: str, date: str, description: str) -> None:
    body = rss(
        f"<item><title>{title}</title><link>{link}</link><pubDate>{date}</pubDate>"
        f"<description>{description}</description><region>{title}</region></item>"
    )
    try:
        postings = parse_feed(body, WWR_URL, "feed", None)
    except SourceError:
        return
    assert all(p.title and p.id for p in postings)
