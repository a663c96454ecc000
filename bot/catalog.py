"""The sources careerbot polls: those of the config file, plus those added from chat.

Config sources are the operator's: chat can neither remove nor pause them, and a
chat source cannot take one's name. Chat sources live in the store, must be
http(s), pass the outbound-address check (``bot.netguard``) unless the config
allows private sources, and are polled no more often than ``chat_min_interval``.
Listeners hear of every change, so a running scheduler follows without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pydantic import ValidationError

from bot.config import (
    Config,
    SourceConfig,
    describe_validation_error,
    format_duration,
    parse_duration,
    url_problem,
)
from bot.errors import CareerbotError, ConfigError, SourceError
from bot.netguard import AddressGuard
from bot.store import ChatSource, Store

log = logging.getLogger(__name__)

# Called with a source's name and the source as it now stands (None once removed).
SourceListener = Callable[[str, SourceConfig | None], None]


class CatalogError(CareerbotError):
    """A source cannot be added or changed from chat; the message says why."""


class SourceCatalog:
    def __init__(
        self, config: Config, store: Store, chat_sources: list[ChatSource], guard: AddressGuard
    ) -> None:
        self._config = config
        self._store = store
        self._guard = guard
        self._config_sources = {source.name: source for source in config.sources}
        self._chat: dict[str, SourceConfig] = {}
        for chat_source in chat_sources:
            self._load(chat_source)
        self._listeners: list[SourceListener] = []
        self._lock = asyncio.Lock()  # one change at a time: check, store, notify

    @classmethod
    async def load(
        cls, config: Config, store: Store, *, guard: AddressGuard | None = None
    ) -> SourceCatalog:
        return cls(config, store, await store.chat_sources(), guard or AddressGuard())

    def _load(self, chat_source: ChatSource) -> None:
        if chat_source.name in self._config_sources:
            log.warning(
                "chat source %s is shadowed by the config source of that name",
                chat_source.name,
                extra={"source": chat_source.name},
            )
            return
        try:
            self._chat[chat_source.name] = self._source_config(chat_source)
        except ValidationError as err:
            log.warning(
                "chat source %s skipped: %s",
                chat_source.name,
                describe_validation_error(err),
                extra={"source": chat_source.name},
            )

    def _source_config(self, chat_source: ChatSource) -> SourceConfig:
        bot = self._config.bot
        interval = bot.default_interval if chat_source.interval is None else chat_source.interval
        return SourceConfig(
            name=chat_source.name,
            type=chat_source.type,
            url=chat_source.url,
            interval=max(interval, bot.chat_min_interval),
            enabled=chat_source.enabled,
        )

    # --- reading ---------------------------------------------------------------

    def sources(self) -> list[SourceConfig]:
        """Every source: the config's in their order, then chat sources by name."""
        return [*self._config_sources.values(), *sorted(self._chat.values(), key=lambda s: s.name)]

    def enabled(self) -> list[SourceConfig]:
        return [source for source in self.sources() if source.enabled]

    def source(self, name: str) -> SourceConfig:
        found = self._config_sources.get(name) or self._chat.get(name)
        if found is None:
            known = ", ".join(s.name for s in self.sources()) or "none configured"
            raise ConfigError(f"no source named {name!r} (sources: {known})")
        return found

    def is_chat(self, name: str) -> bool:
        return name in self._chat

    # --- listeners -------------------------------------------------------------

    def add_listener(self, listener: SourceListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: SourceListener) -> None:
        self._listeners.remove(listener)

    def _notify(self, name: str, source: SourceConfig | None) -> None:
        for listener in list(self._listeners):
            listener(name, source)

    # --- changes from chat -----------------------------------------------------

    async def add(
        self,
        name: str,
        type_name: str,
        url: str,
        interval: str | None,
        *,
        added_by: str,
        now: float,
    ) -> SourceConfig:
        async with self._lock:
            self._check_new_name(name)
            if type_name == "html":
                raise CatalogError(
                    "an html source needs CSS selectors, which only the config file can give;"
                    " ask the operator to add it there"
                )
            if problem := url_problem(url, schemes=("http", "https")):
                raise CatalogError(f"the URL {problem}")
            seconds = self._interval(interval)
            chat_source = ChatSource(name, type_name, url, seconds, True, added_by, now)
            try:
                source = self._source_config(chat_source)
            except ValidationError as err:
                raise CatalogError(describe_validation_error(err)) from None
            if not self._config.bot.allow_private_sources:
                try:
                    await self._guard.check_url(url)
                except SourceError as err:
                    raise CatalogError(str(err)) from None
            await self._store.add_chat_source(chat_source)
            self._chat[name] = source
            self._notify(name, source)
            return source

    async def remove(self, name: str) -> None:
        async with self._lock:
            self._chat_source(name)
            await self._store.remove_chat_source(name)
            del self._chat[name]
            self._notify(name, None)

    async def set_enabled(self, name: str, enabled: bool) -> bool:
        """Pause or resume a chat source; false when it already was so."""
        async with self._lock:
            source = self._chat_source(name)
            if source.enabled == enabled:
                return False
            await self._store.set_chat_source_enabled(name, enabled)
            changed = source.model_copy(update={"enabled": enabled})
            self._chat[name] = changed
            self._notify(name, changed)
            return True

    def _check_new_name(self, name: str) -> None:
        if name in self._config_sources:
            raise CatalogError("a source of the config file has that name; choose another")
        if name in self._chat:
            raise CatalogError("a source with that name already exists")

    def _chat_source(self, name: str) -> SourceConfig:
        if name in self._config_sources:
            raise CatalogError(
                "it is a source of the config file; only the operator can change it there"
            )
        source = self._chat.get(name)
        if source is None:
            raise CatalogError("there is no source of that name")
        return source

    def _interval(self, text: str | None) -> float | None:
        if text is None:
            return None
        try:
            seconds = parse_duration(text)
        except ValueError as err:
            raise CatalogError(f"interval: {err}") from None
        floor = self._config.bot.chat_min_interval
        if seconds < floor:
            raise CatalogError(
                "the interval of a source added from chat must be at least"
                f" {format_duration(floor)}"
            )
        return seconds
