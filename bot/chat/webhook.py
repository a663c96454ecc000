"""Slack and Discord incoming webhooks (``webhook:NAME`` targets).

The webhook URL is a secret: it never appears in an error or a log line.
"""

from __future__ import annotations

from typing import Any

import httpx

from bot.errors import DeliveryError
from bot.fetch import parse_retry_after
from bot.models import Alert
from bot.render import discord_payload, slack_payload

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
    raise DeliveryError(
        f"{platform} webhook answered HTTP {response.status_code}"
        + (f": {detail}" if detail else ""),
        retryable=response.status_code in _RETRYABLE_STATUS,
        retry_after=retry_after,
    )


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
        await post_json(self._client, self._url, slack_payload(alert), "slack")
        return None

    def __repr__(self) -> str:
        return "SlackWebhookSender(url=<secret>)"


class DiscordWebhookSender:
    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self._client = client
        self._url = str(httpx.URL(url).copy_merge_params({"wait": "true"}))

    async def send(self, alert: Alert, original: str | None = None) -> str | None:
        response = await post_json(self._client, self._url, discord_payload(alert), "discord")
        try:
            message_id = response.json().get("id")
        except (ValueError, AttributeError):
            return None
        return str(message_id) if message_id is not None else None

    def __repr__(self) -> str:
        return "DiscordWebhookSender(url=<secret>)"
