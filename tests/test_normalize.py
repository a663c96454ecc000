"""Salary and location normalisation, on strings taken from ../shared/fixtures."""

from __future__ import annotations

import pytest
from fixture_postings import fixture_postings

from bot.models import Posting
from bot.normalize import Place, currency_code, location_names, pay_period, places, yearly
from bot.query import parse_query

US, UK = "United States", "United Kingdom"
SYNTHESIA = "synthesia:c8f1e2d3-4b5a-4f69-8e7d-1a2b3c4d5e6f"


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        # greenhouse/board-v2.json location.name, before the parser splits it
        (
            "San Francisco, CA; New York, NY; United States (Remote)",
            [
                Place("San Francisco, CA", "California", US),
                Place("New York, NY", "New York", US),
                Place("United States (Remote)", None, US),
            ],
        ),
        ("London, England", [Place("London, England", "England", UK)]),  # greenhouse
        ("Remote - US", [Place("Remote - US", None, US)]),  # lever, ashby
        ("New York, New York", [Place("New York, New York", "New York", US)]),  # ashby
        ("San Diego, California", [Place("San Diego, California", "California", US)]),  # workday
        ("Amsterdam, Netherlands", [Place("Amsterdam, Netherlands", None, "Netherlands")]),
        # cvpr .job-location cells
        (
            "Seattle, WA; Costa Mesa, CA; Boston, MA",
            [
                Place("Seattle, WA", "Washington", US),
                Place("Costa Mesa, CA", "California", US),
                Place("Boston, MA", "Massachusetts", US),
            ],
        ),
        (
            "Redwood City, CA; or Remote, US",
            [Place("Redwood City, CA", "California", US), Place("Remote, US", None, US)],
        ),
        ("Natick, MA, United States", [Place("Natick, MA, United States", "Massachusetts", US)]),
        ("Tokyo, Tokyo-to, Japan", [Place("Tokyo, Tokyo-to, Japan", None, "Japan")]),
        ("London", [Place("London", "England", UK)]),
        # jsonld addressLocality, addressRegion, addressCountry (an ISO code)
        ("Seattle, WA, US", [Place("Seattle, WA, US", "Washington", US)]),
        ("London, England, GB", [Place("London, England, GB", "England", UK)]),
        (
            "Amsterdam, North Holland, NL",
            [Place("Amsterdam, North Holland, NL", None, "Netherlands")],
        ),
        ("USA", [Place("USA", None, US)]),  # captions applicantLocationRequirements
        # apple, workable, smartrecruiters: city, region, country
        (
            "Cupertino, California, United States",
            [Place("Cupertino, California, United States", "California", US)],
        ),
        (
            "Paris, Île-de-France, France",
            [Place("Paris, Île-de-France, France", None, "France")],
        ),
        ("Renningen, BW, Germany", [Place("Renningen, BW, Germany", None, "Germany")]),
        (
            "Dubai, , United Arab Emirates",
            [Place("Dubai, , United Arab Emirates", None, "United Arab Emirates")],
        ),
        # html lab page: the country after the last place is everyone's
        (
            "Gothenburg / Lindholmen, Sweden",
            [Place("Gothenburg", None, "Sweden"), Place("Lindholmen, Sweden", None, "Sweden")],
        ),
        # rss region
        ("Europe Only", [Place("Europe Only", "Europe", None)]),
        ("Anywhere in the World", [Place("Anywhere in the World")]),
        # not in the fixtures: the other spellings the issue names
        ("Remote (US)", [Place("Remote (US)", None, US)]),
        ("US Remote", [Place("US Remote", None, US)]),
        ("London / Paris", [Place("London", "England", UK), Place("Paris", None, "France")]),
        (
            "Zurich or Munich",
            [Place("Zurich", None, "Switzerland"), Place("Munich", None, "Germany")],
        ),
        ("Portland, OR", [Place("Portland, OR", "Oregon", US)]),
        ("Irvine, CA", [Place("Irvine, CA", "California", US)]),
        ("Toronto, ON, CA", [Place("Toronto, ON, CA", None, "Canada")]),
        ("Munich, DE", [Place("Munich, DE", None, "Germany")]),
        ("Zürich", [Place("Zürich", None, "Switzerland")]),
        ("3 Locations", [Place("3 Locations")]),  # workday locationsText
    ],
)
def test_places(location: str, expected: list[Place]) -> None:
    assert list(places(location)) == expected


def test_location_names_spell_out_the_state_and_every_name_of_the_country() -> None:
    assert location_names("San Francisco, CA") == (
        "California", US, "US", "U.S.", "USA", "U.S.A.", "United States of America",
    )  # fmt: skip
    assert location_names("London, England") == (
        "England", UK, "UK", "U.K.", "Great Britain", "Britain", "GB",
    )  # fmt: skip
    assert location_names("Remote - US")[0] == US
    assert location_names("Anywhere in the World") == ()


@pytest.mark.parametrize(
    ("label", "period"),
    [
        ("per-year-salary", "year"),  # lever salaryRange.interval
        ("1 YEAR", "year"),  # ashby interval
        ("NONE", None),  # ashby, for equity
        ("YEAR", "year"),  # jsonld unitText
        # apple footer: the sentence names no period, so the parser takes it as yearly
        (
            "The base pay range for this role is between $131,500 and $243,300, and your base"
            " pay will depend on your skills, qualifications, experience, and location.",
            None,
        ),
        ("per-hour-wage", "hour"),
        ("HOUR", "hour"),
        ("PER_MONTH", "month"),
        ("$45/hr", "hour"),
        ("hourly", "hour"),
        ("€4,000 monthly", "month"),
        ("£55,000 per annum", "year"),
        ("CHF 120'000 p.a.", "year"),
        ("1 WEEK", "week"),
        ("daily rate", "day"),
        ("", None),
        (None, None),
    ],
)
def test_pay_period(label: str | None, period: str | None) -> None:
    assert pay_period(label) == period


@pytest.mark.parametrize(
    ("written", "code"),
    [
        ("USD", "USD"),  # lever, ashby, greenhouse, jsonld
        ("GBP", "GBP"),  # synthesia jsonld
        ("usd", "USD"),
        ("$", "USD"),
        ("US$", "USD"),
        ("€", "EUR"),
        ("£", "GBP"),
        ("CHF", "CHF"),
        ("C$", "CAD"),
        ("kr", "KR"),  # unknown: kept, so that the stated pay is not lost
        ("  ", None),
        (None, None),
    ],
)
def test_currency_code(written: str | None, code: str | None) -> None:
    assert currency_code(written) == code


@pytest.mark.parametrize(
    ("amount", "period", "expected"),
    [
        (243300, "year", 243300),
        (243300, None, 243300),  # no period: yearly
        (75, "hour", 156000),  # x 2080
        (12500, "month", 150000),  # x 12
        (3000, "week", 156000),
        (600, "day", 156000),
        (None, "year", None),
        (100, "fortnight", None),
    ],
)
def test_yearly(amount: float | None, period: str | None, expected: float | None) -> None:
    assert yearly(amount, period) == expected


# --- queries on fixture postings -----------------------------------------------------


def matching(query: str) -> list[str]:
    compiled = parse_query(query)
    return sorted(ref for ref, posting in fixture_postings().items() if compiled.matches(posting))


ANDURIL_PLATFORM = "anduril:https://www.anduril.com/open-roles/software-engineer-platform"
LONDON = ["cvpr:5d1b4223601c59e9", "figma-board:5162290004", SYNTHESIA]


def test_salary_and_united_states_mean_what_a_person_means() -> None:
    # Of the postings paying that much, only Apple's spell out "United States"; the others
    # say "CA", "California" or "US".
    assert matching('salary>=150000 location:"united states"') == [
        ANDURIL_PLATFORM,  # 166,000 USD; "Seattle, WA, US"
        "apple:200526165",
        "apple:200550562",
        "figma:5141321004",  # greenhouse pay range 168,000-294,000; "San Francisco, CA"
        "notion:0b5e2a51-7c3d-4e9a-8f10-2d6b4c8a9e13",  # "San Francisco, California"
        "notion:6f1c9d02-4b8e-41a7-b3d5-9e0a7c2f8b64",
        "zoox:2b9a0f5e-8c1d-4f7a-a3e6-5d0c7b1e9f42",  # 177,000; "Foster City, CA"
    ]
    assert matching("salary>=150000") == matching('salary>=150000 location:"united states"')
    assert matching("salary>=100kgbp") == [SYNTHESIA]


def test_remote_us_is_in_the_united_states() -> None:
    found = matching('location:"united states" remote:yes')
    assert found == [
        "figma-board:5120045004",  # "United States (Remote)"
        "notion:a93e7b14-2d5f-4c06-8e71-5b2c9d0f3a27",  # "Remote - US"
        "zoox:c4e18a90-27b5-4c8e-9d13-6a2f0e5b7d88",  # "Remote - US"
    ]
    assert matching("location:usa remote:yes") == found


@pytest.mark.parametrize("query", ["location:uk", 'location:"united kingdom"', "location:england"])
def test_uk_means_london(query: str) -> None:
    assert matching(query) == LONDON


def test_states_are_spelled_out_and_places_keep_their_own_words() -> None:
    assert "zoox:2b9a0f5e-8c1d-4f7a-a3e6-5d0c7b1e9f42" in matching("location:california")
    assert matching("location:germany") == ["bosch:744000012655102", "bosch:744000012788456"]
    assert matching('location:"foster city"') == [
        "zoox:1f0a7d1e-6c3b-4a59-8f8e-0b6f9c2d7a41",
        "zoox:2b9a0f5e-8c1d-4f7a-a3e6-5d0c7b1e9f42",
    ]


def test_an_hourly_wage_is_compared_as_a_yearly_salary() -> None:
    hourly = Posting("s", "1", "Engineer", salary_min=60, salary_max=75, salary_currency="USD",
                     salary_period="hour")  # fmt: skip
    assert parse_query("salary>=150000").matches(hourly)  # 75 x 2080 = 156,000
    assert not parse_query("salary>=160k").matches(hourly)
