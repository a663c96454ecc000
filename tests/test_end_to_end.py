"""The whole spine over a loopback server: poll → diff → match → outbox → console."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from loopback import Loopback, Reply, serve

from bot.app import App
from bot.config import load_config

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


def board(name: str) -> bytes:
    return (FIXTURES / "greenhouse" / name).read_bytes()


def write_config(
    tmp_path: Path, server: Loopback, notify: str = '["new", "changed", "closed", "reopened"]'
) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[bot]
database = "state.sqlite3"
close_after_polls = 2
per_host_rate = 1000

[[sources]]
name = "figma"
type = "greenhouse"
url = "{server.url("/v1/boards/figma/jobs?content=true")}"
company = "Figma"

[[sources]]
name = "cvpr-2024"
type = "cvpr"
url = "{server.url("/careers/")}"

[[subscriptions]]
target = "console"
query = "scientist OR engineer OR researcher"
notify = {notify}
"""
    )
    return path


def serve_cvpr(server: Loopback, first_page: str) -> None:
    server.set("/careers/", Reply(200, (FIXTURES / "cvpr" / first_page).read_bytes()))
    server.set("/careers/?page=2", Reply(200, (FIXTURES / "cvpr" / "page2.html").read_bytes()))


def blocks(output: str) -> list[str]:
    return [block for block in output.strip().split("\n\n") if block.strip()]


async def test_baseline_then_new_and_edited_then_quiet(tmp_path: Path) -> None:
    console = io.StringIO()
    async with serve() as server:
        server.set("/v1/boards/figma/jobs", Reply(200, board("board-v1.json")))
        serve_cvpr(server, "page1.html")
        config = write_config(tmp_path, server, notify='["new", "changed"]')
        loaded = load_config(config, environ={})
        async with App.open(loaded, environ={}, console=console) as app:
            report = await app.once()
            assert report.ok
            assert {o.source: (o.baseline, o.postings) for o in report.outcomes} == {
                "figma": (True, 3),
                "cvpr-2024": (True, 26),
            }
            assert console.getvalue() == "", "the first poll is a silent baseline"

            server.set("/v1/boards/figma/jobs", Reply(200, board("board-v2.json")))
            report = await app.once()
            assert report.ok and report.delivered == 2 and report.still_queued == 0
            alerts = blocks(console.getvalue())
            assert len(alerts) == 2
            new = next(a for a in alerts if "5162290004" in a or "[NEW]" in a)
            changed = next(a for a in alerts if a is not new)
            v2 = {str(j["id"]): j for j in json.loads(board("board-v2.json"))["jobs"]}
            assert v2["5162290004"]["title"] in new
            assert "Figma" in new
            assert v2["5120045004"]["title"] in changed
            assert re.search(r"location", changed, re.IGNORECASE)
            assert "→" in changed

            console.truncate(0)
            console.seek(0)
            report = await app.once()
            assert report.ok and report.delivered == 0
            assert console.getvalue() == "", "an unchanged poll alerts nothing"

            # the removed posting (5098877004) closed after the second poll without it,
            # which this subscription (new, changed) does not ask to hear about
            closed = [c for o in report.outcomes for c in o.changes if c.kind == "closed"]
            assert [c.posting.id for c in closed] == ["5098877004"]


async def test_closed_and_reopened_are_alerted_when_asked_for(tmp_path: Path) -> None:
    console = io.StringIO()
    async with serve() as server:
        server.set("/v1/boards/figma/jobs", Reply(200, board("board-v2.json")))
        serve_cvpr(server, "page1.html")
        loaded = load_config(write_config(tmp_path, server), environ={})
        async with App.open(loaded, environ={}, console=console) as app:
            await app.once()
            server.set("/v1/boards/figma/jobs", Reply(200, board("board-v1.json")))
            await app.once()  # 5162290004 missing once: still open
            assert "[CLOSED]" not in console.getvalue()
            await app.once()  # missing twice: closed
            assert console.getvalue().count("[CLOSED]") == 1
            server.set("/v1/boards/figma/jobs", Reply(200, board("board-v2.json")))
            await app.once()
            assert console.getvalue().count("[REOPENED]") == 1


async def test_failing_source_is_isolated_and_closes_nothing(tmp_path: Path) -> None:
    console = io.StringIO()
    async with serve() as server:
        server.set("/v1/boards/figma/jobs", Reply(200, board("board-v1.json")))
        serve_cvpr(server, "page1.html")
        loaded = load_config(write_config(tmp_path, server), environ={})
        async with App.open(loaded, environ={}, console=console) as app:
            await app.once()
            for broken in (
                Reply(500, "oops"),
                Reply(200, b"\x00\xffnot json"),
                Reply(200, '{"jobs": []}'),
            ):
                server.set("/v1/boards/figma/jobs", broken)
                for _ in range(3):
                    report = await app.once()
                    figma = next(o for o in report.outcomes if o.source == "figma")
                    cvpr = next(o for o in report.outcomes if o.source == "cvpr-2024")
                    assert not figma.ok and cvpr.ok
                    assert not report.ok
            states = {s.name: s for s in await app.store.source_states()}
            assert states["figma"].open_postings == 3, "nothing closed while the source was broken"
            assert states["figma"].consecutive_failures == 9
            assert "no postings" in (states["figma"].last_error or "")
            assert states["cvpr-2024"].consecutive_failures == 0
            server.set("/v1/boards/figma/jobs", Reply(200, board("board-v1.json")))
            report = await app.once()
            assert report.ok
            assert (await app.store.source_state("figma")).consecutive_failures == 0  # type: ignore[union-attr]
    assert console.getvalue() == ""


async def test_dry_run_prints_alerts_and_changes_no_state(tmp_path: Path) -> None:
    async with serve() as server:
        server.set("/v1/boards/figma/jobs", Reply(200, board("board-v1.json")))
        serve_cvpr(server, "page1.html")
        loaded = load_config(write_config(tmp_path, server), environ={})
        console = io.StringIO()
        async with App.open(loaded, environ={}, console=console) as app:
            await app.once()
            serve_cvpr(server, "page1-v2.html")
            dry = await app.once("cvpr-2024", dry_run=True)
            kinds = sorted(c.kind.value for o in dry.outcomes for c in o.changes)
            assert kinds == ["changed", "new"]  # Stanford added, Cognex edited
            previewed = [a for o in dry.outcomes for a in o.alerts]
            assert previewed and console.getvalue() == ""
            real = await app.once("cvpr-2024")
            assert sorted(c.kind.value for o in real.outcomes for c in o.changes) == kinds
        delivered = blocks(console.getvalue())
        assert len(delivered) == len(previewed)
        assert all(
            a.change.posting.title in block for a, block in zip(previewed, delivered, strict=True)
        )


async def test_empty_first_poll_is_not_the_baseline(tmp_path: Path) -> None:
    console = io.StringIO()
    async with serve() as server:
        server.set("/v1/boards/figma/jobs", Reply(200, '{"jobs": []}'))
        serve_cvpr(server, "page1.html")
        loaded = load_config(write_config(tmp_path, server), environ={})
        async with App.open(loaded, environ={}, console=console) as app:
            first = await app.once("figma")
            assert first.ok
            server.set("/v1/boards/figma/jobs", Reply(200, board("board-v1.json")))
            second = await app.once("figma")
            assert second.outcomes[0].baseline, "the first poll with postings is the baseline"
    assert console.getvalue() == "", "a source fixed after a wrong first poll floods nothing"
