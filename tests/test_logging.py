"""Log lines: JSON off a terminal, readable on one, with the source and target they concern."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import pty
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from loopback import Reply, serve

from bot.logs import JsonFormatter, TextFormatter, log_context, log_handler

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing JSON lines into a buffer."""
    buffer = io.StringIO()
    logger = logging.getLogger("test.logs")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(log_handler("json", buffer))
    yield logger, buffer
    logger.handlers.clear()


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_json_line_shape(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, buffer = logged
    with log_context(source="figma"):
        logger.info("source %s: %d postings", "figma", 3)
    logger.warning("alert 7 to %s dead-lettered", "slack:C1", extra={"target": "slack:C1"})
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        logger.exception("delivery pass failed — retrying")
    polled, dead, failed = lines(buffer)

    assert list(polled) == ["time", "level", "logger", "message", "source"]
    assert polled["level"] == "INFO" and polled["logger"] == "test.logs"
    assert polled["message"] == "source figma: 3 postings"
    assert polled["source"] == "figma"
    assert isinstance(polled["time"], str) and polled["time"].endswith("Z")
    assert datetime.fromisoformat(polled["time"]).utcoffset() is not None
    assert dead["target"] == "slack:C1" and "source" not in dead
    assert failed["message"] == "delivery pass failed — retrying"
    assert isinstance(failed["exception"], str)
    assert failed["exception"].rstrip().endswith("ZeroDivisionError: division by zero")
    assert "source" not in failed and "target" not in failed


async def test_context_follows_tasks_and_ends_with_its_block(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = logged

    async def deliver(target: str) -> None:
        with log_context(target=target):
            await asyncio.sleep(0)
            logger.info("sent")

    with log_context(source="cvpr"):
        await asyncio.gather(deliver("console"), deliver("webhook:lab"))
    logger.info("idle")
    first, second, idle = lines(buffer)
    assert {(first["source"], first["target"]), (second["source"], second["target"])} == {
        ("cvpr", "console"),
        ("cvpr", "webhook:lab"),
    }
    assert "source" not in idle and "target" not in idle


def test_text_line_names_source_and_target() -> None:
    buffer = io.StringIO()
    logger = logging.getLogger("test.text")
    logger.propagate = False
    logger.addHandler(log_handler("text", buffer))
    try:
        with log_context(source="figma", target="console"):
            logger.warning("alert 3 retried")
        logger.warning("plain")
    finally:
        logger.handlers.clear()
    tagged, plain = buffer.getvalue().splitlines()
    assert tagged.endswith(" WARNING test.text: alert 3 retried [source=figma target=console]")
    assert plain.endswith(" WARNING test.text: plain")


class Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(("tty", "formatter"), [(True, TextFormatter), (False, JsonFormatter)])
def test_auto_format_follows_the_terminal(tty: bool, formatter: type) -> None:
    assert isinstance(log_handler("auto", Stream(tty)).formatter, formatter)
    assert isinstance(log_handler("json", Stream(tty)).formatter, JsonFormatter)
    assert isinstance(log_handler("text", Stream(tty)).formatter, TextFormatter)


CONFIG = """
[bot]
database = "state.sqlite3"

[[sources]]
name = "figma"
type = "greenhouse"
url = "file:samples/greenhouse/figma-board.json"

[webhooks.lab]
kind = "slack"
url_env = "LAB_HOOK"

[[subscriptions]]
target = "webhook:lab"
query = "scientist OR engineer"
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "samples").mkdir()
    shutil.copytree(REPO / "samples/greenhouse", tmp_path / "samples/greenhouse")
    (tmp_path / "config.toml").write_text(CONFIG)
    return tmp_path


async def test_careerbot_logs_json_lines_off_a_terminal(workdir: Path) -> None:
    async def once(env: dict[str, str]) -> str:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "once",
            cwd=workdir, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, stderr.decode()
        return stderr.decode()

    async with serve() as hook:
        hook.set("/hook", Reply(503, "busy", headers={"Retry-After": "3600"}))
        env = {"PATH": "/usr/bin:/bin", "LAB_HOOK": hook.url("/hook")}
        await once(env)
        shutil.copy(
            workdir / "samples/greenhouse/figma-board-v2.json",
            workdir / "samples/greenhouse/figma-board.json",
        )
        stderr = await once(env)
    records = [json.loads(line) for line in stderr.splitlines()]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    summary = [r for r in records if r["message"].startswith("source figma:")]
    assert [r["source"] for r in summary] == ["figma"]
    retried = [r for r in records if "retrying in" in r["message"]]
    assert retried and all(r["target"] == "webhook:lab" for r in retried)
    assert str(hook.url("/hook")) not in stderr


def test_careerbot_logs_readable_lines_on_a_terminal(workdir: Path) -> None:
    leader, terminal = pty.openpty()
    try:
        with os.fdopen(terminal, "wb") as stderr:
            subprocess.run(
                [sys.executable, "-m", "bot", "once"],
                cwd=workdir,
                env={"PATH": "/usr/bin:/bin", "LAB_HOOK": "http://127.0.0.1:9/hook"},
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                timeout=60,
                check=True,
            )
        output = b""
        while chunk := _read(leader):
            output += chunk
    finally:
        os.close(leader)
    text = output.decode()
    assert " INFO bot: source figma: 3 postings" in text
    assert "[source=figma]" in text
    assert "{" not in text


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # Linux: EIO once the terminal's other end is closed and drained
        return b""
