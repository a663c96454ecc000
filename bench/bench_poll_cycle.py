"""Poll cycle: 300 Greenhouse boards of 40 postings, 1,000 subscriptions.

A separate server process serves each board from its own loopback address
(127.0.0.2 … 127.0.1.45, as if 300 different hosts) with 20 ms latency per response.
Against the same URLs, in the same run, it times:

- the floor: a bare concurrent fetch of the 300 URLs (httpx, 16 at a time);
- urlwatch, its real CLI with its own jobs, config and cache (reporters off);
- ``careerbot once`` as a process (start-up and delivery to the console included);
- careerbot's cycle inside a running process (``App.once()``, as ``careerbot run`` polls).

Each tool gets a baseline cycle, then change cycles in which 10 % of the boards
changed (a few postings retitled, one gone, one new). Targets: careerbot's change
cycle no slower than urlwatch's, and within 2x of the floor.

Run: .venv/bin/python bench/bench_poll_cycle.py   (urlwatch: pip install -e '.[bench]')
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import multiprocessing
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any, TextIO

import httpx
from aiohttp import web
from boards import board_body, subscription_queries

SOURCES = 300
POSTINGS = 40
SUBSCRIPTIONS = 1_000
LATENCY = 0.020
CHANGED_EVERY = 10  # every 10th board changes: 10 % of the sources
CHANGE_CYCLES = 3
FLOOR_CONCURRENCY = 16
FIRST_HOST = ipaddress.IPv4Address("127.0.0.2")
BIN = Path(sys.executable).parent


# --- The loopback boards, in their own process ------------------------------------------


def board_name(index: int) -> str:
    return f"board{index:03d}"


def serve(count: int, changed: Event, stop: Event, urls: Any) -> None:
    asyncio.run(_serve(count, changed, stop, urls))


async def _serve(count: int, changed: Event, stop: Event, urls: Any) -> None:
    bodies: dict[str, tuple[bytes, bytes]] = {}
    for index in range(count):
        name = board_name(index)
        before = board_body(name, POSTINGS)
        after = board_body(name, POSTINGS, changed_fraction=0.05)
        bodies[name] = (before, after if index % CHANGED_EVERY == 0 else before)

    async def board(request: web.Request) -> web.Response:
        await asyncio.sleep(LATENCY)
        versions = bodies.get(request.match_info["board"])
        if versions is None:
            return web.Response(status=404)
        body = versions[1] if changed.is_set() else versions[0]
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/v1/boards/{board}/jobs", board)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    found = []
    for index in range(count):
        host = str(FIRST_HOST + index)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        await web.SockSite(runner, sock).start()
        port = sock.getsockname()[1]
        found.append(f"http://{host}:{port}/v1/boards/{board_name(index)}/jobs?content=true")
    urls.put(found)
    await asyncio.to_thread(stop.wait)
    await runner.cleanup()


# --- The floor ---------------------------------------------------------------------------


async def _fetch_all(urls: list[str]) -> int:
    limit = asyncio.Semaphore(FLOOR_CONCURRENCY)
    limits = httpx.Limits(max_connections=FLOOR_CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:

        async def fetch(url: str) -> int:
            async with limit:
                response = await client.get(url)
                response.raise_for_status()
                return len(response.content)

        return sum(await asyncio.gather(*map(fetch, urls)))


@dataclass
class Timing:
    wall: float
    cpu: float  # of the measured process(es) only
    note: str = ""


def floor(urls: list[str]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    size = asyncio.run(_fetch_all(urls))
    return Timing(
        time.perf_counter() - wall, time.process_time() - cpu, f"{size / 1e6:.1f} MB fetched"
    )


# --- The tools -----------------------------------------------------------------------------


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_process(command: list[str], cwd: Path | None = None) -> Timing:
    """A command's wall time and CPU; its output (alerts, reports) goes to /dev/null."""
    cpu = _children_cpu()
    wall = time.perf_counter()
    done = subprocess.run(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd
    )
    elapsed = time.perf_counter() - wall
    if done.returncode != 0:
        sys.exit(f"{command[0]} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return Timing(elapsed, _children_cpu() - cpu)


class Urlwatch:
    def __init__(self, work: Path, urls: list[str]) -> None:
        self.executable = shutil.which("urlwatch", path=str(BIN)) or shutil.which("urlwatch")
        self._work = work / "urlwatch"
        self._work.mkdir()
        jobs = "\n---\n".join(f'name: "{board_name(i)}"\nurl: "{u}"' for i, u in enumerate(urls))
        (self._work / "jobs.yaml").write_text(jobs + "\n")
        reporters_off = "report:\n  stdout:\n    enabled: false\n"
        (self._work / "cfg.yaml").write_text(reporters_off)

    def cycle(self) -> Timing:
        assert self.executable is not None
        files = ("--urls", "jobs.yaml", "--config", "cfg.yaml", "--hooks", "hooks.py")
        return timed_process([self.executable, *files, "--cache", "cache.db"], cwd=self._work)


def careerbot_config(path: Path, database: Path, urls: list[str], interval: str = "30m") -> None:
    """What an operator would write: one greenhouse source per board, subscriptions to
    the console (whose alerts the benchmark sends to /dev/null)."""
    lines = ["[bot]", f"database = {json.dumps(str(database))}", f'default_interval = "{interval}"']
    lines.append("")
    for index, url in enumerate(urls):
        lines += ["[[sources]]", f'name = "{board_name(index)}"', 'type = "greenhouse"']
        lines += [f'url = "{url}"', ""]
    for query in subscription_queries(SUBSCRIPTIONS):
        lines += ["[[subscriptions]]", 'target = "console"', f"query = '{query}'", ""]
    path.write_text("\n".join(lines))


def careerbot_cli(config: Path) -> Timing:
    return timed_process([str(BIN / "careerbot"), "once", "--config", str(config)])


def careerbot_in_process(config: Path) -> Timing:
    """``App.once()`` in a child process that is already up (imports, config, database)."""
    command = [sys.executable, __file__, "--in-process", str(config)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"careerbot in-process cycle failed: {done.stderr.strip()[-2000:]}")
    figures = json.loads(done.stdout.splitlines()[-1])
    note = (
        f"poll {figures['poll']:.2f} s + deliver {figures['deliver']:.2f} s"
        f" ({figures['delivered']} alerts); cycle CPU {figures['cpu']:.2f} s"
    )
    return Timing(figures["poll"] + figures["deliver"], figures["cpu"], note)


def in_process(config: Path) -> None:
    """Prints the timings of one ``App.once()`` as JSON (run in a child process)."""
    from bot.app import App
    from bot.config import load_config

    async def cycle(devnull: TextIO) -> dict[str, float]:
        async with App.open(load_config(config), console=devnull) as app:
            drain = app.worker.drain
            spent: dict[str, float] = {}

            async def timed_drain(deadline: float) -> int:
                started = time.perf_counter()
                sent = await drain(deadline)
                spent["deliver"] = time.perf_counter() - started
                return sent

            app.worker.drain = timed_drain  # type: ignore[method-assign]
            wall, cpu = time.perf_counter(), time.process_time()
            report = await app.once()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        failed = [o.summary() for o in report.outcomes if not o.ok]
        if failed:
            sys.exit(f"{len(failed)} sources failed, e.g. {failed[0]}")
        return {
            "poll": wall - spent["deliver"],
            "deliver": spent["deliver"],
            "delivered": report.delivered,
            "cpu": cpu,
        }

    with open(os.devnull, "w") as devnull:
        print(json.dumps(asyncio.run(cycle(devnull))))


# --- The run -------------------------------------------------------------------------------


def report(label: str, timings: list[Timing], target: str = "") -> float:
    walls = [t.wall for t in timings]
    middle = statistics.median(walls)
    spread = f" (of {', '.join(f'{w:.2f}' for w in walls)})" if len(walls) > 1 else ""
    cpu = statistics.median(t.cpu for t in timings)
    note = f"  {timings[-1].note}" if timings[-1].note else ""
    print(f"  {label:<30} {middle:6.2f} s wall{spread}, {cpu:5.2f} s CPU{note}  {target}".rstrip())
    return middle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in-process", metavar="CONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_process:
        in_process(Path(args.in_process))
        return
    context = multiprocessing.get_context("spawn")
    changed, stop, queue = context.Event(), context.Event(), context.Queue()
    server = context.Process(target=serve, args=(SOURCES, changed, stop, queue), daemon=True)
    server.start()
    try:
        urls = queue.get(timeout=120)
        with tempfile.TemporaryDirectory(prefix="careerbot-bench-") as tmp:
            run(Path(tmp), urls, changed)
    finally:
        stop.set()
        server.join(5)


def run(work: Path, urls: list[str], changed: Event) -> None:
    cli_config, live_config = work / "cli.toml", work / "live.toml"
    careerbot_config(cli_config, work / "cli.sqlite3", urls)
    careerbot_config(live_config, work / "live.sqlite3", urls)
    urlwatch = Urlwatch(work, urls)
    if urlwatch.executable is None:
        print("urlwatch is not installed: comparison skipped (pip install -e '.[bench]')")
    print(
        f"{SOURCES} greenhouse sources x {POSTINGS} postings, {SUBSCRIPTIONS:,} subscriptions, "
        f"{LATENCY * 1000:.0f} ms latency per response, one loopback host per source"
    )
    floor(urls)  # warm-up: the server's first connections
    print("baseline cycle (first poll of every source):")
    report("floor (bare fetch, 16 at once)", [floor(urls) for _ in range(3)])
    if urlwatch.executable:
        report("urlwatch", [urlwatch.cycle()])
    report("careerbot once (process)", [careerbot_cli(cli_config)])
    report("careerbot cycle (in process)", [careerbot_in_process(live_config)])

    floors: list[Timing] = []
    watched: list[Timing] = []
    cli: list[Timing] = []
    live: list[Timing] = []
    for cycle in range(CHANGE_CYCLES):
        # Alternate between the two versions: every cycle sees 10 % of the boards changed.
        if cycle % 2 == 0:
            changed.set()
        else:
            changed.clear()
        floors.append(floor(urls))
        if urlwatch.executable:
            watched.append(urlwatch.cycle())
        cli.append(careerbot_cli(cli_config))
        live.append(careerbot_in_process(live_config))
    print(f"change cycle (10 % of sources changed; median of {CHANGE_CYCLES}):")
    floor_s = report("floor (bare fetch, 16 at once)", floors)
    urlwatch_s = report("urlwatch", watched) if watched else None
    cli_target = f"target <= urlwatch ({urlwatch_s:.2f} s)" if urlwatch_s else ""
    cli_s = report("careerbot once (process)", cli, cli_target)
    live_s = report(
        "careerbot cycle (in process)", live, f"target <= 2x floor ({2 * floor_s:.2f} s)"
    )
    print("start-up alone (included in the process figures; median of 3):")
    if urlwatch.executable:
        report(
            "urlwatch --version",
            [timed_process([urlwatch.executable, "--version"]) for _ in range(3)],
        )
    report(
        "careerbot --help", [timed_process([str(BIN / "careerbot"), "--help"]) for _ in range(3)]
    )
    print("verdict:")
    if urlwatch_s is not None:
        verdict = "met" if cli_s <= urlwatch_s else "MISSED"
        print(f"  careerbot once vs urlwatch: {cli_s / urlwatch_s:.2f}x  {verdict}")
    verdict = "met" if live_s <= 2 * floor_s else "MISSED"
    print(f"  careerbot cycle vs floor:   {live_s / floor_s:.2f}x  {verdict}")


if __name__ == "__main__":
    main()
