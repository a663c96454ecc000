"""Secrets from the environment never reach output, logs, errors or the database,
even at DEBUG level and while every platform is failing."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

from loopback import Reply, serve

REPO = Path(__file__).resolve().parents[1]

SECRETS = {
    "DISCORD_TOKEN": "MTIzNDU2Nzg5MDEy.discord-secret-token",
    "SLACK_BOT_TOKEN": "xoxb-slack-secret-token",
    "SLACK_SIGNING_SECRET": "slack-signing-secret-value",
    "SLACK_APP_TOKEN": "xapp-slack-app-secret-token",
    "LAB_HOOK": "",  # set to the loopback URL, whose path is the secret part
}
WEBHOOK_SECRET = "T000/B000/webhook-secret-path"
DISCORD_USER = '{"id": "1", "username": "careerbot", "discriminator": "0", "avatar": null}'


def write_config(workdir: Path, base_url: str) -> Path:
    shutil.copytree(REPO / "samples", workdir / "samples")
    config = workdir / "config.toml"
    config.write_text(
        f"""
[bot]
database = "state.sqlite3"
delivery_max_attempts = 1

[[sources]]
name = "figma"
type = "greenhouse"
url = "file:samples/greenhouse/figma-board.json"

[webhooks.lab]
kind = "slack"
url_env = "LAB_HOOK"

[[subscriptions]]
target = "webhook:lab"
query = "figma OR engineer OR designer"

[[subscriptions]]
target = "slack:C0123456789"
query = "figma OR engineer OR designer"

[[subscriptions]]
target = "discord:123456789012345678"
query = "figma OR engineer OR designer"

[slack]
mode = "socket"
api_base_url = "{base_url}/slack/api/"

[discord]
api_base = "{base_url}/discord/api/v10"
gateway_url = "ws://127.0.0.1:9/"
"""
    )
    return config


def slack_answer(**fields: object) -> Reply:
    return Reply(200, json.dumps(fields), headers={"Content-Type": "application/json"})


def database_files(directory: Path) -> list[Path]:
    return list(directory.glob("state.sqlite3*"))


async def careerbot(workdir: Path, env: dict[str, str], *args: str) -> tuple[int, bytes]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, "--log-level", "DEBUG",
        cwd=workdir, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output


async def test_no_secret_in_output_logs_errors_or_database(tmp_path: Path) -> None:
    async with serve() as server:
        # Every platform fails (the webhook repeats what it was sent), the
        # Discord token first of all.
        server.set(f"/{WEBHOOK_SECRET}", lambda request: Reply(500, request.body))
        server.set("/slack/api/auth.test", slack_answer(ok=True, user_id="UBOT", user="careerbot"))
        server.set("/slack/api/chat.postMessage", slack_answer(ok=False, error="channel_not_found"))
        refused = Reply(401, '{"message": "401: Unauthorized", "code": 0}')
        server.set("/discord/api/v10/users/@me", [refused, Reply(200, DISCORD_USER)])
        server.set(
            "/discord/api/v10/channels/123456789012345678/messages",
            Reply(404, '{"message": "Unknown Channel", "code": 10003}'),
        )
        config = write_config(tmp_path, server.base_url)
        env = {"PATH": "/usr/bin:/bin"} | SECRETS | {"LAB_HOOK": server.url(f"/{WEBHOOK_SECRET}")}

        outputs = [await careerbot(tmp_path, env, "once", "--config", str(config))]
        shutil.copy(
            tmp_path / "samples/greenhouse/figma-board-v2.json",
            tmp_path / "samples/greenhouse/figma-board.json",
        )
        outputs.append(await careerbot(tmp_path, env, "once", "--config", str(config)))
        for command in ("check-config", "sources", "subscriptions"):
            outputs.append(await careerbot(tmp_path, env, command, "--config", str(config)))
        missing = {**env, "SLACK_APP_TOKEN": ""}
        outputs.append(await careerbot(tmp_path, missing, "check-config", "--config", str(config)))
    assert outputs[-1][0] == 2 and b"SLACK_APP_TOKEN" in outputs[-1][1]

    assert any(request.path_qs == f"/{WEBHOOK_SECRET}" for request in server.requests), (
        "the webhook was tried, so its failure was logged"
    )
    stored = b"".join(path.read_bytes() for path in database_files(tmp_path))
    for reason in (b"HTTP 500", b"not found (deleted", b"Unknown Channel"):
        assert reason in stored, "each platform's failure reason was stored"
    secrets = [value.encode() for value in SECRETS.values() if value] + [WEBHOOK_SECRET.encode()]
    for secret in secrets:
        for code, output in outputs:
            assert secret not in output, (code, output.decode()[-2000:])
        assert secret not in stored
