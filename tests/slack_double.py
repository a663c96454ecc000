"""A local stand-in for the Slack Web API, response_url and Socket Mode (aiohttp, 127.0.0.1).

It answers the way Slack does: HTTP 200 with ``{"ok": false, "error": …}`` for API
errors, 429 with ``Retry-After`` for rate limits, and it rejects messages that break
Slack's documented Block Kit and text limits, so a test that passes here would not
be refused for size by the real thing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

BOT_TOKEN = "xoxb-test-bot-token"
APP_TOKEN = "xapp-test-app-token"
SIGNING_SECRET = "test-signing-secret"


@dataclass
class Call:
    method: str  # "chat.postMessage", or "response_url" for ephemeral replies
    args: dict[str, Any]
    ok: bool = True


@dataclass
class Canned:
    """A scripted answer: Slack's JSON body, an HTTP status and headers."""

    body: dict[str, Any] = field(default_factory=lambda: {"ok": True})
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


def error(code: str) -> Canned:
    return Canned({"ok": False, "error": code})


def rate_limited(retry_after: int) -> Canned:
    return Canned({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": str(retry_after)})


def limit_problems(message: dict[str, Any]) -> list[str]:
    """Where a chat.postMessage / chat.update body breaks Slack's limits."""
    problems = []
    text = message.get("text") or ""
    if len(text) > 40_000:
        problems.append(f"text is {len(text)} characters")
    blocks = message.get("blocks") or []
    if len(blocks) > 50:
        problems.append(f"{len(blocks)} blocks")
    for index, block in enumerate(blocks):
        if "text" in block and len(block["text"]["text"]) > 3000:
            problems.append(f"block {index} text is {len(block['text']['text'])} characters")
        fields = block.get("fields", [])
        if len(fields) > 10 or any(len(f["text"]) > 2000 for f in fields):
            problems.append(f"block {index} fields exceed 10 x 2000 characters")
        elements = block.get("elements", [])
        if len(elements) > 10 or any(len(e.get("text", "")) > 3000 for e in elements):
            problems.append(f"block {index} elements exceed 10 x 3000 characters")
    return problems


def signed_headers(
    body: str, secret: str = SIGNING_SECRET, at: float | None = None
) -> dict[str, str]:
    """The headers Slack signs a request with (v0 HMAC-SHA256 of timestamp and body)."""
    timestamp = str(int(time.time() if at is None else at))
    base = f"v0:{timestamp}:{body}".encode()
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


class SlackDouble:
    def __init__(self) -> None:
        self.base_url = ""
        self.bot_token = BOT_TOKEN
        self.app_token = APP_TOKEN
        self.calls: list[Call] = []
        self.scripts: dict[str, list[Canned]] = {}
        self.admins: set[str] = set()  # users.info says is_admin
        self.owners: set[str] = set()
        self.deleted_channels: set[str] = set()  # chat.postMessage: channel_not_found
        self.replied = asyncio.Event()  # set on each response_url POST
        self.socket_acks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.socket_open = asyncio.Event()
        self._socket: web.WebSocketResponse | None = None
        self._ts = itertools.count(1)

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def response_url(self, name: str = "cmd") -> str:
        return f"{self.base_url}/response/{name}"

    def script(self, method: str, *answers: Canned) -> None:
        """Answer the next calls to ``method`` with these, then normally again."""
        self.scripts.setdefault(method, []).extend(answers)

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def accepted(self, method: str) -> list[Call]:
        return [call for call in self.calls_to(method) if call.ok]

    async def push(self, envelope: dict[str, Any]) -> None:
        """Send a Socket Mode envelope to the connected app."""
        assert self._socket is not None, "no Socket Mode connection"
        await self._socket.send_json(envelope)

    # ------------------------------------------------------------ handlers

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _arguments(request)
        call = Call(method, args)
        self.calls.append(call)
        canned = self._scripted(method) or self._answer(method, request, args)
        call.ok = canned.status == 200 and bool(canned.body.get("ok"))
        return web.json_response(canned.body, status=canned.status, headers=canned.headers)

    def _scripted(self, method: str) -> Canned | None:
        queue = self.scripts.get(method)
        return queue.pop(0) if queue else None

    def _answer(self, method: str, request: web.Request, args: dict[str, Any]) -> Canned:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            return error("invalid_auth")
        if method == "auth.test":
            return Canned({"ok": True, "user": "careerbot", "user_id": "UBOT", "team_id": "T1"})
        if method in ("chat.postMessage", "chat.update"):
            return self._message(method, args)
        if method == "users.info":
            user = args["user"]
            return Canned(
                {
                    "ok": True,
                    "user": {
                        "id": user,
                        "is_admin": user in self.admins,
                        "is_owner": user in self.owners,
                    },
                }
            )
        if method == "apps.connections.open":
            return Canned({"ok": True, "url": self.base_url.replace("http", "ws", 1) + "/link"})
        return error("unknown_method")

    def _message(self, method: str, args: dict[str, Any]) -> Canned:
        if limit_problems(args):
            return error("invalid_blocks" if args.get("blocks") else "msg_too_long")
        channel = str(args["channel"])
        if channel in self.deleted_channels:
            return error("channel_not_found")
        if channel.startswith("U"):  # a user id posts to the bot's DM with that user
            channel = "D" + channel[1:]
        ts = args["ts"] if method == "chat.update" else f"1700000000.{next(self._ts):06d}"
        return Canned({"ok": True, "channel": channel, "ts": ts})

    async def _response_url(self, request: web.Request) -> web.Response:
        self.calls.append(Call("response_url", await request.json()))
        self.replied.set()
        return web.Response(text="ok")

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._socket = socket
        await socket.send_json({"type": "hello", "num_connections": 1})
        self.socket_open.set()
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                await self.socket_acks.put(json.loads(message.data))
        return socket


async def _arguments(request: web.Request) -> dict[str, Any]:
    """The Web API takes arguments as a query string, a form or JSON."""
    args: dict[str, Any] = dict(request.query)
    body = await request.text()
    if request.content_type == "application/json" and body:
        args.update(json.loads(body))
    elif body:
        args.update(parse_qsl(body))
    return args


@asynccontextmanager
async def serve_slack() -> AsyncIterator[SlackDouble]:
    double = SlackDouble()
    app = web.Application()
    app.router.add_post("/api/{method}", double._api)
    app.router.add_get("/api/{method}", double._api)
    app.router.add_post("/response/{name}", double._response_url)
    app.router.add_get("/link", double._link)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    double.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield double
    finally:
        if double._socket is not None:
            await double._socket.close()
        await runner.cleanup()
