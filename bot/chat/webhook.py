"""Slack and Discord incoming webhooks (``webhook:NAME`` targets).

The webhook URL is a secret: it never appears in an error or a log line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from bot.chat import DISCORD_INVALID_FORM_BODY, SLACK_REFUSED_LAYOUT
from bot.errors import DeliveryError, MessageRefused
from bot.fetch import parse_retry_after
from bot.models import Alert, Notice
from bot.render import discord_payload, slack_payload
from bot.render_digest import DigestPage, discord_digest_pages, slack_digest_pages
from bot.render_notice import discord_notice_payload, slack_notice_payload

_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


async def post_json(
    client: httpx.AsyncClient, url: str, payload: dict[str, Any], platform: str
) -> httpx.Response:
    """POST ``payload``; classify every failure as a ``DeliveryError``."""
    try:
        response = await client.post(url, json=payload)
    except httpx.TimeoutException:
        raise DeliveryError(f"{platform} webhook timed out", retryable=True) from None
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError):
        raise DeliveryError(f"{platform} webhook URL is not valid", retryable=False) from None
    except httpx.HTTPError as err:
        raise DeliveryError(
            f"{platform} webhook unreachable: {type(err).__name__}", retryable=True
        ) from None
    if response.status_code < 300:
        return response
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if retry_after is None and response.status_code == 429:
        retry_after = _json_retry_after(response)
    detail = response.text.strip().replace("\n", " ")[:200]
    message = f"{platform} webhook answered HTTP {response.status_code}" + (
        f": {detail}" if detail else ""
    )
    if response.status_code == 400 and _refuses_layout(response):
        raise MessageRefused(message)
    raise DeliveryError(
        message, retryable=response.status_code in _RETRYABLE_STATUS, retry_after=retry_after
    )


async def _post_or_plain(
    client: httpx.AsyncClient, url: str, payload: dict[str, Any], platform: str, rich: str
) -> httpx.Response:
    """POST ``payload``; when the platform refuses its layout, once more without the
    ``rich`` part (Slack's blocks, Discord's embeds): the plain text alone."""
    try:
        return await post_json(client, url, payload, platform)
    except MessageRefused:
        plain = {key: value for key, value in payload.items() if key != rich}
        return await post_json(client, url, plain, platform)


def _refuses_layout(response: httpx.Response) -> bool:
    """Slack answers a layout it refuses in plain text; Discord with its JSON error code."""
    if response.text.strip() in SLACK_REFUSED_LAYOUT:
        return True
    try:
        return bool(response.json().get("code") == DISCORD_INVALID_FORM_BODY)
    except (ValueError, AttributeError):
        return False


def _json_retry_after(response: httpx.Response) -> float | None:
    """Discord also states the wait in the JSON body of a 429."""
    try:
        value = response.json().get("retry_after")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


class SlackWebhookSender:
    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self._client = client
        self._url = url

    async def send(self, alert: Alert, original: str | None = None) -> str | None:
        await _post_or_plain(self._client, self._url, slack_payload(alert), "slack", "blocks")
        return None

    async def send_notice(self, notice: Notice) -> None:
        await _post_or_plain(
            self._client, self._url, slack_notice_payload(notice), "slack", "blocks"
        )

    def digest_pages(self, alerts: Sequence[Alert]) -> list[DigestPage]:
        return slack_digest_pages(alerts)

    async def send_digest(self, target: str, page: DigestPage) -> None:
        await _post_or_plain(self._client, self._url, page.payload, "slack", "blocks")

    def __repr__(self) -> str:
        return "SlackWebhookSender(url=<secret>)"


class DiscordWebhookSender:
    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self._client = client
        self._url = str(httpx.URL(url).copy_merge_params({"wait": "true"}))

    async def send(self, alert: Alert, original: str | None = None) -> str | None:
        response = await _post_or_plain(
            self._client, self._url, discord_payload(alert), "discord", "embeds"
        )
        try:
            message_id = response.json().get("id")
        except (ValueError, AttributeError):
            return None
        return str(message_id) if message_id is not None else None

    async def send_notice(self, notice: Notice) -> None:
        await post_json(self._client, self._url, discord_notice_payload(notice), "discord")

    def digest_pages(self, alerts: Sequence[Alert]) -> list[DigestPage]:
        return discord_digest_pages(alerts)

    async def send_digest(self, target: str, page: DigestPage) -> None:
        await _post_or_plain(self._client, self._url, page.payload, "discord", "embeds")

    def __repr__(self) -> str:
        return "DiscordWebhookSender(url=<secret>)"
