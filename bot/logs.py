"""Logging on stderr: one JSON object per line when stderr is not a terminal (for
log collectors), a readable line when it is.

Every line logged while a source is polled carries ``source``, and every line
logged while a target is served carries ``target``: ``log_context`` sets them
for the code inside it (and the tasks it starts), and ``ContextFilter`` copies
them onto each record. A call may also pass them itself with ``extra=``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal, TextIO

LogFormat = Literal["auto", "json", "text"]
LOG_FORMATS: tuple[LogFormat, ...] = ("auto", "json", "text")
CONTEXT_KEYS = ("source", "target")

_source: ContextVar[str | None] = ContextVar("log_source", default=None)
_target: ContextVar[str | None] = ContextVar("log_target", default=None)
_CONTEXT = {"source": _source, "target": _target}


@contextmanager
def log_context(*, source: str | None = None, target: str | None = None) -> Iterator[None]:
    """Tag every line logged inside with this source and/or target."""
    tokens = [
        (var, var.set(value))
        for var, value in ((_source, source), (_target, target))
        if value is not None
    ]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class ContextFilter(logging.Filter):
    """Adds the current ``source`` and ``target`` to records that do not name them."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, var in _CONTEXT.items():
            if getattr(record, key, None) is None:
                setattr(record, key, var.get())
        return True


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message"}``, then ``source`` and ``target`` when
    known and ``exception`` when the record carries one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_KEYS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``2024-05-09 12:00:00,123 INFO bot.app: message [source=figma]``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        context = " ".join(
            f"{key}={value}"
            for key in CONTEXT_KEYS
            if (value := getattr(record, key, None)) is not None
        )
        line = super().formatMessage(record)
        return f"{line} [{context}]" if context else line


def log_handler(log_format: LogFormat, stream: TextIO) -> logging.Handler:
    """A handler on ``stream``; ``auto`` is JSON unless ``stream`` is a terminal."""
    if log_format == "auto":
        log_format = "text" if stream.isatty() else "json"
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    return handler


def configure_logging(level: str, log_format: LogFormat, stream: TextIO) -> None:
    # Libraries stay at WARNING whatever the level says: httpx, httpcore and
    # hpack log request URLs and headers, and webhook URLs are secrets.
    logging.basicConfig(level=logging.WARNING, handlers=[log_handler(log_format, stream)])
    logging.getLogger("bot").setLevel(getattr(logging, level))
