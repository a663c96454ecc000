"""Alert rendering: content, platform limits, markup injection and link safety."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.models import Alert, Change, ChangeKind, FieldChange, Posting, Subscription
from bot.render import (
    discord_escape,
    discord_payload,
    format_locations,
    format_salary,
    render_text,
    slack_escape,
    slack_payload,
    truncate,
)

URL = "https://jobs.example.com/postings/42?ref=alert&lang=en"

POSTING = Posting(
    source="cvpr-2024",
    id="42",
    title="Senior Researcher - Machine Learning",
    company="Microsoft Research",
    locations=("New York, United States",),
    posted_at="2024-05-09",
    salary_min=131500,
    salary_max=243300,
    salary_currency="USD",
    salary_period="year",
    url=URL,
    description="Join the team working on neural rendering and 3D vision.",
)
SUBSCRIPTION = Subscription(id=3, target="slack:#jobs", query='"gaussian splatting" OR nerf')
SALARY_CHANGE = FieldChange("salary_max", 200000.0, 243300.0)


def make_alert(
    kind: ChangeKind = ChangeKind.NEW,
    posting: Posting = POSTING,
    fields: tuple[FieldChange, ...] = (),
    subscription: Subscription = SUBSCRIPTION,
) -> Alert:
    return Alert(Change(kind, posting, fields), subscription, "2024-05-10T08:00:00Z")


def strings(value: Any) -> Iterator[str]:
    """Every string anywhere in a JSON-like payload."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def slack_text_objects(payload: dict[str, Any]) -> list[dict[str, Any]]:
    objects = []
    for block in payload["blocks"]:
        if "text" in block:
            objects.append(block["text"])
        objects += block.get("fields", [])
        objects += block.get("elements", [])
    return objects


def slack_texts(payload: dict[str, Any]) -> list[str]:
    return [item["text"] for item in slack_text_objects(payload)]


def slack_mrkdwn_texts(payload: dict[str, Any]) -> list[str]:
    """The texts Slack parses for markup (it parses nothing in plain_text)."""
    objects = slack_text_objects(payload)
    assert all(item["type"] in ("mrkdwn", "plain_text") for item in objects)
    assert all(item.get("verbatim") is True for item in objects if item["type"] == "mrkdwn")
    return [item["text"] for item in objects if item["type"] == "mrkdwn"]


def without_our_slack_link(text: str) -> str:
    return re.sub(r"<https?://[^\s<>|]+>", "", text)


def assert_slack_limits(payload: dict[str, Any]) -> None:
    text = payload["text"]
    assert 0 < len(text) <= 3000  # the API allows 40,000; we keep the fallback short
    assert payload["unfurl_links"] is False
    assert payload["unfurl_media"] is False
    blocks = payload["blocks"]
    assert 0 < len(blocks) <= 50
    for block in blocks:
        if block["type"] == "section":
            assert "text" in block or block.get("fields")
            if "text" in block:
                assert 0 < len(block["text"]["text"]) <= 3000
            fields = block.get("fields", [])
            assert len(fields) <= 10
            assert all(0 < len(field["text"]) <= 2000 for field in fields)
        elif block["type"] == "header":
            assert 0 < len(block["text"]["text"]) <= 150
        elif block["type"] == "context":
            assert 0 < len(block["elements"]) <= 10
            assert all(0 < len(element["text"]) <= 3000 for element in block["elements"])
    # Slack also rejects messages whose blocks hold ~12,000 characters in total.
    assert sum(len(text) for text in slack_texts(payload)) <= 11_000
    # Any "<" left is the start of one of our own http(s) links.
    for mrkdwn in slack_mrkdwn_texts(payload):
        assert not re.search(r"<(?!https?://)", mrkdwn), mrkdwn
    assert "<" not in without_our_slack_link(text)


def assert_discord_limits(payload: dict[str, Any]) -> None:
    assert len(payload["content"]) <= 2000
    assert payload["allowed_mentions"] == {"parse": []}
    assert len(payload["embeds"]) == 1
    embed = payload["embeds"][0]
    assert 0 < len(embed["title"]) <= 256
    if "description" in embed:
        assert 0 < len(embed["description"]) <= 4096
    if "url" in embed:
        assert embed["url"].startswith(("http://", "https://"))
    fields = embed["fields"]
    assert len(fields) <= 25
    for field in fields:
        assert 0 < len(field["name"]) <= 256
        assert 0 < len(field["value"]) <= 1024
    footer = embed["footer"]["text"]
    assert 0 < len(footer) <= 2048
    total = len(embed["title"]) + len(embed.get("description", "")) + len(footer)
    total += sum(len(field["name"]) + len(field["value"]) for field in fields)
    assert total <= 6000
    for text in strings(payload):
        visible = re.sub(r"https?://\S+", "", text)
        assert not re.search(r"@(everyone|here)|<[@#]", visible, re.IGNORECASE), visible


# ---------------------------------------------------------------- content


def test_render_text_new_block() -> None:
    assert render_text(make_alert()) == (
        "[NEW] Senior Researcher - Machine Learning — Microsoft Research\n"
        "  Where:   New York, United States\n"
        "  Salary:  USD 131,500\u2013243,300 / year\n"
        "  Posted:  2024-05-09\n"
        f"  Link:    {URL}\n"
        '  Source:  cvpr-2024 · subscription #3: "gaussian splatting" OR nerf\n'
        "  ID:      cvpr-2024:42\n"
        "  Summary: Join the team working on neural rendering and 3D vision."
    )


@pytest.mark.parametrize(
    ("kind", "tag", "label"),
    [
        (ChangeKind.NEW, "[NEW]", "New job"),
        (ChangeKind.CHANGED, "[UPDATED]", "Updated"),
        (ChangeKind.CLOSED, "[CLOSED]", "Closed"),
        (ChangeKind.REOPENED, "[REOPENED]", "Reopened"),
    ],
)
def test_each_kind_names_itself_and_the_facts(kind: ChangeKind, tag: str, label: str) -> None:
    alert = make_alert(kind)
    text = render_text(alert)
    slack = slack_payload(alert)
    discord = discord_payload(alert)
    embed = discord["embeds"][0]
    slack_all = "\n".join(slack_texts(slack))
    escaped_url = URL.replace("&", "&amp;")

    assert text.startswith(f"{tag} Senior Researcher")
    assert slack["blocks"][0]["text"]["text"] == (
        f"*{label}:* <{escaped_url}|Senior Researcher - Machine Learning>"
    )
    assert embed["title"] == f"{label}: Senior Researcher - Machine Learning"
    assert embed["url"] == URL
    assert discord["content"].startswith(f"**{label}:** Senior Researcher")
    for fact in ("Microsoft Research", "New York, United States", "2024-05-09", "cvpr-2024"):
        assert fact in text
        assert fact in slack_all
        assert any(field["value"] == fact for field in embed["fields"])
    for rendered in (text, slack_all, slack["text"]):
        assert "USD 131,500\u2013243,300 / year" in rendered
        assert '#3: "gaussian splatting" OR nerf' in rendered
    assert embed["footer"]["text"] == 'Subscription #3: "gaussian splatting" OR nerf'


def test_kinds_have_distinct_discord_colors() -> None:
    colors = {discord_payload(make_alert(kind))["embeds"][0]["color"] for kind in ChangeKind}
    assert len(colors) == len(ChangeKind)


def test_changed_lists_each_field_old_to_new() -> None:
    fields = (SALARY_CHANGE, FieldChange("locations", ("Berlin",), ("Berlin", "Remote")))
    alert = make_alert(ChangeKind.CHANGED, fields=fields)
    expected = ["salary_max: 200,000 → 243,300", "locations: Berlin → Berlin; Remote"]

    text = render_text(alert)
    slack_changes = slack_payload(alert)["blocks"][2]["text"]["text"]
    description = discord_payload(alert)["embeds"][0]["description"]

    assert "  Changes:\n    " + "\n    ".join(expected) in text
    # Slack mrkdwn has no escape: "_" is shown as a look-alike that cannot format.
    assert slack_changes == "*Changes*\n" + "\n".join(expected).replace("_", "\u02cd")
    assert description == "\n".join(expected).replace("_", "\\_")  # Discord markdown escaped


def test_long_description_change_is_shortened_around_the_edit() -> None:
    old = "word " * 2000 + "remote allowed"
    new = "word " * 2000 + "on-site only"
    alert = make_alert(ChangeKind.CHANGED, fields=(FieldChange("description", old, new),))
    line = render_text(alert).splitlines()[-1].strip()
    assert line.startswith("description: …")
    assert "remote allowed" in line
    assert "on-site only" in line
    assert len(line) < 250


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (None, "Berlin", "team: (none) → Berlin"),
        (True, False, "team: yes → no"),
        ("a\n\tb", "a b c", "team: a b → a b c"),
        (17.5, 18, "team: 17.50 → 18"),
    ],
)
def test_change_values_are_shown_readably(old: Any, new: Any, expected: str) -> None:
    alert = make_alert(ChangeKind.CHANGED, fields=(FieldChange("team", old, new),))
    assert expected in render_text(alert)


def test_unknown_values_are_omitted() -> None:
    bare = Posting(source="acme", id="1", title="Engineer")
    alert = make_alert(posting=bare)

    assert render_text(alert) == (
        '[NEW] Engineer\n  Source:  acme · subscription #3: "gaussian splatting" OR nerf\n'
        "  ID:      acme:1"
    )
    slack = slack_payload(alert)
    assert [block["type"] for block in slack["blocks"]] == ["section", "context"]
    assert slack["blocks"][0]["text"]["text"] == "*New job:* Engineer"
    embed = discord_payload(alert)["embeds"][0]
    assert embed["fields"] == [
        {"name": "Source", "value": "acme", "inline": True},
        {"name": "ID", "value": "acme:1", "inline": True},
    ]
    assert "url" not in embed
    assert "description" not in embed


def test_blank_title_gets_a_placeholder() -> None:
    alert = make_alert(posting=dataclasses.replace(POSTING, title="  \n "))
    assert discord_payload(alert)["embeds"][0]["title"] == "New job: Untitled posting"


def test_apply_url_is_the_link_when_there_is_no_posting_url() -> None:
    apply = "https://apply.example.com/42"
    alert = make_alert(posting=dataclasses.replace(POSTING, url=None, apply_url=apply))
    assert f"<{apply}|" in slack_payload(alert)["blocks"][0]["text"]["text"]
    assert discord_payload(alert)["embeds"][0]["url"] == apply
    assert f"Link:    {apply}" in render_text(alert)


def test_many_locations_field_is_plural_and_counted() -> None:
    posting = dataclasses.replace(POSTING, locations=tuple(f"City {n}" for n in range(60)))
    fields = discord_payload(make_alert(posting=posting))["embeds"][0]["fields"]
    locations = next(field for field in fields if field["name"] == "Locations")
    assert locations["value"].startswith("City 0; City 1; ")
    assert re.search(r" \(\+\d+ more\)$", locations["value"])


@pytest.mark.parametrize(
    ("salary_min", "salary_max", "currency", "period", "expected"),
    [
        (131500, 243300, "USD", "year", "USD 131,500\u2013243,300 / year"),
        (45000, None, "GBP", "year", "GBP 45,000 / year"),
        (None, 60, "USD", "hour", "USD 60 / hour"),
        (17.5, 17.5, "EUR", "hour", "EUR 17.50 / hour"),
        (243300, 131500, "USD", None, "USD 131,500\u2013243,300"),
        (float("nan"), 50000, None, None, "50,000"),
        (float("inf"), None, "USD", "year", None),
        (None, None, "USD", "year", None),
    ],
)
def test_format_salary(
    salary_min: float | None,
    salary_max: float | None,
    currency: str | None,
    period: str | None,
    expected: str | None,
) -> None:
    posting = dataclasses.replace(
        POSTING,
        salary_min=salary_min,
        salary_max=salary_max,
        salary_currency=currency,
        salary_period=period,
    )
    assert format_salary(posting) == expected


@pytest.mark.parametrize(
    ("locations", "remote", "limit", "expected"),
    [
        (("A", "B", "C"), None, 100, "A; B; C"),
        (tuple("ABCDEFGHIJ"), None, 17, "A; B; C (+7 more)"),
        (("A", " ", "A", "B\n"), None, 100, "A; B"),
        (("Berlin",), True, 100, "Berlin; Remote"),
        (("Remote - EU",), True, 100, "Remote - EU"),
        ((), True, 100, "Remote"),
        ((), False, 100, None),
        (("x" * 50, "B"), None, 20, "xxxxxxxxx… (+1 more)"),
    ],
)
def test_format_locations(
    locations: tuple[str, ...], remote: bool | None, limit: int, expected: str | None
) -> None:
    posting = dataclasses.replace(POSTING, locations=locations, remote=remote)
    assert format_locations(posting, limit) == expected


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("exactly10!", 10, "exactly10!"),
        ("The quick brown fox jumps", 22, "The quick brown fox…"),
        ("hello world foo", 12, "hello world…"),
        ("abcdef", 1, "…"),
        ("abcdef", 0, ""),
    ],
)
def test_truncate(text: str, limit: int, expected: str) -> None:
    assert truncate(text, limit) == expected


@given(st.text(), st.integers(min_value=0, max_value=300))
def test_truncate_never_exceeds_limit(text: str, limit: int) -> None:
    result = truncate(text, limit)
    assert len(result) <= limit
    if result != text and result:
        assert result.endswith("…")
        assert text.startswith(result[:-1])


# ---------------------------------------------------------------- limits

HUGE = "lorem ipsum <dolor> & sit *amet* " * 40

HOSTILE = Posting(
    source="s" * 500,
    id="1",
    title="T" * 1000,
    company="C & co " * 200,
    locations=tuple(f"City number {n}, Some Long Country Name" for n in range(60)),
    remote=True,
    posted_at="2024-05-09" * 50,
    salary_min=1e300,
    salary_max=2e300,
    salary_currency="<" * 500,
    salary_period="year" * 200,
    url="https://example.com/" + "&" * 990,
    description="x<y & z " * 12_800,  # ~100 KB
)
HOSTILE_FIELDS = tuple(FieldChange(f"field_{n}_" + "f" * 300, HUGE, HUGE[::-1]) for n in range(30))
HOSTILE_SUBSCRIPTION = Subscription(id=99, target="discord:1", query="<@&1> q " * 1000)


@pytest.mark.parametrize("kind", list(ChangeKind))
def test_hostile_posting_stays_within_every_limit(kind: ChangeKind) -> None:
    alert = make_alert(kind, HOSTILE, HOSTILE_FIELDS, HOSTILE_SUBSCRIPTION)
    assert_slack_limits(slack_payload(alert))
    assert_discord_limits(discord_payload(alert))
    assert len(render_text(alert)) < 5000


def test_hostile_changes_say_how_many_were_left_out() -> None:
    alert = make_alert(ChangeKind.CHANGED, HOSTILE, HOSTILE_FIELDS)
    description = discord_payload(alert)["embeds"][0]["description"]
    assert re.search(r"…and \d+ more changes$", description)


field_values = st.one_of(
    st.none(),
    st.text(max_size=500),
    st.floats(),
    st.booleans(),
    st.lists(st.text(max_size=50), max_size=5).map(tuple),
)
postings = st.builds(
    Posting,
    source=st.text(max_size=200),
    id=st.just("1"),
    title=st.text(max_size=1500),
    company=st.none() | st.text(max_size=500),
    locations=st.lists(st.text(max_size=120), max_size=80).map(tuple),
    remote=st.none() | st.booleans(),
    posted_at=st.none() | st.text(max_size=100),
    salary_min=st.none() | st.floats(),
    salary_max=st.none() | st.floats() | st.integers(min_value=-(10**30), max_value=10**30),
    salary_currency=st.none() | st.text(max_size=20),
    salary_period=st.none() | st.sampled_from(["hour", "year"]) | st.text(max_size=20),
    url=st.none() | st.text(max_size=200) | st.text(max_size=1500).map("https://x.test/".__add__),
    apply_url=st.none() | st.text(max_size=100).map("http://y.test/".__add__),
    description=st.none() | st.text(max_size=5000),
)
alerts = st.builds(
    make_alert,
    kind=st.sampled_from(ChangeKind),
    posting=postings,
    fields=st.lists(
        st.builds(FieldChange, st.text(max_size=80), field_values, field_values), max_size=40
    ).map(tuple),
    subscription=st.builds(
        Subscription, id=st.integers(0, 10**6), target=st.just("t"), query=st.text(max_size=600)
    ),
)


@settings(max_examples=200, deadline=None)
@given(alerts)
def test_random_alerts_render_within_limits(alert: Alert) -> None:
    assert isinstance(render_text(alert), str)
    assert_slack_limits(slack_payload(alert))
    assert_discord_limits(discord_payload(alert))


@settings(max_examples=200, deadline=None)
@given(postings, st.integers(min_value=0, max_value=400))
def test_format_locations_respects_any_limit(posting: Posting, limit: int) -> None:
    result = format_locations(posting, limit)
    assert result is None or len(result) <= limit


# ---------------------------------------------------------------- injection

INJECTION = "@everyone <!channel> <!here> <@U123> <@&123> <#456> [click](https://evil) *bold* ||x||"
INJECTED = dataclasses.replace(
    POSTING,
    title=f"Engineer {INJECTION}",
    company=f"Evil | Corp {INJECTION}",
    locations=(INJECTION,),
    description=f"> quoted\n# heading {INJECTION}",
)
INJECTED_ALERTS = [
    make_alert(ChangeKind.NEW, INJECTED),
    make_alert(ChangeKind.CHANGED, INJECTED, (FieldChange("title", "Engineer", INJECTED.title),)),
]


@pytest.mark.parametrize("alert", INJECTED_ALERTS, ids=["new", "changed"])
def test_slack_output_escapes_markup(alert: Alert) -> None:
    payload = slack_payload(alert)
    assert_slack_limits(payload)
    for text in [*slack_mrkdwn_texts(payload), payload["text"]]:
        for raw in ("<!channel>", "<!here>", "<@U123>", "<@&123>", "<#456>", "*bold*"):
            assert raw not in text
    title = payload["blocks"][0]["text"]["text"]
    assert "&lt;!channel&gt; &lt;!here&gt;" in title
    assert "\u2217bold\u2217" in title
    assert title.count("|") == 1  # the link's own separator only
    assert "&lt;@U123&gt;" in payload["text"]


@pytest.mark.parametrize("alert", INJECTED_ALERTS, ids=["new", "changed"])
def test_discord_output_escapes_markup_and_mentions(alert: Alert) -> None:
    payload = discord_payload(alert)
    assert_discord_limits(payload)  # includes: no raw @everyone, @here, <@, <#
    assert payload["allowed_mentions"] == {"parse": []}
    for text in strings(payload):
        assert "[click](https://evil)" not in text
        assert not re.search(r"(?<!\\)\*bold(?<!\\)\*", text)
    assert r"\[click\](https://evil) \*bold\*" in payload["embeds"][0]["title"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("<@U123|bob>", "&lt;@U123|bob&gt;"),
        ("a & b", "a &amp; b"),
        ("&lt;", "&amp;lt;"),
        ("@channel @Here", "@\u200bchannel @\u200bHere"),
    ],
)
def test_slack_escape(raw: str, expected: str) -> None:
    assert slack_escape(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("@everyone", "@\u200beveryone"),
        ("@everyoneelse", "@\u200beveryoneelse"),
        ("@HERE", "@\u200bHERE"),
        ("<@123> <@!123> <@&123> <#123>", "<\u200b@123> <\u200b@!123> <\u200b@&123> <\u200b#123>"),
        ("\\<@123>", "\\\\<\u200b@123>"),
        (
            "[a](https://e) *b* _c_ ~~d~~ `e` ||f||",
            r"\[a\](https://e) \*b\* \_c\_ \~\~d\~\~ \`e\` \|\|f\|\|",
        ),
        ("> quote\n  - item\n# heading", "\\> quote\n  \\- item\n\\# heading"),
    ],
)
def test_discord_escape(raw: str, expected: str) -> None:
    assert discord_escape(raw) == expected


def test_discord_escapes_quote_and_heading_at_line_start() -> None:
    alert = make_alert(posting=dataclasses.replace(POSTING, description="> quoted"))
    assert discord_payload(alert)["embeds"][0]["description"] == r"\> quoted"
    alert = make_alert(posting=dataclasses.replace(POSTING, title="# Big"))
    assert discord_payload(alert)["content"].startswith(r"**New job:** \# Big")


def test_link_url_cannot_break_out_of_link_syntax() -> None:
    url = "https://example.com/a|b<!channel>c d"
    alert = make_alert(posting=dataclasses.replace(POSTING, url=url))
    expected = "https://example.com/a%7Cb%3C!channel%3Ec%20d"
    assert slack_payload(alert)["blocks"][0]["text"]["text"].startswith(f"*New job:* <{expected}|")
    payload = discord_payload(alert)
    assert payload["embeds"][0]["url"] == expected
    assert payload["content"].endswith(f"<{expected}>")


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        " JavaScript:alert(document.cookie)",
        "file:///etc/passwd",
        "data:text/html,<script>alert(1)</script>",
        "ftp://example.com/job",
        "//evil.example.com/job",
        "https:/no-host",
        "http://[::1",
        "https://example.com/" + "a" * 2000,
    ],
)
def test_unsafe_or_unusable_urls_are_not_linked(url: str) -> None:
    alert = make_alert(posting=dataclasses.replace(POSTING, url=url, apply_url=None))
    slack = slack_payload(alert)
    discord = discord_payload(alert)
    assert slack["blocks"][0]["text"]["text"] == ("*New job:* Senior Researcher - Machine Learning")
    assert "url" not in discord["embeds"][0]
    assert "<" not in discord["content"]
    assert "Link:" not in render_text(alert)
    assert_slack_limits(slack)
    assert_discord_limits(discord)


def test_unsafe_url_falls_back_to_a_safe_apply_url() -> None:
    apply = "https://apply.example.com/42"
    posting = dataclasses.replace(POSTING, url="javascript:alert(1)", apply_url=apply)
    assert discord_payload(make_alert(posting=posting))["embeds"][0]["url"] == apply


@pytest.mark.parametrize("empty", [None, "", (), []])
def test_an_empty_old_value_reads_none(empty: object) -> None:
    from bot.render import _change_line

    line = _change_line(FieldChange("locations", empty, ("San Diego, CA",)))
    assert line == "locations: (none) → San Diego, CA"
