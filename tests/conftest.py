from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store import Store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh database with one registered source named ``src``."""
    opened = await Store.open(tmp_path / "state.sqlite3")
    await opened.register_sources([("src", "greenhouse", "https://example.test/src")])
    yield opened
    await opened.close()
