"""The /jobs commands, platform-neutral, on a real store and catalog."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import ip_address
from typing import Any

import pytest

from bot.catalog import SourceCatalog
from bot.commands import MAX_REPLY_CHARS, Caller, Commands, Platform
from bot.config import Config
from bot.diff import diff
from bot.errors import SourceError
from bot.models import ChangeKind, Posting, Subscription
from bot.netguard import AddressGuard, IPAddress
from bot.render import slack_escape
from bot.store import Match, Store

NOW = 1_700_000_000.0
HOSTS = {"boards.example.com": "93.184.216.34", "intranet.example.com": "10.0.0.5"}
# (platform, user, channel) of the people typing commands.
SLACK = ("slack", "U1", "C1")
SLACK_2 = ("slack", "U2", "C1")
DISCORD = ("discord", "111", "222")
DISCORD_2 = ("discord", "333", "222")


async def table_resolver(host: str) -> list[IPAddress]:
    """The names of ``HOSTS``; the loopback and private literals resolve to themselves."""
    if host in HOSTS:
        return [ip_address(HOSTS[host])]
    try:
        return [ip_address(host.strip("[]"))]
    except ValueError:
        raise SourceError(f"{host} refused: the name does not resolve") from None


def make_config(**bot: Any) -> Config:
    return Config.model_validate(
        {
            "bot": bot,
            "sources": [{"name": "src", "type": "greenhouse", "url": "https://example.test/src"}],
        }
    )


async def make_commands(store: Store, **bot: Any) -> Commands:
    config = make_config(**bot)
    catalog = await SourceCatalog.load(config, store, guard=AddressGuard(resolver=table_resolver))
    return Commands(store, catalog, config, clock=lambda: NOW)


class Asked:
    """Counts how often the admin check runs."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.times = 0

    async def __call__(self) -> bool:
        self.times += 1
        return self.answer


def caller(who: tuple[str, str, str], admin: bool | Asked = False) -> Caller:
    platform, user, channel = who
    check = admin if isinstance(admin, Asked) else Asked(admin)
    assert platform in ("slack", "discord")
    typed: Platform = "slack" if platform == "slack" else "discord"
    return Caller(typed, user, channel, check)


@pytest.fixture
async def commands(store: Store) -> Commands:
    return await make_commands(store)


async def seed(store: Store, postings: Sequence[Posting]) -> None:
    """Each posting first seen one poll after the one before it (the last is the newest)."""
    for index in range(len(postings)):
        result = diff(
            await store.stored_postings("src"),
            postings[: index + 1],
            baseline=index == 0,
            close_after=2,
        )
        await store.apply_poll("src", result, [], now=NOW - 1000 + index)


# --- subscribe ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "text", "target", "where"),
    [
        (SLACK, "subscribe nerf", "slack:C1", "this channel"),
        (SLACK, "subscribe dm nerf", "slack:U1", "your direct messages"),
        (SLACK, "SUBSCRIBE  DM   nerf", "slack:U1", "your direct messages"),
        (DISCORD, "subscribe nerf", "discord:222", "this channel"),
        (DISCORD, "subscribe dm nerf", "discord:dm:111", "your direct messages"),
    ],
)
async def test_subscribe_targets_this_channel_or_the_callers_dms(
    store: Store, commands: Commands, who: tuple[str, str, str], text: str, target: str, where: str
) -> None:
    reply = await commands.run(caller(who), text)
    [subscription] = await store.subscriptions()
    assert subscription == Subscription(
        subscription.id,
        target,
        "nerf",
        frozenset({ChangeKind.NEW, ChangeKind.CHANGED}),
        paused=False,
        origin="chat",
        created_by=f"{who[0]}:{who[1]}",
    )
    assert f"#{subscription.id}" in reply and where in reply and "`nerf`" in reply


async def test_the_query_is_kept_as_typed(store: Store, commands: Commands) -> None:
    typed = '"gaussian splatting"  OR nerf location:london -"phd intern"'
    await commands.run(caller(SLACK), f"subscribe dm {typed}")
    [subscription] = await store.subscriptions()
    assert subscription.query == typed


@pytest.mark.parametrize("who", [SLACK, DISCORD])
@pytest.mark.parametrize(
    ("text", "reason", "pointer"),
    [
        ("subscribe nerf OR", "OR needs a term on each side", "nerf OR\n     ^"),
        ('subscribe dm "gaussian splatting', "unclosed quote", '"gaussian splatting\n^'),
        ("subscribe foo:bar", "unknown field", "foo:bar\n^"),
        ("preview robotics (vision", "unclosed parenthesis", "robotics (vision\n         ^"),
        ("preview salary>=lots", "malformed salary", "salary>=lots\n        ^"),
    ],
)
async def test_an_invalid_query_gets_the_pointed_message(
    store: Store,
    commands: Commands,
    who: tuple[str, str, str],
    text: str,
    reason: str,
    pointer: str,
) -> None:
    reply = await commands.run(caller(who), text)
    assert reply.startswith("That query is not valid: ")
    assert reason in reply
    shown = slack_escape(pointer) if who[0] == "slack" else pointer
    assert f"```\n{shown}\n```" in reply
    assert await store.subscriptions() == []


@pytest.mark.parametrize("text", ["subscribe", "subscribe dm", "subscribe   ", "preview"])
async def test_a_missing_query_gets_the_usage(commands: Commands, text: str) -> None:
    assert (await commands.run(caller(SLACK), text)).startswith("Usage: `/jobs ")


async def test_a_query_is_escaped_in_the_reply(store: Store, commands: Commands) -> None:
    slack = await commands.run(caller(SLACK), "subscribe <!channel> OR `x`")
    discord = await commands.run(caller(DISCORD), "subscribe @everyone OR `x`")
    assert "<!channel>" not in slack and "&lt;!channel&gt;" in slack
    # A backtick in the query would end the code span: it becomes a look-alike.
    assert "`&lt;!channel&gt; OR \u02cbx\u02cb`" in slack
    assert "`@everyone OR \u02cbx\u02cb`" in discord  # in code, no mention or markdown works


async def test_a_duplicate_subscription_is_not_added_twice(
    store: Store, commands: Commands
) -> None:
    await commands.run(caller(SLACK), "subscribe nerf")
    reply = await commands.run(caller(SLACK), "subscribe nerf")
    assert "already have" in reply
    assert len(await store.subscriptions()) == 1


async def test_the_per_user_limit(store: Store) -> None:
    commands = await make_commands(store, max_subscriptions_per_user=2)
    await commands.run(caller(SLACK), "subscribe one")
    await commands.run(caller(SLACK), "subscribe dm two")
    reply = await commands.run(caller(SLACK), "subscribe three")
    assert "You have 2 subscriptions" in reply and "max_subscriptions_per_user" in reply
    assert (await commands.run(caller(SLACK_2), "subscribe three")).startswith("Subscribed")
    assert len(await store.subscriptions()) == 3


async def test_the_per_channel_limit(store: Store) -> None:
    commands = await make_commands(store, max_subscriptions_per_channel=2)
    await commands.run(caller(DISCORD), "subscribe one")
    await commands.run(caller(DISCORD_2), "subscribe two")
    reply = await commands.run(caller(("discord", "444", "222")), "subscribe three")
    assert "This channel has 2 subscriptions" in reply
    assert "max_subscriptions_per_channel" in reply
    await commands.run(caller(("discord", "444", "222")), "subscribe dm three")  # DMs: allowed
    assert len(await store.subscriptions()) == 3


# --- list, unsubscribe, pause, resume ----------------------------------------------------


async def declare_in_config(store: Store, target: str, query: str) -> Subscription:
    await store.sync_config_subscriptions([(target, query, [ChangeKind.NEW])], NOW)
    return next(s for s in await store.subscriptions() if s.origin == "config")


async def test_list_shows_the_callers_and_the_channels(store: Store, commands: Commands) -> None:
    configured = await declare_in_config(store, "slack:C1", "robotics")
    await commands.run(caller(SLACK), "subscribe nerf")
    await commands.run(caller(SLACK), "subscribe dm splatting")
    await commands.run(caller(("slack", "U1", "C9")), "subscribe elsewhere")
    await commands.run(caller(SLACK_2), "subscribe theirs")
    await commands.run(caller(SLACK_2), "pause all")
    mine = await store.subscriptions_created_by("slack:U1")
    [theirs] = await store.subscriptions_created_by("slack:U2")

    reply = await commands.run(caller(SLACK), "list")

    assert reply.splitlines() == [
        "Your subscriptions (3 of 25):",
        f"`#{mine[0].id}` `nerf` → here",
        f"`#{mine[1].id}` `splatting` → your direct messages",
        f"`#{mine[2].id}` `elsewhere` → `slack:C9`",
        "Others in this channel:",
        f"`#{configured.id}` `robotics` → here (from the config file)",
        f"`#{theirs.id}` `theirs` → here (paused)",
    ]


async def test_list_with_nothing(commands: Commands) -> None:
    assert "no subscriptions" in await commands.run(caller(DISCORD), "list")


async def test_unsubscribe(store: Store, commands: Commands) -> None:
    await commands.run(caller(DISCORD), "subscribe nerf")
    [subscription] = await store.subscriptions()
    reply = await commands.run(caller(DISCORD), f"unsubscribe #{subscription.id}")
    assert reply == f"Removed `#{subscription.id}` (`nerf`)."
    assert await store.subscriptions() == []


@pytest.mark.parametrize("verb", ["unsubscribe", "pause", "resume"])
async def test_only_the_creators_own_subscriptions_can_be_changed(
    store: Store, commands: Commands, verb: str
) -> None:
    configured = await declare_in_config(store, "discord:222", "robotics")
    await commands.run(caller(DISCORD_2), "subscribe theirs")
    await commands.run(caller(("slack", "333", "C1")), "subscribe same-id-other-platform")
    [theirs] = await store.subscriptions_created_by("discord:333")
    [other_platform] = await store.subscriptions_created_by("slack:333")
    before = await store.subscriptions()

    cases = {
        f"{verb} {theirs.id}": "is not yours",
        f"{verb} {other_platform.id}": "is not yours",
        f"{verb} {configured.id}": "declared in the config file",
        f"{verb} 999": "There is no subscription `#999`",
        f"{verb} 99999999999999999999": "Usage:",
        f"{verb} nerf": "Usage:",
        verb: "Usage:",
    }
    for text, expected in cases.items():
        assert expected in await commands.run(caller(DISCORD), text), text
    assert await store.subscriptions() == before


async def test_pause_and_resume_one(store: Store, commands: Commands) -> None:
    await commands.run(caller(SLACK), "subscribe nerf")
    [subscription] = await store.subscriptions()
    version = await store.subscriptions_version()

    assert "Paused" in await commands.run(caller(SLACK), f"pause {subscription.id}")
    assert (await store.subscriptions())[0].paused
    assert await store.subscriptions_version() > version, "the matcher must refresh"
    assert "already paused" in await commands.run(caller(SLACK), f"pause {subscription.id}")
    assert "Resumed" in await commands.run(caller(SLACK), f"resume #{subscription.id}")
    assert not (await store.subscriptions())[0].paused
    assert "already resumed" in await commands.run(caller(SLACK), f"resume {subscription.id}")


async def test_pause_and_resume_all_touch_only_the_callers(
    store: Store, commands: Commands
) -> None:
    for query in ("one", "two", "three"):
        await commands.run(caller(SLACK), f"subscribe {query}")
    await commands.run(caller(SLACK_2), "subscribe theirs")
    await declare_in_config(store, "slack:C1", "robotics")
    first = (await store.subscriptions_created_by("slack:U1"))[0]
    await commands.run(caller(SLACK), f"pause {first.id}")

    assert await commands.run(caller(SLACK), "pause ALL") == "2 of your subscriptions were paused."
    assert {s.query: s.paused for s in await store.subscriptions()} == {
        "one": True,
        "two": True,
        "three": True,
        "theirs": False,
        "robotics": False,
    }
    assert "already paused" in await commands.run(caller(SLACK), "pause all")
    assert "3 of your subscriptions were resumed" in await commands.run(caller(SLACK), "resume all")
    assert not any(s.paused for s in await store.subscriptions())
    assert "no subscriptions" in await commands.run(caller(DISCORD), "pause all")


# --- preview -----------------------------------------------------------------------------


def posting(number: int, title: str, **fields: Any) -> Posting:
    return Posting("src", str(number), title, **fields)


async def test_preview_counts_matches_and_shows_the_newest_five(
    store: Store, commands: Commands
) -> None:
    await seed(
        store,
        [
            posting(1, "NeRF Researcher", company="Lab One", locations=("London, UK",)),
            posting(2, "Backend Engineer", company="Other"),
            *[
                posting(n, f"NeRF Engineer {n}", company=f"Co {n}", locations=("Paris", "Remote"))
                for n in range(3, 9)
            ],
            posting(9, "Splatting and NeRF intern"),
        ],
    )
    reply = await commands.run(caller(DISCORD), "preview nerf -intern")
    assert reply.splitlines() == [
        "7 open postings match `nerf -intern` right now. Newest first:",
        "• NeRF Engineer 8 — Co 8 — Paris; Remote · `src:8`",
        "• NeRF Engineer 7 — Co 7 — Paris; Remote · `src:7`",
        "• NeRF Engineer 6 — Co 6 — Paris; Remote · `src:6`",
        "• NeRF Engineer 5 — Co 5 — Paris; Remote · `src:5`",
        "• NeRF Engineer 4 — Co 4 — Paris; Remote · `src:4`",
    ]
    one = await commands.run(caller(SLACK), 'preview "nerf researcher"')
    assert one.splitlines() == [
        '1 open posting match `"nerf researcher"` right now. Newest first:',
        "• NeRF Researcher — Lab One — London, UK · `src:1`",
    ]
    assert await commands.run(caller(SLACK), "preview robotics") == (
        "No open posting matches `robotics` right now (of 9 open)."
    )


async def test_preview_escapes_what_postings_say(store: Store, commands: Commands) -> None:
    await seed(store, [posting(1, "<!channel> @everyone NeRF *now*", company="<@U0> & Co")])
    slack = await commands.run(caller(SLACK), "preview nerf")
    discord = await commands.run(caller(DISCORD), "preview nerf")
    assert "<!channel>" not in slack and "<@U0>" not in slack and "&amp; Co" in slack
    assert "@everyone" not in discord and r"\*now\*" in discord and "<@U0>" not in discord
    assert "company unknown" not in slack and "location unknown" in discord


# --- sources, status, help ---------------------------------------------------------------


async def test_sources(store: Store, commands: Commands) -> None:
    await seed(store, [posting(1, "A"), posting(2, "B")])
    admin = caller(SLACK, admin=True)
    await commands.run(admin, "source add acme lever https://boards.example.com/acme 2h")
    await commands.run(admin, "source add beta ashby https://boards.example.com/beta")
    await commands.run(admin, "source pause beta")
    await store.record_failure("acme", "HTTP 500 from boards.example.com/acme", NOW - 60)

    reply = await commands.run(caller(DISCORD), "sources")

    assert reply.splitlines() == [
        "Sources:",
        "`src` greenhouse · every 30m · last success 16m ago · 2 open · 0 failures",
        "`acme` lever · every 2h · last success never · 0 open · 1 failures (chat)",
        "`beta` ashby · every 30m · last success never · 0 open · 0 failures (chat, paused)",
    ]


async def test_status(store: Store, commands: Commands) -> None:
    await seed(store, [posting(1, "NeRF 1")])
    subscription = await store.add_subscription(
        "slack:C1", "nerf", [ChangeKind.NEW], origin="chat", created_by="slack:U1", now=NOW
    )
    for number in (2, 3, 4):
        result = diff(
            await store.stored_postings("src"),
            [posting(n, f"NeRF {n}") for n in range(1, number + 1)],
            baseline=False,
            close_after=2,
        )
        matches = [Match(i, subscription) for i in range(len(result.changes))]
        await store.apply_poll("src", result, matches, now=NOW - 600 + number)
    due = await store.due_deliveries(NOW)
    await store.mark_dead(due[0].id, "channel_not_found: <@U9> is <b>gone</b>")
    await store.mark_dead(due[1].id, "HTTP 403")
    await store.record_failure("src", "timed out fetching example.test/src", NOW - 120)

    reply = await commands.run(caller(SLACK), "status")

    assert reply.splitlines() == [
        "Sources:",
        "`src` last poll 2m ago failed (1 in a row): timed out fetching example.test/src",
        "Alerts waiting to be sent: 1. Undeliverable: 2.",
        "Most recent undeliverable alerts:",
        f"`#{due[1].id}` to `slack:C1`, queued 9m ago: HTTP 403",
        f"`#{due[0].id}` to `slack:C1`, queued 9m ago:"
        " channel_not_found: &lt;@U9&gt; is &lt;b&gt;gone&lt;/b&gt;",
    ]


async def test_status_before_any_poll(commands: Commands) -> None:
    assert (await commands.run(caller(DISCORD), "status")).splitlines() == [
        "Sources:",
        "`src` not polled yet",
        "Alerts waiting to be sent: 0. Undeliverable: 0.",
    ]


@pytest.mark.parametrize("text", ["help", "", "   ", "HELP"])
async def test_help_explains_every_command_and_the_query_syntax(
    commands: Commands, text: str
) -> None:
    reply = await commands.run(caller(DISCORD), text)
    for usage in (
        "subscribe QUERY",
        "subscribe dm QUERY",
        "list",
        "unsubscribe ID",
        "pause ID|all",
        "resume ID|all",
        "preview QUERY",
        "sources",
        "status",
        "source add NAME TYPE URL [INTERVAL]",
        "source remove NAME",
        "source pause NAME",
        "source resume NAME",
        '"exact phrase"',
        "a OR b",
        "-word",
        "title:",
        "remote:yes",
        "salary>=150k",
    ):
        assert usage in reply, usage
    assert len(reply) <= MAX_REPLY_CHARS


async def test_help_on_slack_escapes_its_own_syntax(commands: Commands) -> None:
    reply = await commands.run(caller(SLACK), "help")
    assert "`salary&gt;=150k`" in reply and "salary>=" not in reply


async def test_an_unknown_command_gets_short_help(commands: Commands) -> None:
    reply = await commands.run(caller(SLACK), "subscribr nerf")
    assert reply.startswith("There is no `/jobs subscribr` command.")
    assert "/jobs help" in reply and len(reply) < 300


# --- source management (admins) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "permission"),
    [
        (SLACK, "workspace admin or owner (or a user listed in the bot's `admin_user_ids`)"),
        (DISCORD, "Manage Server permission (or a role listed in the bot's `admin_role_ids`)"),
    ],
)
@pytest.mark.parametrize(
    "text",
    [
        "source add acme lever https://boards.example.com/acme",
        "source remove src",
        "source pause src",
        "source resume src",
        "source",
    ],
)
async def test_non_admins_are_told_the_permission_needed(
    store: Store, commands: Commands, who: tuple[str, str, str], permission: str, text: str
) -> None:
    asked = Asked(False)
    reply = await commands.run(caller(who, asked), text)
    assert reply.startswith("Only") and permission in reply
    assert asked.times == 1
    assert await store.chat_sources() == []


async def test_the_admin_check_runs_only_for_admin_commands(commands: Commands) -> None:
    asked = Asked(False)
    for text in ("subscribe nerf", "list", "preview nerf", "sources", "status", "help", "x"):
        await commands.run(caller(SLACK, asked), text)
    assert asked.times == 0


async def test_an_admin_adds_pauses_resumes_and_removes_a_source(
    store: Store, commands: Commands
) -> None:
    admin = caller(DISCORD, admin=True)
    added = await commands.run(admin, "source add acme lever https://boards.example.com/acme 6h")
    assert added.startswith("Added source `acme` (lever, every 6h).")
    [stored] = await store.chat_sources()
    assert (stored.name, stored.type, stored.url, stored.interval, stored.added_by) == (
        "acme", "lever", "https://boards.example.com/acme", 21600.0, "discord:111"
    )  # fmt: skip

    assert await commands.run(admin, "source pause acme") == "Source `acme` paused."
    assert await commands.run(admin, "source pause acme") == "Source `acme` is already paused."
    assert not (await store.chat_sources())[0].enabled
    assert await commands.run(admin, "source resume acme") == "Source `acme` resumed."
    assert (await store.chat_sources())[0].enabled
    reply = await commands.run(admin, "SOURCE REMOVE acme")
    assert reply == "Removed source `acme` and its stored postings."
    assert await store.chat_sources() == []


async def test_a_source_added_without_interval_gets_the_default(
    store: Store, commands: Commands
) -> None:
    reply = await commands.run(
        caller(SLACK, admin=True), 'source add "acme" ashby "https://boards.example.com/a?x=1"'
    )
    assert "(ashby, every 30m)" in reply
    [stored] = await store.chat_sources()
    assert stored.url == "https://boards.example.com/a?x=1" and stored.interval is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "source add src lever https://boards.example.com/x",
            "Cannot add source `src`: a source of the config file has that name",
        ),
        (
            "source add acme nope https://boards.example.com/x",
            "Cannot add source `acme`: type: unknown source type 'nope' (known: ",
        ),
        (
            "source add acme lever https://boards.example.com/x 1m",
            "Cannot add source `acme`: the interval of a source added from chat"
            " must be at least 5m.",
        ),
        (
            "source add acme lever https://intranet.example.com/jobs",
            "Cannot add source `acme`: intranet.example.com refused:"
            " resolves to a private address.",
        ),
        (
            "source add acme lever http://127.0.0.1:8080/jobs",
            "Cannot add source `acme`: 127.0.0.1 refused: resolves to a private address.",
        ),
        (
            "source add acme lever http://[::ffff:169.254.169.254]/latest",
            "Cannot add source `acme`: ::ffff:169.254.169.254 refused",
        ),
        (
            "source add acme lever https://nowhere.example.com/jobs",
            "Cannot add source `acme`: nowhere.example.com refused: the name does not resolve.",
        ),
        ("source add acme lever file:///etc/passwd", "must be an http://, https:// location"),
        ("source add acme html https://boards.example.com/x", "needs CSS selectors"),
        ("source add bad/name lever https://boards.example.com/x", "is not a valid name"),
        ("source remove src", "Cannot remove source `src`: it is a source of the config file"),
        ("source pause src", "Cannot pause source `src`: it is a source of the config file"),
        ("source resume src", "Cannot resume source `src`: it is a source of the config file"),
        ("source remove nope", "Cannot remove source `nope`: there is no source of that name."),
        ("source add acme lever", "Usage: `/jobs source add NAME TYPE URL [INTERVAL]`"),
        ("source list", "Usage: "),
        ('source add "unbalanced', "Usage: "),
        ("source", "Usage: "),
    ],
)
async def test_source_commands_refused_with_the_reason(
    store: Store, commands: Commands, text: str, expected: str
) -> None:
    reply = await commands.run(caller(SLACK, admin=True), text)
    assert expected in reply
    assert await store.chat_sources() == []


async def test_replies_fit_in_one_message(store: Store) -> None:
    commands = await make_commands(store, max_subscriptions_per_user=100)
    for number in range(60):
        await commands.run(caller(DISCORD), f"subscribe {'longword' * 20} {number}")
    reply = await commands.run(caller(DISCORD), "list")
    assert len(reply) <= MAX_REPLY_CHARS
    assert reply.endswith("… (more not shown)")
