"""The ``console`` target: alerts as readable text blocks on stdout."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from bot.models import Alert, Notice
from bot.render import render_text
from bot.render_digest import DigestPage, text_digest_pages
from bot.render_notice import notice_text


class ConsoleSender:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def send(self, alert: Alert, original: str | None = None) -> str | None:
        self._write(render_text(alert))
        return None

    async def send_notice(self, notice: Notice) -> None:
        self._write(notice_text(notice))

    def digest_pages(self, alerts: Sequence[Alert]) -> list[DigestPage]:
        return text_digest_pages(alerts)

    async def send_digest(self, target: str, page: DigestPage) -> None:
        self._write(page.payload["text"])

    def _write(self, text: str) -> None:
        stream = self._stream or sys.stdout
        stream.write(text + "\n\n")
        stream.flush()
