from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Secrets, environment_problems, load_config, parse_duration
from bot.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_example_config_validates() -> None:
    loaded = load_config(REPO / "config.example.toml", environ={})
    config = loaded.config
    assert [s.type for s in config.sources] == ["cvpr", "greenhouse"]
    for source in config.sources:
        assert source.url.startswith("file:///")
        assert Path(source.url.removeprefix("file://")).exists()
    assert loaded.database == REPO / "careerbot.sqlite3"
    assert environment_problems(config, environ={}) == []


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1), ("90s", 90), ("30m", 1800), ("6h", 21600), ("1d", 86400), ("1h30m", 5400)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0s", "5", "5x", "m", "1h junk", "-1m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[bot]\ncolour = 'red'\n", "bot.colour: unknown key"),
        (
            "[bot]\ndefault_interval = '5 parsecs'\n",
            "bot.default_interval: '5 parsecs' is not a duration",
        ),
        (
            "[bot]\nhealth_port = 70000\n",
            "bot.health_port: Input should be less than or equal to 65535",
        ),
        ("[bot]\ntimezone = 'Mars/Olympus'\n", "bot.timezone: unknown time zone"),
        (
            "[[sources]]\nname = 'a'\ntype = 'nope'\nurl = 'https://x'\n",
            "sources[0].type: unknown source type 'nope'",
        ),
        (
            "[[sources]]\nname = 'a'\ntype = 'cvpr'\nurl = 'ftp://x'\n",
            "sources[0].url: must be an http://",
        ),
        (
            "[[sources]]\nname = 'a b'\ntype = 'cvpr'\nurl = 'https://x'\n",
            "sources[0].name: 'a b' is not a valid name",
        ),
        (
            "[[sources]]\nname = 'a'\ntype = 'cvpr'\nurl = 'https://x'\ninterval = '0s'\n",
            "sources[0].interval: a duration must be at least 1s",
        ),
        (
            "[[sources]]\nname = 'a'\ntype = 'cvpr'\nurl = 'https://x'\nfoo = 1\n",
            "sources[0].foo: unknown key",
        ),
        (
            "[[sources]]\nname = 'a'\ntype = 'cvpr'\nurl = 'https://x'\n"
            "[[sources]]\nname = 'a'\ntype = 'cvpr'\nurl = 'https://y'\n",
            "duplicate source name 'a'",
        ),
        (
            "[[subscriptions]]\ntarget = 'console'\nquery = '\"open'\n",
            "subscriptions[0].query: invalid query",
        ),
        (
            "[[subscriptions]]\ntarget = 'email:me'\nquery = 'x'\n",
            "subscriptions[0].target: 'email:me' is not a target",
        ),
        (
            "[[subscriptions]]\ntarget = 'console'\nquery = 'x'\nnotify = ['born']\n",
            "subscriptions[0].notify[0]: Input should be 'new'",
        ),
        (
            "[[subscriptions]]\ntarget = 'webhook:lab'\nquery = 'x'\n",
            "no [webhooks.lab] is configured",
        ),
        ("[webhooks.lab]\nkind = 'teams'\nurl_env = 'X'\n", "webhooks.lab.kind"),
        (
            "[webhooks.lab]\nkind = 'slack'\nurl = 'https://hooks'\nurl_env = 'X'\n",
            "webhooks.lab.url: unknown key",
        ),
        ("[slack]\nmode = 'carrier-pigeon'\n", "slack.mode"),
        ("[discord]\nguild_ids = ['abc']\n", "discord.guild_ids[0]"),
        ("[bot\n", "invalid TOML"),
    ],
)
def test_bad_config_names_the_key_and_reason(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, toml), environ={})
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml")


def test_relative_database_follows_data_dir(tmp_path: Path) -> None:
    path = write(tmp_path, "[bot]\ndatabase = 'state.db'\n")
    assert load_config(path, environ={}).database == tmp_path / "state.db"
    data = tmp_path / "data"
    assert (
        load_config(path, environ={"CAREERBOT_DATA_DIR": str(data)}).database == data / "state.db"
    )


def test_environment_problems_name_the_missing_variable(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[webhooks.lab]\nkind = 'slack'\nurl_env = 'LAB_HOOK'\n"
        "[[subscriptions]]\ntarget = 'slack:C123'\nquery = 'x'\n",
    )
    config = load_config(path, environ={}).config
    problems = environment_problems(config, environ={})
    assert problems[0] == "webhooks.lab.url_env: environment variable LAB_HOOK is not set"
    assert "needs SLACK_BOT_TOKEN" in problems[1]
    env = {"LAB_HOOK": "https://hooks.example/secret", "SLACK_BOT_TOKEN": "xoxb-1"}
    assert environment_problems(config, environ=env) == [
        "slack: SLACK_SIGNING_SECRET must be set for mode = 'http'"
    ]


def test_secrets_repr_hides_values() -> None:
    secrets = Secrets.from_env({"DISCORD_TOKEN": "very-secret-token", "SLACK_BOT_TOKEN": "xoxb-9"})
    assert "very-secret-token" not in repr(secrets)
    assert "xoxb-9" not in repr(secrets)
    assert "DISCORD_TOKEN" in repr(secrets)
