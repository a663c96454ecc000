from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import QueryError
from bot.models import Posting
from bot.query import PostingText, Query, QueryIndex, parse_query, tokenize

# Yearly salary tops: splat 200000 GBP, nerf 80/h x 2080 = 166400 USD, nerfs 12500/month x 12
# = 150000 EUR (only a minimum), boundary 600/day x 260 = 156000 EUR, plain 130000 USD (no
# period, lower-case currency), intern unknown.
POSTINGS = (
    Posting(
        source="cvpr-2024",
        id="splat",
        title="Research Scientist, Gaussian Splatting",
        company="Niantic",
        locations=("London, UK",),
        team="Research",
        description="Work on 3D reconstruction and neural rendering.",
        remote=False,
        salary_min=150000,
        salary_max=200000,
        salary_currency="GBP",
        salary_period="year",
    ),
    Posting(
        source="cvpr-2024",
        id="nerf",
        title="NeRF Engineer",
        company="Luma AI",
        locations=("Zürich, Switzerland", "Remote - EU"),
        team="Graphics",
        description="Neural radiance fields for full-stack capture.",
        salary_min=60,
        salary_max=80,
        salary_currency="USD",
        salary_period="hour",
    ),
    Posting(
        source="cvpr-2024",
        id="nerfs",
        title="Engineer, NeRFs and Splats",
        company="Acme Robotics",
        locations=("San Francisco, CA",),
        team="Perception",
        description="Gaussian methods; splatting research.",
        remote=True,
        salary_min=12500,
        salary_currency="EUR",
        salary_period="month",
    ),
    Posting(
        source="eccv-2024",
        id="intern",
        title="PhD Intern, Computer Vision",
        company="Meta",
        locations=("Menlo Park, CA", "London"),
        team="FAIR",
        description="Internship on gaussian splatting.",
    ),
    Posting(
        source="cvpr-2024",
        id="boundary",
        title="Graphics Engineer Gaussian",
        company="Contoso",
        locations=("New York", "Paris"),
        description="Splatting pipelines in C++.",
        remote=False,
        salary_min=600,
        salary_currency="EUR",
        salary_period="day",
    ),
    Posting(
        source="cvpr-2024",
        id="plain",
        title="Software Engineer",
        company="Initech",
        locations=("Remote (US)",),
        description="Backend work.",
        salary_min=90000,
        salary_max=130000,
        salary_currency="usd",
    ),
)
ALL = {posting.id for posting in POSTINGS}


def matching_ids(query: str) -> set[str]:
    compiled = parse_query(query)
    return {posting.id for posting in POSTINGS if compiled.matches(posting)}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # words: whole words, case- and accent-insensitive
        ("nerf", {"nerf"}),
        ("NERF", {"nerf"}),
        ("nerfs", {"nerfs"}),
        ("zurich", {"nerf"}),
        ("ZÜRICH", {"nerf"}),
        ("3d", {"splat"}),
        ("3D", {"splat"}),
        ("c++", {"boundary"}),
        ("c: splatting", {"boundary"}),  # a colon after a lone word does not make a field
        # phrases: consecutive words within one field value
        ('"gaussian splatting"', {"splat", "intern"}),
        ("“gaussian splatting”", {"splat", "intern"}),
        ("gaussian splatting", {"splat", "nerfs", "intern", "boundary"}),
        ("full-stack", {"nerf"}),
        ('"full stack"', {"nerf"}),
        ('"york paris"', set()),
        ('location:"york paris"', set()),
        ('location:"new york"', {"boundary"}),
        # AND, OR, groups and precedence
        ("gaussian london", {"splat", "intern"}),
        ("gaussian AND london", {"splat", "intern"}),
        ('"gaussian splatting" OR nerf location:london', {"splat", "intern"}),
        ('"gaussian splatting" OR nerf location:zurich', {"nerf"}),
        ("nerf OR nerfs OR intern engineer", {"nerf", "nerfs"}),
        ("(nerf OR nerfs) graphics", {"nerf"}),
        ("engineer OR intern", {"nerf", "nerfs", "intern", "boundary", "plain"}),
        ("engineer or intern", set()),  # lower-case "or" is a plain word
        # exclusions
        ("engineer -intern", {"nerf", "nerfs", "boundary", "plain"}),
        ('gaussian -"phd intern"', {"splat", "nerfs", "boundary"}),
        ("gaussian -title:intern", {"splat", "nerfs", "boundary"}),
        ("engineer -(nerf OR graphics)", {"nerfs", "plain"}),
        # fields
        ("research", {"splat", "nerfs"}),
        ("title:research", {"splat"}),
        ("TITLE:Research", {"splat"}),
        ('title:"gaussian splatting"', {"splat"}),
        ("company:meta", {"intern"}),
        ('company:"luma ai"', {"nerf"}),
        ("location:london", {"splat", "intern"}),
        ("graphics", {"nerf", "boundary"}),
        ("team:graphics", {"nerf"}),
        ("source:eccv-2024", {"intern"}),
        ("source:cvpr", ALL - {"intern"}),
        ("cvpr", set()),  # the source is searched only when named
        # remote: the structured flag or a location that says so
        ("remote:yes", {"nerf", "nerfs", "plain"}),
        ("REMOTE:YES", {"nerf", "nerfs", "plain"}),
        ("remote:no", {"splat", "intern", "boundary"}),
        ("engineer -remote:yes", {"boundary"}),
        ("remote", {"nerf", "plain"}),
        # salary: the yearly top of the range, optionally in one currency
        ("salary>=150000", {"splat", "nerf", "nerfs", "boundary"}),
        ("salary>=160k", {"splat", "nerf"}),
        ("salary>=1.5k", ALL - {"intern"}),
        ("salary>=150kgbp", {"splat"}),
        ("salary>=150kEUR", {"nerfs", "boundary"}),
        ("salary>=100kusd", {"nerf", "plain"}),
        ("salary>=166400usd", {"nerf"}),  # hourly x 2080
        ("salary>=166401usd", set()),
        ("salary>=150000eur", {"nerfs", "boundary"}),  # monthly x 12, minimum only
        ("salary>=150001eur", {"boundary"}),  # daily x 260
        ("salary>=156001eur", set()),
        ("salary>=130000", {"splat", "nerf", "nerfs", "boundary", "plain"}),  # no period: yearly
        ("salary>=0", ALL - {"intern"}),  # an unknown salary never matches
        ("intern salary>=0", set()),
        ("engineer -salary>=160k", {"nerfs", "boundary", "plain"}),
    ],
)
def test_matching(query: str, expected: set[str]) -> None:
    assert matching_ids(query) == expected


@pytest.mark.parametrize(
    ("query", "message", "position"),
    [
        ("", "empty query", 0),
        ("   ", "empty query", 0),
        ("-intern", "positive term", 0),
        ("-intern -phd", "positive term", 0),
        ('  -"phd intern"', "positive term", 2),
        ("-(a OR b)", "positive term", 0),
        ("a OR -b", "each side of OR needs a positive term", 5),
        ('"gaussian splatting', "unclosed quote", 0),
        ('nerf "gaussian', "unclosed quote", 5),
        ("“gaussian", "unclosed quote", 0),
        ("(nerf OR gaussian", "unclosed parenthesis", 0),
        ("a (b (c)", "unclosed parenthesis", 2),
        ("nerf)", "unmatched ')'", 4),
        (")", "unmatched ')'", 0),
        ("()", "empty parentheses", 0),
        ("a ( ) b", "empty parentheses", 2),
        ('a ""', "empty phrase", 2),
        (
            "foo:bar",
            "unknown field 'foo' (fields: title, company, location, team, source, remote)",
            0,
        ),
        ("nerf salary:100k", "unknown field 'salary'", 5),
        ('x:"a b"', "unknown field 'x'", 0),
        ("remote:maybe", "remote: takes yes or no", 7),
        ("remote:", "nothing after 'remote:'", 7),
        ("title: nerf", "nothing after 'title:'", 6),
        ("a OR", "OR needs a term on each side", 2),
        ("OR a", "OR needs a term on each side", 0),
        ("a OR OR b", "OR needs a term on each side", 2),
        ("(a OR) b", "OR needs a term on each side", 3),
        ("a AND", "AND needs a term on each side", 2),
        ("AND a", "AND needs a term on each side", 0),
        ("salary>=abc", "malformed salary: 'abc' is not an amount", 8),
        ("salary>=12x", "malformed salary: '12x' is not an amount", 8),
        ("salary>=", "malformed salary: the amount is missing", 8),
        ("nerf salary>=150kgbpx", "malformed salary", 13),
        ("salary>150k", "salary takes only '>='", 6),
        ("-", "'-' has no letters or digits", 0),
        ("nerf &&", "'&&' has no letters or digits", 5),
        ("title:&&", "'&&' has no letters or digits", 6),
        ("--nerf", "after '-'", 1),
        ("(" * 40 + "a" + ")" * 40, "nested too deeply", 32),
    ],
)
def test_invalid_queries(query: str, message: str, position: int) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(query)
    assert message in caught.value.reason
    assert caught.value.position == position
    assert caught.value.query == query


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Zürich, Switzerland", ["zurich", "switzerland"]),
        ("NeRF 3D", ["nerf", "3d"]),
        ("full-stack snake_case", ["full", "stack", "snake", "case"]),
        ("Straße ﬁnance", ["strasse", "finance"]),
        ("&& -", []),
    ],
)
def test_tokenize(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


@pytest.mark.parametrize(
    ("query", "anchors"),
    [
        ("nerf", {"nerf"}),
        ('"gaussian splatting"', {"splatting"}),
        ("title:nerf", {"nerf"}),
        ("nerf OR splat", {"nerf", "splat"}),
        ("(nerf OR splat) london", {"london"}),
        ("nerf -intern", {"nerf"}),
        ("nerf remote:yes", {"nerf"}),
        ("remote:yes", None),
        ("salary>=100k", None),
        ("nerf OR remote:yes", None),
    ],
)
def test_anchors(query: str, anchors: set[str] | None) -> None:
    assert parse_query(query).anchors() == anchors


def test_index_returns_matches_in_insertion_order_and_forgets_removed_keys() -> None:
    index = QueryIndex[str]()
    index.add("b", parse_query("gaussian"))
    index.add("a", parse_query("remote:yes"))
    index.add("c", parse_query("nerfs OR splats"))
    nerfs = next(posting for posting in POSTINGS if posting.id == "nerfs")
    assert len(index) == 3
    assert index.match(nerfs) == ["b", "a", "c"]

    index.remove("a")
    index.add("b", parse_query("london"))  # replaces the query and moves it last
    assert len(index) == 2
    assert index.match(nerfs) == ["c"]
    with pytest.raises(KeyError):
        index.remove("a")


def test_index_tokenises_once_and_evaluates_only_candidates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    index = QueryIndex[int]()
    for key in range(1000):
        index.add(key, parse_query(f"topic{key}"))
    index.add(1000, parse_query("remote:yes"))
    evaluated: list[str] = []
    original = Query.matches_text

    def counting(query: Query, text: PostingText) -> bool:
        evaluated.append(query.text)
        return original(query, text)

    tokenised: list[Posting] = []
    tokenise_once = PostingText.of

    def counting_tokenise(posting: Posting) -> PostingText:
        tokenised.append(posting)
        return tokenise_once(posting)

    monkeypatch.setattr(Query, "matches_text", counting)
    monkeypatch.setattr(PostingText, "of", counting_tokenise)
    posting = Posting(source="cvpr-2024", id="1", title="Topic17 engineer", remote=True)
    assert index.match(posting) == [17, 1000]
    assert sorted(evaluated) == ["remote:yes", "topic17"]
    assert tokenised == [posting]


# --- Properties ----------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(max_examples=250, deadline=None)


def parse_or_refusal(text: str) -> Query | QueryError:
    try:
        return parse_query(text)
    except QueryError as error:
        return error


def check_parses_or_is_refused(text: str) -> None:
    outcome = parse_or_refusal(text)  # any other exception fails the test
    if isinstance(outcome, Query):
        assert outcome.text == text
    else:
        assert outcome.query == text
        assert outcome.position is not None
        assert 0 <= outcome.position <= len(text)


@PROPERTY_SETTINGS
@given(st.text())
def test_any_text_parses_or_is_refused(text: str) -> None:
    check_parses_or_is_refused(text)


@PROPERTY_SETTINGS
@given(st.text(alphabet='ab "()-:OR salary>=1k remote title“”AND'))
def test_query_like_text_parses_or_is_refused(text: str) -> None:
    check_parses_or_is_refused(text)


QUERY_WORDS = ["nerf", "gaussian", "splatting", "london", "zurich", "intern", "remote", "2024"]
POSTING_WORDS = [*QUERY_WORDS, "Zürich", "NeRF", "Remote", "engineer"]

words = st.sampled_from(QUERY_WORDS)
fields = st.sampled_from(["title", "company", "location", "team", "source"])
terms = st.one_of(
    words,
    st.builds("{}:{}".format, fields, words),
    st.builds('"{} {}"'.format, words, words),
    st.builds('{}:"{} {}"'.format, fields, words, words),
    st.sampled_from(["remote:yes", "remote:no", "salary>=100k", "salary>=150kusd"]),
)
# Every query built here is valid: OR alternatives are parenthesised, so none is an exclusion.
valid_queries = st.recursive(
    terms,
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=3).map(" ".join),
        st.lists(inner, min_size=2, max_size=3).map(
            lambda parts: " OR ".join(f"({part})" for part in parts)
        ),
        st.builds("{} -({})".format, inner, inner),
    ),
    max_leaves=8,
)
posting_texts = st.lists(st.sampled_from(POSTING_WORDS), max_size=4).map(" ".join)
postings = st.builds(
    Posting,
    source=st.sampled_from(["cvpr-2024", "eccv-2024"]),
    id=st.just("p"),
    title=posting_texts,
    company=st.none() | posting_texts,
    locations=st.lists(posting_texts, max_size=2).map(tuple),
    team=st.none() | posting_texts,
    description=st.none() | posting_texts,
    remote=st.sampled_from([None, True, False]),
    salary_min=st.sampled_from([None, 50.0, 120000.0]),
    salary_max=st.sampled_from([None, 80.0, 160000.0]),
    salary_currency=st.sampled_from([None, "USD", "EUR"]),
    salary_period=st.sampled_from([None, "hour", "month", "year"]),
)


@PROPERTY_SETTINGS
@given(st.lists(valid_queries, min_size=1, max_size=10), st.lists(postings, max_size=4))
def test_index_agrees_with_evaluating_every_query(texts: list[str], sample: list[Posting]) -> None:
    queries = dict(enumerate(parse_query(text) for text in texts))
    index = QueryIndex[int]()
    for key, query in queries.items():
        index.add(key, query)
    for key in list(queries)[1::2]:
        index.remove(key)
        del queries[key]
    for posting in sample:
        assert index.match(posting) == [
            key for key, query in queries.items() if query.matches(posting)
        ]
