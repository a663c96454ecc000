"""A local Discord for tests: the REST API and the gateway on 127.0.0.1 (aiohttp).

It answers the real discord.py client with payloads shaped like Discord's own,
records what the bot did (logins, command syncs, interaction answers, messages,
edits) and can be scripted to fail a request once (429, 403, 5xx…).

Only what careerbot's bot uses is implemented: login (``GET /users/@me``,
``GET /oauth2/applications/@me``), ``GET /gateway[/bot]``, command sync
(``PUT …/commands``), interaction callbacks and follow-ups, channel messages
(``POST``/``PATCH``) and DM channels; the gateway says HELLO, answers IDENTIFY
with READY + GUILD_CREATE, ACKs heartbeats, and dispatches events on demand.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

API_PREFIX = "/api/v10"
BODY = web.RequestKey("body", object)  # the parsed JSON body, kept for the handlers
GATEWAY_PATH = "/gateway/"

APP_ID = 900000000000000001
BOT_ID = 900000000000000002  # the bot user (a bot's user id differs from its app id here)
GUILD_ID = 900000000000000010
CHANNEL_ID = 900000000000000020
OWNER_ID = 900000000000000030
USER_ID = 900000000000000031
ADMIN_ROLE_ID = 900000000000000040
MEMBER_ROLE_ID = 900000000000000041
COMMAND_ID = 900000000000000050

DISCORD_EPOCH_MS = 1_420_070_400_000
WAIT_SECONDS = 5.0

# Discord's documented embed limits (https://discord.com/developers/docs/resources/message).
CONTENT_CHARS = 2000
EMBED_LIMITS = {"title": 256, "description": 4096, "fields": 25, "field.name": 256}
FIELD_VALUE_CHARS = 1024
FOOTER_CHARS = 2048
EMBED_TOTAL_CHARS = 6000


@dataclass
class Call:
    method: str
    path: str  # without the API prefix, e.g. "/channels/1/messages"
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class Scripted:
    """One reply to give instead of the normal one."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def rate_limited(retry_after: float, *, via: bool = True) -> Scripted:
    """A per-route 429 as Discord sends it. discord.py only retries a 429 that came
    through Discord's proxy (a ``Via`` header); others look like a Cloudflare ban."""
    headers = {
        "Retry-After": str(max(1, round(retry_after))),
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset-After": str(retry_after),
        "X-RateLimit-Reset": str(time.time() + retry_after),
        "X-RateLimit-Bucket": "double-bucket",
        "X-RateLimit-Scope": "user",
    }
    if via:
        headers["Via"] = "1.1 google"
    body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
    return Scripted(429, body, headers)


def error(status: int, code: int, message: str) -> Scripted:
    return Scripted(status, {"message": message, "code": code})


def embed_problems(body: Mapping[str, Any]) -> list[str]:
    """Every way a message body breaks Discord's content and embed limits."""
    problems = []
    if len(body.get("content") or "") > CONTENT_CHARS:
        problems.append(f"content longer than {CONTENT_CHARS}")
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        problems.append("more than 10 embeds")
    total = 0
    for index, embed in enumerate(embeds):
        title = embed.get("title") or ""
        description = embed.get("description") or ""
        footer = (embed.get("footer") or {}).get("text") or ""
        fields = embed.get("fields") or []
        where = f"embeds[{index}]"
        if len(title) > EMBED_LIMITS["title"]:
            problems.append(f"{where}.title longer than {EMBED_LIMITS['title']}")
        if len(description) > EMBED_LIMITS["description"]:
            problems.append(f"{where}.description longer than {EMBED_LIMITS['description']}")
        if len(footer) > FOOTER_CHARS:
            problems.append(f"{where}.footer.text longer than {FOOTER_CHARS}")
        if len(fields) > EMBED_LIMITS["fields"]:
            problems.append(f"{where} has more than {EMBED_LIMITS['fields']} fields")
        for number, item in enumerate(fields):
            name, value = item.get("name") or "", item.get("value") or ""
            if not name or len(name) > EMBED_LIMITS["field.name"]:
                problems.append(f"{where}.fields[{number}].name empty or too long")
            if not value or len(value) > FIELD_VALUE_CHARS:
                problems.append(f"{where}.fields[{number}].value empty or too long")
            total += len(name) + len(value)
        total += len(title) + len(description) + len(footer)
    if total > EMBED_TOTAL_CHARS:
        problems.append(f"embeds hold {total} characters (limit {EMBED_TOTAL_CHARS})")
    return problems


def user(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": name,
        "discriminator": "0",
        "global_name": name.title(),
        "avatar": None,
        "bot": bot,
        "flags": 0,
        "public_flags": 0,
    }


def _role(role_id: int, name: str, position: int, permissions: int = 0) -> dict[str, Any]:
    return {
        "id": str(role_id),
        "name": name,
        "color": 0,
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": position,
        "permissions": str(permissions),
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }


def _text_channel(channel_id: int) -> dict[str, Any]:
    return {
        "id": str(channel_id),
        "type": 0,
        "guild_id": str(GUILD_ID),
        "name": "job-alerts",
        "position": 0,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "flags": 0,
    }


def _options(values: Mapping[str, str | int | bool]) -> list[dict[str, Any]]:
    def option_type(value: str | int | bool) -> int:
        if isinstance(value, bool):
            return 5
        return 4 if isinstance(value, int) else 3

    return [{"name": k, "type": option_type(v), "value": v} for k, v in values.items()]


class DiscordDouble:
    def __init__(self, token: str = "double-bot-token", heartbeat_ms: int = 500) -> None:
        self.token = token  # the token the double accepts; change it to "revoke" the bot's
        self.heartbeat_ms = heartbeat_ms
        self.base_url = ""
        self.guild_ids = {GUILD_ID}  # guilds the bot is in (sync elsewhere: 403)
        self.channels = {CHANNEL_ID}
        self.forbidden_channels: set[int] = set()
        self.gateway_open = True  # False: the websocket handshake gets a 503
        self.calls: list[Call] = []
        self.messages: dict[int, dict[str, Any]] = {}  # message id -> message as stored
        self.synced: dict[int | None, list[dict[str, Any]]] = {}  # guild id (None: global)
        self.identifies: list[dict[str, Any]] = []
        self.gateway_queries: list[dict[str, str]] = []
        self.heartbeats = 0
        self._scripts: dict[tuple[str, str], list[Scripted]] = {}
        self._dm_channels: dict[int, int] = {}
        self._ids = itertools.count(1)
        self._sequence = 0
        self._session: web.WebSocketResponse | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------ addresses

    @property
    def api_base(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + GATEWAY_PATH

    # ------------------------------------------------------------ scripting and inspection

    def script(self, method: str, path: str, *replies: Scripted) -> None:
        """Answer the next requests to ``path`` (without the API prefix) with ``replies``."""
        self._scripts.setdefault((method, path), []).extend(replies)

    def requests(self, method: str, path: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.method == method and path in (None, c.path)]

    def posted(self, channel_id: int) -> list[dict[str, Any]]:
        return [m for m in self.messages.values() if m["channel_id"] == str(channel_id)]

    def answers(self, interaction: Mapping[str, Any]) -> tuple[list[Call], list[Call]]:
        """The callbacks and follow-ups sent for one interaction."""
        token = interaction["token"]
        callbacks = [c for c in self.calls if c.path.endswith(f"/{token}/callback")]
        followups = [c for c in self.calls if c.path == f"/webhooks/{APP_ID}/{token}"]
        return callbacks, followups

    async def wait_until(self, condition: Callable[[], object]) -> None:
        """Let the bot work until ``condition()`` holds (at most a few seconds)."""
        try:
            async with asyncio.timeout(WAIT_SECONDS):
                # Polled: conditions may also look at logs, which signal nothing.
                while not condition():  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
        except TimeoutError:
            raise AssertionError(
                "the Discord double did not see what the test waited for"
            ) from None

    # ------------------------------------------------------------ gateway events

    def slash_command(
        self,
        *path: str,
        options: Mapping[str, str | int | bool] | None = None,
        user_id: int = USER_ID,
        permissions: int = 0,
        roles: tuple[int, ...] = (),
    ) -> dict[str, Any]:
        """An INTERACTION_CREATE payload for ``/jobs <path…> <options>`` typed in the guild."""
        nested = _options(options or {})
        for depth, name in enumerate(reversed(path)):
            nested = [{"type": 1 if depth == 0 else 2, "name": name, "options": nested}]
        interaction_id = self._snowflake()
        return {
            "id": str(interaction_id),
            "application_id": str(APP_ID),
            "type": 2,
            "token": f"interaction-token-{interaction_id}",
            "version": 1,
            "data": {
                "id": str(COMMAND_ID),
                "name": "jobs",
                "type": 1,
                "guild_id": str(
                    GUILD_ID
                ),  # guild commands carry it; discord.py looks them up by it
                "options": nested,
            },
            "guild_id": str(GUILD_ID),
            "guild": {"id": str(GUILD_ID), "locale": "en-US", "features": []},
            "channel_id": str(CHANNEL_ID),
            "channel": {**_text_channel(CHANNEL_ID), "permissions": str(permissions)},
            "member": {
                "user": user(user_id, "alice"),
                "roles": [str(role) for role in roles],
                "permissions": str(permissions),
                "joined_at": "2024-01-01T00:00:00+00:00",
                "deaf": False,
                "mute": False,
                "flags": 0,
                "pending": False,
                "nick": None,
                "avatar": None,
                "premium_since": None,
                "communication_disabled_until": None,
            },
            "app_permissions": str(0x4_6C00),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(GUILD_ID)},
            "context": 0,
            "attachment_size_limit": 10_485_760,
        }

    @property
    def gateway_connections(self) -> int:
        """How many gateway websockets are open now."""
        return len(self._sockets)

    async def dispatch(self, event: str, data: Mapping[str, Any]) -> None:
        """Send an event on the bot's current gateway session."""
        if self._session is None or self._session.closed:
            raise AssertionError("the bot has no gateway session")
        await self._dispatch(self._session, event, data)

    # ------------------------------------------------------------ server

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        p = API_PREFIX
        app.router.add_get(GATEWAY_PATH, self._gateway)
        app.router.add_get(p + "/users/@me", self._me)
        app.router.add_get(p + "/oauth2/applications/@me", self._application)
        app.router.add_get(p + "/gateway", self._gateway_info)
        app.router.add_get(p + "/gateway/bot", self._gateway_info)
        app.router.add_put(p + "/applications/{app}/commands", self._sync)
        app.router.add_put(p + "/applications/{app}/guilds/{guild}/commands", self._sync)
        app.router.add_post(p + "/interactions/{id}/{token}/callback", self._callback)
        app.router.add_post(p + "/webhooks/{app}/{token}", self._followup)
        app.router.add_post(p + "/channels/{channel}/messages", self._create_message)
        app.router.add_patch(p + "/channels/{channel}/messages/{message}", self._edit_message)
        app.router.add_post(p + "/users/@me/channels", self._create_dm)
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        if request.path == GATEWAY_PATH:
            response: web.StreamResponse = await handler(request)
            return response
        raw = await request.read()
        body = json.loads(raw) if raw and request.content_type == "application/json" else None
        path = request.path.removeprefix(API_PREFIX)
        self.calls.append(
            Call(request.method, path, dict(request.query), body, dict(request.headers))
        )
        request[BODY] = body
        scripted = self._scripts.get((request.method, path))
        if scripted:
            reply = scripted.pop(0)
            return _json(reply.body, status=reply.status, headers=reply.headers)
        needs_bot_token = not path.startswith(("/interactions/", "/webhooks/"))
        if needs_bot_token and request.headers.get("Authorization") != f"Bot {self.token}":
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        response = await handler(request)
        return response

    def _ok(self, data: Any, bucket: str = "general") -> web.Response:
        headers = {
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "4",
            "X-RateLimit-Reset-After": "1.0",
            "X-RateLimit-Reset": str(time.time() + 1),
            "X-RateLimit-Bucket": bucket,
        }
        return _json(data, headers=headers)

    def _body(self, request: web.Request) -> Any:
        return request[BODY]

    async def _me(self, request: web.Request) -> web.Response:
        me = user(BOT_ID, "careerbot", bot=True)
        return self._ok({**me, "verified": True, "mfa_enabled": False, "locale": "en-US"})

    async def _application(self, request: web.Request) -> web.Response:
        return self._ok(
            {
                "id": str(APP_ID),
                "name": "careerbot",
                "description": "",
                "icon": None,
                "bot_public": False,
                "bot_require_code_grant": False,
                "owner": user(OWNER_ID, "owner"),
                "team": None,
                "verify_key": "0" * 64,
                "flags": 0,
                "interactions_endpoint_url": None,
            }
        )

    async def _gateway_info(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return self._ok({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    async def _sync(self, request: web.Request) -> web.Response:
        guild = request.match_info.get("guild")
        if guild is not None and int(guild) not in self.guild_ids:
            return _json({"message": "Missing Access", "code": 50001}, status=403)
        commands = self._body(request)
        self.synced[int(guild) if guild else None] = commands
        answer = [
            {
                **command,
                "id": str(COMMAND_ID + index),
                "application_id": str(APP_ID),
                "version": "1",
                **({"guild_id": guild} if guild else {}),
            }
            for index, command in enumerate(commands)
        ]
        return self._ok(answer, "commands")

    async def _callback(self, request: web.Request) -> web.Response:
        body = self._body(request)
        flags = (body.get("data") or {}).get("flags", 0)
        interaction = {
            "id": request.match_info["id"],
            "type": 2,
            "response_message_loading": body.get("type") == 5,
            "response_message_ephemeral": bool(flags & 64),
        }
        return _json({"interaction": interaction})

    async def _followup(self, request: web.Request) -> web.Response:
        body = self._body(request)
        problems = embed_problems(body)
        if problems:
            return self._invalid(problems)
        message = self._message(CHANNEL_ID, body, author=user(APP_ID, "careerbot", bot=True))
        message.update(webhook_id=str(APP_ID), application_id=str(APP_ID))
        return _json(message)

    async def _create_message(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel"])
        if channel_id not in self.channels:
            return _json({"message": "Unknown Channel", "code": 10003}, status=404)
        if channel_id in self.forbidden_channels:
            return _json({"message": "Missing Permissions", "code": 50013}, status=403)
        body = self._body(request)
        problems = embed_problems(body)
        if problems:
            return self._invalid(problems)
        if body.get("enforce_nonce") and body.get("nonce"):
            # As Discord: a message with the same nonce, sent recently, is answered again.
            for earlier in self.posted(channel_id):
                if earlier.get("nonce") == body["nonce"]:
                    return self._ok(earlier, f"messages-{channel_id}")
        message = self._message(channel_id, body, author=user(BOT_ID, "careerbot", bot=True))
        self.messages[int(message["id"])] = message
        return self._ok(message, f"messages-{channel_id}")

    async def _edit_message(self, request: web.Request) -> web.Response:
        message = self.messages.get(int(request.match_info["message"]))
        if message is None or message["channel_id"] != request.match_info["channel"]:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        body = self._body(request)
        problems = embed_problems(body)
        if problems:
            return self._invalid(problems)
        message.update({key: body[key] for key in ("content", "embeds") if key in body})
        message["edited_timestamp"] = _now()
        return self._ok(message)

    async def _create_dm(self, request: web.Request) -> web.Response:
        recipient = int(self._body(request)["recipient_id"])
        channel_id = self._dm_channels.get(recipient)
        if channel_id is None:
            channel_id = self._dm_channels[recipient] = self._snowflake()
            self.channels.add(channel_id)
        return self._ok(
            {
                "id": str(channel_id),
                "type": 1,
                "last_message_id": None,
                "flags": 0,
                "recipients": [user(recipient, "alice")],
            }
        )

    def _invalid(self, problems: list[str]) -> web.Response:
        errors = {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": p} for p in problems]}
        body = {"message": "Invalid Form Body", "code": 50035, "errors": {"payload": errors}}
        return _json(body, status=400)

    def _message(
        self, channel_id: int, body: Mapping[str, Any], author: dict[str, Any]
    ) -> dict[str, Any]:
        reference = body.get("message_reference")
        message: dict[str, Any] = {
            "id": str(self._snowflake()),
            "channel_id": str(channel_id),
            "type": 19 if reference else 0,
            "content": body.get("content") or "",
            "embeds": body.get("embeds") or [],
            "author": author,
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "components": [],
            "pinned": False,
            "flags": body.get("flags", 0),
            "allowed_mentions": body.get("allowed_mentions"),  # kept for the tests
        }
        if reference:
            message["message_reference"] = reference
        if body.get("nonce"):
            message["nonce"] = body["nonce"]
        return message

    def _snowflake(self) -> int:
        milliseconds = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return (milliseconds << 22) | (next(self._ids) & 0x3FFFFF)

    # ------------------------------------------------------------ gateway

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        if not self.gateway_open:
            return web.Response(status=503, text="gateway unavailable")
        self.gateway_queries.append(dict(request.query))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            await self._send(ws, 10, {"heartbeat_interval": self.heartbeat_ms})
            async for frame in ws:
                if frame.type is WSMsgType.TEXT:
                    await self._on_frame(ws, json.loads(frame.data))
        finally:
            self._sockets.discard(ws)
        return ws

    async def _on_frame(self, ws: web.WebSocketResponse, payload: dict[str, Any]) -> None:
        op, data = payload.get("op"), payload.get("d")
        if op == 1:  # heartbeat
            self.heartbeats += 1
            await self._send(ws, 11, None)
        elif op == 2:  # identify
            if data["token"] != self.token:
                await ws.close(code=4004, message=b"Authentication failed.")
                return
            self.identifies.append(data)
            self._session = ws
            await self._dispatch(ws, "READY", self._ready())
            await self._dispatch(ws, "GUILD_CREATE", self._guild())
        elif op == 6:  # resume: this double keeps no sessions
            await self._send(ws, 9, False)

    async def _send(self, ws: web.WebSocketResponse, op: int, data: Any) -> None:
        await ws.send_str(json.dumps({"op": op, "d": data, "s": None, "t": None}))

    async def _dispatch(self, ws: web.WebSocketResponse, event: str, data: Any) -> None:
        self._sequence += 1
        await ws.send_str(json.dumps({"op": 0, "d": data, "s": self._sequence, "t": event}))

    def _ready(self) -> dict[str, Any]:
        return {
            "v": 10,
            "user": {**user(BOT_ID, "careerbot", bot=True), "verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(guild), "unavailable": True} for guild in self.guild_ids],
            "session_id": f"session-{len(self.identifies)}",
            "resume_gateway_url": self.gateway_url,
            "shard": [0, 1],
            "application": {"id": str(APP_ID), "flags": 0},
        }

    def _guild(self) -> dict[str, Any]:
        return {
            "id": str(GUILD_ID),
            "name": "Research lab",
            "icon": None,
            "owner_id": str(OWNER_ID),
            "unavailable": False,
            "large": False,
            "member_count": 3,
            "joined_at": "2024-01-01T00:00:00+00:00",
            "roles": [
                _role(GUILD_ID, "@everyone", 0, permissions=0x400 | 0x800),
                _role(ADMIN_ROLE_ID, "jobs-admin", 2),
                _role(MEMBER_ROLE_ID, "member", 1),
            ],
            "channels": [_text_channel(CHANNEL_ID)],
            "threads": [],
            "members": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "emojis": [],
            "stickers": [],
            "features": [],
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "system_channel_flags": 0,
            "afk_timeout": 300,
        }

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def shutdown(self) -> None:
        """Go away, as Discord does in an outage: connections are refused from now on."""
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _json(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """Discord's exact content type: discord.py parses JSON only for ``application/json``."""
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())


@asynccontextmanager
async def serve_discord(token: str = "double-bot-token") -> AsyncIterator[DiscordDouble]:
    double = DiscordDouble(token)
    await double.start()
    try:
        yield double
    finally:
        await double.shutdown()
