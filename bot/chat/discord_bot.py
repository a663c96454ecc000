"""The Discord front-end: the ``/jobs`` slash commands and the bot's alert sender.

A thin adapter. Each ``/jobs …`` interaction becomes the command layer's text
(``/jobs subscribe query:nerf dm:True`` → ``"subscribe dm nerf"``) and its reply
goes back to the caller only. The bot needs no privileged intents: slash
commands arrive over the gateway with just the ``guilds`` intent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Literal

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import HTTPClient

from bot.chat.discord_sender import MAX_RATELIMIT_WAIT, DiscordSender, set_api_base
from bot.commands import Caller
from bot.config import DiscordSettings
from bot.render import truncate

log = logging.getLogger(__name__)

CommandRunner = Callable[[Caller, str], Awaitable[str]]
Interaction = discord.Interaction[discord.Client]
Invoke = Callable[[Interaction, str], Awaitable[None]]

REPLY_CHARS = 2000  # Discord's limit for a message's content
FAILED_REPLY = "Sorry, that command failed. The details are in careerbot's log."
STOP_SECONDS = 10.0


def configure_endpoints(settings: DiscordSettings) -> None:
    """Point discord.py at ``[discord] api_base`` and ``gateway_url``.

    discord.py keeps both in class attributes, not on the client, so they apply
    to the whole process (one Discord bot per process): every ``Route`` — REST
    calls, interaction callbacks and follow-ups alike — builds its URL from
    ``Route.BASE`` when it is created, and a non-sharded ``Client`` opens each
    new gateway session at ``DiscordWebSocket.DEFAULT_GATEWAY`` without asking
    ``GET /gateway/bot`` (resumes go to the ``resume_gateway_url`` of READY).
    """
    set_api_base(settings.api_base)
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)


def bot_intents() -> discord.Intents:
    """Only ``guilds``: its roles and channels, for admin checks. Nothing privileged."""
    intents = discord.Intents.none()
    intents.guilds = True
    return intents


def fit_reply(text: str) -> str:
    return truncate(text.strip() or "Done.", REPLY_CHARS)


def _words(*parts: str | None) -> str:
    return " ".join(part.strip() for part in parts if part and part.strip())


def is_admin(interaction: Interaction, admin_role_ids: frozenset[int]) -> bool:
    """Manage Server (or Administrator) in this guild, or one of the configured roles."""
    if interaction.guild_id is None:
        return False  # a DM with the bot has no server to manage
    permissions = interaction.permissions  # resolved by Discord for this member and channel
    if permissions.manage_guild or permissions.administrator:
        return True
    member = interaction.user
    return isinstance(member, discord.Member) and any(
        role.id in admin_role_ids for role in member.roles
    )


def jobs_group(invoke: Invoke) -> app_commands.Group:
    """``/jobs`` and its subcommands, mirroring the command layer's words."""
    jobs = app_commands.Group(name="jobs", description="Job alerts from careerbot")
    source = app_commands.Group(
        name="source", description="Manage the polled sources (admins only)", parent=jobs
    )

    @jobs.command(description="Get alerts here (or in your DMs) for postings matching a query")
    @app_commands.describe(
        query='What to match, e.g. "gaussian splatting" OR nerf location:london',
        dm="Send the alerts to your direct messages instead of this channel",
    )
    async def subscribe(interaction: Interaction, query: str, dm: bool = False) -> None:
        await invoke(interaction, _words("subscribe", "dm" if dm else None, query))

    @jobs.command(name="list", description="Your subscriptions and this channel's")
    async def list_(interaction: Interaction) -> None:
        await invoke(interaction, "list")

    @jobs.command(description="Remove a subscription")
    @app_commands.rename(subscription="id")
    @app_commands.describe(subscription="The subscription's number, as /jobs list shows it")
    async def unsubscribe(interaction: Interaction, subscription: int) -> None:
        await invoke(interaction, _words("unsubscribe", str(subscription)))

    @jobs.command(description="Pause a subscription's alerts")
    @app_commands.describe(target="A subscription number, or all")
    async def pause(interaction: Interaction, target: str) -> None:
        await invoke(interaction, _words("pause", target))

    @jobs.command(description="Resume a paused subscription")
    @app_commands.describe(target="A subscription number, or all")
    async def resume(interaction: Interaction, target: str) -> None:
        await invoke(interaction, _words("resume", target))

    @jobs.command(description="How many stored open postings a query matches now, and the top few")
    @app_commands.describe(query="A subscription query to try")
    async def preview(interaction: Interaction, query: str) -> None:
        await invoke(interaction, _words("preview", query))

    @jobs.command(description="Post, once, the open postings a subscription of yours matches")
    @app_commands.rename(subscription="id")
    @app_commands.describe(subscription="The subscription's number, as /jobs list shows it")
    async def backfill(interaction: Interaction, subscription: int) -> None:
        await invoke(interaction, _words("backfill", str(subscription)))

    @jobs.command(description="Which of your subscriptions match a posting, and which terms")
    @app_commands.describe(posting="The posting's ID, as alerts show it: SOURCE:ID")
    async def why(interaction: Interaction, posting: str) -> None:
        await invoke(interaction, _words("why", posting))

    @jobs.command(description="Get a subscription's alerts as one daily or weekly digest")
    @app_commands.rename(subscription="id")
    @app_commands.describe(
        subscription="The subscription's number, as /jobs list shows it",
        every="instant: one message per alert (the default); daily or weekly: one digest",
        time="When the digest comes, HH:MM in your time zone (see /jobs tz)",
        day="The day of a weekly digest",
    )
    async def digest(
        interaction: Interaction,
        subscription: int,
        every: Literal["instant", "daily", "weekly"],
        time: str | None = None,
        day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] | None = None,
    ) -> None:
        when = [] if every == "instant" else [day if every == "weekly" else None, time]
        await invoke(interaction, _words("digest", str(subscription), every, *when))

    @jobs.command(description="Hold your alerts during these hours; they come as one digest after")
    @app_commands.describe(hours="HH:MM-HH:MM in your time zone, e.g. 22:00-07:00, or off")
    async def quiet(interaction: Interaction, hours: str | None = None) -> None:
        await invoke(interaction, _words("quiet", hours))

    @jobs.command(description="Your time zone for digests and quiet hours")
    @app_commands.describe(zone="An IANA time zone name, e.g. Europe/Zurich or America/New_York")
    async def tz(interaction: Interaction, zone: str | None = None) -> None:
        await invoke(interaction, _words("tz", zone))

    @jobs.command(description="The sources careerbot polls and how they are doing")
    async def sources(interaction: Interaction) -> None:
        await invoke(interaction, "sources")

    @jobs.command(description="Last polls, failures, queued and dead-lettered alerts")
    async def status(interaction: Interaction) -> None:
        await invoke(interaction, "status")

    @jobs.command(name="help", description="How to use /jobs and the query language")
    async def help_(interaction: Interaction) -> None:
        await invoke(interaction, "help")

    @source.command(name="add", description="Poll a new source (admins only)")
    @app_commands.rename(kind="type")
    @app_commands.describe(
        name="A short unique name",
        kind="greenhouse, lever, ashby, rss, jsonld, …",
        url="The board's https:// address",
        interval="How often to poll, e.g. 30m or 6h",
    )
    async def source_add(
        interaction: Interaction, name: str, kind: str, url: str, interval: str | None = None
    ) -> None:
        await invoke(interaction, _words("source add", name, kind, url, interval))

    @source.command(name="remove", description="Stop polling a source and forget it (admins only)")
    async def source_remove(interaction: Interaction, name: str) -> None:
        await invoke(interaction, _words("source remove", name))

    @source.command(name="pause", description="Stop polling a source for now (admins only)")
    async def source_pause(interaction: Interaction, name: str) -> None:
        await invoke(interaction, _words("source pause", name))

    @source.command(name="resume", description="Poll a paused source again (admins only)")
    async def source_resume(interaction: Interaction, name: str) -> None:
        await invoke(interaction, _words("source resume", name))

    return jobs


class CommandInvoker:
    """Runs one interaction through the command layer and answers it ephemerally."""

    def __init__(self, run: CommandRunner, admin_role_ids: frozenset[int]) -> None:
        self._run = run
        self._admin_role_ids = admin_role_ids
        self._in_flight: set[asyncio.Task[object]] = set()

    async def wait_idle(self, seconds: float) -> None:
        """Let commands in progress answer (for at most ``seconds``) before a shutdown."""
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=seconds)

    async def __call__(self, interaction: Interaction, text: str) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await self._answer(interaction, text)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _answer(self, interaction: Interaction, text: str) -> None:
        command = text.split(" ", 1)[0]
        try:
            # Every command may touch the database (or, for source add, the network);
            # deferring buys 15 minutes instead of Discord's 3 seconds.
            await interaction.response.defer(ephemeral=True, thinking=True)
        except discord.HTTPException as err:
            log.warning("discord: could not acknowledge /jobs %s (HTTP %s)", command, err.status)
            return
        reply = await self._reply(self._caller(interaction), text, command)
        try:
            await interaction.followup.send(
                fit_reply(reply), ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.HTTPException as err:
            log.warning("discord: could not answer /jobs %s (HTTP %s)", command, err.status)

    def _caller(self, interaction: Interaction) -> Caller:
        async def admin() -> bool:
            return is_admin(interaction, self._admin_role_ids)

        channel_id = interaction.channel_id
        return Caller(
            platform="discord",
            user_id=str(interaction.user.id),
            channel_id=str(channel_id) if channel_id is not None else "",
            is_admin=admin,
        )

    async def _reply(self, caller: Caller, text: str, command: str) -> str:
        try:
            return await self._run(caller, text)
        except Exception:
            log.exception("discord: /jobs %s failed", command)
            return FAILED_REPLY


class JobsClient(discord.Client):
    """A gateway client that serves ``/jobs``; syncs the commands when it logs in."""

    def __init__(self, invoke: Invoke, guild_ids: tuple[int, ...], *, sync: bool) -> None:
        # The bot never joins voice: skip discord.py's warnings about voice libraries.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        super().__init__(intents=bot_intents(), max_ratelimit_timeout=MAX_RATELIMIT_WAIT)
        self.tree = app_commands.CommandTree(self)
        self._guilds = [discord.Object(id=guild_id) for guild_id in guild_ids]
        self.tree.add_command(jobs_group(invoke), guilds=self._guilds)  # [] means global
        self._sync = sync
        self.synced = False
        self.sessions = 0  # gateway sessions that reached READY

    async def setup_hook(self) -> None:
        if self._sync:
            targets: list[discord.Object | None] = [*self._guilds] or [None]  # None: global
            results = [await self._sync_commands(guild) for guild in targets]
            self.synced = all(results)

    async def _sync_commands(self, guild: discord.Object | None) -> bool:
        where = f"guild {guild.id}" if guild else "all guilds (global; may take up to an hour)"
        try:
            commands = await self.tree.sync(guild=guild)
        except discord.HTTPException as err:
            hint = (
                ": invite the bot to it with the applications.commands scope"
                if err.status == 403
                else ""
            )
            log.warning("discord: could not sync /jobs to %s (HTTP %s)%s", where, err.status, hint)
            return False
        log.info("discord: synced %d command(s) to %s", len(commands), where)
        return True

    async def on_connect(self) -> None:
        self.sessions += 1
        log.info("discord: connected to the gateway as %s", self.user)


class DiscordFrontend:
    """Runs the bot beside the rest of careerbot; never lets Discord's trouble escape.

    ``start()`` returns at once: a background task logs in, syncs ``/jobs`` and
    holds the gateway connection. A refused token or an unreachable Discord is
    logged as one line and retried with growing delays (``retry_delay`` doubling
    up to ``max_retry_delay``); meanwhile ``sender`` reports the target as down,
    so the delivery worker holds Discord's alerts without spending attempts.
    """

    def __init__(
        self,
        settings: DiscordSettings,
        token: str,
        run: CommandRunner,
        *,
        retry_delay: float = 5.0,
        max_retry_delay: float = 600.0,
    ) -> None:
        self._settings = settings
        self._token = token
        self._invoke = CommandInvoker(run, frozenset(settings.admin_role_ids))
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._client: JobsClient | None = None
        self._logged_in = False
        self._synced = False
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.sender = DiscordSender(self._http)

    @property
    def client(self) -> JobsClient | None:
        """The current gateway client (a new one after each failed session)."""
        return self._client

    async def start(self) -> None:
        if self._task is None:
            configure_endpoints(self._settings)
            self._stopping.clear()
            self._task = asyncio.create_task(self._supervise(), name="discord-frontend")

    async def stop(self) -> None:
        """Let commands in progress answer, close the connection, end the background task."""
        self._stopping.set()
        await self._invoke.wait_idle(STOP_SECONDS)
        if self._client is not None:
            await self._client.close()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(task, STOP_SECONDS)
        except TimeoutError:
            log.warning("discord: the client did not stop within %.0fs; cancelled it", STOP_SECONDS)

    def _http(self) -> HTTPClient | None:
        client = self._client
        if client is None or not self._logged_in or client.is_closed():
            return None
        return client.http

    async def _supervise(self) -> None:
        delay = self._retry_delay
        while not self._stopping.is_set():
            client = JobsClient(self._invoke, self._settings.guild_ids, sync=not self._synced)
            self._client = client
            problem = await self._session(client)
            if self._stopping.is_set():
                return
            if client.sessions:
                delay = self._retry_delay  # it worked for a while: start the backoff afresh
            log.warning("discord: %s; retrying in %gs", problem, round(delay, 2))
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, self._max_retry_delay)

    async def _session(self, client: JobsClient) -> str:
        """Log in and stay connected; return why it ended, in a few words."""
        try:
            await client.login(self._token)
            self._logged_in = True
            self._synced = self._synced or client.synced
            await client.connect(reconnect=False)  # reconnects are ours, with one-line logs
            return "the gateway connection ended"
        except discord.LoginFailure:
            return "Discord refused the bot token (HTTP 401): check DISCORD_TOKEN"
        except discord.ConnectionClosed as err:
            meaning = " (authentication failed: check DISCORD_TOKEN)" if err.code == 4004 else ""
            return f"the gateway closed the connection with code {err.code}{meaning}"
        except discord.HTTPException as err:
            return f"Discord answered HTTP {err.status}"
        except (discord.GatewayNotFound, aiohttp.ClientError, OSError, TimeoutError) as err:
            return f"cannot reach Discord ({_one_line(err)})"
        except Exception:
            if self._stopping.is_set():
                return "stopped"
            log.exception("discord: unexpected error in the client")
            return "the client failed unexpectedly"
        finally:
            self._logged_in = False
            await client.close()


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}"[:300] if text else type(err).__name__
