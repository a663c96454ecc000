"""`careerbot run` with both chat front-ends, against the Slack and Discord doubles.

Real slack-bolt, real discord.py, the real command layer and store: people subscribe
from each platform, a poll finds new and changed postings, and the alerts reach both
channels, while a Slack outage holds only Slack's alerts.
"""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from discord_double import CHANNEL_ID, GUILD_ID, serve_discord
from loopback import Reply, serve
from slack_double import BOT_TOKEN, SIGNING_SECRET, error, serve_slack, signed_headers

from bot.app import App
from bot.config import load_config

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def eventually(condition: Callable[[], object], seconds: float = 15.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 (state of servers and a store, not an event)
            await asyncio.sleep(0.05)


async def test_both_platforms_subscribe_and_receive_alerts(tmp_path: Path) -> None:
    board = FIXTURES / "greenhouse"
    slack_port = free_port()
    async with serve() as source, serve_slack() as slack, serve_discord() as discord:
        source.set("/jobs", Reply(200, (board / "board-v1.json").read_bytes()))
        config = tmp_path / "config.toml"
        config.write_text(
            f"""
[bot]
database = "state.sqlite3"

[[sources]]
name = "figma"
type = "greenhouse"
url = "{source.url("/jobs")}"
interval = "1s"

[slack]
mode = "http"
host = "127.0.0.1"
port = {slack_port}
api_base_url = "{slack.api_url}"

[discord]
guild_ids = [{GUILD_ID}]
api_base = "{discord.api_base}"
gateway_url = "{discord.gateway_url}"
"""
        )
        environ = {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "DISCORD_TOKEN": discord.token,
        }
        loaded = load_config(config, environ=environ)
        stop = asyncio.Event()
        async with App.open(loaded, environ=environ, console=io.StringIO()) as app:
            service = asyncio.create_task(app.run(stop))
            try:
                await eventually(lambda: discord.synced.get(GUILD_ID))

                # Slack: a signed slash command, answered ephemerally through response_url.
                body = urlencode(
                    {
                        "team_id": "T1", "channel_id": "C222", "user_id": "U111",
                        "command": "/jobs", "text": "subscribe company:figma",
                        "response_url": slack.response_url(), "trigger_id": "1.2.3",
                    }
                )  # fmt: skip
                async with (
                    aiohttp.ClientSession() as session,
                    session.post(
                        f"http://127.0.0.1:{slack_port}/slack/events",
                        data=body,
                        headers=signed_headers(body),
                    ) as answer,
                ):
                    assert answer.status == 200
                await eventually(lambda: slack.calls_to("response_url"))
                (reply,) = slack.calls_to("response_url")
                assert reply.args["response_type"] == "ephemeral"

                # Discord: the /jobs subscribe interaction, deferred then followed up.
                interaction = discord.slash_command("subscribe", options={"query": "company:figma"})
                await discord.dispatch("INTERACTION_CREATE", interaction)
                await eventually(lambda: discord.answers(interaction)[1])

                targets = sorted(s.target for s in await app.store.subscriptions())
                assert targets == [f"discord:{CHANNEL_ID}", "slack:C222"]

                # The baseline poll has run; now the board changes, and Slack is down once.
                state = await app.store.source_state("figma")
                while state is None or not state.baseline_done:
                    await asyncio.sleep(0.05)
                    state = await app.store.source_state("figma")
                slack.script("chat.postMessage", error("invalid_auth"))
                source.set("/jobs", Reply(200, (board / "board-v2.json").read_bytes()))

                await eventually(lambda: len(discord.posted(CHANNEL_ID)) == 2)
                await eventually(lambda: len(slack.accepted("chat.postMessage")) == 2)
            finally:
                stop.set()
                await asyncio.wait_for(service, 30)

    discord_titles = sorted(m["embeds"][0]["title"] for m in discord.posted(CHANNEL_ID))
    slack_texts = [c.args["text"] for c in slack.accepted("chat.postMessage")]
    v2_new = "Research Engineer, Generative AI"
    assert any(v2_new in title for title in discord_titles)
    assert any(v2_new in text for text in slack_texts)
    assert all(c.args["channel"] == "C222" for c in slack.accepted("chat.postMessage"))
    assert len(slack.calls_to("chat.postMessage")) == 3, "one refused while Slack was down"
