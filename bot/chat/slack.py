"""Slack: alerts through the Web API and the ``/jobs`` slash command through slack-bolt.

``SlackSender`` posts alerts with ``chat.postMessage`` (follow-ups in the original's
thread); ``SlackFrontend`` owns the bolt ``AsyncApp`` and serves ``/jobs`` over HTTP
(Events API endpoint, signatures verified by bolt) or Socket Mode. The bot token, the
signing secret and the app token never appear in a log line or an error message.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from bot.chat import SLACK_REFUSED_LAYOUT
from bot.commands import Caller
from bot.config import SlackSettings
from bot.delivery import RateLimit
from bot.errors import ConfigError, DeliveryError
from bot.fetch import parse_retry_after
from bot.models import Alert, ChangeKind, Notice
from bot.render import slack_payload, truncate
from bot.render_digest import DigestPage, slack_digest_pages
from bot.render_notice import slack_notice_payload

log = logging.getLogger(__name__)

# Slack allows about one message per second per channel; the worker paces each target.
RATE = RateLimit(1, 1)

COMMAND = "/jobs"
_MAX_SDK_WAIT = 5.0  # longer Retry-After waits go back to the worker's schedule
_PACED_BY_THE_WORKER = frozenset({"chat.postMessage", "chat.update"})
_REPLY_CHARS = 39_000  # Slack cuts message text at 40,000 characters
_STOP_GRACE = 5.0
# Follow-ups that also edit the original message to show the posting's new state.
_UPDATED_KINDS = frozenset({ChangeKind.CLOSED, ChangeKind.REOPENED})
_NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)

# "<" ends a scan too (Slack escapes it inside links): without it, each unclosed "<http:"
# would rescan the rest of the text, quadratic in all.
_SLACK_LINK = re.compile(r"<((?:https?|mailto):[^|<>]*)(?:\|[^<>]*)?>")

Sleep = Callable[[float], Awaitable[None]]


# ---------------------------------------------------------------- Web API client


class ShortRateLimitRetry(AsyncRateLimitErrorRetryHandler):
    """Retries a 429 inside the SDK only when Slack asks for a short wait.

    A long wait would stall the delivery pass for every target, so it is raised as a
    retryable ``DeliveryError`` and the worker schedules it instead. Alerts' 429s
    always go to the worker: it must know the channel's allowance is spent, or it
    would send the next alert at once into another 429. Unlike the
    built-in handler, a non-integer ``Retry-After`` is not a crash, and the sleep is
    injectable for tests.
    """

    def __init__(
        self,
        max_retry_count: int = 2,
        max_wait: float = _MAX_SDK_WAIT,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self._max_wait = max_wait
        self._sleep = sleep

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        if request.url.rsplit("/", 1)[-1] in _PACED_BY_THE_WORKER:
            return False
        wait = _retry_after(response.headers)
        return wait is not None and wait <= self._max_wait

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        wait = _retry_after(response.headers) if response is not None else None
        state.next_attempt_requested = True
        await self._sleep((wait or 1.0) + random.uniform(0, 0.25))
        state.increment_current_attempt()


def _retry_after(headers: Any) -> float | None:
    """Seconds from a Retry-After header in any of the SDK's header shapes."""
    for name, value in dict(headers).items():
        if name.lower() == "retry-after":
            return parse_retry_after(value[0] if isinstance(value, list) else str(value))
    return None


def make_web_client(
    token: str, settings: SlackSettings, sleep: Sleep = asyncio.sleep
) -> AsyncWebClient:
    """The Web API client shared by alerts, commands and Socket Mode."""
    return AsyncWebClient(
        token=token,
        base_url=settings.api_base_url,
        timeout=15,
        retry_handlers=[ShortRateLimitRetry(sleep=sleep)],
    )


# ---------------------------------------------------------------- errors


# Problems with one channel or one message: retrying the same alert cannot help.
_PERMANENT = {
    "not_in_channel": "the bot is not in channel {channel}: /invite @{bot} there",
    "channel_not_found": "channel {channel} not found (deleted, or private: /invite @{bot} there)",
    "is_archived": "channel {channel} is archived",
    "user_not_found": "user {channel} was not found",
    "user_disabled": "user {channel} is deactivated",
    "cannot_dm_bot": "{channel} is a bot and cannot get direct messages",
    "restricted_action": "workspace settings do not let the bot post in {channel}",
    "msg_too_long": "Slack refused the message as too long (msg_too_long)",
    "invalid_blocks": "Slack refused the message layout (invalid_blocks)",
    "no_text": "Slack refused a message without text (no_text)",
}
# The token or the app is unusable: every alert to Slack would fail the same way.
_TOKEN_PROBLEMS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "not_allowed_token_type",
        "team_access_not_granted",
        "org_login_required",
        "ekm_access_denied",
        "team_is_restricted",
    }
)
_SLACK_OUTAGE = frozenset(
    {"fatal_error", "internal_error", "service_unavailable", "request_timeout"}
)


def _field(err: SlackApiError, name: str) -> str | None:
    data = getattr(err.response, "data", None)
    value = data.get(name) if isinstance(data, dict) else None
    return str(value) if value else None


def _error_code(err: SlackApiError) -> str:
    return _field(err, "error") or "unknown_error"


def _status(err: SlackApiError) -> int:
    return int(getattr(err.response, "status_code", 0) or 0)


def _delivery_error(err: Exception, channel: str, bot: str = "careerbot") -> DeliveryError:
    """Classify a Web API failure for the worker, in words an operator can act on."""
    if not isinstance(err, SlackApiError):
        return DeliveryError(
            f"slack unreachable: {type(err).__name__}", retryable=True, target_down=True
        )
    code, status = _error_code(err), _status(err)
    if status == 429 or code in ("ratelimited", "rate_limited"):
        wait = _retry_after(getattr(err.response, "headers", {}) or {})
        return DeliveryError("slack rate limit (ratelimited)", retryable=True, retry_after=wait)
    if code in _TOKEN_PROBLEMS:
        if code == "missing_scope" and _field(err, "needed"):
            code = f"missing_scope {_field(err, 'needed')}"
        return DeliveryError(
            f"slack refused the bot token ({code})", retryable=True, target_down=True
        )
    if status >= 500 or code in _SLACK_OUTAGE:
        detail = f"HTTP {status}" if _field(err, "error") is None else f"{code}, HTTP {status}"
        return DeliveryError(f"slack is unavailable ({detail})", retryable=True, target_down=True)
    reason = _PERMANENT.get(code, "Slack refused the message ({code})")
    return DeliveryError(
        "slack: " + reason.format(channel=channel, bot=bot, code=code), retryable=False
    )


# ---------------------------------------------------------------- alerts


@dataclass(frozen=True, slots=True)
class MessageRef:
    """Where a posted message lives: ``"{channel}:{ts}"`` in the outbox."""

    channel: str
    ts: str

    def __str__(self) -> str:
        return f"{self.channel}:{self.ts}"

    @classmethod
    def parse(cls, ref: str | None) -> MessageRef | None:
        channel, _, ts = (ref or "").partition(":")
        return cls(channel, ts) if channel and ts else None


def _conversation_of(target: str) -> str:
    """``slack:C123`` → ``C123``; a user id (``slack:U123``) posts to the bot's DM."""
    prefix, _, conversation = target.partition(":")
    if prefix != "slack" or not conversation:
        raise DeliveryError(f"{target} is not a Slack target", retryable=False)
    return conversation


_THREAD_GONE = frozenset({"thread_not_found", "message_not_found"})


class SlackSender:
    """Posts alerts with ``chat.postMessage``; follow-ups go in the original's thread."""

    def __init__(self, client: AsyncWebClient, bot_name: str = "careerbot") -> None:
        self._client = client
        self.bot_name = bot_name  # shown in the "/invite @…" hint; learnt from auth.test

    async def send(self, alert: Alert, original: str | None = None) -> str | None:
        payload = slack_payload(alert)
        thread = MessageRef.parse(original)
        if thread is None:
            return str(await self._post(_conversation_of(alert.subscription.target), payload))
        if alert.change.kind in _UPDATED_KINDS:
            # Edit first: if the reply then fails, the retry edits again harmlessly
            # instead of posting a second reply.
            await self._update(thread, payload)
        return str(await self._post(thread.channel, payload, thread_ts=thread.ts))

    async def send_notice(self, notice: Notice) -> None:
        await self._post(_conversation_of(notice.target), slack_notice_payload(notice))

    def digest_pages(self, alerts: Sequence[Alert]) -> list[DigestPage]:
        return slack_digest_pages(alerts)

    async def send_digest(self, target: str, page: DigestPage) -> None:
        await self._post(_conversation_of(target), page.payload)

    async def _post(
        self, channel: str, payload: dict[str, Any], thread_ts: str | None = None
    ) -> MessageRef:
        try:
            response = await self._client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, **payload
            )
        except (SlackApiError, *_NETWORK_ERRORS) as err:
            code = _field(err, "error") if isinstance(err, SlackApiError) else None
            if thread_ts is not None and code in _THREAD_GONE:
                # The original was deleted: the follow-up still matters on its own.
                return await self._post(channel, payload)
            if code in SLACK_REFUSED_LAYOUT and "blocks" in payload:
                # The blocks broke one of Slack's limits: post the plain fallback text alone.
                plain = {key: value for key, value in payload.items() if key != "blocks"}
                return await self._post(channel, plain, thread_ts)
            raise _delivery_error(err, channel, self.bot_name) from None
        # For a user id Slack answers with the DM's own id, which threads and edits need.
        return MessageRef(str(response.get("channel") or channel), str(response["ts"]))

    async def _update(self, message: MessageRef, payload: dict[str, Any]) -> None:
        fields = {key: payload[key] for key in ("text", "blocks")}
        try:
            await self._client.chat_update(channel=message.channel, ts=message.ts, **fields)
        except (SlackApiError, *_NETWORK_ERRORS) as err:
            problem = _delivery_error(err, message.channel, self.bot_name)
            if problem.retryable:  # nothing posted yet, so retrying the whole alert is safe
                raise problem from None
            log.info("could not mark Slack message %s: %s", message, problem)

    def __repr__(self) -> str:
        return "SlackSender(token=<secret>)"


# ---------------------------------------------------------------- /jobs


class CommandRunner(Protocol):
    async def run(self, caller: Caller, text: str) -> str: ...


class _JobsCommand:
    """Turns a ``/jobs`` invocation into a ``Caller`` and answers ephemerally."""

    def __init__(
        self, client: AsyncWebClient, commands: CommandRunner, admin_user_ids: frozenset[str]
    ) -> None:
        self._client = client
        self._commands = commands
        self._admin_user_ids = admin_user_ids
        self.in_flight: set[asyncio.Task[Any]] = set()

    async def handle(self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        """The bolt listener; bolt injects the arguments by name."""
        await ack()  # Slack gives up after 3 s; the real answer follows via response_url
        task = asyncio.current_task()
        assert task is not None
        self.in_flight.add(task)
        try:
            await self._answer(command, respond)
        finally:
            self.in_flight.discard(task)

    async def _answer(self, command: dict[str, Any], respond: AsyncRespond) -> None:
        user_id = str(command.get("user_id", ""))
        caller = Caller(
            platform="slack",
            user_id=user_id,
            channel_id=str(command.get("channel_id", "")),
            is_admin=lambda: self.is_admin(user_id),
        )
        try:
            reply = await self._commands.run(caller, command_text(str(command.get("text") or "")))
        except Exception:
            log.exception("/jobs from %s failed", user_id)
            reply = "Sorry, that command failed. The error has been logged."
        # The command layer already formats and escapes its reply as Slack mrkdwn.
        text = truncate(reply, _REPLY_CHARS) or "Done."
        try:
            answer = await respond(text=text, response_type="ephemeral")
        except _NETWORK_ERRORS as err:
            log.warning("/jobs reply to %s not delivered: %s", user_id, type(err).__name__)
            return
        if answer.status_code != 200:
            log.warning("/jobs reply to %s refused: HTTP %d", user_id, answer.status_code)

    async def is_admin(self, user_id: str) -> bool:
        """A configured admin, else a workspace admin or owner per ``users.info``."""
        if user_id in self._admin_user_ids:
            return True
        try:
            response = await self._client.users_info(user=user_id)
        except (SlackApiError, *_NETWORK_ERRORS) as err:
            log.warning("users.info for %s failed: %s", user_id, _describe(err))
            return False
        user = response.get("user") or {}
        return bool(user.get("is_admin") or user.get("is_owner"))


def command_text(raw: str) -> str:
    """The command as the user typed it: Slack wraps links in <…> and escapes &, <, >."""
    unwrapped = _SLACK_LINK.sub(r"\1", raw)
    return unwrapped.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


# ---------------------------------------------------------------- listeners


class _HttpListener:
    """Slash commands and events over HTTP; bolt checks the signature and the timestamp."""

    role = "the HTTP endpoint"

    def __init__(self, app: AsyncApp, settings: SlackSettings) -> None:
        self._app = app
        self._settings = settings
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        web_app = web.Application()
        web_app.router.add_post(self._settings.path, self._handle)
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._settings.host, self._settings.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner

    @property
    def port(self) -> int | None:
        if self._runner is None or not self._runner.addresses:
            return None
        return int(self._runner.addresses[0][1])

    async def _handle(self, request: web.Request) -> web.Response:
        response = await self._app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(response)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class _SocketListener:
    """Socket Mode: no public endpoint; Slack pushes commands over a websocket."""

    role = "Socket Mode (SLACK_APP_TOKEN)"

    def __init__(self, app: AsyncApp, client: AsyncWebClient, app_token: str) -> None:
        self._app = app
        self._client = client
        self._app_token = app_token
        self._handler: AsyncSocketModeHandler | None = None

    async def start(self) -> None:
        # The SDK's connect() retries a bad token forever, logging a traceback each
        # time; asking for the URL ourselves turns that into one clear failure.
        opened = await self._client.apps_connections_open(app_token=self._app_token)
        handler = AsyncSocketModeHandler(self._app, self._app_token, web_client=self._client)
        handler.client.wss_uri = str(opened["url"])
        try:
            # connect_async/close_async carry no annotations in slack-bolt 1.30.
            await asyncio.wait_for(handler.connect_async(), timeout=30)  # type: ignore[no-untyped-call]
        except BaseException:
            await handler.close_async()  # type: ignore[no-untyped-call]
            raise
        self._handler = handler

    async def stop(self) -> None:
        if self._handler is not None:
            await self._handler.close_async()  # type: ignore[no-untyped-call]
            self._handler = None


# ---------------------------------------------------------------- front-end


class SlackFrontend:
    """The Slack side of ``careerbot run``: ``/jobs`` in, alerts out.

    ``start()`` never raises for a bad token or an unreachable Slack: it logs one
    line and keeps retrying in the background, so other platforms carry on.
    """

    def __init__(
        self,
        settings: SlackSettings,
        commands: CommandRunner,
        *,
        bot_token: str,
        signing_secret: str | None = None,
        app_token: str | None = None,
        retry_delay: float = 30.0,
        max_retry_delay: float = 600.0,
    ) -> None:
        if settings.mode == "http" and not signing_secret:
            raise ConfigError("slack: SLACK_SIGNING_SECRET must be set for mode = 'http'")
        if settings.mode == "socket" and not app_token:
            raise ConfigError("slack: SLACK_APP_TOKEN must be set for mode = 'socket'")
        self._settings = settings
        self._client = make_web_client(bot_token, settings)
        self._sender = SlackSender(self._client)
        # The token is taken from the client; passing it as well only earns a warning.
        self._app = AsyncApp(
            name="careerbot", client=self._client, signing_secret=signing_secret or ""
        )
        self._jobs = _JobsCommand(self._client, commands, frozenset(settings.admin_user_ids))
        self._app.command(COMMAND)(self._jobs.handle)
        self._listener: _HttpListener | _SocketListener = (
            _SocketListener(self._app, self._client, app_token or "")
            if settings.mode == "socket"
            else _HttpListener(self._app, settings)
        )
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._retrying: asyncio.Task[None] | None = None
        self.connected = False

    @property
    def sender(self) -> SlackSender:
        return self._sender

    @property
    def http_port(self) -> int | None:
        """The port actually listened on in HTTP mode (useful with port 0)."""
        return self._listener.port if isinstance(self._listener, _HttpListener) else None

    async def start(self) -> None:
        if self.connected or self._retrying is not None:
            return
        if not await self._connect(self._retry_delay):
            self._retrying = asyncio.create_task(self._keep_trying(), name="slack-connect")

    async def stop(self) -> None:
        if self._retrying is not None:
            self._retrying.cancel()
            await asyncio.gather(self._retrying, return_exceptions=True)
            self._retrying = None
        await self._listener.stop()
        self.connected = False
        if self._jobs.in_flight:  # let answers already being worked out reach the user
            await asyncio.wait(self._jobs.in_flight, timeout=_STOP_GRACE)

    async def _keep_trying(self) -> None:
        delay = self._retry_delay
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_retry_delay)
            if await self._connect(delay):
                return

    async def _connect(self, next_delay: float) -> bool:
        step = "SLACK_BOT_TOKEN (auth.test)"
        try:
            identity = await self._client.auth_test()
            self._sender.bot_name = str(identity.get("user") or self._sender.bot_name)
            step = self._listener.role
            await self._listener.start()
        except (SlackApiError, *_NETWORK_ERRORS) as err:
            log.warning(
                "slack not started: %s: %s; retrying in %.0fs", step, _describe(err), next_delay
            )
            return False
        except Exception:  # a surprise from the SDK must not take the other platforms down
            log.exception("slack not started: %s; retrying in %.0fs", step, next_delay)
            return False
        self.connected = True
        where = (
            f"http://{self._settings.host}:{self.http_port}{self._settings.path}"
            if isinstance(self._listener, _HttpListener)
            else "socket mode"
        )
        log.info("slack connected as @%s (%s)", self._sender.bot_name, where)
        return True


def _describe(err: BaseException) -> str:
    """One line without secrets: Slack's error code, or the kind of network failure."""
    if isinstance(err, SlackApiError):
        status = _status(err)
        return _error_code(err) + (f" (HTTP {status})" if status != 200 else "")
    if isinstance(err, OSError) and not isinstance(err, aiohttp.ClientError) and err.strerror:
        return err.strerror  # e.g. "address already in use"
    if isinstance(err, TimeoutError):
        return "timed out"
    return f"cannot reach Slack ({type(err).__name__})"
