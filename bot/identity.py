"""Cross-source job identity: which postings are one job.

The same role shows up more than once: a conference board entry and the company's
own ATS posting, one requisition per city, the same board polled under two names.
``same_job`` decides for two postings; ``JobIndex`` finds the job a new posting
belongs to among the known ones. Pure: no I/O.

The rules are conservative, because the two mistakes do not cost the same: a
missed merge repeats one alert, a wrong merge hides a job. Two postings are one
job only when

- their companies are the same after normalisation (case, accents, punctuation,
  legal suffixes: "Qualcomm Technologies, Inc." is "Qualcomm"), and
- nothing known tells them apart: a team, an employment type or a seniority
  marker ("Senior" vs "Principal", "PhD" vs "Postdoctoral") that differs, and
- their titles agree: the words of one contain the words of the other and the
  rapidfuzz ``token_sort_ratio`` is at least ``CLOSE_TITLE``; or they share an
  ATS id (one posting's own id, or an id in its link, appears in the other's id
  or link) and the titles are related (words contained, or ratio at least
  ``RELATED_TITLE``).

A shared link alone is not enough: conference boards link several roles to one
careers page (three Helm.ai roles share ``helm.ai/careers``; Trinity's PhD and
postdoc share a homepage).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

from bot.diff import strip_tracking
from bot.models import Posting

# Titles whose words nest and whose token_sort_ratio reaches this are one job: it
# admits one inserted word in a long title ("3D Computer Graphics" vs "3D Graphics",
# 92) but not a qualifier on a short one ("Research Scientist, Robotics", 80).
CLOSE_TITLE = 90.0
# With a shared ATS id the id is the evidence; the title only has to be related.
RELATED_TITLE = 80.0

_LEGAL_SUFFIXES = frozenset(
    {
        "inc", "incorporated", "llc", "ltd", "limited", "corp", "corporation", "co", "company",
        "gmbh", "ag", "sa", "sas", "plc", "bv", "nv", "oy", "ab", "kk", "pty", "pte", "srl",
        "spa", "lp", "llp", "se", "technologies", "technology", "industries", "group",
        "holdings", "international", "global", "labs",
    }
)  # fmt: skip
_CONNECTIVES = frozenset({"of", "for", "and"})  # "University of Technology" keeps its last word
_STOP_WORDS = frozenset({"a", "an", "and", "the", "of", "in", "for", "at", "to", "with", "or"})
_ABBREVIATIONS: Mapping[str, tuple[str, ...]] = {
    "sr": ("senior",),
    "snr": ("senior",),
    "jr": ("junior",),
    "postdoc": ("postdoctoral",),
    "internship": ("intern",),
    "ml": ("machine", "learning"),
}
# Words that make otherwise equal titles different jobs.
_LEVELS = frozenset(
    {
        "intern", "junior", "senior", "staff", "principal", "lead", "head", "director", "chief",
        "distinguished", "vp", "associate", "assistant", "postdoctoral", "phd", "student",
        "graduate", "grad", "trainee", "apprentice", "ii", "iii", "iv",
    }
)  # fmt: skip
# "(f/m/div.)", "(m/w/d)", "(all genders)": German-style gender notes, not part of the role.
_GENDER_NOTE_WORDS = frozenset({"m", "f", "w", "d", "h", "x", "div", "divers", "all", "genders"})
_PARENTHESIS = re.compile(r"\(([^()]*)\)")
_WORD = re.compile(r"[a-z0-9]+")
_EMPLOYMENT = {"contractor": "contract", "temp": "temporary", "internship": "intern"}
_OWN_ID = re.compile(r"(?:[a-z]+-)?(\d{6,})(?:-\d+)?", re.IGNORECASE)
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_LINKED_ID = re.compile(rf"(?<![0-9a-z])(?:(\d{{6,}})|({_UUID}))(?![0-9a-z])", re.IGNORECASE)


def _folded(text: str) -> str:
    """Lower case without accents."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _words(text: str) -> list[str]:
    return _WORD.findall(_folded(text).replace("&", " and "))


def company_key(name: str | None) -> str | None:
    """The company's name for comparison: "Qualcomm Technologies, Inc." → "qualcomm",
    "Helm.ai" and "Helm AI" → "helmai"; None when unknown."""
    words = _words(name or "")
    if words[:1] == ["the"]:
        words = words[1:]
    while len(words) > 1 and words[-1] in _LEGAL_SUFFIXES and words[-2] not in _CONNECTIVES:
        words.pop()
    return "".join(words) or None


def _title_words(title: str) -> list[str]:
    def keep(note: re.Match[str]) -> str:
        return " " if set(_words(note.group(1))) <= _GENDER_NOTE_WORDS else note.group(0)

    words: list[str] = []
    for word in _words(_PARENTHESIS.sub(keep, title)):
        words.extend(_ABBREVIATIONS.get(word, (word,)))
    return [word for word in words if word not in _STOP_WORDS]


def _label(text: str | None) -> str | None:
    return " ".join(_words(text or "")) or None


def _employment(text: str | None) -> str | None:
    letters = "".join(_words(text or ""))
    return _EMPLOYMENT.get(letters, letters) or None


def _ids(posting: Posting) -> frozenset[str]:
    """The ATS ids a posting carries: its own id when it is one, and ids in its links."""
    found: set[str] = set()
    own = _OWN_ID.fullmatch(posting.id)
    if own:
        found.add(own.group(1))
    elif re.fullmatch(_UUID, posting.id, re.IGNORECASE):
        found.add(posting.id.lower())
    for link in (posting.url, posting.apply_url):
        for digits, uuid in _LINKED_ID.findall(strip_tracking(link or "")):
            found.add(digits or uuid.lower())
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class Identity:
    """What ``same_job`` compares, computed once per posting."""

    company: str | None
    words: frozenset[str]
    title: str  # the title's words, sorted: what token_sort_ratio compares
    levels: frozenset[str]
    team: str | None
    employment: str | None
    ids: frozenset[str]


def identity(posting: Posting) -> Identity:
    words = _title_words(posting.title)
    return Identity(
        company=company_key(posting.company),
        words=frozenset(words),
        title=" ".join(sorted(words)),
        levels=frozenset(words) & _LEVELS,
        team=_label(posting.team),
        employment=_employment(posting.employment_type),
        ids=_ids(posting),
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    same: bool
    reason: str


def same_job(a: Identity, b: Identity) -> Verdict:
    """Whether two postings are one job, and the rule that decided it."""
    if a.company is None or a.company != b.company:
        return Verdict(False, "different or unknown companies")
    if a.team and b.team and a.team != b.team:
        return Verdict(False, f"different teams ({a.team} / {b.team})")
    if a.employment and b.employment and a.employment != b.employment:
        return Verdict(False, f"different employment types ({a.employment} / {b.employment})")
    if a.levels != b.levels:
        levels = " / ".join(", ".join(sorted(x)) or "none" for x in (a.levels, b.levels))
        return Verdict(False, f"different seniority ({levels})")
    if not a.words or not b.words:
        return Verdict(False, "no title")
    score = fuzz.ratio(a.title, b.title)
    nested = a.words <= b.words or b.words <= a.words
    shared = a.ids & b.ids
    if shared and (nested or score >= RELATED_TITLE):
        return Verdict(True, f"shared ATS id {min(shared)} (title similarity {score:.0f})")
    if nested and score >= CLOSE_TITLE:
        return Verdict(True, f"same company, title similarity {score:.0f}")
    return Verdict(False, f"titles differ (similarity {score:.0f}, words nest: {nested})")


@dataclass(frozen=True, slots=True)
class Found:
    job: str
    reason: str


@dataclass(slots=True)
class _Company:
    """The known postings of one company, indexed by ATS id and by title."""

    identities: list[Identity] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    by_id: dict[str, list[int]] = field(default_factory=dict)


class JobIndex:
    """Known postings and their jobs; finds the job a posting belongs to.

    Only postings that could pass ``same_job`` are compared: those of the same
    company that share an id or whose title reaches ``CLOSE_TITLE`` (found by
    rapidfuzz in C), so a board with thousands of postings stays cheap.
    """

    def __init__(self) -> None:
        self._companies: dict[str, _Company] = {}

    def add(self, posting: Posting, job: str) -> None:
        known = identity(posting)
        if known.company is None:
            return  # never the same job as anything
        company = self._companies.setdefault(known.company, _Company())
        position = len(company.identities)
        company.identities.append(known)
        company.jobs.append(job)
        company.titles.append(known.title)
        for found in known.ids:
            company.by_id.setdefault(found, []).append(position)

    def find(self, posting: Posting) -> Found | None:
        """The job of the earliest added posting that is the same job, if any."""
        new = identity(posting)
        company = self._companies.get(new.company) if new.company else None
        if company is None:
            return None
        candidates = {position for found in new.ids for position in company.by_id.get(found, ())}
        similar = process.extract(
            new.title, company.titles, scorer=fuzz.ratio, score_cutoff=CLOSE_TITLE, limit=None
        )
        candidates.update(position for _, _, position in similar)
        for position in sorted(candidates):
            verdict = same_job(new, company.identities[position])
            if verdict.same:
                return Found(company.jobs[position], verdict.reason)
        return None


def merged_locations(postings: Iterable[Posting]) -> tuple[str, ...]:
    """Every location of the listings of one job, each once, in order of appearance."""
    seen: dict[str, str] = {}
    for posting in postings:
        for location in posting.locations:
            shown = " ".join(location.split())
            if shown:
                seen.setdefault(shown.casefold(), shown)
    return tuple(seen.values())


def also_on(posting: Posting, others: Iterable[Posting]) -> tuple[str, ...]:
    """The other sources that list the job, each once."""
    return tuple(dict.fromkeys(o.source for o in others if o.source != posting.source))


@dataclass(frozen=True, slots=True)
class Job:
    """A job as found: the posting to show, and the other open listings of it."""

    key: str
    lead: Posting
    others: tuple[Posting, ...]

    @property
    def locations(self) -> tuple[str, ...]:
        return merged_locations((self.lead, *self.others))

    @property
    def also_on(self) -> tuple[str, ...]:
        return also_on(self.lead, self.others)


def group_jobs(
    found: Iterable[Posting], listed: Iterable[Posting], job_of: Mapping[tuple[str, str], str]
) -> list[Job]:
    """The jobs of the ``found`` postings, in their order, each led by its first found
    posting, with the other listings of it among ``listed``. ``job_of`` maps (source,
    id) to a job; a posting without one (not grouped yet) is a job of its own."""

    def key(posting: Posting) -> str:
        return job_of.get((posting.source, posting.id)) or posting.ref

    members: dict[str, list[Posting]] = {}
    for posting in listed:
        members.setdefault(key(posting), []).append(posting)
    jobs: dict[str, Job] = {}
    for posting in found:
        job = key(posting)
        if job not in jobs:
            others = (
                p for p in members.get(job, ()) if (p.source, p.id) != (posting.source, posting.id)
            )
            jobs[job] = Job(job, posting, tuple(others))
    return list(jobs.values())
