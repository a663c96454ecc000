"""The chat platforms that have tokens: their front-ends (for `run`) or just their
senders (for `once`), and which sender serves which ``slack:`` / ``discord:`` target.

discord.py and slack-bolt are imported only when their token is set: importing them
costs a third of a second, which every `careerbot` command would pay otherwise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from bot.commands import Commands
from bot.config import Config, Secrets
from bot.delivery import RateLimit, Sender


@dataclass(slots=True)
class ChatSenders:
    """Each platform's sender with the pace of one of its channels."""

    slack: tuple[Sender, RateLimit] | None = None
    discord: tuple[Sender, RateLimit] | None = None

    def sender_for(self, target: str) -> tuple[Sender, RateLimit] | None:
        """Each channel (or DM) is paced on its own: the worker keys limits by target."""
        if target.startswith("slack:"):
            return self.slack
        if target.startswith("discord:"):
            return self.discord
        return None


@asynccontextmanager
async def running_front_ends(
    config: Config, secrets: Secrets, commands: Commands
) -> AsyncIterator[ChatSenders]:
    """Start the front-end of every platform with a token; stop them on exit.

    Each front-end retries its own connection in the background, so a platform
    that is down or refuses its token stops neither the other one nor polling.
    """
    senders = ChatSenders()
    async with AsyncExitStack() as stack:
        if secrets.slack_bot_token:
            from bot.chat import slack

            slack_front = slack.SlackFrontend(
                config.slack,
                commands,
                bot_token=secrets.slack_bot_token,
                signing_secret=secrets.slack_signing_secret,
                app_token=secrets.slack_app_token,
            )
            await slack_front.start()
            stack.push_async_callback(slack_front.stop)
            senders.slack = (slack_front.sender, slack.RATE)
        if secrets.discord_token:
            from bot.chat import discord_sender
            from bot.chat.discord_bot import DiscordFrontend

            discord_front = DiscordFrontend(config.discord, secrets.discord_token, commands.run)
            await discord_front.start()
            stack.push_async_callback(discord_front.stop)
            senders.discord = (discord_front.sender, discord_sender.RATE)
        yield senders


@asynccontextmanager
async def one_shot_senders(config: Config, secrets: Secrets) -> AsyncIterator[ChatSenders]:
    """Senders without front-ends, for ``careerbot once``: no commands are answered."""
    senders = ChatSenders()
    async with AsyncExitStack() as stack:
        if secrets.slack_bot_token:
            from bot.chat import slack

            client = slack.make_web_client(secrets.slack_bot_token, config.slack)
            senders.slack = (slack.SlackSender(client), slack.RATE)
        if secrets.discord_token:
            from bot.chat import discord_sender

            sender = await stack.enter_async_context(
                discord_sender.rest_sender(config.discord.api_base, secrets.discord_token)
            )
            senders.discord = (sender, discord_sender.RATE)
        yield senders
