"""Alerts to ``discord:CHANNEL_ID`` and ``discord:dm:USER_ID`` targets through the bot's REST API.

Requests go through discord.py's ``HTTPClient`` — the logged-in client of the
``DiscordFrontend``, or of ``rest_sender`` for one-shot runs — so they share its
per-route rate-limit buckets and its session. That client already waits out
short 429s and retries the same request; a 429 means the message was not
created, so an alert is still posted once.
Waits longer than ``max_ratelimit_timeout`` come back as ``RateLimited`` and
are handed to the delivery worker as a retryable error with the delay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord
from discord.http import HTTPClient, Route

from bot.chat import DISCORD_INVALID_FORM_BODY
from bot.delivery import RateLimit
from bot.errors import DeliveryError, MessageRefused
from bot.models import Alert, ChangeKind, Notice
from bot.render import discord_payload
from bot.render_digest import DigestPage, discord_digest_pages
from bot.render_notice import discord_notice_payload

log = logging.getLogger(__name__)

# Discord allows about 5 messages per 5 s in one channel.
RATE = RateLimit(5, 5)
# Longer rate-limit waits are not slept inside a send: they come back as RateLimited
# so the delivery worker can hold the target (discord.py's floor for this is 30 s).
MAX_RATELIMIT_WAIT = 30.0

# Changes that also edit the original alert, so it shows the posting's current state.
_EDITS_ORIGINAL = frozenset({ChangeKind.CLOSED, ChangeKind.REOPENED})

# JSON error codes: https://discord.com/developers/docs/topics/opcodes-and-status-codes
_CANNOT_DM_USER = 50007
_UNKNOWN_USER = 10013
_DETAIL_CHARS = 200

HTTPSource = Callable[[], HTTPClient | None]


def set_api_base(api_base: str) -> None:
    """Send discord.py's REST calls to ``api_base`` (``[discord] api_base``).

    ``Route.BASE`` is a class attribute that every ``Route`` reads when it is
    created (REST calls, interaction callbacks and follow-ups alike), so it
    applies to the whole process: one Discord bot per process.
    """
    Route.BASE = api_base.rstrip("/")


@dataclass(frozen=True, slots=True)
class MessageRef:
    """Where a posted alert lives: ``"{channel_id}:{message_id}"``."""

    channel_id: int
    message_id: int

    def __str__(self) -> str:
        return f"{self.channel_id}:{self.message_id}"

    @classmethod
    def parse(cls, ref: str | None) -> MessageRef | None:
        channel, _, message = (ref or "").partition(":")
        if not (channel.isdigit() and message.isdigit()):
            return None
        return cls(int(channel), int(message))


class DiscordSender:
    """Implements ``bot.delivery.Sender`` for Discord bot targets.

    ``http`` returns the logged-in client's ``HTTPClient``, or None while the bot
    is not logged in (its alerts are then held, not failed).
    """

    idempotent = True  # Discord drops a repeated message: see the nonce below

    def __init__(self, http: HTTPSource) -> None:
        self._http = http
        self._dm_channels: dict[int, int] = {}  # user id -> DM channel id

    async def send(self, alert: Alert, original: str | None = None) -> str | None:
        http = self._logged_in()
        channel_id, where = await self._channel_for(http, alert.subscription.target)
        payload = discord_payload(alert)
        reply_to = MessageRef.parse(original)
        if reply_to is not None and reply_to.channel_id != channel_id:
            reply_to = None  # a reply must live in the same channel as its original
        if reply_to is not None:
            payload["message_reference"] = {
                "message_id": str(reply_to.message_id),
                "channel_id": str(reply_to.channel_id),
                "fail_if_not_exists": False,  # the original may have been deleted
            }
        if alert.key:
            # Discord drops a second message with the same nonce for a few minutes, which
            # covers discord.py re-POSTing after a 5xx and the worker's retries.
            payload["nonce"] = alert.key
            payload["enforce_nonce"] = True
        route = Route("POST", "/channels/{channel_id}/messages", channel_id=channel_id)
        message = await _post_or_plain(http, route, payload, where)
        if reply_to is not None and alert.change.kind in _EDITS_ORIGINAL:
            await self._edit_original(http, reply_to, payload)
        return str(MessageRef(channel_id, int(message["id"])))

    def _logged_in(self) -> HTTPClient:
        http = self._http()
        if http is None:
            raise DeliveryError(
                "the Discord bot is not logged in", retryable=True, target_down=True
            )
        return http

    async def send_notice(self, notice: Notice) -> None:
        http = self._logged_in()
        channel_id, where = await self._channel_for(http, notice.target)
        route = Route("POST", "/channels/{channel_id}/messages", channel_id=channel_id)
        payload = {**discord_notice_payload(notice), "nonce": notice.key, "enforce_nonce": True}
        await _request(http, route, payload, where)

    def digest_pages(self, alerts: Sequence[Alert]) -> list[DigestPage]:
        return discord_digest_pages(alerts)

    async def send_digest(self, target: str, page: DigestPage) -> None:
        http = self._logged_in()
        channel_id, where = await self._channel_for(http, target)
        # The nonce drops a repeat of the same page, as for single alerts.
        payload = {**page.payload, "nonce": page.key, "enforce_nonce": True}
        route = Route("POST", "/channels/{channel_id}/messages", channel_id=channel_id)
        await _post_or_plain(http, route, payload, where)

    async def _channel_for(self, http: HTTPClient, target: str) -> tuple[int, str]:
        """The channel to post in, and how errors should name it."""
        rest = target.removeprefix("discord:")
        if rest.isdigit():
            return int(rest), f"channel {rest}"
        user = rest.removeprefix("dm:")
        if target.startswith("discord:dm:") and user.isdigit():
            return await self._dm_channel(http, int(user)), f"user {user}"
        raise DeliveryError(f"{target!r} is not a Discord target", retryable=False)

    async def _dm_channel(self, http: HTTPClient, user_id: int) -> int:
        channel_id = self._dm_channels.get(user_id)
        if channel_id is None:
            route = Route("POST", "/users/@me/channels")
            channel = await _request(http, route, {"recipient_id": str(user_id)}, f"user {user_id}")
            channel_id = self._dm_channels[user_id] = int(channel["id"])
        return channel_id

    async def _edit_original(
        self, http: HTTPClient, original: MessageRef, payload: dict[str, Any]
    ) -> None:
        """Show the new state on the original alert. Best effort: the reply is already posted,
        so failing here must not make the worker post it again."""
        route = Route(
            "PATCH",
            "/channels/{channel_id}/messages/{message_id}",
            channel_id=original.channel_id,
            message_id=original.message_id,
        )
        edit = {key: payload[key] for key in ("content", "embeds", "allowed_mentions")}
        try:
            await _request(http, route, edit, f"channel {original.channel_id}")
        except DeliveryError as err:
            log.warning("could not mark Discord message %s as updated: %s", original, err)


@asynccontextmanager
async def rest_sender(api_base: str, token: str) -> AsyncIterator[DiscordSender]:
    """A sender that logs in over REST only, for one-shot runs (``careerbot once``).

    When the login fails, that is logged as one line and the sender reports
    Discord as down, so its alerts stay queued.
    """
    set_api_base(api_base)
    http = HTTPClient(asyncio.get_running_loop(), max_ratelimit_timeout=MAX_RATELIMIT_WAIT)
    logged_in = False
    try:
        try:
            await http.static_login(token)
            logged_in = True
        except discord.LoginFailure:
            log.warning("discord: Discord refused the bot token (HTTP 401): check DISCORD_TOKEN")
        except discord.HTTPException as err:
            log.warning("discord: cannot log in (HTTP %s)", err.status)
        except (aiohttp.ClientError, OSError, TimeoutError) as err:
            log.warning("discord: cannot reach Discord (%s)", type(err).__name__)
        yield DiscordSender(lambda: http if logged_in else None)
    finally:
        await http.close()


async def _post_or_plain(
    http: HTTPClient, route: Route, payload: dict[str, Any], where: str
) -> Any:
    try:
        return await _request(http, route, payload, where)
    except MessageRefused:
        # The embed broke one of Discord's rules: post the one-line content alone.
        plain = {key: value for key, value in payload.items() if key != "embeds"}
        return await _request(http, route, plain, where)


async def _request(http: HTTPClient, route: Route, body: dict[str, Any], where: str) -> Any:
    try:
        return await http.request(route, json=body)
    except discord.RateLimited as err:
        raise DeliveryError(
            f"Discord rate limit for {where}", retryable=True, retry_after=err.retry_after
        ) from None
    except discord.HTTPException as err:
        raise _classify(err, where) from None
    except (aiohttp.ClientError, OSError, TimeoutError) as err:
        raise DeliveryError(
            f"Discord is unreachable ({type(err).__name__})", retryable=True, target_down=True
        ) from None
    except RuntimeError as err:
        # aiohttp's "Session is closed": the client logged out or is reconnecting.
        raise DeliveryError(
            f"the Discord client is not connected ({err})", retryable=True, target_down=True
        ) from None


def _classify(err: discord.HTTPException, where: str) -> DeliveryError:
    status, code = err.status, err.code
    answer = f"HTTP {status}" + (f", code {code}" if code else "")
    detail = " ".join(err.text.split())[:_DETAIL_CHARS]
    if status == 401:
        return DeliveryError(
            "Discord refused the bot token (HTTP 401): check DISCORD_TOKEN",
            retryable=True,
            target_down=True,
        )
    if status == 429:
        return DeliveryError(
            f"Discord rate limit for {where}", retryable=True, retry_after=_retry_after(err)
        )
    if status >= 500:
        return DeliveryError(
            f"Discord is having trouble ({answer})", retryable=True, target_down=True
        )
    if status == 403 and code == _CANNOT_DM_USER:
        return DeliveryError(
            f"{where} does not accept direct messages from the bot ({answer}): they must share "
            "a server with it and allow DMs from its members",
            retryable=False,
        )
    if status == 403:
        return DeliveryError(
            f"the bot cannot post in {where} ({answer}: {detail}): give it View Channel + "
            "Send Messages + Embed Links (+ Read Message History for replies) there",
            retryable=False,
        )
    if status == 404 and code == _UNKNOWN_USER:
        return DeliveryError(f"{where} does not exist ({answer})", retryable=False)
    if status == 404:
        return DeliveryError(
            f"{where} does not exist or the bot cannot see it ({answer}: {detail})",
            retryable=False,
        )
    if status == 400 and code == DISCORD_INVALID_FORM_BODY:
        return MessageRefused(f"Discord refused the message for {where} ({answer}: {detail})")
    return DeliveryError(
        f"Discord refused the message for {where} ({answer}: {detail})", retryable=False
    )


def _retry_after(err: discord.HTTPException) -> float | None:
    """A 429 that discord.py did not retry itself (no ``Via`` header, e.g. Cloudflare)."""
    headers = getattr(err.response, "headers", None)
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
