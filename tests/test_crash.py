"""Crash safety: `careerbot run` killed with SIGKILL again and again loses no alert and
repeats none, except the one message a kill caught in flight to a target.

A real process polls a loopback board and posts to loopback Slack webhooks. The board
gains 200 postings and edits its 10 old ones at once: 210 alerts spread over 30 paced
webhooks. The process is killed while it fetches the board, while webhook requests are
open, and at random moments in between; each time the database must pass
`PRAGMA integrity_check`, and the next start must carry on where the last one stopped.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from loopback import Loopback, Recorded, Reply, Responder, serve

HOOKS = 30
BASELINE = 10
ADDED = 200
EXPECTED_ALERTS = ADDED + BASELINE  # every new posting, and every edited old one
KILL_PLAN = [
    "board",  # while the poll that finds the 210 changes is fetching
    "after-board",  # while it parses, diffs and writes them
    "after-board",
    "soon",
    "hook:15",  # while a webhook request is open
    "soon",
    "after-delivery",
    "hook:80",
    "soon",
    "after-delivery",
    "hook:140",
    "after-delivery",
]


def posting(number: int, edited: bool = False) -> dict[str, object]:
    title = f"Engineer {number} team{number % HOOKS}" + (" senior" if edited else "")
    return {
        "id": 1000 + number,
        "title": title,
        "absolute_url": f"https://boards.example.com/acme/jobs/{1000 + number}",
        "location": {"name": "London, UK"},
        "updated_at": "2026-11-01T10:00:00Z",
        "content": "&lt;p&gt;" + "Build systems that find jobs for people. " * 40 + "&lt;/p&gt;",
        "departments": [{"name": "Engineering"}],
        "metadata": None,
    }


def board(postings: list[dict[str, object]]) -> bytes:
    return json.dumps({"jobs": postings, "meta": {"total": len(postings)}}).encode()


BEFORE = board([posting(n) for n in range(BASELINE)])
AFTER = board(
    [posting(n, edited=True) for n in range(BASELINE)]
    + [posting(n) for n in range(BASELINE, BASELINE + ADDED)]
)


def write_config(tmp_path: Path, board_url: str) -> Path:
    parts = [
        f"""
[bot]
database = "state.sqlite3"

[[sources]]
name = "board"
type = "greenhouse"
url = "{board_url}"
interval = "1s"
company = "Acme"
"""
    ]
    for hook in range(HOOKS):
        parts.append(
            f"""
[webhooks.w{hook}]
kind = "slack"
url_env = "HOOK_{hook}"

[[subscriptions]]
target = "webhook:w{hook}"
query = "team{hook}"
notify = ["new", "changed"]
"""
        )
    config = tmp_path / "config.toml"
    config.write_text("".join(parts))
    return config


@dataclass
class Arrival:
    hook: int
    alert: tuple[str, int]  # (kind marker, posting number)
    run: int


@dataclass
class Receiver:
    """The webhooks' side: every alert as it arrived, and which run sent it."""

    arrivals: list[Arrival] = field(default_factory=list)
    run: int = 0
    kill_at_arrival: int | None = None
    pid: int | None = None

    def hook(self, number: int) -> Responder:
        def respond(request: Recorded) -> Reply:
            text = request.json()["text"]
            kind = re.search(r"\[(NEW|UPDATED)\]", text)
            title = re.search(r"Engineer (\d+) team", text)
            assert kind and title, text
            self.arrivals.append(Arrival(number, (kind[1], int(title[1])), self.run))
            if self.kill_at_arrival is not None and len(self.arrivals) >= self.kill_at_arrival:
                self.kill_at_arrival = None
                self.kill()  # the request is open: the process never sees the answer
            return Reply(200, "ok")

        return respond

    def kill(self) -> None:
        if self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)


def expected_alerts() -> set[tuple[int, tuple[str, int]]]:
    edited = {(n % HOOKS, ("UPDATED", n)) for n in range(BASELINE)}
    added = {(n % HOOKS, ("NEW", n)) for n in range(BASELINE, BASELINE + ADDED)}
    return edited | added


def database_rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


async def until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 (watches another process)
            await asyncio.sleep(0.02)


@dataclass
class Deployment:
    """A config of 30 webhooks over one board, the loopback serving them, and the
    `careerbot run` processes started on it (each run logs to runN.log)."""

    tmp_path: Path
    server: Loopback
    rng: random.Random
    receiver: Receiver = field(default_factory=Receiver)
    serving_after: bool = False  # the board has gained and edited its postings
    kill_on_board: str | None = None  # "board" or "after-board": kill on its next request
    arrivals_at_signal: int = 0

    @property
    def db(self) -> Path:
        return self.tmp_path / "state.sqlite3"

    def log(self, run: int | None = None) -> Path:
        return self.tmp_path / f"run{run or self.receiver.run}.log"

    def board_reply(self, _: Recorded) -> Reply:
        if self.serving_after and self.kill_on_board == "board":
            self.receiver.kill()  # mid-poll: the board request is open
        elif self.serving_after and self.kill_on_board == "after-board":
            asyncio.get_running_loop().call_later(self.rng.uniform(0.0, 0.05), self.receiver.kill)
        self.kill_on_board = None
        return Reply(200, AFTER if self.serving_after else BEFORE)

    async def start(self) -> asyncio.subprocess.Process:
        self.receiver.run += 1
        config = self.tmp_path / "config.toml"
        env = {"PATH": "/usr/bin:/bin"} | {
            f"HOOK_{hook}": self.server.url(f"/hook/{hook}") for hook in range(HOOKS)
        }
        with self.log().open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", "--config", str(config),
                stdout=asyncio.subprocess.DEVNULL, stderr=log, env=env,
            )  # fmt: skip
        self.receiver.pid = process.pid
        return process

    async def start_after_baseline(self) -> asyncio.subprocess.Process:
        """A running process that has recorded the board's baseline; the board then changes."""
        process = await self.start()
        await until(lambda: self.db.exists() and _baseline_done(self.db))
        self.serving_after = True
        return process

    async def stop(self, process: asyncio.subprocess.Process) -> float:
        """SIGTERM once the process is up; the seconds it took to exit."""
        await until(lambda: "running:" in self.log().read_text())  # its signal handlers are set
        started = time.monotonic()
        self.arrivals_at_signal = len(self.receiver.arrivals)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            await process.wait()
        assert process.returncode == 0, self.log().read_text()
        return time.monotonic() - started

    def assert_no_traceback(self) -> None:
        for run in range(1, self.receiver.run + 1):
            assert "Traceback" not in self.log(run).read_text(), f"run {run}"

    def outbox(self) -> list[tuple[object, ...]]:
        return database_rows(self.db, "SELECT status, COUNT(*) FROM outbox GROUP BY status")


@asynccontextmanager
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    async with serve() as server:
        setup = Deployment(tmp_path, server, random.Random(os.environ.get("CRASH_SEED", "6")))
        server.set("/board", setup.board_reply)
        for hook in range(HOOKS):
            server.set(f"/hook/{hook}", setup.receiver.hook(hook))
        write_config(tmp_path, server.url("/board"))
        yield setup


async def test_repeated_sigkill_loses_nothing_and_repeats_only_in_flight_messages(
    tmp_path: Path,
) -> None:
    kills: list[str] = []
    before_commit: list[str] = []  # kills that came before the changes were saved
    async with deployment(tmp_path) as setup:
        receiver, rng, db = setup.receiver, setup.rng, setup.db

        async def killed(process: asyncio.subprocess.Process, how: str) -> None:
            async with asyncio.timeout(30):
                await process.wait()
            assert process.returncode == -signal.SIGKILL, f"{how}: not killed"
            kills.append(how)
            if database_rows(db, "SELECT COUNT(*) FROM outbox") == [(0,)]:
                before_commit.append(how)
            assert database_rows(db, "PRAGMA integrity_check") == [("ok",)], how

        process = await setup.start_after_baseline()
        for how in KILL_PLAN:
            arrived = len(receiver.arrivals)
            if how in ("board", "after-board"):
                setup.kill_on_board = how
            elif how.startswith("hook:"):
                receiver.kill_at_arrival = max(int(how[5:]), arrived + 1)
            elif how == "soon":  # anywhere from start-up through the poll to delivery
                await asyncio.sleep(rng.uniform(0.3, 1.0))
                receiver.kill()
            else:  # some time into this run's deliveries
                await until(lambda: len(receiver.arrivals) > arrived)  # noqa: B023
                await asyncio.sleep(rng.uniform(0.0, 1.0))
                receiver.kill()
            await killed(process, how)
            process = await setup.start()

        delivered = expected_alerts()
        await until(lambda: {(a.hook, a.alert) for a in receiver.arrivals} >= delivered, 90)
        stop_seconds = await setup.stop(process)
    setup.assert_no_traceback()

    received = Counter((a.hook, a.alert) for a in receiver.arrivals)
    assert set(received) == delivered, "every alert arrived, and nothing else"
    duplicates = {alert: n for alert, n in received.items() if n > 1}
    repeats = sum(duplicates.values()) - len(duplicates)
    assert repeats <= len(kills), "one platform: at most one message in doubt per kill"
    caught_by_kills = _in_flight_at_kills(receiver.arrivals)
    for alert, times in duplicates.items():
        assert times - 1 <= caught_by_kills[alert], (
            f"{alert} sent {times} times, but in flight at only {caught_by_kills[alert]} kills"
        )
    assert setup.outbox() == [("sent", EXPECTED_ALERTS)]
    assert database_rows(db, "PRAGMA integrity_check") == [("ok",)]
    print(
        f"\ncrash campaign: {len(kills)} SIGKILLs ({', '.join(kills)}; "
        f"{len(before_commit)} before the poll's transaction committed), "
        f"{EXPECTED_ALERTS} alerts over {HOOKS} webhooks, {len(receiver.arrivals)} requests, "
        f"{repeats} repeats (each in flight at a kill), 0 lost; "
        f"SIGTERM stop took {stop_seconds:.2f} s"
    )


async def test_sigterm_mid_burst_stops_promptly_and_the_next_start_sends_the_rest(
    tmp_path: Path,
) -> None:
    async with deployment(tmp_path) as setup:
        receiver = setup.receiver
        process = await setup.start_after_baseline()
        await until(lambda: len(receiver.arrivals) >= 40)
        stop_seconds = await setup.stop(process)
        sent_before_stop = len(receiver.arrivals)
        finishing = sent_before_stop - setup.arrivals_at_signal
        assert setup.outbox() == [
            ("pending", EXPECTED_ALERTS - sent_before_stop),
            ("sent", sent_before_stop),
        ], "every alert the webhooks got is recorded as sent; the rest wait"

        process = await setup.start()
        delivered = expected_alerts()
        await until(lambda: {(a.hook, a.alert) for a in receiver.arrivals} >= delivered, 90)
        await setup.stop(process)
    setup.assert_no_traceback()
    assert len(receiver.arrivals) == EXPECTED_ALERTS, "a graceful stop repeats nothing"
    assert finishing <= 1, f"{finishing} sends started after SIGTERM; only one may be finishing"
    print(f"\nSIGTERM in a burst: stopped in {stop_seconds:.2f} s after {sent_before_stop} alerts")


def _baseline_done(db: Path) -> bool:
    try:
        return database_rows(db, "SELECT baseline_done FROM sources") == [(1,)]
    except sqlite3.OperationalError:
        return False


def _in_flight_at_kills(arrivals: list[Arrival]) -> Counter[tuple[int, tuple[str, int]]]:
    """How many kills caught each alert in flight: the last message each webhook
    received from a killed run is the only one that run may have sent without
    recording it."""
    last: dict[tuple[int, int], tuple[str, int]] = {}
    final_run = max(arrival.run for arrival in arrivals)
    for arrival in arrivals:
        if arrival.run != final_run:
            last[(arrival.run, arrival.hook)] = arrival.alert
    return Counter((hook, alert) for (_, hook), alert in last.items())
