"""Hostile input.

Config files, queries, chat commands and whatever a source serves raise only the project's
own errors, in bounded time and memory; and nothing a posting says can mention anyone,
link anywhere or format an alert, on any platform.

Time is measured only as a guard: each case has a ceiling (``CEILING``) far above what
it takes, which only a catastrophic (quadratic on a large input, or exponential)
blow-up can reach, and the failure then says so.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import pkgutil
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fakes import HTML_SELECTORS, AnswersEverything, any_board_spec
from hypothesis import given, settings
from hypothesis import strategies as st
from test_commands import DISCORD, SLACK, caller, make_commands

import bot
from bot import commands as commands_module
from bot import config as config_module
from bot import (
    delivery_modes,
    fetch,
    html_budget,
    identity,
    normalize,
    query,
    render,
    text,
)
from bot.chat import slack as slack_chat
from bot.commands import MAX_REPLY_CHARS, Commands
from bot.config import Config, environment_problems, load_config
from bot.errors import CareerbotError, ConfigError, QueryError, SourceError
from bot.models import Alert, Change, ChangeKind, FieldChange, Posting, Subscription
from bot.pipeline import source_spec
from bot.query import PostingText, parse_query
from bot.render import KIND_LABELS, SIGHTING_LABEL, discord_payload, render_text, slack_payload
from bot.sources import (
    Collected,
    Response,
    SourceSpec,
    _ats,
    apple,
    collect_postings,
    collector_for,
    cvpr,
    html,
    jsonld,
    smartrecruiters,
    source_types,
    workday,
)
from bot.store import Store

CEILING = 5.0  # seconds a single case may take before it counts as a blow-up
MB = 1024 * 1024


class Stopwatch:
    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        elapsed = time.perf_counter() - self.start
        assert elapsed < CEILING, (
            f"{self.what} took {elapsed:.1f}s (> {CEILING:.0f}s): catastrophic backtracking"
            " or a quadratic blow-up"
        )


# ---------------------------------------------------------------- config loading

CONFIG_KEYS = [
    "bot", "sources", "subscriptions", "webhooks", "discord", "slack", "database",
    "default_interval", "timezone", "health_port", "max_pages", "name", "type", "url",
    "interval", "enabled", "company", "selectors", "item", "title", "next_page", "target",
    "query", "notify", "kind", "url_env", "guild_ids", "mode", "port", "admin_user_ids",
    "location_separator", "close_after_polls", "request_timeout", "chat_min_interval",
]  # fmt: skip
CONFIG_SCALARS = [
    "rss", "html", "cvpr", "greenhouse", "console", "slack:C1", "discord:dm:1", "webhook:a",
    "30m", "1s", "0s", "99999999999999999999d", "https://example.test/", "file:jobs.html",
    "file:/dev/zero", "nerf OR", "new", "closed", "UTC", "Mars/Olympus", "socket", "a@href",
    "a\ud800", "li", "a.next@href", "http://[::1", "https://x:99999/",
]  # fmt: skip

toml_scalars = (
    st.sampled_from(CONFIG_SCALARS)
    | st.text(max_size=30)
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats()
    | st.booleans()
)
any_documents = st.dictionaries(
    st.sampled_from(CONFIG_KEYS),
    st.recursive(
        toml_scalars,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(
                st.sampled_from(CONFIG_KEYS) | st.text(max_size=8), children, max_size=5
            )
        ),
        max_leaves=25,
    ),
    max_size=6,
)


def some_of(keys: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(keys.split()), values, max_size=len(keys.split()))


# Documents with the config's own shape, so that its validators (durations, targets,
# queries, URLs, selectors, time zones) see the values.
values = st.sampled_from(CONFIG_SCALARS) | st.text(max_size=20) | st.integers(-1, 10**6)
config_documents = st.fixed_dictionaries(
    {},
    optional={
        "bot": some_of(
            "database default_interval timezone health_port max_pages allow_private_sources"
            " close_after_polls request_timeout chat_min_interval max_subscriptions_per_user",
            values | st.booleans(),
        ),
        "sources": st.lists(
            some_of(
                "name type url interval enabled company max_pages location_separator selectors",
                values | st.booleans() | some_of("item title url location next_page", values),
            ),
            max_size=3,
        ),
        "subscriptions": st.lists(
            some_of("target query notify", values | st.lists(values, max_size=3)), max_size=3
        ),
        "webhooks": st.dictionaries(values.map(str), some_of("kind url_env", values), max_size=2),
        "discord": some_of(
            "guild_ids api_base gateway_url admin_role_ids", values | st.lists(values, max_size=2)
        ),
        "slack": some_of("mode host port path api_base_url admin_user_ids", values),
    },
)
toml_documents = any_documents | config_documents


def toml_value(value: Any) -> str:
    """A value in TOML syntax: strings as JSON strings (TOML reads their escapes), tables
    inline. Strings TOML cannot hold (lone surrogates, DEL) make the document invalid,
    which is one more kind of bad input."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    pairs = (
        f"{json.dumps(key, ensure_ascii=False)} = {toml_value(item)}" for key, item in value.items()
    )
    return "{" + ", ".join(pairs) + "}"


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("config") / "config.toml"


def load_only_config_errors(path: Path) -> None:
    try:
        loaded = load_config(path, environ={})
    except ConfigError:
        return
    problems = environment_problems(loaded.config, environ={})
    assert all(isinstance(problem, str) for problem in problems)


FUZZ = settings(max_examples=60, deadline=None)


@FUZZ
@given(st.text(max_size=400))
def test_any_config_text_gives_a_config_or_a_config_error(config_file: Path, body: str) -> None:
    config_file.write_text(body, encoding="utf-8", errors="surrogatepass")
    load_only_config_errors(config_file)


@FUZZ
@given(st.binary(max_size=400))
def test_any_config_bytes_give_a_config_or_a_config_error(config_file: Path, body: bytes) -> None:
    config_file.write_bytes(body)
    load_only_config_errors(config_file)


@settings(FUZZ, max_examples=150)
@given(toml_documents)
def test_config_shaped_documents_give_a_config_or_a_config_error(
    config_file: Path, document: dict[str, Any]
) -> None:
    lines = [f"{json.dumps(key)} = {toml_value(value)}" for key, value in document.items()]
    config_file.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    load_only_config_errors(config_file)


HOSTILE_CONFIGS = {
    "deep-arrays": "a = " + "[" * 100_000,
    "deep-arrays-closed": "a = " + "[" * 5_000 + "]" * 5_000,
    "deep-inline-tables": "a = " + "{b = " * 5_000 + "1" + "}" * 5_000,
    # tomllib's memory grows with the square of a dotted key's parts: tens of GB here
    "long-dotted-key": "a" + ".a" * 100_000 + " = 1",
    "long-table-header": "[" + "a." * 100_000 + "a]",
    "long-duration": '[bot]\ndefault_interval = "' + "1" * 500_000 + '"',
    "long-name": '[[sources]]\nname = "' + "a" * 500_000 + '"\ntype = "rss"\nurl = "https://x/"',
    "long-query": '[[subscriptions]]\ntarget = "console"\nquery = "' + "a OR " * 30_000 + 'b"',
    "deep-query": '[[subscriptions]]\ntarget = "console"\nquery = "' + "(" * 50_000 + 'a"',
    "too-big": "# " + "x" * (2 * MB),
    "nul": "a = 1\x00",
}


@pytest.mark.parametrize("body", HOSTILE_CONFIGS.values(), ids=HOSTILE_CONFIGS.keys())
def test_hostile_config_loads_or_is_refused_in_bounded_time(config_file: Path, body: str) -> None:
    config_file.write_text(body)
    with Stopwatch("loading the config"):
        load_only_config_errors(config_file)


def test_an_unreadable_config_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path, environ={})  # a directory


# ---------------------------------------------------------------- query language

HOSTILE_QUERIES = {
    "deep-parentheses": "(" * 100_000 + "a" + ")" * 100_000,
    "deep-exclusions": "-(" * 50_000 + "a",
    "long-or-chain": "a OR " * 30_000 + "b",
    "dangling-or-chain": "a OR " * 30_000,
    "huge-salary": "salary>=" + "9" * 100_000,
    "huge-salary-decimals": "salary>=1." + "1" * 100_000 + "x",
    "many-operators": "salary" + "<" * 100_000 + "1",
    "unclosed-quotes": 'a "' * 50_000,
    "huge-phrase": '"' + "a " * 100_000 + '"',
    "many-fields": "title:a " * 50_000,
    "colons": "title:" + ":" * 100_000,
    "marks": "a" + "\u0301" * 100_000,
    "nul": "a\x00" * 50_000,
}


@pytest.mark.parametrize("text_", HOSTILE_QUERIES.values(), ids=HOSTILE_QUERIES.keys())
def test_hostile_query_parses_or_is_refused_in_bounded_time(text_: str) -> None:
    with Stopwatch("parsing and matching the query"):
        try:
            matched: bool | QueryError = parse_query(text_).matches_text(HUGE_TEXT)
        except QueryError as error:
            matched = error
    if isinstance(matched, QueryError):
        assert matched.position is not None and 0 <= matched.position <= len(text_)
    else:
        assert isinstance(matched, bool)


def test_nesting_is_refused_before_recursion_can_fail() -> None:
    deepest = "(" * 32 + "a" + ")" * 32
    assert parse_query(deepest).matches(Posting(source="s", id="1", title="a"))
    with pytest.raises(QueryError, match="nested too deeply"):
        parse_query("(" + deepest + ")")


HUGE_POSTING = Posting(
    source="s",
    id="1",
    title="a " * 100_000,
    company="b" * 100_000,
    locations=tuple(f"City {n}" for n in range(10_000)),
    description="word\u0301 " * 200_000,
)
HUGE_TEXT = PostingText.of(HUGE_POSTING)
EMPTY_TEXT = PostingText.of(Posting(source="", id="", title=""))

# Valid queries of the deepest kind the parser accepts, mixing every construct.
deep_terms = st.sampled_from(
    ["a", "title:a", '"a b"', 'company:"b c"', "remote:yes", "salary>=100k", "-x"]
)
deep_queries = st.recursive(
    deep_terms.filter(lambda term: not term.startswith("-")),
    lambda inner: st.one_of(
        st.builds("({})".format, inner),
        st.builds("{} {}".format, inner, deep_terms),
        st.builds("({}) OR ({})".format, inner, inner),
    ),
    max_leaves=40,
)


@settings(max_examples=60, deadline=None)
@given(deep_queries, st.sampled_from(["huge", "empty"]))
def test_any_accepted_query_matches_any_posting_without_error(text_: str, posting: str) -> None:
    try:
        compiled = parse_query(text_)
    except QueryError:
        return  # nested deeper than allowed
    assert isinstance(compiled.matches_text(HUGE_TEXT if posting == "huge" else EMPTY_TEXT), bool)


# ---------------------------------------------------------------- chat commands

HOSTILE_TOKENS = [
    "@everyone", "@here", "@channel", "@EveryOne", "<!channel>", "<!here>", "<!everyone>",
    "<!subteam^S123>", "<@U123>", "<@123>", "<@!123>", "<@&123>", "<#123>", "<#C123|x>",
    "</jobs:1>", "<t:1:R>", "<:e:1>", "<a:e:1>", "<https://evil.example|click>",
    "[click](https://evil.example)", "<https://evil.example>", "*bold*", "_it_", "~strike~",
    "`code`", "```block```", "**", "__", "~~", "||spoiler||", "# heading", "## h", "-# small",
    "> quote", ">>> quote", "- item", "* item", "1. item", "&lt;!channel&gt;", "&amp;", "&",
    "\uff0a", "\uff3f", "\uff40", "\uff1e", "\n", "\n> ", "\n# ", "\n1. ", "\\", "\\*", "|",
    ">", "<", "\u200b", "\u202e", " ", "\t", "\x00", "\x1b[31m",
]  # fmt: skip
hostile_text = st.lists(st.sampled_from(HOSTILE_TOKENS) | st.text(max_size=8), max_size=12).map(
    "".join
)

COMMAND_WORDS = [
    "", "subscribe", "subscribe dm", "list", "unsubscribe", "pause", "resume", "pause all",
    "preview", "sources", "status", "help", "source add", "source remove", "source pause",
    "source resume", "SUBSCRIBE", "source add acme lever",
]  # fmt: skip
command_parts = (
    st.sampled_from(HOSTILE_TOKENS)
    | st.sampled_from(["(", ")", '"', "-", "OR", "AND", "title:", "salary>=", "1k", "#1", "all"])
    | st.sampled_from(["https://boards.example.com/x", "http://10.0.0.5/", "lever", "5m", "1s"])
    | st.text(max_size=12)
)
commands_text = st.builds(
    lambda word, parts: f"{word} {' '.join(parts)}",
    st.sampled_from(COMMAND_WORDS),
    st.lists(command_parts, max_size=10),
) | st.text(max_size=300)


class CommandRunner:
    """One store and one ``Commands`` on one event loop, for many examples."""

    def __init__(self, directory: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.store = self.loop.run_until_complete(Store.open(directory / "state.sqlite3"))
        self.loop.run_until_complete(
            self.store.register_sources([("src", "greenhouse", "https://example.test/src")])
        )
        self.commands: Commands = self.loop.run_until_complete(make_commands(self.store))

    def run(self, who: tuple[str, str, str], admin: bool, typed: str) -> str:
        return self.loop.run_until_complete(self.commands.run(caller(who, admin), typed))

    def close(self) -> None:
        self.loop.run_until_complete(self.store.close())
        self.loop.close()


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CommandRunner]:
    made = CommandRunner(tmp_path_factory.mktemp("commands"))
    yield made
    made.close()


def check_reply(reply: str, platform: str) -> None:
    assert isinstance(reply, str) and reply
    assert len(reply) <= MAX_REPLY_CHARS
    if platform == "slack":
        # Everything from the user is escaped: no "<" can open a mention or a link.
        assert "<" not in reply, reply
        assert not re.search(r"@(everyone|here|channel)", reply, re.IGNORECASE), reply
    else:
        prose = re.sub(r"```.*?```|(?<!\\)`[^`]*(?<!\\)`", "", reply, flags=re.DOTALL)
        assert not re.search(r"@(everyone|here)|<[@#/:at]", prose, re.IGNORECASE), reply


@settings(FUZZ, max_examples=200)
@given(commands_text, st.sampled_from([SLACK, DISCORD]), st.booleans())
def test_any_command_gets_a_short_safe_reply(
    runner: CommandRunner, typed: str, who: tuple[str, str, str], admin: bool
) -> None:
    check_reply(runner.run(who, admin, typed), who[0])


HOSTILE_COMMANDS = {
    "huge": "subscribe " + "nerf " * 100_000,
    "huge-preview": "preview " + "(a OR " * 50_000,
    "deep": "preview " + "(" * 100_000 + "a",
    "nul": "subscribe \x00nerf\x00",
    "surrogates": "subscribe a\ud800b",
    "controls": "subscribe " + "".join(chr(c) for c in range(32)) + "a",
    "huge-id": "unsubscribe #" + "9" * 100_000,
    "huge-interval": "source add acme lever https://boards.example.com/acme " + "1" * 100_000,
    "huge-source-name": "source add " + "a" * 100_000 + " lever https://boards.example.com/a",
    "private-source": "source add acme lever http://10.0.0.5/jobs",
    "unclosed-shell-quote": "source add 'acme lever",
}


@pytest.mark.parametrize("typed", HOSTILE_COMMANDS.values(), ids=HOSTILE_COMMANDS.keys())
@pytest.mark.parametrize("who", [SLACK, DISCORD], ids=["slack", "discord"])
def test_hostile_command_gets_a_short_safe_reply_in_bounded_time(
    runner: CommandRunner, typed: str, who: tuple[str, str, str]
) -> None:
    with Stopwatch("the command"):
        reply = runner.run(who, True, typed)
    check_reply(reply, who[0])


# ---------------------------------------------------------------- source parsers


def spec_for(source_type: str, max_pages: int = 3) -> SourceSpec:
    return any_board_spec(source_type, "hostile", max_pages)


def collect_or_refuse(source_type: str, body: bytes) -> Collected | SourceError:
    fetcher = AnswersEverything(body)
    try:
        collected = asyncio.run(collect_postings(spec_for(source_type), fetcher))
    except SourceError as error:
        return error
    # Output stays in proportion to the input: no entity or markup expansion.
    size = sum(len(str(posting)) for posting in collected.postings)
    assert size <= 4 * len(body) * fetcher.requests + 100_000
    return collected


def rss_feed(item: str) -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        f"<item>{item}<link>https://example.test/1</link></item></channel></rss>"
    ).encode()


def entity_bomb(definitions: str, use: str) -> bytes:
    return (
        f'<?xml version="1.0"?><!DOCTYPE rss [{definitions}]><rss version="2.0"><channel>'
        f"<title>t</title><item><title>{use}</title><link>https://e.test/1</link></item>"
        "</channel></rss>"
    ).encode()


LAUGHS = '<!ENTITY l0 "lollollollollol">' + "".join(
    f'<!ENTITY l{n} "{f"&l{n - 1};" * 10}">' for n in range(1, 10)
)
DEEP_DIVS = "<div>" * 100_000
HOSTILE_BODIES = {
    "deep-json-list": b"[" * 100_000,
    "deep-json-object": b'{"a":' * 100_000,
    "deep-json-closed": b'{"jobs":' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    "deep-json-just-parseable": b'{"jobs":[' + b'{"a":' * 900 + b"1" + b"}" * 900 + b"]}",
    "deep-html": b"<html><body>" + b"<div>" * 100_000 + b"x",
    "deep-html-lists": b"<html><body>" + b"<ul><li>" * 50_000 + b'<a href="/a">Apply</a>',
    "deep-html-spans": b"<html><body>" + b"<span>" * 100_000 + b"</y>" * 100_000,
    "many-options": b"<html><body><select>" + b"<option>x</option>" * 100_000,
    "deep-xml": b'<?xml version="1.0"?><rss version="2.0"><channel>' + b"<a>" * 50_000,
    "deep-cdata-html": rss_feed(f"<title>t</title><description><![CDATA[{DEEP_DIVS}]]></description>"),  # noqa: E501
    "billion-laughs": entity_bomb(LAUGHS, "&l9;"),
    "quadratic-blowup": entity_bomb(f'<!ENTITY a "{"x" * 50_000}">', "&a;" * 50_000),
    "external-entity": entity_bomb('<!ENTITY e SYSTEM "file:///etc/passwd">', "&e;"),
    "huge-line-json": b'{"jobs":[{"id":1,"title":"' + b"a" * (3 * MB) + b'"}]}',
    "huge-line-html": b"<html><body><ul><li><a href='/x'>" + b"Apply " * (MB // 2) + b"</a>",
    "huge-line-xml": rss_feed("<title>" + "a" * (3 * MB) + "</title>"),
    "huge-line-markup": b"<a>" * 300_000,
    "huge-line-digits": b"1" * (3 * MB),
}  # fmt: skip


# feedparser takes a linear ~15 µs a tag: rss gets the deep XML and spares the deep pages.
SPARE_RSS = {"deep-html", "deep-html-lists", "deep-html-spans", "many-options"}


@pytest.mark.parametrize(
    ("source_type", "body"),
    [
        pytest.param(source_type, body, id=f"{source_type}-{name}")
        for name, body in HOSTILE_BODIES.items()
        for source_type in source_types()
        if not (source_type == "rss" and name in SPARE_RSS)
    ],
)
def test_hostile_body_gives_postings_or_a_source_error_in_bounded_time(
    source_type: str, body: bytes
) -> None:
    with Stopwatch(f"the {source_type} collector"):
        collect_or_refuse(source_type, body)


def embedded(source_type: str, payload: str) -> bytes:
    """``payload`` where each type's parser looks deepest."""
    if source_type == "jsonld":
        return f'<html><script type="application/ld+json">{payload}</script></html>'.encode()
    if source_type == "apple":
        quoted = json.dumps(payload)
        return f"<html><script>window.__staticRouterHydrationData = JSON.parse({quoted});</script></html>".encode()  # noqa: E501
    return payload.encode()


DEEP_PAYLOADS = {
    "deep-list": "[" * 100_000,
    "deep-object": '{"a":' * 100_000,
    "deep-but-closed": "[" * 5_000 + "]" * 5_000,
    "deep-description": json.dumps(
        {"jobs": [{"id": 1, "title": "t", "content": "<div>" * 100_000, "@type": "JobPosting"}]}
    ),
    "huge-description": json.dumps(
        {"jobs": [{"id": 1, "title": "t", "content": "<p>x</p>" * 50_000, "@type": "JobPosting"}]}
    ),
    "huge-date": json.dumps(
        {"jobs": [{"id": 1, "title": "t", "updated_at": "1" * MB, "datePosted": "1" * MB}]}
    ),
}


@pytest.mark.parametrize("payload", DEEP_PAYLOADS.values(), ids=DEEP_PAYLOADS.keys())
@pytest.mark.parametrize("source_type", ["jsonld", "apple", "greenhouse"])
def test_deep_json_inside_each_envelope(source_type: str, payload: str) -> None:
    with Stopwatch(f"the {source_type} collector"):
        collect_or_refuse(source_type, embedded(source_type, payload))


@pytest.mark.parametrize(
    ("name", "expanded"),
    [
        ("billion-laughs", "lol" * 100),
        ("quadratic-blowup", "x" * 100_000),
        ("external-entity", "root:"),
    ],
)
def test_xml_entities_are_not_expanded(name: str, expanded: str) -> None:
    outcome = collect_or_refuse("rss", HOSTILE_BODIES[name])
    assert isinstance(outcome, Collected)
    assert not any(expanded in str(posting) for posting in outcome.postings)


def test_a_page_nested_too_deep_is_refused_with_the_reason() -> None:
    for source_type in ("cvpr", "html", "jsonld"):
        outcome = collect_or_refuse(source_type, HOSTILE_BODIES["deep-html"])
        assert isinstance(outcome, SourceError)
        assert "nests elements more than 512 deep" in str(outcome)


def test_deep_html_in_a_posting_still_gives_its_text() -> None:
    assert text.html_to_text("<div>" * 100_000 + "deep &amp; down" + "</div>" * 10) == (
        "deep & down"
    )


def test_well_formed_and_sloppy_markup_is_within_budget() -> None:
    sloppy = [
        "<div>" + "<p><b>x" * 20_000 + "</div>",
        "<ul>" + "<li><p>x" * 20_000 + "</ul>",
        "<dl>" + "<dt>x<dd>y" * 20_000 + "</dl>",
        "<table>" + "<tr><td>x<td>y" * 20_000 + "</table>",
        "<div><span>x</div>" * 20_000,
        "<ul>" + "<li><a href=x>y" * 20_000 + "</ul>",
        "<svg>" + '<path d="M0 0"/>' * 20_000 + "</svg>",
        "<script>" + "<div>" * 20_000 + "</script>",
        "<!--" + "<div>" * 20_000 + "-->",
        ("<div>" * 500 + "</div>" * 500) * 20,
    ]
    for markup in sloppy:
        assert html_budget.html_problem(markup) is None, markup[:40]


def test_many_cards_on_one_cvpr_page_take_linear_time() -> None:
    cards = "".join(
        f'<li><h3>Job {n}</h3><p class="company">Acme</p><a href="/apply/{n}">Apply</a></li>'
        for n in range(5_000)
    )
    body = f"<html><body><ul>{cards}</ul></body></html>".encode()
    with Stopwatch("5,000 cvpr cards"):
        postings, _ = cvpr.parse_page(body, "https://example.test/careers/", "s", None)
    assert len(postings) == 5_000


def test_nested_html_items_are_read_once() -> None:
    layout = html.layout_from_options({"selectors": {"item": "div.job", "title": "span"}})
    chain = '<div class="job"><span>Role ' * 250 + "x" + "</span></div>" * 250
    body = ("<html><body>" + chain * 100).encode()
    with Stopwatch("100 chains of 250 nested items"):
        postings, _ = html.parse_page(body, "https://example.test/", "s", None, layout)
    assert len(postings) == 100  # the outermost item of each chain


# ---------------------------------------------------------------- pagination


class EndlessBoard:
    """Serves ``make_page(N)`` for any URL ending in ``page=N``."""

    def __init__(self, make_page: Callable[[int], str]) -> None:
        self.make_page = make_page
        self.calls: list[str] = []

    async def get(self, url: str, *, headers: Mapping[str, str] | None = None) -> Response:
        self.calls.append(url)
        return Response(url, 200, {}, self.make_page(int(url.rpartition("page=")[2])).encode())

    async def post_json(
        self, url: str, payload: Any, *, headers: Mapping[str, str] | None = None
    ) -> Response:
        raise AssertionError("no POST expected")


def html_page(number: int) -> str:
    return (
        f'<html><body><ul><li><a href="/jobs/{number}">Role {number}</a></li></ul>'
        f'<a class="next" href="?page={number + 1}">next</a></body></html>'
    )


def cvpr_page(number: int) -> str:
    return (
        f'<html><body><main><div class="card"><span class="job-title">Role {number}</span>'
        f'<a href="https://acme.example/{number}">Apply</a></div></main>'
        f'<nav><a href="?page={number + 1}" aria-label="Next">Next</a></nav></body></html>'
    )


def html_page_linking_to_itself(number: int) -> str:
    return html_page(number).replace(f"?page={number + 1}", f"?page={number}")


@pytest.mark.parametrize(
    ("source_type", "make_page"), [("html", html_page), ("cvpr", cvpr_page)], ids=["html", "cvpr"]
)
async def test_endless_pages_stop_at_max_pages_as_a_partial_poll(
    source_type: str, make_page: Callable[[int], str]
) -> None:
    config = Config.model_validate(
        {
            "bot": {"max_pages": 4},
            "sources": [
                {
                    "name": "endless",
                    "type": source_type,
                    "url": "https://example.test/careers/?page=1",
                    **({"selectors": HTML_SELECTORS} if source_type == "html" else {}),
                }
            ],
        }
    )
    board = EndlessBoard(make_page)
    collected = await collect_postings(source_spec(config, config.sources[0]), board)
    assert len(board.calls) == 4
    assert [p.title for p in collected.postings] == [f"Role {n}" for n in range(1, 5)]
    assert not collected.complete, "unread pages: absence must not close postings"


async def test_a_page_linking_to_itself_is_read_once() -> None:
    board = EndlessBoard(html_page_linking_to_itself)
    spec = replace(spec_for("html", max_pages=50), url="https://example.test/?page=1")
    collected = await collector_for("html")(spec, board)
    assert len(board.calls) == 1
    assert collected.complete


# ---------------------------------------------------------------- regular expressions

N = 100_000


def call(function: Callable[..., object], *args: object) -> Callable[[str], object]:
    """``function(text, *args)``, with the errors it may raise on purpose ignored."""

    def run(value: str) -> object:
        try:
            return function(value, *args)
        except (ValueError, CareerbotError):
            return None

    return run


# Each regex in bot/, as the code uses it, with the inputs that make it work hardest:
# long runs that almost match, so a backtracking engine retries at every position.
REGEX_CASES: list[tuple[list[str], Callable[[str], object], list[str]]] = [
    (["bot.chat.slack._SLACK_LINK"], slack_chat.command_text,
     ["<http:" * (N // 6), "<https://" + "a" * N, "<mailto:" + "|" * N]),
    (["bot.commands._CONTROL"], commands_module._one_line, ["\x00" * N]),
    (["bot.commands._FIRST_WORD"], commands_module._first_word, [" " * N + "a" + " " * N]),
    (["bot.commands._SUBSCRIPTION_ID"],
     lambda value: commands_module._SUBSCRIPTION_ID.fullmatch(value), ["#" + "1" * N]),
    (["bot.config._DURATION_PART"], call(config_module.parse_duration),
     ["1" * N, "1 " * N, "1s" * N, " " * N + "1"]),
    (["bot.config._NAME"], lambda value: config_module._NAME.match(value), ["a" * N + "!"]),
    (["bot.config._TARGET"], call(config_module.validate_target),
     ["webhook:" + "a" * N + "!", "slack:" + "A" * N + "!", "discord:dm:" + "1" * N + "x"]),
    (["bot.config._SLACK_DIRECT"], config_module.is_direct_message, ["slack:U" + "A" * N + "!"]),
    # A path's last part is at most 255 bytes (NAME_MAX), which bounds this one.
    (["bot.fetch._LAST_NUMBER"], lambda value: fetch._LAST_NUMBER.search(value[:255]),
     ["1" * N + "a1a", "1a" * N]),
    (["bot.html_budget._TOKEN"], html_budget.html_problem,
     ["<" * N, "<a" * N, "<!--" * N, "</" * N, "<svg><a " * N, "<a" + " " * N]),
    (["bot.query._TOKEN", "bot.query._NON_ASCII"], query.tokenize,
     ["_a" * N, "é" * N, "\u0301" * N, "a\u0301" * N]),
    (["bot.query._SALARY", "bot.query._AMOUNT"], call(parse_query),
     ["salary>=" + "1" * N + "!", "salary>=1." + "1" * N + "x", "salary" + "<" * N + "1",
      "salary>=1" + "k" * N, "salary>=1" + "usd" * N]),
    (["bot.render._CONTROL", "bot.render._BROADCAST", "bot.render._SLACK_QUOTE"],
     render.slack_text, ["\n " * N, "@" * N, "\n&gt;" * N, " " * N + ">", "\x00" * N]),
    (["bot.render._DISCORD_MARKDOWN", "bot.render._DISCORD_LINE_START"], render.discord_escape,
     ["\n " * N, " " * N + "x", "\n" + "1" * N + "x", "\n1" * N, "*" * N]),
    (["bot.sources._ats._PERIOD"], _ats.period,
     ["per-hour-" + "a" * N + "!", "per-" + "-" * N, "1 " + " " * N]),
    (["bot.sources.apple._BLOB"], lambda value: apple._BLOB.search(value),
     ['__staticRouterHydrationData = JSON.parse("' + "\\a" * N,
      "__staticRouterHydrationData" + " " * N,
      "__staticRouterHydrationData=JSON.parse(\"'" * (N // 40)]),
    (["bot.sources.apple._JS_ESCAPE"], apple._js_string, ["\\" * N, "\\u{" * N, "\\x" * N]),
    (["bot.sources.apple._PAY_RANGE", "bot.sources.apple._DOT_THOUSANDS",
      "bot.sources.apple._SENTENCE_END", "bot.sources.apple._PERIOD_WORDS"], apple.parse_pay,
     ["$" + "1" * N, "$1" + " " * N + "x", "$" + "1,111" * (N // 5) + "x",
      "$" + "1.111" * (N // 5) + "x", "$2 - $1. " * (N // 9), "$" * N, "$1 - $2 " + "a" * N]),
    (["bot.sources.apple._LOCALE"], lambda value: apple._LOCALE.fullmatch(value), ["a" * N]),
    (["bot.sources.cvpr._APPLY_TEXT"], lambda value: cvpr._APPLY_TEXT.fullmatch(value),
     ["apply" + " " * N + "x", "apply " + "now " * N]),
    (["bot.sources.cvpr._LOCATION_CONNECTOR"], cvpr._split_locations,
     ["or" + " " * N, "or ;" * N]),
    (["bot.sources.cvpr._PAGE_NUMBER"], cvpr._page_number, ["page=" + "1" * N]),
    (["bot.sources.html._FIELD_WITH_ATTRIBUTE"],
     lambda value: html._FIELD_WITH_ATTRIBUTE.fullmatch(value),
     ["a" + " " * N + "b", "a" + " @" * N + "!", "a " * N + "!"]),
    (["bot.sources.jsonld._SCHEMA_PREFIX"], lambda value: jsonld._SCHEMA_PREFIX.sub("", value),
     ["https://" * N]),
    (["bot.sources.jsonld._ESCAPED_TAG"], lambda value: jsonld._ESCAPED_TAG.search(value),
     ["&lt;" * N]),
    (["bot.sources.smartrecruiters._POSTING_ID"],
     lambda value: smartrecruiters._POSTING_ID.match(value), ["1" * N]),
    (["bot.sources.workday._SITE_HOST", "bot.sources.workday._LOCALE"], workday.list_endpoint,
     ["https://a" + "-" * N + ".wd1.x/", "https://a.wd" + "1" * N + ".x/",
      "https://a.wd1.myworkdayjobs.com/" + "a" * N]),
    (["bot.sources.workday._REQUISITION"], lambda value: workday._REQUISITION.fullmatch(value),
     ["a" * N, "a" * 64 + "1" * N]),
    (["bot.sources.workday._SOME_LOCATIONS"],
     lambda value: workday._SOME_LOCATIONS.fullmatch(value), ["1" * N + " " * N + "x"]),
    (["bot.sources.workday._POSTED"], lambda value: workday._POSTED.fullmatch(value),
     ["posted " + "1" * N, "posted" + " " * N]),
    (["bot.sources.workday._REMOTE"], lambda value: workday._REMOTE.fullmatch(value),
     ["fully" + " " * N + "x", "remote" + " " * N + "x"]),
    (["bot.text._EPOCH", "bot.text._ISO_DATE"], text.iso_date,
     ["1" * N + "x", "1" * 9 + "." + "1" * N + "x", "2024-05-09T" + "1" * N]),
    (["bot.text._WHITESPACE"], text.normalize_space, [" " * N + "a"]),
    (["bot.text._MARKUP"], text.has_markup, ["<" * N]),
    (["bot.text._SURROGATE"], text.fix_surrogates, ["\ud800" * N]),
    (["bot.text._TAG"], text.html_to_text, ["<div>" * N, "<" * N, "<a" * N + ">"]),
    (["bot.delivery_modes._CLOCK"], call(delivery_modes.parse_clock), ["1" * N, "1:" * N]),
    (["bot.delivery_modes._WINDOW"], call(delivery_modes.QuietHours.parse),
     [" " * N + "a" + " " * N, "a" * N, "a-" * N + " ", "a " * N + "-"]),
    (["bot.identity._PARENTHESIS", "bot.identity._WORD"], identity._title_words,
     ["(" * N + "a" + ")" * N, "(a" * N, "_a" * N]),
    (["bot.identity._OWN_ID", "bot.identity._LINKED_ID"],
     lambda value: identity._ids(Posting(source="s", id=value, title="t", url=f"https://x/{value}")),
     ["1" * N + "a", "a" * N + "-1", "1" * N + "-1" * N + "x", "12345678-" * N]),
    (["bot.normalize._WORDS"], normalize.pay_period, ["_a" * N]),
    (["bot.normalize._PLACE_SEPARATORS", "bot.normalize._NOT_A_PLACE",
      "bot.normalize._PART_SEPARATORS"], normalize.places,
     ["a" + " " * N + "b", "a" + " " * N + "o", "a;" * N, "a" + " " * N + "-b", "remot" * N]),
]  # fmt: skip
COVERED = {name for names, _, _ in REGEX_CASES for name in names}


def test_every_regex_in_bot_has_a_pathological_case() -> None:
    compiled = set()
    for info in pkgutil.walk_packages(bot.__path__, "bot."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, re.Pattern):
                compiled.add(f"{info.name}.{name}")
    missing = sorted(compiled - COVERED)
    assert not missing, f"add worst-case inputs for {missing} to REGEX_CASES"


@pytest.mark.parametrize(
    ("run", "value"),
    [(run, value) for _, run, values in REGEX_CASES for value in values],
    ids=[
        f"{names[0].rpartition('.')[2]}-{n}"
        for names, _, values in REGEX_CASES
        for n in range(len(values))
    ],
)
def test_regex_worst_case_completes(run: Callable[[str], object], value: str) -> None:
    with Stopwatch(f"a regex on {value[:30]!r}…"):
        run(value)


def test_a_file_name_too_long_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="too long"):
        fetch.read_file_url("file:///tmp/jobs1.html?page=" + "9" * 5_000)


# ---------------------------------------------------------------- alerts cannot be injected

SLACK_FORMATTING = "*_~`\uff0a\uff3f\uff40"
DISCORD_MARKDOWN = "\\*_~`|[]"
BROADCAST = re.compile(r"@(everyone|here|channel)", re.IGNORECASE)

hostile_urls = st.one_of(
    st.sampled_from(
        [
            "javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,<b>x</b>",
            "https://e.test/a|b<!channel>c d", "https://e.test/<@U1>", "HTTPS://E.TEST/X",
            "https://e.test/@everyone", "https://e.test/a>b", "https://e.test/*b*_i_",
            "https://e.test/\n> quote", "//evil.test/x", "https:/no-host", "",
        ]
    ),
    hostile_text.map("https://e.test/".__add__),
    hostile_text,
)  # fmt: skip
hostile_values = st.none() | hostile_text | st.lists(hostile_text, max_size=3).map(tuple)
hostile_postings = st.builds(
    Posting,
    source=hostile_text,
    id=st.just("1"),
    title=hostile_text,
    company=st.none() | hostile_text,
    locations=st.lists(hostile_text, max_size=4).map(tuple),
    team=st.none() | hostile_text,
    remote=st.none() | st.booleans(),
    posted_at=st.none() | hostile_text,
    salary_min=st.none() | st.floats(),
    salary_max=st.none() | st.integers(),
    salary_currency=st.none() | hostile_text,
    salary_period=st.none() | hostile_text,
    url=st.none() | hostile_urls,
    apply_url=st.none() | hostile_urls,
    description=st.none() | hostile_text,
)
hostile_alerts = st.builds(
    lambda kind, posting, fields, subscription, also, sighting: Alert(
        Change(kind, posting, fields), subscription, "2024-05-10T08:00:00Z",
        also=also, sighting=sighting,
    ),
    st.sampled_from(ChangeKind),
    hostile_postings,
    st.lists(
        st.builds(FieldChange, st.sampled_from(["title", "locations"]) | hostile_text,
                  hostile_values, hostile_values),
        max_size=4,
    ).map(tuple),
    st.builds(Subscription, id=st.integers(0, 10**6), target=st.just("t"), query=hostile_text),
    st.lists(hostile_postings, max_size=2).map(tuple),  # other listings of the same job
    st.booleans(),
)  # fmt: skip


def label_of(alert: Alert) -> str:
    return SIGHTING_LABEL if alert.sighting else KIND_LABELS[alert.change.kind]


def assert_link_is_well_formed(url: str) -> None:
    assert re.fullmatch(r"https?://[^\s<>|`]+", url), url


def assert_inert_slack_mrkdwn(text_: str) -> None:
    """What Slack would still parse in ``text_`` once our own markup is taken out."""
    assert not re.search("[<>]", text_), text_  # no mention, link or special sequence
    assert not re.search(f"[{re.escape(SLACK_FORMATTING)}]", text_), text_  # no formatting
    assert not re.search(r"&(?!amp;|lt;|gt;)", text_), text_  # no stray entity
    assert not re.search(r"^[^\S\n]*(&gt;|\uff1e)", text_, re.MULTILINE), text_  # no quote
    assert not BROADCAST.search(text_), text_


def check_slack(payload: dict[str, Any], label: str) -> None:
    for block in payload["blocks"]:
        objects = [block["text"]] if "text" in block else []
        objects += block.get("fields", []) + block.get("elements", [])
        for item in objects:
            if item["type"] == "plain_text":  # shown as sent: Slack parses nothing there
                assert not BROADCAST.search(item["text"]), item
                continue
            assert item["type"] == "mrkdwn" and item["verbatim"] is True
            mrkdwn = item["text"]
            title = re.fullmatch(rf"\*{label}:\* (?:<([^|<>]*)\|(.*)>|(.*))", mrkdwn, re.DOTALL)
            if title is not None:
                if title[1] is not None:
                    assert_link_is_well_formed(title[1].replace("&amp;", "&"))
                    assert "|" not in title[2]
                mrkdwn = title[2] if title[1] is not None else title[3]
            else:
                mrkdwn = re.sub(r"\A\*(Changes|Company|Locations?|Salary|Posted)\*\n", "", mrkdwn)
            assert_inert_slack_mrkdwn(mrkdwn)
    fallback = payload["text"]
    link = re.search(r"\n  Link:    <([^<>]*)>\Z", fallback)
    if link is not None:
        assert_link_is_well_formed(link[1].replace("&amp;", "&"))
        fallback = fallback[: link.start()]
    assert_inert_slack_mrkdwn(fallback)


def assert_escaped_discord_markdown(text_: str) -> None:
    index = 0
    while index < len(text_):
        if text_[index] == "\\":
            index += 2  # an escape and what it escapes
            continue
        assert text_[index] not in DISCORD_MARKDOWN, (index, text_)
        index += 1
    assert not re.search(r"^[^\S\n]*([>#-]|[0-9]+\.)", text_, re.MULTILINE), text_
    assert not re.search("<(?!\u200b)", text_), text_
    assert not BROADCAST.search(text_), text_


def check_discord(payload: dict[str, Any], label: str) -> None:
    assert payload["allowed_mentions"] == {"parse": []}
    [embed] = payload["embeds"]
    assert embed["title"].startswith(f"{label}: ")
    assert_escaped_discord_markdown(embed["title"].removeprefix(f"{label}: "))
    for field in embed["fields"]:
        assert_escaped_discord_markdown(field["value"])
    assert_escaped_discord_markdown(embed.get("description", ""))
    # Footers show no markdown; mentions are all that could matter there.
    assert not re.search("<(?!\u200b)", embed["footer"]["text"])
    assert not BROADCAST.search(embed["footer"]["text"])
    if "url" in embed:
        assert_link_is_well_formed(embed["url"])
    content = re.fullmatch(
        rf"\*\*{label}:\*\* (.*?)(?: <(https?://[^\s<>]*)>)?", payload["content"], re.DOTALL
    )
    assert content is not None, payload["content"]
    assert_escaped_discord_markdown(content[1])
    if content[2] is not None:
        assert content[2] == embed["url"]


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict | list):
        for item in value.values() if isinstance(value, dict) else value:
            yield from strings(item)


@settings(max_examples=200, deadline=None)
@given(hostile_alerts)
def test_nothing_in_a_posting_can_mention_link_or_format(alert: Alert) -> None:
    slack, discord = slack_payload(alert), discord_payload(alert)
    check_slack(slack, label_of(alert))
    check_discord(discord, label_of(alert))
    console = render_text(alert)
    for shown in [*strings(slack), *strings(discord), console]:
        assert not re.search("[\u202a-\u202e\u2066-\u2069]", shown), "bidi override kept"
    assert not BROADCAST.search(re.sub(r"^  Link:    .*$", "", console, flags=re.MULTILINE))
    for line in console.splitlines():
        if line.startswith("  Link:    "):
            assert_link_is_well_formed(line.removeprefix("  Link:    "))


@pytest.mark.parametrize("token", HOSTILE_TOKENS)
def test_each_hostile_token_alone_is_inert(token: str) -> None:
    posting = Posting(
        source=token, id="1", title=f"a {token} b", company=token, locations=(token,),
        description=f"{token} x", salary_min=1, salary_currency=token, url=f"https://e.test/{token}",
    )  # fmt: skip
    for kind in ChangeKind:
        alert = Alert(
            Change(kind, posting, (FieldChange("title", token, f"{token} 2"),)),
            Subscription(1, "t", token),
            "2024-05-10T08:00:00Z",
        )
        check_slack(slack_payload(alert), label_of(alert))
        check_discord(discord_payload(alert), label_of(alert))
