"""`once` over a loopback server that serves one source of every type."""

from __future__ import annotations

import io
from pathlib import Path

from loopback import Loopback, Recorded, Reply, serve

from bot.app import App
from bot.config import load_config
from bot.sources import apple, workday
from bot.sources.base import source_types

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


def fixture(path: str) -> bytes:
    return (FIXTURES / path).read_bytes()


def serve_workday(server: Loopback, endpoint_path: str) -> None:
    pages = {0: fixture("workday/jobs-offset0.json"), 3: fixture("workday/jobs-offset3.json")}

    def list_page(request: Recorded) -> Reply:
        offset = request.json().get("offset", 0)
        return Reply(200, pages.get(offset, b'{"total": 0, "jobPostings": []}'))

    server.set(endpoint_path, list_page)
    endpoint = server.url(endpoint_path)
    listed = workday.parse_jobs(pages[0], endpoint, "wd", None)
    detail_url = next(url for url in listed.details.values() if url.endswith("_3058421"))
    server.set(
        detail_url.removeprefix(server.base_url), Reply(200, fixture("workday/job-3058421.json"))
    )


def serve_apple(server: Loopback) -> None:
    search = "/en-us/search?search=machine%20learning"
    server.set(search, Reply(200, fixture("apple/search-page1.html")))
    page = apple.parse_page(fixture("apple/search-page1.html"), server.url(search), "apple")
    for posting_id, url in page.details.items():
        detail = FIXTURES / "apple" / f"details-{posting_id}.html"
        if detail.exists():
            server.set(url.removeprefix(server.base_url), Reply(200, detail.read_bytes()))


def serve_everything(server: Loopback, version: int) -> None:
    v = f"v{version}"
    server.set(
        "/cvpr/careers/",
        Reply(200, fixture("cvpr/page1.html" if version == 1 else "cvpr/page1-v2.html")),
    )
    server.set("/cvpr/careers/?page=2", Reply(200, fixture("cvpr/page2.html")))
    server.set("/gh/jobs", Reply(200, fixture(f"greenhouse/board-{v}.json")))
    server.set("/lever/postings", Reply(200, fixture(f"lever/postings-{v}.json")))
    server.set("/ashby/board", Reply(200, fixture("ashby/job-board.json")))
    sr = "/sr/v1/companies/acme/postings"
    server.set(sr, Reply(200, fixture("smartrecruiters/postings-offset0.json")))
    server.set(f"{sr}?offset=2", Reply(200, fixture("smartrecruiters/postings-offset2.json")))
    server.set(
        f"{sr}/744000012788456", Reply(200, fixture("smartrecruiters/posting-744000012788456.json"))
    )
    server.set("/workable/widget", Reply(200, fixture("workable/widget-account.json")))
    serve_workday(server, "/wd/wday/cxs/acme/External/jobs")
    server.set("/rss/feed", Reply(200, fixture(f"rss/wwr-programming-{v}.rss")))
    server.set("/jsonld/job", Reply(200, fixture("jsonld/anduril-two-postings.html")))
    server.set("/html/positions/", Reply(200, fixture("html/lab-positions-page1.html")))
    server.set("/html/positions/?page=2", Reply(200, fixture("html/lab-positions-page2.html")))
    serve_apple(server)


def config_text(server: Loopback) -> str:
    sources = {
        "cvpr": "/cvpr/careers/",
        "greenhouse": "/gh/jobs",
        "lever": "/lever/postings",
        "ashby": "/ashby/board",
        "smartrecruiters": "/sr/v1/companies/acme/postings",
        "workable": "/workable/widget",
        "workday": "/wd/wday/cxs/acme/External/jobs",
        "rss": "/rss/feed",
        "jsonld": "/jsonld/job",
        "html": "/html/positions/",
        "apple": "/en-us/search?search=machine%20learning",
    }
    # every source here shares one host, 127.0.0.1: lift the per-host politeness limit
    text = '[bot]\ndatabase = "state.sqlite3"\nper_host_rate = 1000\n'
    for source_type, path in sources.items():
        text += f'\n[[sources]]\nname = "{source_type}-src"\ntype = "{source_type}"\n'
        text += f'url = "{server.url(path)}"\ncompany = "Co"\n'
        if source_type == "html":
            text += (
                "[sources.selectors]\n"
                'item = "ul.vacancies li.vacancy"\ntitle = "h3 a"\nurl = "h3 a@href"\n'
                'location = ".location"\nposted = "time@datetime"\nnext_page = "a[rel=next]@href"\n'
            )
    query = "engineer OR scientist OR researcher OR developer OR phd OR postdoc"
    text += f'\n[[subscriptions]]\ntarget = "console"\nquery = "{query}"\n'
    return text


async def test_one_source_of_every_type(tmp_path: Path) -> None:
    console = io.StringIO()
    async with serve() as server:
        serve_everything(server, version=1)
        config = tmp_path / "config.toml"
        config.write_text(config_text(server))
        loaded = load_config(config, environ={})
        assert sorted(s.type for s in loaded.config.sources) == source_types()
        async with App.open(loaded, environ={}, console=console) as app:
            baseline = await app.once()
            failures = {o.source: o.error for o in baseline.outcomes if not o.ok}
            assert failures == {}
            counts = {o.source: o.postings for o in baseline.outcomes}
            assert counts == {
                "cvpr-src": 26, "greenhouse-src": 3, "lever-src": 3, "ashby-src": 3,
                "smartrecruiters-src": 3, "workable-src": 3, "workday-src": 5, "rss-src": 3,
                "jsonld-src": 2, "html-src": 3, "apple-src": 3,
            }  # fmt: skip
            assert all(o.baseline for o in baseline.outcomes)
            assert console.getvalue() == ""

            serve_everything(server, version=2)
            changed = await app.once()
            assert changed.ok
            kinds = {
                o.source: sorted(c.kind.value for c in o.changes)
                for o in changed.outcomes
                if o.changes
            }
            assert kinds == {
                "cvpr-src": ["changed", "new"],
                "greenhouse-src": ["changed", "new"],
                "lever-src": ["changed", "new"],
                "rss-src": ["new"],
            }
            printed = console.getvalue()
            assert changed.still_queued == 0
            assert changed.delivered == printed.count("[NEW]") + printed.count("[UPDATED]") >= 4

            quiet = await app.once()
            assert quiet.ok and quiet.delivered == 0
            unchanged = sorted(o.source for o in quiet.outcomes if o.unchanged)
            # sources with nothing on its way to closing answer unchanged without a diff
            assert {"ashby-src", "workable-src", "jsonld-src", "html-src"} <= set(unchanged)
            assert "greenhouse-src" not in unchanged, "5098877004 is still closing"


async def test_a_flaky_detail_page_is_not_a_change(tmp_path: Path) -> None:
    async with serve() as server:
        serve_everything(server, version=1)
        config = tmp_path / "config.toml"
        config.write_text(config_text(server))
        loaded = load_config(config, environ={})
        async with App.open(loaded, environ={}, console=io.StringIO()) as app:
            await app.once("workday-src")
            await app.once("apple-src")
            for path in list(server.routes):
                if "/job/" in path or "/details/" in path:
                    server.set(path, Reply(503, "busy"))
            workday_poll = await app.once("workday-src")
            apple_poll = await app.once("apple-src")
    assert workday_poll.ok and workday_poll.outcomes[0].changes == []
    assert apple_poll.ok and apple_poll.outcomes[0].changes == []


async def test_details_that_load_after_the_posting_was_stored_alert_nothing(tmp_path: Path) -> None:
    async with serve() as server:
        serve_everything(server, version=1)
        details = {p: r for p, r in server.routes.items() if "/job/" in p or "/details/" in p}
        for path in details:
            server.set(path, Reply(503, "busy"))
        config = tmp_path / "config.toml"
        config.write_text(config_text(server))
        loaded = load_config(config, environ={})
        async with App.open(loaded, environ={}, console=io.StringIO()) as app:
            await app.once("workday-src")
            await app.once("apple-src")
            for path, reply in details.items():
                server.set(path, reply)
            workday_poll = await app.once("workday-src")
            apple_poll = await app.once("apple-src")
            stored = await app.store.stored_postings("workday-src")
    assert workday_poll.outcomes[0].changes == []
    assert apple_poll.outcomes[0].changes == []
    assert any(s.posting.description for s in stored.values()), "the details were stored"
    assert not any(s.partial for s in stored.values() if s.posting.description)
