"""`careerbot run` as a real process: scheduled polls, delivery, clean stop on a signal."""

from __future__ import annotations

import asyncio
import shutil
import signal
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from loopback import Reply, serve

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"


def write_config(tmp_path: Path, webhook_path: str) -> Path:
    shutil.copytree(SAMPLES, tmp_path / "samples")
    config = tmp_path / "config.toml"
    config.write_text(
        """
[bot]
database = "state.sqlite3"

[[sources]]
name = "figma"
type = "greenhouse"
url = "file:samples/greenhouse/figma-board.json"
interval = "1s"

[[sources]]
name = "cvpr-2024"
type = "cvpr"
url = "file:samples/cvpr/page1.html"
interval = "1s"

[webhooks.lab]
kind = "slack"
url_env = "LAB_HOOK"

[[subscriptions]]
target = "console"
query = "scientist OR engineer"

[[subscriptions]]
target = "webhook:lab"
query = "scientist OR engineer"
"""
    )
    return config


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


def count(db: Path, sql: str) -> int | None:
    """A count from the database of the running process; None while it is being created."""
    if not db.exists():
        return None
    try:
        return int(query(db, sql)[0][0])  # type: ignore[call-overload]
    except sqlite3.OperationalError:
        return None


async def wait_for(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(20):
        while not condition():  # noqa: ASYNC110 (polls another process, not an event)
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_run_polls_delivers_and_stops_cleanly(tmp_path: Path, signum: int) -> None:
    async with serve() as server:
        server.set("/hook", Reply(503, "unavailable"))
        config = write_config(tmp_path, "/hook")
        db = tmp_path / "state.sqlite3"
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--config", str(config),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={"PATH": "/usr/bin:/bin", "LAB_HOOK": server.url("/hook")},
        )  # fmt: skip
        try:
            await wait_for(
                lambda: count(db, "SELECT COUNT(*) FROM sources WHERE baseline_done = 1") == 2
            )
            shutil.copy(
                tmp_path / "samples/greenhouse/figma-board-v2.json",
                tmp_path / "samples/greenhouse/figma-board.json",
            )
            await wait_for(
                lambda: count(db, "SELECT COUNT(*) FROM outbox WHERE status = 'sent'") == 2
            )
            await wait_for(lambda: len(server.requests) >= 2)  # the webhook keeps failing
            process.send_signal(signum)
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr
    assert b"stopped" in stderr
    assert stdout.decode().count("[NEW]") == 1
    assert stdout.decode().count("[UPDATED]") == 1
    rows = query(db, "SELECT target, status FROM outbox ORDER BY target, id")
    assert rows == [
        ("console", "sent"),
        ("console", "sent"),
        ("webhook:lab", "pending"),
        ("webhook:lab", "pending"),
    ], "undelivered alerts stay queued across the stop"
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
