"""The TOML config (INTERFACE.md "Config"), validated with pydantic.

Unknown keys and bad values are refused with the key path and the reason.
Secrets never live here: they come from the environment (see ``Secrets``).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.errors import ConfigError, QueryError
from bot.models import ChangeKind
from bot.query import DEFAULT_SEMANTIC_THRESHOLD, parse_query
from bot.sources import source_types

CONFIG_ENV = "CAREERBOT_CONFIG"
DATA_DIR_ENV = "CAREERBOT_DATA_DIR"
DEFAULT_CONFIG = "config.toml"

_DURATION_PART = re.compile(r"(\d+)\s*([smhdw])")
_MAX_DURATION_CHARS = 40
_MAX_CONFIG_BYTES = 1024 * 1024
_MAX_KEY_DOTS = 1000
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# slack:C… is a channel and slack:U… a user's DM with the bot; discord:dm:ID a Discord DM.
_TARGET = re.compile(
    r"^(console|slack:[A-Z0-9]+|discord:(dm:)?\d+|webhook:[A-Za-z0-9][A-Za-z0-9._-]*)$"
)
# Slack user ids start with U or W, and the id of a DM conversation with D.
_SLACK_DIRECT = re.compile(r"slack:[UWD][A-Z0-9]*")
MAX_DURATION = 365 * 86400.0


def parse_duration(value: object) -> float:
    """``"90s"``, ``"30m"``, ``"1h30m"``, ``"1d"`` → seconds (at least one second)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("a duration is a string such as '30m', '6h' or '1d'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().lower()
        if len(text) > _MAX_DURATION_CHARS:  # also spares the regex a quadratic scan of digits
            raise ValueError(f"a duration is at most {_MAX_DURATION_CHARS} characters, e.g. '6h'")
        parts = _DURATION_PART.findall(text)
        if not parts or _DURATION_PART.sub("", text).strip():
            raise ValueError(f"{value!r} is not a duration such as '90s', '30m', '6h' or '1d'")
        seconds = float(sum(int(n) * _UNIT_SECONDS[unit] for n, unit in parts))
    if seconds < 1:
        raise ValueError("a duration must be at least 1s")
    if seconds > MAX_DURATION:
        raise ValueError("a duration must be at most 365d")
    return seconds


def format_duration(seconds: float) -> str:
    """Seconds as the largest whole unit: 21600 → ``"6h"``, 90 → ``"90s"``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _valid_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"{value!r} is not a valid name (letters, digits, '.', '_', '-'; at most 64)"
        )
    return value


Name = Annotated[str, AfterValidator(_valid_name)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BotSettings(_Strict):
    database: str = "careerbot.sqlite3"
    default_interval: Duration = 1800.0
    timezone: str = "UTC"
    health_port: int = Field(default=0, ge=0, le=65535)
    allow_private_sources: bool = False
    close_after_polls: int = Field(default=2, ge=1, le=100)
    max_pages: int = Field(default=20, ge=1, le=1000)
    request_timeout: Duration = 20.0
    max_connections: int = Field(default=16, ge=1, le=256)
    per_host_connections: int = Field(default=4, ge=1, le=64)
    per_host_rate: float = Field(default=5.0, gt=0, le=1000)  # requests per second
    delivery_max_attempts: int = Field(default=8, ge=1, le=100)
    max_subscriptions_per_user: int = Field(default=25, ge=1, le=10_000)
    max_subscriptions_per_channel: int = Field(default=100, ge=1, le=10_000)
    chat_min_interval: Duration = 300.0  # the shortest interval of a source added from chat
    ops_target: str | None = None  # where source-health notices go (a target, like alerts')
    ops_after_failures: int = Field(default=3, ge=1, le=1000)  # failed polls in a row
    keep_closed: Duration = 180 * 86400.0  # closed postings (and their alerts) older are pruned
    # more alerts than this for one target, due at once, go as one digest (0: never)
    burst_digest_after: int = Field(default=10, ge=0, le=10_000)
    # the cosine similarity at which a ~"phrase" term matches (bot/semantic.py)
    semantic_threshold: float = Field(default=DEFAULT_SEMANTIC_THRESHOLD, gt=0, le=1)

    @field_validator("ops_target")
    @classmethod
    def _valid_ops_target(cls, value: str | None) -> str | None:
        return None if value is None else validate_target(value)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class Selectors(_Strict):
    """CSS selectors of an ``html`` source; ``sel@attr`` reads an attribute."""

    item: str
    title: str
    url: str | None = None
    location: str | None = None
    company: str | None = None
    posted: str | None = None
    description: str | None = None
    next_page: str | None = None


class SourceConfig(_Strict):
    name: Name
    type: str
    url: str
    interval: Duration | None = None
    enabled: bool = True
    company: str | None = None
    max_pages: int | None = Field(default=None, ge=1, le=1000)
    selectors: Selectors | None = None
    location_separator: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _selectors_for_html(self) -> SourceConfig:
        if self.type == "html" and self.selectors is None:
            raise ValueError("an 'html' source needs [sources.selectors] with item and title")
        if self.type != "html" and self.selectors is not None:
            raise ValueError("selectors apply only to sources of type 'html'")
        return self

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in source_types():
            raise ValueError(f"unknown source type {value!r} (known: {', '.join(source_types())})")
        return value

    @field_validator("url")
    @classmethod
    def _fetchable_url(cls, value: str) -> str:
        problem = url_problem(value, schemes=("http", "https", "file"))
        if problem:
            raise ValueError(problem)
        return value


class SubscriptionConfig(_Strict):
    target: str
    query: str
    notify: tuple[ChangeKind, ...] = (ChangeKind.NEW, ChangeKind.CHANGED)

    @field_validator("target")
    @classmethod
    def _valid_target(cls, value: str) -> str:
        return validate_target(value)

    @field_validator("query")
    @classmethod
    def _valid_query(cls, value: str) -> str:
        try:
            parse_query(value)
        except QueryError as err:
            raise ValueError(f"invalid query: {err}") from None
        return value

    @field_validator("notify")
    @classmethod
    def _some_kind(cls, value: tuple[ChangeKind, ...]) -> tuple[ChangeKind, ...]:
        if not value:
            raise ValueError("name at least one of new, changed, closed, reopened")
        return value


class WebhookConfig(_Strict):
    kind: Literal["slack", "discord"]
    url_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class DiscordSettings(_Strict):
    guild_ids: tuple[int, ...] = ()
    api_base: str = "https://discord.com/api/v10"
    gateway_url: str = "wss://gateway.discord.gg/"
    admin_role_ids: tuple[int, ...] = ()


class SlackSettings(_Strict):
    mode: Literal["http", "socket"] = "http"
    host: str = "0.0.0.0"
    port: int = Field(default=3000, ge=1, le=65535)
    path: str = "/slack/events"
    api_base_url: str = "https://slack.com/api/"
    admin_user_ids: tuple[str, ...] = ()


class Config(_Strict):
    bot: BotSettings = BotSettings()
    sources: tuple[SourceConfig, ...] = ()
    subscriptions: tuple[SubscriptionConfig, ...] = ()
    webhooks: dict[Name, WebhookConfig] = {}
    discord: DiscordSettings = DiscordSettings()
    slack: SlackSettings = SlackSettings()

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        seen: set[str] = set()
        for index, source in enumerate(self.sources):
            if source.name in seen:
                raise ValueError(f"sources[{index}].name: duplicate source name {source.name!r}")
            seen.add(source.name)
        for index, sub in enumerate(self.subscriptions):
            webhook = webhook_name(sub.target)
            if webhook is not None and webhook not in self.webhooks:
                raise ValueError(
                    f"subscriptions[{index}].target: no [webhooks.{webhook}] is configured"
                )
        ops_webhook = webhook_name(self.bot.ops_target or "")
        if ops_webhook is not None and ops_webhook not in self.webhooks:
            raise ValueError(f"bot.ops_target: no [webhooks.{ops_webhook}] is configured")
        return self

    def interval_of(self, source: SourceConfig) -> float:
        return source.interval if source.interval is not None else self.bot.default_interval

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(s.name for s in self.sources) or "none configured"
        raise ConfigError(f"no source named {name!r} (sources: {known})")


def url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    """Why ``url`` cannot be fetched, or None. Never repeats the URL (it may be secret)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        return "is not a valid URL (check the host and port)"
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        readable = ", ".join(f"{s}:" if s == "file" else f"{s}://" for s in schemes)
        return f"must be an {readable} location"
    if scheme != "file" and not parts.hostname:
        return "has no host name"
    return None


def validate_target(value: str) -> str:
    if not _TARGET.match(value):
        raise ValueError(
            f"{value!r} is not a target (console, slack:CHANNEL, discord:CHANNEL_ID, webhook:NAME)"
        )
    return value


def is_direct_message(target: str) -> bool:
    """Whether ``target`` is one person's direct messages rather than a channel."""
    return target.startswith("discord:dm:") or _SLACK_DIRECT.fullmatch(target) is not None


def webhook_name(target: str) -> str | None:
    return target.removeprefix("webhook:") if target.startswith("webhook:") else None


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A validated config and the file it came from."""

    config: Config
    path: Path
    database: Path


def resolve_config_path(cli_value: str | None, environ: Mapping[str, str] = os.environ) -> Path:
    return Path(cli_value or environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_config(path: Path, environ: Mapping[str, str] = os.environ) -> LoadedConfig:
    try:
        with path.open("rb") as file:
            data = file.read(_MAX_CONFIG_BYTES + 1)
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config file {str(path)!r}: {err}") from None
    if len(data) > _MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {str(path)!r} is larger than {_MAX_CONFIG_BYTES} bytes")
    raw = _parse_toml(text, path)
    base = path.resolve().parent
    _resolve_file_urls(raw, base)
    try:
        config = Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"{path}: {describe_validation_error(err)}") from None
    return LoadedConfig(config, path, _database_path(config.bot.database, base, environ))


def _parse_toml(text: str, path: Path) -> dict[str, Any]:
    # tomllib keeps every prefix of a dotted key, so its memory grows with the square of
    # the key's parts (a 100,000-part key takes tens of GB).
    if any(line.partition("=")[0].count(".") > _MAX_KEY_DOTS for line in text.splitlines()):
        raise ConfigError(f"{path}: a key has more than {_MAX_KEY_DOTS} dotted parts")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None
    except RecursionError:  # tomllib recurses into nested arrays and inline tables
        raise ConfigError(f"{path}: invalid TOML: arrays or tables nested too deeply") from None


def describe_validation_error(err: ValidationError) -> str:
    """The first problem, as ``key.path: reason``."""
    first = err.errors()[0]
    where = _key_path(first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    return f"{where}: {message}" if where else message


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _resolve_file_urls(raw: dict[str, Any], base: Path) -> None:
    """Make relative ``file:`` source URLs relative to the config file, not the cwd."""
    sources = raw.get("sources")
    if not isinstance(sources, list):
        return
    for source in sources:
        url = source.get("url") if isinstance(source, dict) else None
        if isinstance(url, str) and url.startswith("file:") and not url.startswith("file:/"):
            source["url"] = (base / url.removeprefix("file:")).as_uri()


def _database_path(database: str, config_dir: Path, environ: Mapping[str, str]) -> Path:
    path = Path(database).expanduser()
    if path.is_absolute():
        return path
    return Path(environ.get(DATA_DIR_ENV) or config_dir) / path


@dataclass(frozen=True, slots=True)
class Secrets:
    """Tokens from the environment. ``repr`` never shows their values."""

    discord_token: str | None
    slack_bot_token: str | None
    slack_signing_secret: str | None
    slack_app_token: str | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Secrets:
        def get(name: str) -> str | None:
            return environ.get(name) or None

        return cls(
            get("DISCORD_TOKEN"),
            get("SLACK_BOT_TOKEN"),
            get("SLACK_SIGNING_SECRET"),
            get("SLACK_APP_TOKEN"),
        )

    def __repr__(self) -> str:
        present = [name for name, value in self._named() if value]
        return f"Secrets(set={present})"

    def _named(self) -> list[tuple[str, str | None]]:
        return [
            ("DISCORD_TOKEN", self.discord_token),
            ("SLACK_BOT_TOKEN", self.slack_bot_token),
            ("SLACK_SIGNING_SECRET", self.slack_signing_secret),
            ("SLACK_APP_TOKEN", self.slack_app_token),
        ]


def environment_problems(config: Config, environ: Mapping[str, str] = os.environ) -> list[str]:
    """What the environment lacks for this config to work, first problem first."""
    problems: list[str] = []
    secrets = Secrets.from_env(environ)
    for name, webhook in config.webhooks.items():
        url = environ.get(webhook.url_env)
        if not url:
            problems.append(
                f"webhooks.{name}.url_env: environment variable {webhook.url_env} is not set"
            )
        elif problem := url_problem(url, schemes=("https", "http")):
            problems.append(f"webhooks.{name}.url_env: the URL in {webhook.url_env} {problem}")
    if secrets.slack_bot_token:
        if config.slack.mode == "http" and not secrets.slack_signing_secret:
            problems.append("slack: SLACK_SIGNING_SECRET must be set for mode = 'http'")
        if config.slack.mode == "socket" and not secrets.slack_app_token:
            problems.append("slack: SLACK_APP_TOKEN must be set for mode = 'socket'")
    for index, sub in enumerate(config.subscriptions):
        if sub.target.startswith("slack:") and not secrets.slack_bot_token:
            problems.append(f"subscriptions[{index}].target: needs SLACK_BOT_TOKEN")
        if sub.target.startswith("discord:") and not secrets.discord_token:
            problems.append(f"subscriptions[{index}].target: needs DISCORD_TOKEN")
    return problems
