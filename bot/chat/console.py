"""The ``console`` target: alerts as readable text blocks on stdout."""

from __future__ import annotations

import sys
from typing import TextIO

from bot.models import Alert
from bot.render import render_text


class ConsoleSender:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def send(self, alert: Alert, original: str | None = None) -> str | None:
        stream = self._stream or sys.stdout
        stream.write(render_text(alert) + "\n\n")
        stream.flush()
        return None
