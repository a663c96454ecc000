"""`/healthz` and `/metrics` of `careerbot run`, scraped with a real HTTP client, and
`careerbot health`, the container's health check."""

from __future__ import annotations

import asyncio
import io
import shutil
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from loopback import Reply, serve
from prometheus_client.parser import text_string_to_metric_families

from bot.app import App
from bot.catalog import SourceCatalog
from bot.config import Config, load_config
from bot.health import STALL_FLOOR, HealthCheck, serve_health
from bot.metrics import Metrics, target_label
from bot.store import Store

REPO = Path(__file__).resolve().parents[1]
MATCHING = "scientist OR engineer"  # matches the new and the changed posting of figma v2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def eventually(condition: Callable[[], Awaitable[bool]], seconds: float = 20.0) -> None:
    async with asyncio.timeout(seconds):
        while not await condition():  # noqa: ASYNC110 (polls the database)
            await asyncio.sleep(0.05)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text exposition, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def write_config(tmp_path: Path, port: int) -> Path:
    (tmp_path / "samples").mkdir()
    shutil.copytree(REPO / "samples/greenhouse", tmp_path / "samples/greenhouse")
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[bot]
database = "state.sqlite3"
health_port = {port}

[[sources]]
name = "figma"
type = "greenhouse"
url = "file:samples/greenhouse/figma-board.json"
interval = "1s"

[[sources]]
name = "broken"
type = "greenhouse"
url = "file:samples/greenhouse/missing.json"
interval = "1s"

[webhooks.slow]
kind = "slack"
url_env = "SLOW_HOOK"

[webhooks.gone]
kind = "discord"
url_env = "GONE_HOOK"

[[subscriptions]]
target = "console"
query = "{MATCHING}"

[[subscriptions]]
target = "webhook:slow"
query = "{MATCHING}"

[[subscriptions]]
target = "webhook:gone"
query = "{MATCHING}"
"""
    )
    return config


async def test_metrics_and_healthz_of_a_running_app(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path, port)
    async with serve() as hooks:
        hooks.set("/slow", Reply(503, "busy", headers={"Retry-After": "3600"}))
        hooks.set("/gone", Reply(404, '{"message": "Unknown Webhook", "code": 10015}'))
        environ = {"SLOW_HOOK": hooks.url("/slow"), "GONE_HOOK": hooks.url("/gone")}
        stop = asyncio.Event()
        async with App.open(load_config(config), environ=environ, console=io.StringIO()) as app:
            service = asyncio.create_task(app.run(stop))
            try:

                async def baseline_done() -> bool:
                    state = await app.store.source_state("figma")
                    return state is not None and state.baseline_done

                await eventually(baseline_done)
                shutil.copy(
                    tmp_path / "samples/greenhouse/figma-board-v2.json",
                    tmp_path / "samples/greenhouse/figma-board.json",
                )

                async def delivered() -> bool:
                    counts = await app.store.outbox_counts()
                    held = {held.target for held in await app.store.held_targets(0.0)}
                    return counts.sent == 2 and counts.dead == 2 and "webhook:slow" in held

                await eventually(delivered)
                async with httpx.AsyncClient(timeout=10) as client:
                    scraped = await client.get(f"{base}/metrics")
                    health = await client.get(f"{base}/healthz")
            finally:
                stop.set()
                await asyncio.wait_for(service, 30)
            with pytest.raises(httpx.ConnectError):  # the endpoint stops with the service
                async with httpx.AsyncClient() as client:
                    await client.get(f"{base}/healthz")

    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    metrics = samples(scraped.text)

    def value(name: str, **labels: str) -> float | None:
        return metrics.get((name, frozenset(labels.items())))

    assert value("careerbot_changes_total", source="figma", kind="new") == 1
    assert value("careerbot_changes_total", source="figma", kind="changed") == 1
    assert value("careerbot_alerts_total", target="console", outcome="sent") == 2
    assert value("careerbot_alerts_total", target="webhook:gone", outcome="dead") == 2
    assert value("careerbot_alerts_total", target="webhook:slow", outcome="retried") == 1
    assert value("careerbot_alerts_total", target="webhook:slow", outcome="sent") is None
    figma_ok = value("careerbot_polls_total", source="figma", outcome="ok")
    assert figma_ok is not None and figma_ok >= 2
    assert value("careerbot_polls_total", source="figma", outcome="failed") == 0
    assert value("careerbot_poll_duration_seconds_count", source="figma") == figma_ok
    broken_failed = value("careerbot_polls_total", source="broken", outcome="failed")
    assert broken_failed is not None and broken_failed >= 1
    assert value("careerbot_postings_seen", source="figma") == 3
    assert value("careerbot_postings_seen", source="broken") is None
    assert value("careerbot_outbox_pending") == 2
    assert value("careerbot_outbox_dead") == 2
    assert value("careerbot_source_consecutive_failures", source="figma") == 0
    assert value("careerbot_source_consecutive_failures", source="broken") == broken_failed
    last_success = value("careerbot_last_successful_poll_timestamp_seconds", source="figma")
    assert last_success is not None and last_success > 1.6e9
    assert value("careerbot_last_successful_poll_timestamp_seconds", source="broken") is None

    assert health.status_code == 200
    report = health.json()
    assert set(report) == {
        "status", "last_successful_poll_age_seconds", "last_poll_job_age_seconds",
        "stalled_after_seconds", "outbox_pending", "outbox_dead", "sources", "failing_sources",
    }  # fmt: skip
    assert report["status"] == "degraded"
    assert report["failing_sources"] == ["broken"]
    assert report["sources"] == 2
    assert (report["outbox_pending"], report["outbox_dead"]) == (2, 2)
    assert 0 <= report["last_successful_poll_age_seconds"] < 20
    assert report["stalled_after_seconds"] == STALL_FLOOR


def config_of(sources: list[dict[str, object]], port: int = 0) -> Config:
    return Config.model_validate({"bot": {"health_port": port}, "sources": sources})


async def test_healthz_is_503_only_when_no_poll_job_finishes_in_time(tmp_path: Path) -> None:
    config = config_of(
        [
            {"name": "hourly", "type": "rss", "url": "file:/feeds/a.xml", "interval": "1h"},
            {"name": "daily", "type": "rss", "url": "file:/feeds/b.xml", "interval": "1d"},
            {"name": "off", "type": "rss", "url": "file:/feeds/c.xml", "enabled": False},
        ]
    )
    now = [1_000_000.0]
    store = await Store.open(tmp_path / "state.sqlite3")
    port = free_port()
    try:
        await store.register_sources((s.name, s.type, s.url) for s in config.sources)
        catalog = await SourceCatalog.load(config, store)
        check = HealthCheck(store, catalog, config, Metrics(), clock=lambda: now[0])
        async with serve_health(check, port), httpx.AsyncClient(timeout=10) as client:

            async def healthz() -> tuple[int, dict[str, object]]:
                answer = await client.get(f"http://127.0.0.1:{port}/healthz")
                return answer.status_code, answer.json()

            code, report = await healthz()
            assert code == 200 and report["status"] == "ok"
            assert report["last_successful_poll_age_seconds"] is None
            assert report["sources"] == 2, "a disabled source is not counted"
            assert report["stalled_after_seconds"] == 3 * 86400

            await store.record_unchanged("hourly", now[0] - 30)
            await store.record_failure("daily", "HTTP 503", now[0])
            await store.record_failure("off", "HTTP 503", now[0])
            code, report = await healthz()
            assert code == 200, "a board that is down is no reason to restart"
            assert report["status"] == "degraded"
            assert report["failing_sources"] == ["daily"]
            assert report["last_successful_poll_age_seconds"] == 30

            now[0] += 3 * 86400 - 1
            assert (await healthz())[0] == 200
            now[0] += 2
            code, report = await healthz()
            assert code == 503 and report["status"] == "stalled"
            assert report["last_poll_job_age_seconds"] == 3 * 86400 + 1

            check.poll_job_done()
            code, report = await healthz()
            assert code == 200 and report["status"] == "degraded"
    finally:
        await store.close()


async def test_stall_window_has_a_floor_and_no_sources_never_stall(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "state.sqlite3")
    try:
        fast = config_of([{"name": "fast", "type": "rss", "url": "file:/a.xml", "interval": "1s"}])
        none = config_of([])
        now = [0.0]
        checks = [
            HealthCheck(store, await SourceCatalog.load(c, store), c, Metrics(), lambda: now[0])
            for c in (fast, none)
        ]
        now[0] = STALL_FLOOR + 1
        fast_report, empty_report = [await check.report() for check in checks]
    finally:
        await store.close()
    assert fast_report.stalled_after_seconds == STALL_FLOOR
    assert fast_report.http_status == 503
    assert empty_report.http_status == 200 and empty_report.sources == 0


async def test_a_busy_port_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        config = write_config(tmp_path, port)
        hooks = {"SLOW_HOOK": "http://127.0.0.1:9/", "GONE_HOOK": "http://127.0.0.1:9/"}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--config", str(config),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={"PATH": "/usr/bin:/bin", **hooks},
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert stderr.decode().splitlines() == [
        f"careerbot: error: bot.health_port: cannot serve health on 127.0.0.1:{port}: "
        "Address already in use"
    ]


async def careerbot_health(config: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "health", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_careerbot_health_command(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "config.toml"
    sources = '[[sources]]\nname = "feed"\ntype = "rss"\nurl = "file:/feed.xml"\ninterval = "1h"\n'
    config.write_text(f"[bot]\nhealth_port = {port}\n{sources}")

    code, stdout, stderr = await careerbot_health(config)
    assert code == 1 and stdout == ""
    assert stderr.startswith(f"careerbot: unhealthy: no health report from http://127.0.0.1:{port}")
    assert len(stderr.splitlines()) == 1

    loaded = load_config(config)
    now = [1_000_000.0]
    store = await Store.open(tmp_path / "state.sqlite3")
    try:
        await store.register_sources([("feed", "rss", "file:/feed.xml")])
        await store.record_unchanged("feed", now[0] - 12)
        catalog = await SourceCatalog.load(loaded.config, store)
        check = HealthCheck(store, catalog, loaded.config, Metrics(), lambda: now[0])
        async with serve_health(check, port):
            code, stdout, _ = await careerbot_health(config)
            assert (code, stdout) == (
                0,
                "ok (HTTP 200): last successful poll 12s ago; 0 alerts pending, 0 dead\n",
            )
            now[0] += 3 * 3600 + 1
            code, stdout, _ = await careerbot_health(config)
            assert code == 1
            assert stdout.startswith("stalled (HTTP 503): last successful poll 10813s ago;")
            assert stdout.rstrip().endswith("no poll finished for 10801s (stalled after 10800s)")
    finally:
        await store.close()

    config.write_text(f"[bot]\nhealth_port = 0\n{sources}")
    code, stdout, _ = await careerbot_health(config)
    assert code == 0 and "health_port is 0" in stdout


@pytest.mark.parametrize(
    ("target", "label"),
    [
        ("console", "console"),
        ("webhook:lab", "webhook:lab"),
        ("slack:C0123", "slack:C0123"),
        ("slack:U0123", "slack:dm"),
        ("discord:123", "discord:123"),
        ("discord:dm:456", "discord:dm"),
    ],
)
def test_direct_messages_share_one_label(target: str, label: str) -> None:
    assert target_label(target) == label
