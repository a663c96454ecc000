"""Salary and location normalisation, so that queries mean what people mean.

Pure functions over small explicit tables, no network:

- pay: currency symbols and codes as ISO 4217 codes (``US$`` → ``USD``), pay periods in
  their many spellings (``per-hour-wage``, ``1 YEAR``, ``/hr``, ``per annum``) as one of
  hour, day, week, month, year, and any period turned yearly for ``salary>=``;
- locations: a location string split into its places (``San Francisco, CA; New York,
  NY``, ``London / Paris``, ``Zurich or Munich``), each read for the US state or UK nation
  and the country it names (``Remote - US``, ``Seattle, WA, US``, ``London, England``), so
  that the names it implies ("California", "United States", "UK") can be matched too.

Postings keep the wording of their source; these names are only added to what queries
match against (``bot.query.PostingText``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# --- pay -----------------------------------------------------------------------------

YEARLY_MULTIPLIERS = {"hour": 2080, "day": 260, "week": 52, "month": 12, "year": 1}

_PERIOD_WORDS = {
    "hour": "hour", "hourly": "hour", "hr": "hour",
    "day": "day", "daily": "day",
    "week": "week", "weekly": "week",
    "month": "month", "monthly": "month", "mo": "month",
    "year": "year", "yearly": "year", "yr": "year",
    "annual": "year", "annually": "year", "annum": "year",
}  # fmt: skip
_CURRENCY_SIGNS = {
    "$": "USD", "us$": "USD", "usd$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR",
    "c$": "CAD", "ca$": "CAD", "a$": "AUD", "au$": "AUD", "s$": "SGD", "hk$": "HKD",
    "nz$": "NZD", "fr.": "CHF", "chf": "CHF",
}  # fmt: skip
_WORDS = re.compile(r"[^\W_]+")


def pay_period(text: str | None) -> str | None:
    """The pay period a label or sentence names first: ``per-hour-wage``, ``1 YEAR``,
    ``PER_MONTH``, ``/hr``, ``per annum``, ``p.a.`` → hour, month, hour, year, year; else None."""
    if not text:
        return None
    words = _WORDS.findall(text.casefold())
    for index, word in enumerate(words):
        if word in _PERIOD_WORDS:
            return _PERIOD_WORDS[word]
        if word == "p" and words[index + 1 : index + 2] == ["a"]:  # "p.a.", per annum
            return "year"
    return None


def currency_code(text: str | None) -> str | None:
    """An ISO 4217 code for a code or sign: ``usd``, ``US$``, ``$`` → USD; ``£`` → GBP.
    Anything else is kept, upper-cased, so that no stated pay is lost; blank → None."""
    cleaned = "".join(text.split()) if text else ""
    return _CURRENCY_SIGNS.get(cleaned.casefold(), cleaned.upper()) or None


def yearly(amount: float | None, period: str | None) -> float | None:
    """``amount`` per ``period`` as a yearly figure (hourly * 2080, monthly * 12); a figure
    without a period is taken as yearly, as sources that omit it almost always mean."""
    multiplier = YEARLY_MULTIPLIERS.get((period or "year").lower())
    if amount is None or multiplier is None:
        return None
    return amount * multiplier


# --- places --------------------------------------------------------------------------

_US = "United States"
_UK = "United Kingdom"
# Each country's names, the one to show first; every name matches a query for it.
_COUNTRIES: dict[str, tuple[str, ...]] = {
    _US: (_US, "US", "U.S.", "USA", "U.S.A.", "United States of America"),
    _UK: (_UK, "UK", "U.K.", "Great Britain", "Britain", "GB"),
    "Canada": ("Canada",),
    "Germany": ("Germany", "Deutschland"),
    "France": ("France",),
    "Netherlands": ("Netherlands", "The Netherlands", "Holland", "NL"),
    "Switzerland": ("Switzerland", "Schweiz", "Suisse", "CH"),
    "Ireland": ("Ireland",),
    "Sweden": ("Sweden", "Sverige", "SE"),
    "Denmark": ("Denmark", "DK"),
    "Norway": ("Norway", "Norge", "NO"),
    "Finland": ("Finland", "FI"),
    "Spain": ("Spain", "España", "ES"),
    "Portugal": ("Portugal", "PT"),
    "Italy": ("Italy", "Italia", "IT"),
    "Austria": ("Austria", "Österreich", "AT"),
    "Belgium": ("Belgium", "BE"),
    "Poland": ("Poland", "Polska", "PL"),
    "Czechia": ("Czechia", "Czech Republic", "CZ"),
    "Israel": ("Israel",),
    "India": ("India",),
    "China": ("China", "CN"),
    "Japan": ("Japan", "JP"),
    "South Korea": ("South Korea", "Korea", "KR"),
    "Taiwan": ("Taiwan", "TW"),
    "Singapore": ("Singapore", "SG"),
    "Hong Kong": ("Hong Kong", "HK"),
    "Australia": ("Australia", "AU"),
    "New Zealand": ("New Zealand", "NZ"),
    "Brazil": ("Brazil", "Brasil", "BR"),
    "Mexico": ("Mexico", "México", "MX"),
    "United Arab Emirates": ("United Arab Emirates", "UAE", "AE"),
}
# ISO codes that are also US state codes: a country only as the last of three or more parts
# ("Toronto, ON, CA"); "Irvine, CA" is in California.
_AMBIGUOUS_CODES = {"ca": "Canada", "de": "Germany", "in": "India", "il": "Israel"}
_US_STATES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
    "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
    "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan",
    "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana",
    "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey",
    "NM": "New Mexico", "NY": "New York", "NC": "North Carolina", "ND": "North Dakota",
    "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania", "PR": "Puerto Rico",
    "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee",
    "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington",
    "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
}  # fmt: skip
_UK_NATIONS = ("England", "Scotland", "Wales", "Northern Ireland")
# Cities that often stand alone ("London", "Zurich or Munich"): (region, country).
_CITIES: dict[str, tuple[str | None, str]] = {
    "London": ("England", _UK), "Edinburgh": ("Scotland", _UK),
    "Manchester": ("England", _UK),
    "Dublin": (None, "Ireland"), "Paris": (None, "France"), "Berlin": (None, "Germany"),
    "Munich": (None, "Germany"), "München": (None, "Germany"), "Hamburg": (None, "Germany"),
    "Zurich": (None, "Switzerland"), "Geneva": (None, "Switzerland"),
    "Amsterdam": (None, "Netherlands"), "Stockholm": (None, "Sweden"),
    "Gothenburg": (None, "Sweden"), "Copenhagen": (None, "Denmark"),
    "Barcelona": (None, "Spain"), "Madrid": (None, "Spain"), "Tel Aviv": (None, "Israel"),
    "Toronto": (None, "Canada"), "Montreal": (None, "Canada"),
    "Vancouver": (None, "Canada"), "Tokyo": (None, "Japan"), "Seoul": (None, "South Korea"),
    "Bangalore": (None, "India"), "Bengaluru": (None, "India"), "Sydney": (None, "Australia"),
    "New York City": ("New York", _US), "NYC": ("New York", _US),
    "San Francisco": ("California", _US), "Bay Area": ("California", _US),
    "Los Angeles": ("California", _US), "Seattle": ("Washington", _US),
    "Boston": ("Massachusetts", _US), "Austin": ("Texas", _US), "Chicago": ("Illinois", _US),
}  # fmt: skip
_REGIONS = {"eu": "Europe", "european union": "Europe", "europe": "Europe", "emea": "EMEA"}

# Between places: ";", "|", "/", "·", "•" and a lower-case "or" ("Zurich or Munich",
# "Redwood City, CA; or Remote, US"; in "Portland, OR" it is Oregon).
# "(?<!\s)\s+": leading spaces are matched from the start of their run only, so a long run
# of spaces is scanned once rather than from each of its positions (quadratic).
_PLACE_SEPARATORS = re.compile(r"(?:(?<!\s)\s+)?[;|/·•]\s*(?:or\s+)?|(?<!\s)\s+or\s+")
# Words about the kind of place, not where it is: "Remote - US", "USA Only", "Hybrid".
_NOT_A_PLACE = re.compile(r"\b(?:remote|hybrid|on-?site|only)\b", re.IGNORECASE)
# Between the parts of one place: commas, parentheses, spaced dashes ("Remote - US").
_PART_SEPARATORS = re.compile(
    r"(?:(?<!\s)\s+)?[,()]\s*|(?<!\s)\s+[-\u2013\u2014:]\s+|^\s*[-\u2013\u2014:]\s*"
)


def _key(text: str) -> str:
    """Lower-case, accent-free words of ``text`` joined by spaces: the tables' lookup key."""
    folded = text.casefold()
    if not folded.isascii():
        decomposed = unicodedata.normalize("NFKD", folded)
        folded = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(_WORDS.findall(folded))


_COUNTRY_NAMES = {_key(name): country for country, names in _COUNTRIES.items() for name in names}
_STATE_NAMES = {_key(key): name for code, name in _US_STATES.items() for key in (code, name)}
_NATIONS = {_key(nation): nation for nation in _UK_NATIONS}
_CITY_NAMES = {_key(city): place for city, place in _CITIES.items()}
# Every word of every name above: a location with none of them implies nothing (the usual
# case, found without splitting it into places).
_KNOWN_WORDS = frozenset(
    word
    for names in (_COUNTRY_NAMES, _STATE_NAMES, _NATIONS, _CITY_NAMES, _REGIONS)
    for key in names
    for word in key.split()
)


@dataclass(frozen=True, slots=True)
class Place:
    """One place of a location string, with what it is known to be in."""

    text: str
    region: str | None = None  # a US state or UK nation, spelled out; or Europe, EMEA
    country: str | None = None  # the country's first name in ``_COUNTRIES``


def places(location: str) -> tuple[Place, ...]:
    """The places a location string names, each with its region and country when known.

    "San Francisco, CA; New York, NY" → San Francisco (California, United States) and
    New York (New York, United States); "Remote - US" → United States; "London / Paris"
    → London (England, United Kingdom) and Paris (France).
    """
    found = [_place(part) for part in _PLACE_SEPARATORS.split(location) if part.strip(" ,-")]
    # "Gothenburg / Lindholmen, Sweden": a lone unknown name shares the next part's country.
    for index in range(len(found) - 2, -1, -1):
        place, after = found[index], found[index + 1]
        if place.country is None and place.region is None and "," not in place.text:
            found[index] = Place(place.text, None, after.country)
    return tuple(found)


@lru_cache(maxsize=4096)
def location_names(location: str) -> tuple[str, ...]:
    """Names a location implies beyond its own words: the spelled-out state or nation and
    every name of the country, for each place it names.

    "San Francisco, CA" → California, United States, US, U.S., USA, …
    """
    if _KNOWN_WORDS.isdisjoint(_key(location).split()):
        return ()
    names: dict[str, None] = {}
    for place in places(location):
        if place.region:
            names[place.region] = None
        for name in _COUNTRIES.get(place.country or "", ()):
            names[name] = None
    return tuple(names)


def _place(text: str) -> Place:
    text = text.strip(" ,")
    parts = [_key(part) for part in _PART_SEPARATORS.split(_NOT_A_PLACE.sub(" ", text))]
    parts = [part for part in parts if part]
    if not parts:
        return Place(text)
    region, country = _region_and_country(parts)
    return Place(text, region, country)


def _region_and_country(parts: list[str]) -> tuple[str | None, str | None]:
    last = parts[-1]
    city = _CITY_NAMES.get(parts[0])
    if last in _AMBIGUOUS_CODES and len(parts) >= 3:
        return None, _AMBIGUOUS_CODES[last]
    if last in _AMBIGUOUS_CODES and city is not None and city[1] != _US:
        return city
    if last in _STATE_NAMES:
        return _STATE_NAMES[last], _US
    if last in _NATIONS:
        return _NATIONS[last], _UK
    if last in _COUNTRY_NAMES:
        country = _COUNTRY_NAMES[last]
        before = parts[-2] if len(parts) >= 2 else ""
        if country == _US and before in _STATE_NAMES:
            return _STATE_NAMES[before], country
        if country == _UK and before in _NATIONS:
            return _NATIONS[before], country
        return (city[0] if city and city[1] == country else None), country
    if last in _REGIONS:
        return _REGIONS[last], None
    return city if city is not None else (None, None)
