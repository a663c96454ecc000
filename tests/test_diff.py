from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.diff import DiffResult, StoredPosting, content_hash, diff, strip_tracking
from bot.models import ChangeKind, Posting

BASE = Posting(
    source="s",
    id="1",
    title="Research Scientist",
    company="Acme",
    locations=("London, UK", "Remote"),
    url="https://jobs.example.com/1?gh_jid=1",
    apply_url="https://jobs.example.com/1/apply",
    description="Work on neural rendering.\n\nApply now.",
)


def stored(posting: Posting, *, closed: bool = False, missing: int = 0) -> dict[str, StoredPosting]:
    return {posting.id: StoredPosting(posting, content_hash(posting), closed, missing)}


@pytest.mark.parametrize(
    ("edit", "changed"),
    [
        ({"title": "Senior Research Scientist"}, ["title"]),
        ({"description": "Work on gaussian splatting."}, ["description"]),
        ({"locations": ("London, UK",)}, ["locations"]),
        ({"salary_min": 100000.0, "salary_currency": "USD"}, ["salary_min", "salary_currency"]),
        ({"title": "  Research   Scientist "}, []),
        ({"description": "Work on neural   rendering.\n\n\nApply\u00a0now.  "}, []),
        ({"locations": ("Remote", "London, UK")}, []),
        ({"url": "https://jobs.example.com/1?gh_jid=1&utm_source=x&gh_src=abc"}, []),
        ({"apply_url": "https://jobs.example.com/1/apply?fbclid=zzz"}, []),
        ({"url": "https://jobs.example.com/1?gh_jid=2"}, ["url"]),
    ],
)
def test_changed_fields_ignore_cosmetic_edits(edit: dict[str, object], changed: list[str]) -> None:
    result = diff(stored(BASE), [replace(BASE, **edit)], baseline=False, close_after=2)  # type: ignore[arg-type]
    if not changed:
        assert result.changes == []
        return
    (change,) = result.changes
    assert change.kind is ChangeKind.CHANGED
    assert [f.field for f in change.fields] == changed
    first = change.fields[0]
    assert first.old == getattr(BASE, first.field)
    assert first.new == edit[first.field]


def test_new_posting_is_reported() -> None:
    other = replace(BASE, id="2", title="Engineer")
    result = diff(stored(BASE), [BASE, other], baseline=False, close_after=2)
    assert [(c.kind, c.posting.id) for c in result.changes] == [(ChangeKind.NEW, "2")]
    assert result.seen_unchanged == ["1"]


def test_baseline_records_everything_and_alerts_nothing() -> None:
    postings = [BASE, replace(BASE, id="2")]
    result = diff({}, postings, baseline=True, close_after=2)
    assert result.changes == []
    assert [p.id for p, _ in result.upserts] == ["1", "2"]


@pytest.mark.parametrize(
    ("close_after", "missing_before", "closes"),
    [(2, 0, False), (2, 1, True), (1, 0, True), (3, 1, False), (3, 2, True)],
)
def test_closed_after_n_consecutive_polls(
    close_after: int, missing_before: int, closes: bool
) -> None:
    result = diff(stored(BASE, missing=missing_before), [], baseline=False, close_after=close_after)
    if closes:
        assert [(c.kind, c.posting.id) for c in result.changes] == [(ChangeKind.CLOSED, "1")]
        assert result.closed == ["1"]
    else:
        assert result.changes == []
        assert result.missing == {"1": missing_before + 1}


def test_reappearing_posting_resets_missing_count() -> None:
    result = diff(stored(BASE, missing=1), [BASE], baseline=False, close_after=2)
    assert result.changes == []
    assert result.seen_unchanged == ["1"]


def test_closed_posting_that_returns_is_reopened_with_its_edits() -> None:
    edited = replace(BASE, title="Staff Research Scientist")
    result = diff(stored(BASE, closed=True), [edited], baseline=False, close_after=2)
    (change,) = result.changes
    assert change.kind is ChangeKind.REOPENED
    assert [f.field for f in change.fields] == ["title"]


def test_already_closed_posting_stays_quiet() -> None:
    result = diff(stored(BASE, closed=True), [], baseline=False, close_after=1)
    assert result.changes == [] and result.closed == [] and result.missing == {}


def test_duplicate_ids_in_one_poll_count_once() -> None:
    result = diff({}, [BASE, replace(BASE, title="dup")], baseline=False, close_after=2)
    assert len(result.changes) == 1
    assert result.changes[0].posting.title == BASE.title


def test_strip_tracking_keeps_meaningful_parameters() -> None:
    assert (
        strip_tracking("https://x.io/j?id=3&utm_campaign=a&lever-source=b") == "https://x.io/j?id=3"
    )
    assert strip_tracking("https://x.io/j") == "https://x.io/j"


postings = st.builds(
    Posting,
    source=st.just("s"),
    id=st.sampled_from(["a", "b", "c", "d"]),
    title=st.sampled_from(["T1", "T2"]),
    description=st.sampled_from([None, "x", "y"]),
)
states = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]),
    st.tuples(st.sampled_from(["T1", "T2"]), st.booleans(), st.integers(0, 3)),
)


@settings(max_examples=300, deadline=None)
@given(states, st.lists(postings, max_size=6), st.integers(1, 4))
def test_diff_invariants(
    state: dict[str, tuple[str, bool, int]], polled: list[Posting], close_after: int
) -> None:
    old = {
        pid: StoredPosting(
            Posting("s", pid, title), content_hash(Posting("s", pid, title)), closed, missing
        )
        for pid, (title, closed, missing) in state.items()
    }
    result = diff(old, polled, baseline=False, close_after=close_after)
    present = {p.id for p in polled}
    for change in result.changes:
        if change.kind is ChangeKind.CLOSED:
            assert change.posting.id not in present and not old[change.posting.id].closed
        else:
            assert change.posting.id in present
        if change.kind is ChangeKind.NEW:
            assert change.posting.id not in old
        if change.kind is ChangeKind.CHANGED:
            assert change.fields
    # every stored open posting is accounted for exactly once
    for pid, entry in old.items():
        if entry.closed:
            continue
        places = [
            pid in present,
            pid in result.missing,
            pid in result.closed,
        ]
        assert places.count(True) == 1
    ids = [c.posting.id for c in result.changes]
    assert len(ids) == len(set(ids)), "at most one change per posting per poll"
    # applying the result and polling the same postings again alerts nothing new
    again = diff(_applied(old, result), polled, baseline=False, close_after=close_after)
    assert [c for c in again.changes if c.kind is not ChangeKind.CLOSED] == []


def _applied(old: dict[str, StoredPosting], result: DiffResult) -> dict[str, StoredPosting]:
    new = dict(old)
    for posting, digest in result.upserts:
        new[posting.id] = StoredPosting(posting, digest)
    for pid in result.seen_unchanged:
        new[pid] = replace(new[pid], missing_polls=0)
    for pid, count in result.missing.items():
        new[pid] = replace(new[pid], missing_polls=count)
    for pid in result.closed:
        new[pid] = replace(new[pid], closed=True, missing_polls=0)
    return new


def test_incomplete_poll_closes_nothing_but_reports_new() -> None:
    other = replace(BASE, id="2")
    result = diff(stored(BASE, missing=1), [other], baseline=False, close_after=2, complete=False)
    assert [(c.kind, c.posting.id) for c in result.changes] == [(ChangeKind.NEW, "2")]
    assert result.closed == [] and result.missing == {}
