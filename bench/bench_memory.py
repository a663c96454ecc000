"""Peak memory of ``careerbot run`` under the poll-cycle workload.

The real process (``python -m bot run --config …``) polls the 300 loopback Greenhouse
boards of bench_poll_cycle.py (40 postings each, 1,000 console subscriptions) every
15 s; the boards change between cycles, so every cycle after the baseline diffs,
matches and delivers. After three cycles the process gets SIGTERM. Its peak resident
set (VmHWM in /proc/PID/status) is the figure. Target: below 150 MB.

Run: .venv/bin/python bench/bench_memory.py
"""

from __future__ import annotations

import multiprocessing
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_poll_cycle import SOURCES, careerbot_config, serve

INTERVAL = 15.0
CYCLES = 3
TARGET_MB = 150.0


def status_kb(pid: int) -> dict[str, int]:
    """The memory lines of /proc/PID/status, in kB."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            figures[key] = int(value.split()[0])
    return figures


def main() -> None:
    context = multiprocessing.get_context("spawn")
    changed, stop, queue = context.Event(), context.Event(), context.Queue()
    server = context.Process(target=serve, args=(SOURCES, changed, stop, queue), daemon=True)
    server.start()
    try:
        urls = queue.get(timeout=120)
        with tempfile.TemporaryDirectory(prefix="careerbot-bench-") as tmp:
            work = Path(tmp)
            config = work / "config.toml"
            careerbot_config(config, work / "careerbot.sqlite3", urls, interval=f"{INTERVAL:.0f}s")
            log = (work / "careerbot.log").open("w+")
            command = [sys.executable, "-m", "bot", "run", "--config", str(config)]
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
            samples: list[tuple[float, int]] = []
            started = time.monotonic()
            # First polls are spread over one interval, then each source repeats on it.
            deadline = started + INTERVAL * (CYCLES + 0.5)
            while time.monotonic() < deadline and process.poll() is None:
                elapsed = time.monotonic() - started
                if int(elapsed // INTERVAL) % 2:  # every other interval: 10 % changed
                    changed.set()
                else:
                    changed.clear()
                samples.append((elapsed, status_kb(process.pid)["VmRSS"]))
                time.sleep(0.25)
            if process.poll() is not None:
                log.seek(0)
                sys.exit(f"careerbot run exited early: {log.read()[-2000:]}")
            peak = status_kb(process.pid)["VmHWM"]
            process.send_signal(signal.SIGTERM)
            process.wait(30)
            log.seek(0)
            lines = log.read().splitlines()
    finally:
        stop.set()
        server.join(5)
    polls = sum(" postings, " in line for line in lines)
    failed = sum(" failed: " in line for line in lines)
    changes = sum(" postings, 0 changes" not in line for line in lines if " postings, " in line)
    print(
        f"careerbot run: {SOURCES} sources every {INTERVAL:.0f} s, {len(samples) * 0.25:.0f} s;"
        f" {polls} polls ({failed} failed, {changes} with changes), exit {process.returncode}"
    )
    for second in range(0, int(samples[-1][0]) + 1, 5):
        rss = max((kb for at, kb in samples if second <= at < second + 5), default=0)
        print(f"  {second:3d}-{second + 5:<3d} s  RSS up to {rss / 1024:6.1f} MB")
    verdict = "met" if peak / 1024 < TARGET_MB else "MISSED"
    print(f"peak RSS (VmHWM): {peak / 1024:.1f} MB   target < {TARGET_MB:.0f} MB: {verdict}")


if __name__ == "__main__":
    main()
