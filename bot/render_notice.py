"""Notices to the operator (a source's health) as plain text, Slack blocks and a
Discord embed (pure). Their text comes partly from the sources' own error messages,
so it is rendered as plain text everywhere: no formatting, links or mentions."""

from __future__ import annotations

from typing import Any

from bot.models import Notice
from bot.render import discord_escape, slack_text, truncate

_HEADER_CHARS = 150  # Slack's limit for a header block
_SLACK_SECTION_CHARS = 3000
_DISCORD_TITLE_CHARS = 256
_DISCORD_DESCRIPTION_CHARS = 4096
_WARNING_COLOUR = 0xE67E22
_RECOVERED_COLOUR = 0x2ECC71


def notice_text(notice: Notice) -> str:
    return f"{_mark(notice)} {notice.title}\n  {notice.detail}"


def slack_notice_payload(notice: Notice) -> dict[str, Any]:
    return {
        "text": slack_text(truncate(f"{notice.title}: {notice.detail}", _SLACK_SECTION_CHARS)),
        "blocks": [
            {
                "type": "header",
                "text": _plain(f"{_mark(notice)} {notice.title}", _HEADER_CHARS),
            },
            {"type": "section", "text": _plain(notice.detail, _SLACK_SECTION_CHARS)},
        ],
        "unfurl_links": False,
        "unfurl_media": False,
    }


def discord_notice_payload(notice: Notice) -> dict[str, Any]:
    embed = {
        "title": truncate(discord_escape(f"{_mark(notice)} {notice.title}"), _DISCORD_TITLE_CHARS),
        "description": truncate(discord_escape(notice.detail), _DISCORD_DESCRIPTION_CHARS),
        "color": _RECOVERED_COLOUR if notice.recovered else _WARNING_COLOUR,
    }
    return {"embeds": [embed], "allowed_mentions": {"parse": []}}


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text, limit), "emoji": False}


def _mark(notice: Notice) -> str:
    return "✅" if notice.recovered else "⚠️"
