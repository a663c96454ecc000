# ruff: noqa: RUF001  (fixture text uses typographic dashes and quotes)
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeFetcher
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import SourceError
from bot.models import Posting
from bot.sources.base import SourceSpec
from bot.sources.jsonld import collect, parse_page
from bot.text import stable_id

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "jsonld"
PAGE = "https://jobs.example.test/careers/role"
SYNTHESIA = "c8f1e2d3-4b5a-4f69-8e7d-1a2b3c4d5e6f"
CAPTIONS = "https://jobs.example-board.com/captions/ml-infra"
ANDURIL_SWE = "https://www.anduril.com/open-roles/software-engineer-platform"
ANDURIL_PERCEPTION = "https://www.anduril.com/open-roles/perception-engineer"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(name: str) -> dict[str, Posting]:
    return {p.id: p for p in parse_page(fixture(name), PAGE, "ld", None)}


def page(*scripts: str) -> bytes:
    tags = "".join(f'<script type="application/ld+json">{script}</script>' for script in scripts)
    return f"<!DOCTYPE html><html><head>{tags}</head><body><h1>Jobs</h1></body></html>".encode()


def job(**fields: Any) -> dict[str, Any]:
    return {"@context": "https://schema.org", "@type": "JobPosting", "title": "Engineer", **fields}


def one(data: Any, company: str | None = None) -> Posting:
    (posting,) = parse_page(page(json.dumps(data)), PAGE, "ld", company)
    return posting


# --- fixtures -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ids"),
    [
        ("synthesia-job.html", [SYNTHESIA]),
        ("captions-remote-graph.html", [CAPTIONS]),
        ("anduril-two-postings.html", [ANDURIL_SWE, ANDURIL_PERCEPTION]),
    ],
)
def test_ids(name: str, ids: list[str]) -> None:
    assert list(parse(name)) == ids


def test_single_posting_with_range_and_escaped_description() -> None:
    posting = parse("synthesia-job.html")[SYNTHESIA]
    assert posting.to_json() == {
        "source": "ld",
        "id": SYNTHESIA,
        "title": "Research Engineer – Generative Video",
        "company": "Synthesia",
        "locations": ["London, England, GB", "Amsterdam, North Holland, NL"],
        "remote": None,
        "team": None,
        "employment_type": "Full-time",
        "posted_at": "2024-05-17",
        "salary_min": 90000,
        "salary_max": 130000,
        "salary_currency": "GBP",
        "salary_period": "year",
        "url": "https://www.synthesia.io/careers/research-engineer-generative-video",
        "apply_url": None,  # directApply: false
        "description": "We are looking for a Research Engineer, with passion for working on "
        "cutting edge problems that can help us create highly realistic, emotional and life-like "
        "synthetic humans through text-to-video.\n\nYou will join a group of more than 50 "
        "Engineers in the R&D department and will have the opportunity to collaborate with "
        "multiple research teams across diverse areas.\n\n"
        "• Large-scale training of diffusion & transformer models\n• Clean, well-tested Python",
    }


def test_graph_with_company_reference_literal_tabs_and_telecommute() -> None:
    posting = parse("captions-remote-graph.html")[CAPTIONS]
    assert posting.to_json() == {
        "source": "ld",
        "id": CAPTIONS,
        "title": "Machine Learning Infrastructure Engineer",
        "company": "Captions",  # an @id reference to the graph's Organization
        "locations": ["USA"],  # applicantLocationRequirements: the job has no jobLocation
        "remote": True,
        "team": None,
        "employment_type": "Full-time",
        "posted_at": "2024-05-20",  # 09:30 at -04:00 is 13:30 UTC
        "salary_min": None,
        "salary_max": None,
        "salary_currency": None,
        "salary_period": None,
        "url": CAPTIONS,
        "apply_url": None,
        "description": "Captions is the AI-powered creative studio. Millions of creators around "
        "the world have used Captions to make their video content stand out.\n\n"
        "Build the training & serving infrastructure for our generative video models.",
    }


def test_two_postings_with_a_single_salary_value() -> None:
    postings = parse("anduril-two-postings.html")
    swe, perception = postings[ANDURIL_SWE], postings[ANDURIL_PERCEPTION]
    assert (swe.salary_min, swe.salary_max, swe.salary_currency, swe.salary_period) == (
        166000,
        166000,
        "USD",
        "year",
    )
    assert swe.locations == ("Seattle, WA, US", "Costa Mesa, CA, US", "Boston, MA, US")
    assert (swe.company, swe.posted_at, swe.employment_type) == (
        "Anduril Industries",
        "2024-05-14",
        "Full-time",
    )
    assert perception.locations == ("Costa Mesa, CA, US",)
    assert (perception.salary_min, perception.employment_type) == (None, None)
    assert perception.description == "Ship perception for autonomous systems."


# --- field rules ----------------------------------------------------------------

ORG = {"@type": "Organization", "@id": "https://acme.test/#org", "name": "Acme"}


def place(**address: Any) -> dict[str, Any]:
    return {"@type": "Place", "address": {"@type": "PostalAddress", **address}}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(job(), {}, id="minimal"),
        pytest.param(job(**{"@type": ["Thing", "https://schema.org/JobPosting"]}), {},
                     id="type-list-with-prefix"),
        pytest.param(job(**{"@type": "schema:JobPosting"}), {}, id="type-curie"),
        pytest.param(job(title="  Staff \n Engineer "), {"title": "Staff Engineer"},
                     id="title-spaces"),
        pytest.param(job(hiringOrganization="Acme Ltd"), {"company": "Acme Ltd"},
                     id="company-string"),
        pytest.param({"@graph": [ORG, job(hiringOrganization={"@id": ORG["@id"]})]},
                     {"company": "Acme"}, id="company-reference"),
        pytest.param(job(hiringOrganization={"@id": "https://elsewhere.test/#org"}),
                     {"company": "Configured", "id": stable_id("", "Engineer")},
                     id="dangling-reference-uses-configured"),
        pytest.param(job(jobLocation=place(addressLocality="Paris",
                                           addressCountry={"@type": "Country", "name": "France"})),
                     {"locations": ["Paris, France"]}, id="country-object"),
        pytest.param(job(jobLocation=[place(addressLocality="", addressRegion="Bavaria",
                                            addressCountry="DE"),
                                      place(addressRegion="Bavaria", addressCountry="DE")]),
                     {"locations": ["Bavaria, DE"]}, id="empty-parts-and-duplicates"),
        pytest.param(job(jobLocation={"@type": "Place", "address": "Zürich, Switzerland"}),
                     {"locations": ["Zürich, Switzerland"]}, id="address-string"),
        pytest.param(job(jobLocation={"@type": "Place", "name": "HQ Campus"}),
                     {"locations": ["HQ Campus"]}, id="place-name"),
        pytest.param(job(jobLocationType=["TELECOMMUTE"]), {"remote": True}, id="telecommute"),
        pytest.param(job(jobLocationType="OnSite"), {}, id="other-location-type"),
        pytest.param(job(applicantLocationRequirements=[{"@type": "Country", "name": "Canada"},
                                                        {"@type": "State", "name": "Ohio"}]),
                     {"locations": ["Canada", "Ohio"]}, id="applicant-locations"),
        pytest.param(job(jobLocation=place(addressLocality="Austin"),
                         applicantLocationRequirements={"name": "USA"}),
                     {"locations": ["Austin"]}, id="job-location-wins"),
        pytest.param(job(employmentType=["FULL_TIME", "PART_TIME", "Seasonal"]),
                     {"employment_type": "Full-time, Part-time, Seasonal"}, id="employment-list"),
        pytest.param(job(datePosted="2024-05-01T00:30:00+02:00"), {"posted_at": "2024-04-30"},
                     id="date-posted-utc"),
        pytest.param(job(baseSalary={"currency": "eur", "value": {
                         "minValue": "50000", "maxValue": 60000.5, "unitText": "MONTH"}}),
                     {"salary_min": 50000, "salary_max": 60000.5, "salary_currency": "EUR",
                      "salary_period": "month"}, id="salary-range"),
        pytest.param(job(baseSalary={"currency": "USD",
                                     "value": {"value": 40, "unitText": "HOUR"}}),
                     {"salary_min": 40, "salary_max": 40, "salary_currency": "USD",
                      "salary_period": "hour"}, id="salary-single-value"),
        pytest.param(job(baseSalary={"currency": "USD", "value": 120000}),
                     {"salary_min": 120000, "salary_max": 120000, "salary_currency": "USD"},
                     id="salary-bare-number"),
        pytest.param(job(baseSalary={"currency": "USD", "value": {"minValue": 1,
                                                                  "unitText": "PIECE"}}),
                     {"salary_min": 1, "salary_currency": "USD"}, id="salary-unknown-unit"),
        pytest.param(job(baseSalary={"value": {"minValue": 1, "maxValue": 2}}), {},
                     id="salary-without-currency"),
        pytest.param(job(baseSalary={"currency": "USD", "value": {"minValue": -5,
                                                                  "maxValue": "lots"}}), {},
                     id="salary-without-amount"),
        pytest.param(job(identifier={"@type": "PropertyValue", "name": "Acme", "value": 4711},
                         url="/jobs/4711"),
                     {"id": "4711", "url": "https://jobs.example.test/jobs/4711"},
                     id="identifier-number-and-relative-url"),
        pytest.param(job(identifier="REQ-9"), {"id": "REQ-9"}, id="identifier-string"),
        pytest.param(job(url="https://acme.test/j/1#apply"),
                     {"id": "https://acme.test/j/1", "url": "https://acme.test/j/1"},
                     id="id-from-url"),
        pytest.param(job(url="https://acme.test/j/1", directApply=True),
                     {"id": "https://acme.test/j/1", "url": "https://acme.test/j/1",
                      "apply_url": "https://acme.test/j/1"}, id="direct-apply"),
    ],
)  # fmt: skip
def test_field_mapping(data: Any, expected: dict[str, Any]) -> None:
    posting = one(data, company="Configured")
    locations = expected.get("locations", [])
    default_id = stable_id(expected.get("company", ""), expected.get("title", "Engineer"),
                           *locations)  # fmt: skip
    defaults = Posting(source="ld", id=default_id, title="Engineer", company="Configured",
                       url=PAGE).to_json()  # fmt: skip
    assert posting.to_json() == {**defaults, **expected}


def test_id_ignores_the_configured_company() -> None:
    assert one(job(), company="A").id == one(job(), company="B").id == stable_id("", "Engineer")


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("&lt;p&gt;R&amp;amp;D&lt;/p&gt;&lt;p&gt;Two&lt;/p&gt;", "R&D\n\nTwo"),  # escaped once more
        ("<p>R&amp;D</p>", "R&D"),  # real markup: entities decoded once
        ("<p>Write &lt;b&gt; for bold</p>", "Write <b> for bold"),  # markup about markup
        ("Pay &lt; 100k &amp; growth", "Pay < 100k & growth"),  # plain text
        ("&amp;lt;p&amp;gt;", "&lt;p&gt;"),  # more layers than one are not guessed at
        ("", None),
    ],
)
def test_description_unescaping(description: str, expected: str | None) -> None:
    assert one(job(description=description)).description == expected


@pytest.mark.parametrize(
    ("scripts", "count"),
    [
        pytest.param([json.dumps({"@type": "Organization", "name": "Acme"})], 0, id="other-type"),
        pytest.param([json.dumps([{"@type": "BreadcrumbList"}, job(), job(title="B")])], 2,
                     id="array"),
        pytest.param([json.dumps({"@graph": [ORG, {"@type": "WebPage"}, job()]})], 1,
                     id="graph"),
        pytest.param(["{not json", json.dumps(job())], 1, id="broken-script-beside-a-posting"),
        pytest.param([json.dumps(job(title=None)), json.dumps(job(title=""))], 0,
                     id="postings-without-title-skipped"),
        pytest.param(["42", '"text"', "null", "[[1]]"], 0, id="not-objects"),
        pytest.param([], 0, id="no-json-ld"),
    ],
)  # fmt: skip
def test_which_nodes_are_postings(scripts: list[str], count: int) -> None:
    assert len(parse_page(page(*scripts), PAGE, "ld", None)) == count


def test_a_jobposting_among_other_types_in_a_type_list_is_recognised() -> None:
    assert one(job(**{"@type": ["JobPosting", "Thing"]})).title == "Engineer"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (page("{not json"), "no JobPosting, and 1 JSON-LD script"),
        (page("[" * 100_000), "no JobPosting, and 1 JSON-LD script"),
        (b"\x00\x01binary", "is not an HTML page"),
        (b'{"@type": "JobPosting", "title": "x"}', "is not an HTML page"),
    ],
)
def test_malformed_pages(body: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=f"^jsonld: .*{message}"):
        parse_page(body, PAGE, "ld", None)


# --- collect --------------------------------------------------------------------


async def test_collect_uses_the_page_url_when_the_posting_has_none() -> None:
    fetcher = FakeFetcher({PAGE: page(json.dumps(job()))})
    spec = SourceSpec(name="acme", type="jsonld", url=PAGE, company="Acme")
    collected = await collect(spec, fetcher)
    assert fetcher.calls == [PAGE]
    assert [(p.source, p.url, p.company) for p in collected.postings] == [("acme", PAGE, "Acme")]


# --- robustness -----------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(
        st.sampled_from(
            ["@type", "@id", "@graph", "title", "name", "hiringOrganization", "jobLocation",
             "address", "addressLocality", "addressCountry", "jobLocationType",
             "applicantLocationRequirements", "employmentType", "datePosted", "baseSalary",
             "currency", "value", "minValue", "maxValue", "unitText", "identifier", "url",
             "directApply", "description"]
        ),
        children | st.just("JobPosting") | st.just("TELECOMMUTE"),
        max_size=8,
    ),
    max_leaves=30,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.binary())
def test_parse_page_on_arbitrary_bytes(body: bytes) -> None:
    with contextlib.suppress(SourceError):
        parse_page(body, PAGE, "ld", None)


@settings(max_examples=300, deadline=None)
@given(st.lists(_JSON, max_size=3))
def test_parse_page_on_arbitrary_json_ld(documents: list[Any]) -> None:
    # "</" inside a string would end the script element early; JSON allows escaping it.
    scripts = [json.dumps(document).replace("</", "<\\/") for document in documents]
    try:
        postings = parse_page(page(*scripts), PAGE, "ld", None)
    except SourceError:
        return
    assert all(p.title and p.id for p in postings)
