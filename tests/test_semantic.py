"""Semantic query terms (``~"phrase"``) on the real model, and what happens without it."""

# ruff: noqa: RUF001 (posting titles as the boards write them, en dashes included)

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeFetcher
from test_commands import SLACK, caller, make_commands, make_config

from bot import semantic
from bot.cli import main
from bot.config import Config, SourceConfig, load_config
from bot.errors import ConfigError, QueryError
from bot.models import ChangeKind, Posting
from bot.pipeline import Pipeline
from bot.query import (
    DEFAULT_SEMANTIC_THRESHOLD,
    And,
    Node,
    Not,
    Query,
    QueryIndex,
    Semantic,
    Word,
    parse_query,
)
from bot.store import Store

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "cvpr"
BOARD = "https://cvpr.thecvf.com/careers/"
NOW = 1_700_000_000.0
WAYVE = "Applied Scientist – Neural Rendering (NeRFs & Gaussian Splatting)"
NERF = '~"neural radiance fields"'

needs_model = pytest.mark.skipif(not semantic.available(), reason=semantic.INSTALL_HINT)


def page(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class Board:
    """The CVPR board of the fixtures, polled through a real pipeline and store."""

    def __init__(self, store: Store, close_after_polls: int = 2) -> None:
        self.store = store
        self.config = Config.model_validate(
            {
                "bot": {"close_after_polls": close_after_polls},
                "sources": [{"name": "cvpr-2024", "type": "cvpr", "url": BOARD}],
            }
        )
        self.fetcher = FakeFetcher({})
        self.pipeline = Pipeline(self.config, store, self.fetcher, clock=lambda: NOW)

    @property
    def source(self) -> SourceConfig:
        return self.config.sources[0]

    async def serve(self, first: str, second: str | None = "page2.html") -> None:
        """Serve ``first`` as the board's page 1 (and ``second`` as its page 2), and poll."""
        self.fetcher.pages = {BOARD: page(first)}
        if second is not None:
            self.fetcher.pages[f"{BOARD}?page=2"] = page(second)
        outcome = await self.pipeline.poll(self.source)
        assert outcome.ok, outcome.error

    async def open_postings(self) -> list[Posting]:
        return [posting for posting, _ in await self.store.open_postings()]


@pytest.fixture
async def board(tmp_path: Path) -> AsyncIterator[Board]:
    store = await Store.open(tmp_path / "state.sqlite3")
    await store.register_sources([("cvpr-2024", "cvpr", BOARD)])
    yield Board(store)
    await store.close()


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many postings each call of the model embeds."""
    counts: list[int] = []
    real = semantic.Model.embed_postings

    def counting(model: semantic.Model, postings: list[Posting]) -> semantic.Vector:
        counts.append(len(postings))
        return real(model, postings)

    monkeypatch.setattr(semantic.Model, "embed_postings", counting)
    return counts


@pytest.fixture
def without_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if ``careerbot[semantic]`` were not installed: its import fails."""
    monkeypatch.setitem(sys.modules, "wordllama", None)


async def matching(store: Store, query: str, postings: list[Posting]) -> list[str]:
    found = await semantic.matching(store, parse_query(query), postings, DEFAULT_SEMANTIC_THRESHOLD)
    return [posting.title for posting in found]


# --- the syntax --------------------------------------------------------------------------


@needs_model
@pytest.mark.parametrize(
    ("text", "root"),
    [
        (NERF, Semantic("neural radiance fields")),
        ('~0.5"NeRF  capture"', Semantic("NeRF capture", 0.5)),
        ("~.25“nerf”", Semantic("nerf", 0.25)),
        (
            f"{NERF} location:london",
            And((Semantic("neural radiance fields"), Word("london", "location"))),
        ),
        ('research -~"sales"', And((Word("research"), Not(Semantic("sales"))))),
    ],
)
def test_semantic_terms_parse(text: str, root: Node) -> None:
    assert parse_query(text) == Query(text, root, semantic=True)


def test_a_tilde_inside_a_word_is_no_semantic_term() -> None:
    query = parse_query("c~ d")
    assert query.root == And((Word("c"), Word("d")))
    assert not query.semantic


@needs_model
@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("~nerf", 'a semantic term is ~"a phrase"', 0),
        ("nerf ~", 'a semantic term is ~"a phrase"', 5),
        ('~1.5"nerf"', "a semantic threshold is a number above 0 and at most 1, not '1.5'", 1),
        ('~0"nerf"', "a semantic threshold is a number above 0 and at most 1, not '0'", 1),
        ('~0..5"nerf"', "not '0..5'", 1),
        ('~"  "', "a semantic term needs words to compare", 1),
        ('~"nerf', "unclosed quote", 1),
        ('-~"nerf"', "at least one positive term", 0),
    ],
)
def test_invalid_semantic_terms(text: str, message: str, position: int) -> None:
    with pytest.raises(QueryError) as raised:
        parse_query(text)
    assert message in raised.value.reason
    assert raised.value.position == position


@needs_model
def test_semantic_terms_have_no_anchors_but_keyword_filters_do() -> None:
    assert parse_query(NERF).anchors() is None
    assert parse_query(f"{NERF} OR nerf").anchors() is None
    assert parse_query(f"{NERF} location:london").anchors() == {"london"}


# --- matching on the real model ----------------------------------------------------------


@needs_model
async def test_the_nerf_posting_and_only_it_is_about_neural_radiance_fields(
    board: Board,
) -> None:
    await board.serve("page1.html")
    postings = await board.open_postings()
    assert len(postings) == 26
    assert await matching(board.store, NERF, postings) == [WAYVE]
    # The example: no posting has these words together, yet Wayve's is about them.
    topic = "neural rendering for autonomous driving"
    assert await matching(board.store, f'"{topic}"', postings) == []
    assert await matching(board.store, f'~"{topic}"', postings) == [
        WAYVE,
        "Open Roles in Autonomous Driving and Robotics",
    ]
    assert await matching(board.store, '~"phd position"', postings) == [
        "PhD Position in Geometric Deep Learning",
        "Fully Funded PhD Position in 3D Graphics and Vision",
    ]


@needs_model
async def test_semantic_terms_combine_with_filters_exclusions_and_thresholds(
    board: Board,
) -> None:
    await board.serve("page1.html")
    postings = await board.open_postings()
    (wayve,) = [posting for posting in postings if posting.title == WAYVE]
    assert wayve.locations == ("London",)
    assert await matching(board.store, f"{NERF} location:london", postings) == [WAYVE]
    assert await matching(board.store, f'{NERF} location:"new york"', postings) == []
    assert await matching(board.store, f"{NERF} OR deepspeed", postings) == [
        WAYVE,
        "Senior Researcher – DeepSpeed",
    ]
    researchers = await matching(board.store, "research", postings)
    assert WAYVE in researchers
    without = await matching(board.store, f"research -{NERF}", postings)
    assert without == [title for title in researchers if title != WAYVE]
    loose = await matching(board.store, '~0.2"neural radiance fields"', postings)
    strict = await matching(board.store, '~0.5"neural radiance fields"', postings)
    assert strict == [] and WAYVE in loose and len(loose) > 1


@needs_model
async def test_the_default_threshold_comes_from_the_config(board: Board) -> None:
    await board.serve("page1.html")
    strict = await make_commands(board.store, semantic_threshold=0.5)
    loose = await make_commands(board.store, semantic_threshold=0.2)
    assert (await strict.run(caller(SLACK), f"preview {NERF}")).startswith("No open posting")
    assert (await loose.run(caller(SLACK), f"preview {NERF}")).startswith("5 open postings")
    with pytest.raises(ValueError, match="semantic_threshold"):
        make_config(semantic_threshold=1.5)


# --- embedding once per posting ----------------------------------------------------------


@needs_model
async def test_vectors_are_computed_once_and_again_when_the_text_changes(
    board: Board, embedded: list[int]
) -> None:
    await board.serve("page1.html")
    postings = await board.open_postings()
    first = await semantic.posting_vectors(board.store, postings)
    second = await semantic.posting_vectors(board.store, postings)
    assert embedded == [26]
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert all(abs(float(np.linalg.norm(vector)) - 1) < 1e-5 for vector in first)
    edited = [replace(postings[0], description="Now about neural radiance fields."), *postings[1:]]
    third = await semantic.posting_vectors(board.store, edited)
    assert embedded == [26, 1]
    assert not np.array_equal(first[0], third[0])
    salary_only = [replace(postings[1], salary_max=250000.0)]
    await semantic.posting_vectors(board.store, salary_only)
    assert embedded == [26, 1]  # the salary is not part of the embedded text


@needs_model
async def test_polls_embed_new_and_changed_postings_once_and_alert_the_subscription(
    board: Board, embedded: list[int]
) -> None:
    store = board.store
    semantic_sub = await store.add_subscription(
        "console", NERF, [ChangeKind.NEW], origin="cli", created_by=None, now=NOW
    )
    await board.serve("page2.html", None)  # the baseline: 12 postings, nothing embedded
    assert embedded == []
    board.fetcher.pages = {BOARD: page("page1.html"), f"{BOARD}?page=2": page("page2.html")}
    dry = await board.pipeline.poll(board.source, dry_run=True)
    assert [alert.change.posting.title for alert in dry.alerts] == [WAYVE]
    new = [(change.posting.source, change.posting.id) for change in dry.changes]
    assert await store.embeddings(semantic.MODEL, new) == {}
    await board.serve("page1.html")
    assert embedded == [14, 14]  # the dry run kept nothing
    (alert,) = await store.due_deliveries(NOW + 1)
    assert (alert.change.posting.title, alert.subscription.id) == (WAYVE, semantic_sub.id)
    await board.serve("page1-v2.html")  # one posting new, one edited, one gone
    assert embedded == [14, 14, 2]


@needs_model
async def test_keyword_subscriptions_alone_embed_nothing(board: Board, embedded: list[int]) -> None:
    await board.store.add_subscription(
        "console", "nerfs", [ChangeKind.NEW], origin="cli", created_by=None, now=NOW
    )
    await board.serve("page2.html", None)
    await board.serve("page1.html")
    (alert,) = await board.store.due_deliveries(NOW + 1)
    assert alert.change.posting.title == WAYVE
    assert embedded == []


@needs_model
async def test_pruned_postings_take_their_vectors_along(board: Board) -> None:
    board = Board(board.store, close_after_polls=1)
    await board.serve("page1.html")
    postings = await board.open_postings()
    await semantic.posting_vectors(board.store, postings)
    await board.serve("page2.html", None)  # the page-1 postings close
    await board.store.prune(closed_before=NOW + 1)
    kept = await board.store.embeddings(semantic.MODEL, [(p.source, p.id) for p in postings])
    assert set(kept) == {(p.source, p.id) for p in await board.open_postings()}
    assert len(kept) == 12


@needs_model
async def test_the_index_evaluates_semantic_queries_for_every_posting(board: Board) -> None:
    await board.serve("page1.html")
    postings = await board.open_postings()
    texts = await semantic.posting_texts(board.store, postings, DEFAULT_SEMANTIC_THRESHOLD)
    index: QueryIndex[str] = QueryIndex()
    index.add("nerf", parse_query(NERF))
    index.add("nerf in new york", parse_query(f'{NERF} location:"new york"'))
    index.add("keyword", parse_query("deepspeed"))
    matched = {
        posting.title: index.match_text(text)
        for posting, text in zip(postings, texts, strict=True)
        if index.match_text(text)
    }
    assert matched == {WAYVE: ["nerf"], "Senior Researcher – DeepSpeed": ["keyword"]}


# --- from chat and the command line ------------------------------------------------------


@needs_model
async def test_chat_preview_and_subscribe_take_semantic_queries(board: Board) -> None:
    await board.serve("page1.html")
    commands = await make_commands(board.store)
    preview = await commands.run(caller(SLACK), f"preview {NERF}")
    assert preview.startswith("1 open posting match")
    assert "Neural Rendering (NeRFs &amp; Gaussian Splatting)" in preview
    reply = await commands.run(caller(SLACK), f"subscribe {NERF} location:london")
    assert "#1" in reply
    (subscription,) = await board.store.subscriptions()
    assert subscription.query == f"{NERF} location:london"


@needs_model
def test_cli_search_finds_postings_by_meaning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, f"'{NERF}'")
    assert main(["once", "--config", str(config)]) == 0
    capsys.readouterr()
    assert main(["search", "--config", str(config), NERF]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"{WAYVE} — Wayve")


def write_config(tmp_path: Path, query: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[bot]
database = "state.sqlite3"

[[sources]]
name = "cvpr-2024"
type = "cvpr"
url = "{(FIXTURES / "page1.html").as_uri()}"

[[subscriptions]]
target = "console"
query = {query}
"""
    )
    return path


# --- without the extra -------------------------------------------------------------------


@pytest.mark.usefixtures("without_extra")
def test_without_the_extra_a_semantic_query_is_refused_with_the_install_hint() -> None:
    with pytest.raises(QueryError) as raised:
        parse_query(f"robotics {NERF}")
    assert raised.value.reason == "semantic queries need `pip install careerbot[semantic]`"
    assert raised.value.position == len("robotics ")
    assert parse_query("nerf").root == Word("nerf")


@pytest.mark.usefixtures("without_extra")
def test_without_the_extra_the_config_names_the_subscription_and_the_hint(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(write_config(tmp_path, f"'{NERF}'"))
    message = str(raised.value)
    assert "subscriptions" in message and semantic.INSTALL_HINT in message
    assert "\n" not in message


@pytest.mark.usefixtures("without_extra")
async def test_without_the_extra_chat_explains_instead_of_failing(store: Store) -> None:
    commands = await make_commands(store)
    for text in (f"subscribe {NERF}", f"preview {NERF}"):
        reply = await commands.run(caller(SLACK), text)
        assert reply.startswith("That query is not valid:")
        assert semantic.INSTALL_HINT in reply
    assert await store.subscriptions() == []


@pytest.mark.usefixtures("without_extra")
def test_without_the_extra_the_cli_explains_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "'nerf'")
    status = main(["subscribe", "--config", str(config), NERF, "--target", "console"])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and semantic.INSTALL_HINT in line


def test_keyword_use_never_imports_numpy(tmp_path: Path) -> None:
    config = write_config(tmp_path, "'nerfs OR robotics'")
    code = f"""
import sys
from bot.cli import main
from bot.query import parse_query
status = main(["once", "--config", {str(config)!r}])
status += main(["once", "--config", {str(config)!r}])
parse_query('~"only parsed, as when the config is checked"')
print(status, "numpy" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == ["0", "False"]
