"""Turn alerts into console text, Slack Block Kit payloads and Discord embeds.

Pure functions: no I/O, no SDK imports. Every piece of text taken from a posting
is cleaned to one line, escaped for the target's markup and shortened so that
the payload stays within the platform's documented limits whatever the source
sends (huge titles, thousands of locations, megabyte descriptions, markup).

Nothing a posting says can mention anyone, link anywhere or format the alert:

- Slack has no backslash escape. Text objects that hold only posting text are
  ``plain_text``, which Slack shows as sent, parsing nothing. Where our own markup
  is needed (the linked title, bold labels) the text object is ``mrkdwn`` with
  ``verbatim`` set (no automatic linking of URLs, channel names or mentions), and
  posting text goes through ``slack_text``: ``&``, ``<`` and ``>`` become entities
  (the documented escape), ``*`` ``_`` ``~`` and backticks become look-alike
  characters, and a ``>`` that would start a line is pushed off it with a soft
  hyphen. Look-alikes rather than zero-width spaces: Slack counts a zero-width
  space as a word boundary, so it can *enable* formatting (jsx-slack's "exact mode"
  relies on that) instead of breaking it.
- Discord markdown characters are backslash-escaped, as are ``>``, ``#``, ``-`` and
  ``1.`` at a line start; every ``<`` is followed by a zero-width space so no
  ``<@id>``, ``<#id>``, ``</cmd:id>`` or ``<t:…>`` forms; senders also set
  ``allowed_mentions`` to nothing.
- Everywhere, ``@everyone``, ``@here`` and ``@channel`` get a zero-width space, and
  control characters and bidi overrides (which could reorder our own text) go.
- The posting's own link is ours by design, but only a plain http(s) URL,
  percent-encoded so that it cannot leave the link syntax.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, TypeGuard
from urllib.parse import quote, urlsplit

from bot.identity import also_on, merged_locations
from bot.models import Alert, Change, ChangeKind, FieldChange, Posting

Escape = Callable[[str], str]

ELLIPSIS = "…"
_EN_DASH = "\u2013"
_DIVIDES = "\u2223"  # looks like "|"
KIND_LABELS: dict[ChangeKind, str] = {
    ChangeKind.NEW: "New job",
    ChangeKind.CHANGED: "Updated",
    ChangeKind.CLOSED: "Closed",
    ChangeKind.REOPENED: "Reopened",
}
_TEXT_TAGS: dict[ChangeKind, str] = {
    ChangeKind.NEW: "[NEW]",
    ChangeKind.CHANGED: "[UPDATED]",
    ChangeKind.CLOSED: "[CLOSED]",
    ChangeKind.REOPENED: "[REOPENED]",
}
# A new posting of a job the subscription was already alerted to: another listing of it.
SIGHTING_LABEL = "Also listed"
SIGHTING_TAG = "[ALSO LISTED]"
_DISCORD_COLORS: dict[ChangeKind, int] = {
    ChangeKind.NEW: 0x2ECC71,
    ChangeKind.CHANGED: 0xF1C40F,
    ChangeKind.CLOSED: 0x95A5A6,
    ChangeKind.REOPENED: 0x3498DB,
}

# How much of each piece an alert shows. The sums stay well inside every
# platform limit, including Slack's undocumented cap on the total text of all
# blocks (rejections reported from about 11,000 characters).
_TITLE_CHARS = 200
_NAME_CHARS = 100  # company, source
_LOCATION_CHARS = 300
_SALARY_CHARS = 100
_POSTED_CHARS = 40
_QUERY_CHARS = 300
_EXCERPT_CHARS = 300
_FIELD_NAME_CHARS = 40
_CHANGE_VALUE_CHARS = 100  # each side of "old → new"
_CHANGES_CHARS = 2000
_URL_CHARS = 1000  # longer links are dropped rather than crowding out the text
_REF_CHARS = 300  # the posting's SOURCE:ID, for /jobs why

_SLACK_TEXT_CHARS = 3000  # the API truncates at 40,000; notifications want far less
_DISCORD_TITLE_CHARS = 256

_URL_SAFE = "-._~:/?#[]@!$&'()*+,;=%"
# Control characters, and the bidi overrides and isolates that would reorder our own text.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_BROADCAST = re.compile(r"@(?=everyone|here|channel)", re.IGNORECASE)
_SLACK_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# The characters Slack's mrkdwn formats with, full-width forms included, and look-alikes
# that it does not (the choice jsx-slack makes for link labels).
_SLACK_LOOKALIKES = str.maketrans(
    {
        "*": "\u2217",  # asterisk operator
        "\uff0a": "\ufe61",  # full-width asterisk -> small asterisk
        "_": "\u02cd",  # modifier letter low macron
        "\uff3f": "\u2e0f",  # full-width low line -> paragraphos
        "~": "\u223c",  # tilde operator
        "`": "\u02cb",  # modifier letter grave accent
        "\uff40": "\u02cb",  # full-width grave accent
    }
)
_SLACK_QUOTE = re.compile(r"^([^\S\n]*)(&gt;|\uff1e)", re.MULTILINE)  # "&gt;" quotes too
_SOFT_HYPHEN = "\u00ad"
_DISCORD_MARKDOWN = re.compile(r"([\\*_~`|\[\]])")
# Horizontal space only: with \s the run could cross newlines and cost quadratic time.
_DISCORD_LINE_START = re.compile(r"^([^\S\n]*)(?:([>#-])|([0-9]+)\.)", re.MULTILINE)
_ZWSP = "\u200b"


def _identity(text: str) -> str:
    return text


# ---------------------------------------------------------------- shared text


def truncate(text: str, limit: int) -> str:
    """Shorten text to at most limit characters, ending with "…" when cut.

    Cuts at the last space when that loses little, otherwise mid-word.
    """
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    cut = text[: limit - 1]
    boundary = max(cut.rfind(" "), cut.rfind("\n"))
    if boundary > len(cut) * 0.8:
        cut = cut[:boundary]
    return cut.rstrip() + ELLIPSIS


def slack_escape(text: str) -> str:
    """Escape Slack's control characters (``&``, ``<``, ``>``) and defuse @channel-style
    broadcasts: enough inside code, where Slack applies no other formatting."""
    return _neutralise_broadcasts(text.translate(_SLACK_ENTITIES))


def slack_text(text: str) -> str:
    """Text made inert for Slack mrkdwn: ``slack_escape``, formatting characters swapped
    for look-alikes and a quote marker at a line start pushed off it."""
    escaped = slack_escape(text).translate(_SLACK_LOOKALIKES)
    return _SLACK_QUOTE.sub(rf"\1{_SOFT_HYPHEN}\2", escaped)


def discord_escape(text: str) -> str:
    """Escape Discord markdown and defuse @everyone, user, role and channel mentions."""
    text = _DISCORD_MARKDOWN.sub(r"\\\1", text)
    text = _DISCORD_LINE_START.sub(_escape_line_start, text)
    return _defuse_discord_mentions(text)


def format_salary(posting: Posting) -> str | None:
    """E.g. "USD 131,500-243,300 / year" (with an en dash), "GBP 45,000 / year", or None."""
    amounts = sorted({a for a in (posting.salary_min, posting.salary_max) if _is_amount(a)})
    if not amounts:
        return None
    text = _EN_DASH.join(_format_amount(a) for a in amounts)
    currency = _known(posting.salary_currency)
    period = _known(posting.salary_period)
    if currency:
        text = f"{currency} {text}"
    if period:
        text = f"{text} / {period}"
    return text


def format_locations(posting: Posting, limit: int, escape: Escape = _identity) -> str | None:
    """Locations as "A; B; C (+7 more)" within limit characters after escape, or None."""
    entries = _location_entries(posting)
    if not entries:
        return None
    return _join_within(entries, "; ", limit, lambda hidden: f" (+{hidden} more)", escape)


def _neutralise_broadcasts(text: str) -> str:
    return _BROADCAST.sub("@" + _ZWSP, text)


def _defuse_discord_mentions(text: str) -> str:
    return _neutralise_broadcasts(text.replace("<", "<" + _ZWSP))


def _escape_line_start(match: re.Match[str]) -> str:
    """``> quote``, ``# heading``, ``- item``, ``-# subtext`` and ``1. item`` made literal."""
    indent, marker, number = match.groups()
    return f"{indent}\\{marker}" if marker else f"{indent}{number}\\."


def one_line(text: str) -> str:
    """One line of text: whitespace runs become one space, control characters go."""
    return _CONTROL.sub("", " ".join(text.split()))


def _known(text: str | None) -> str | None:
    cleaned = one_line(text) if text else ""
    return cleaned or None


def _fit_known(text: str | None, limit: int, escape: Escape) -> str | None:
    cleaned = _known(text)
    return fit(cleaned, limit, escape) if cleaned else None


def fit(text: str, limit: int, escape: Escape = _identity) -> str:
    """Escape text, shortening it first as needed so the escaped form fits in limit."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    # Escaping only ever lengthens text, so the longest raw prefix that fits is
    # at most limit long; find it by bisection.
    low, high = 0, min(len(text), max(limit, 0))
    while low < high:
        middle = (low + high + 1) // 2
        if len(escape(truncate(text, middle))) <= limit:
            low = middle
        else:
            high = middle - 1
    return escape(truncate(text, low))


def _join_within(
    items: Sequence[str],
    separator: str,
    limit: int,
    more: Callable[[int], str],
    escape: Escape = _identity,
) -> str:
    """Join escaped items while they fit, then say how many were left out."""
    escaped = [escape(item) for item in items]
    shown = ""
    count = 0
    for index in range(len(items)):
        hidden = len(items) - index - 1
        candidate = separator.join(escaped[: index + 1])
        if len(candidate) + len(more(hidden) if hidden else "") > limit:
            break
        shown, count = candidate, index + 1
    hidden = len(items) - max(count, 1)
    note = more(hidden) if hidden else ""
    if count:
        return shown + note
    if len(note) >= limit:
        note = ""
    return fit(items[0], limit - len(note), escape) + note


def _is_amount(value: object) -> TypeGuard[float]:
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _format_amount(value: float) -> str:
    if isinstance(value, int) or value.is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def _location_entries(posting: Posting) -> list[str]:
    entries = [cleaned for raw in posting.locations if (cleaned := _known(raw))]
    if posting.remote and not any("remote" in entry.lower() for entry in entries):
        entries.append("Remote")
    return list(dict.fromkeys(entries))


def posting_title(posting: Posting) -> str:
    return _known(posting.title) or "Untitled posting"


def _excerpt(posting: Posting) -> str | None:
    description = _known(posting.description)
    return truncate(description, _EXCERPT_CHARS) if description else None


def posting_link(posting: Posting) -> str | None:
    """The posting's page, else its apply page, as long as it is a plain http(s) URL."""
    for candidate in (posting.url, posting.apply_url):
        url = _http_url(candidate)
        if url:
            return url
    return None


def _http_url(raw: str | None) -> str | None:
    if not raw:
        return None
    # Percent-encoding also removes "|", "<", ">" and whitespace, which would
    # otherwise break out of Slack's <url|label> and Discord's <url> syntax.
    url = quote(raw.strip(), safe=_URL_SAFE)
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        return None
    url = scheme + url[len(scheme) :]  # "HTTPS://…" as "https://…"
    return url if len(url) <= _URL_CHARS else None


def _kind_label(alert: Alert) -> str:
    return SIGHTING_LABEL if alert.sighting else KIND_LABELS[alert.change.kind]


def _shown(alert: Alert) -> Posting:
    """The alert's posting with the locations of every listing of its job."""
    posting = alert.change.posting
    if not alert.also:
        return posting
    return replace(posting, locations=merged_locations((posting, *alert.also)))


def _also_on(alert: Alert, escape: Escape = _identity) -> str | None:
    """The other sources listing the job: "cvpr-2024, figma"."""
    sources = [s for raw in also_on(alert.change.posting, alert.also) if (s := _known(raw))]
    if not sources:
        return None
    return _join_within(sources, ", ", _LOCATION_CHARS, lambda hidden: f" (+{hidden} more)", escape)


def _subscription_text(alert: Alert) -> str:
    """The matching subscription as "#3: nerf OR splatting"."""
    query = truncate(one_line(alert.subscription.query), _QUERY_CHARS)
    return f"#{alert.subscription.id}: {query}"


def _details(posting: Posting, escape: Escape) -> list[tuple[str, str]]:
    """The known facts shown as label/value pairs in chat payloads, values escaped."""
    location_count = len(_location_entries(posting))
    salary = format_salary(posting)
    candidates = [
        ("Company", _fit_known(posting.company, _NAME_CHARS, escape)),
        (
            "Location" if location_count == 1 else "Locations",
            format_locations(posting, _LOCATION_CHARS, escape),
        ),
        ("Salary", fit(salary, _SALARY_CHARS, escape) if salary else None),
        ("Posted", _fit_known(posting.posted_at, _POSTED_CHARS, escape)),
    ]
    return [(name, value) for name, value in candidates if value]


def _change_line(field_change: FieldChange) -> str:
    name = truncate(one_line(str(field_change.field)), _FIELD_NAME_CHARS)
    old, new = _diff_excerpts(_value_text(field_change.old), _value_text(field_change.new))
    return f"{name}: {old} → {new}"


def _value_text(value: Any) -> str:
    if value is None or value == "" or (isinstance(value, list | tuple) and not value):
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if _is_amount(value):
        return _format_amount(value)
    if isinstance(value, list | tuple):
        return "; ".join(one_line(str(item)) for item in value)
    return one_line(str(value))


def _diff_excerpts(old: str, new: str) -> tuple[str, str]:
    """Shorten long values around where they first differ, so the edit stays visible."""
    width = _CHANGE_VALUE_CHARS
    if len(old) <= width and len(new) <= width:
        return old, new
    start = max(0, _common_prefix_length(old, new) - width // 4)
    return _excerpt_from(old, start, width), _excerpt_from(new, start, width)


def _common_prefix_length(old: str, new: str) -> int:
    mismatches = (index for index, (a, b) in enumerate(zip(old, new, strict=False)) if a != b)
    return next(mismatches, min(len(old), len(new)))


def _excerpt_from(text: str, start: int, width: int) -> str:
    if start == 0:
        return truncate(text, width)
    return ELLIPSIS + truncate(text[start:], width - 1)


def _more_changes(hidden: int) -> str:
    return f"\n…and {hidden} more change{'s' if hidden > 1 else ''}"


def _changes_text(change: Change, escape: Escape = _identity) -> str | None:
    lines = [_change_line(field_change) for field_change in change.fields]
    if not lines:
        return None
    return _join_within(lines, "\n", _CHANGES_CHARS, _more_changes, escape)


# ---------------------------------------------------------------- console


def render_text(alert: Alert) -> str:
    """The console block for one alert; also the basis of the plain-text fallbacks."""
    return _text_block(alert, posting_link(alert.change.posting))


def _text_block(alert: Alert, link: str | None) -> str:
    lines = [_text_headline(alert)]
    lines += [f"  {label + ':':<9}{value}" for label, value in _text_details(alert, link) if value]
    lines += _text_changes(alert.change)
    return "\n".join(lines)


def _text_headline(alert: Alert) -> str:
    posting = alert.change.posting
    tag = SIGHTING_TAG if alert.sighting else _TEXT_TAGS[alert.change.kind]
    headline = f"{tag} {truncate(posting_title(posting), _TITLE_CHARS)}"
    company = _known(posting.company)
    if company:
        headline += f" — {truncate(company, _NAME_CHARS)}"
    return _neutralise_broadcasts(headline)


def _text_details(alert: Alert, link: str | None) -> list[tuple[str, str | None]]:
    posting = alert.change.posting
    salary = format_salary(posting)
    posted = _known(posting.posted_at)
    source = _known(posting.source)
    origin = f"subscription {_subscription_text(alert)}"
    summary = _excerpt(posting) if alert.change.kind is ChangeKind.NEW else None
    return [
        ("Where", _defused(format_locations(_shown(alert), _LOCATION_CHARS))),
        ("Salary", _defused(truncate(salary, _SALARY_CHARS) if salary else None)),
        ("Posted", _defused(truncate(posted, _POSTED_CHARS) if posted else None)),
        ("Link", link),
        ("Source", _defused(f"{truncate(source, _NAME_CHARS)} · {origin}" if source else origin)),
        ("ID", _defused(_ref(posting))),
        ("Also on", _also_on(alert, _neutralise_broadcasts)),
        ("Summary", _defused(summary)),
    ]


def _ref(posting: Posting) -> str:
    return truncate(one_line(posting.ref), _REF_CHARS)


def _defused(value: str | None) -> str | None:
    return _neutralise_broadcasts(value) if value else None


def _text_changes(change: Change) -> list[str]:
    changes = _changes_text(change, _neutralise_broadcasts)
    if changes is None:
        return []
    return ["  Changes:", *(f"    {line}" for line in changes.split("\n"))]


# ---------------------------------------------------------------- Slack


def slack_payload(alert: Alert) -> dict[str, Any]:
    """A chat.postMessage / incoming-webhook body with Block Kit blocks and a fallback."""
    url = _slack_url(alert.change.posting)
    blocks = [_slack_title_block(alert, url)]
    fields = _slack_fields(_shown(alert))
    if fields:
        blocks.append({"type": "section", "fields": fields})
    body = _slack_body(alert.change)
    if body:
        blocks.append({"type": "section", "text": body})
    blocks.append(_slack_context(alert))
    return {
        "text": _slack_fallback(alert, url),
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
    }


def _slack_mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _slack_plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": _neutralise_broadcasts(text)}


def _slack_url(posting: Posting) -> str | None:
    """The posting's link as it goes inside Slack's ``<…>``, if it fits."""
    url = posting_link(posting)
    escaped = url.translate(_SLACK_ENTITIES) if url else None
    return escaped if escaped and len(escaped) <= _URL_CHARS else None


def _slack_label(text: str) -> str:
    # No escape exists for "|" inside <url|label>; a look-alike keeps the text readable.
    return slack_text(text).replace("|", _DIVIDES)


def _slack_title_block(alert: Alert, url: str | None) -> dict[str, Any]:
    title = posting_title(alert.change.posting)
    if url:
        shown = f"<{url}|{fit(title, _TITLE_CHARS, _slack_label)}>"
    else:
        shown = fit(title, _TITLE_CHARS, slack_text)
    return {
        "type": "section",
        "text": _slack_mrkdwn(f"*{_kind_label(alert)}:* {shown}"),
    }


def _slack_fields(posting: Posting) -> list[dict[str, Any]]:
    return [_slack_mrkdwn(f"*{name}*\n{value}") for name, value in _details(posting, slack_text)]


def _slack_body(change: Change) -> dict[str, Any] | None:
    if change.kind is ChangeKind.NEW:
        excerpt = _excerpt(change.posting)
        return _slack_plain(excerpt) if excerpt else None
    changes = _changes_text(change, slack_text)
    return _slack_mrkdwn(f"*Changes*\n{changes}") if changes else None


def _slack_context(alert: Alert) -> dict[str, Any]:
    elements = []
    source = _known(alert.change.posting.source)
    if source:
        elements.append(_slack_plain(f"Source: {truncate(source, _NAME_CHARS)}"))
    elements.append(_slack_plain(f"ID: {_ref(alert.change.posting)}"))
    also = _also_on(alert)
    if also:
        elements.append(_slack_plain(f"Also on: {also}"))
    elements.append(_slack_plain(f"Subscription {_subscription_text(alert)}"))
    return {"type": "context", "elements": elements}


def _slack_fallback(alert: Alert, url: str | None) -> str:
    """The notification text: the console block made inert, with our link still a link."""
    link = f"\n  Link:    <{url}>" if url else ""
    return fit(_text_block(alert, None), _SLACK_TEXT_CHARS - len(link), slack_text) + link


# ---------------------------------------------------------------- Discord


def discord_payload(alert: Alert) -> dict[str, Any]:
    """A webhook / channel message body: one embed, a short fallback line, no pings."""
    posting = alert.change.posting
    label = _kind_label(alert)
    title_limit = min(_TITLE_CHARS, _DISCORD_TITLE_CHARS - len(label) - 2)
    embed: dict[str, Any] = {
        "title": f"{label}: {fit(posting_title(posting), title_limit, discord_escape)}",
        "color": _DISCORD_COLORS[alert.change.kind],
        "fields": _discord_fields(_shown(alert), _also_on(alert, discord_escape)),
        # Footers are shown literally (no markdown), so only mentions need defusing.
        "footer": {"text": f"Subscription {_defuse_discord_mentions(_subscription_text(alert))}"},
    }
    url = posting_link(posting)
    if url:
        embed["url"] = url
    description = _discord_description(alert.change)
    if description:
        embed["description"] = description
    return {
        "content": _discord_content(alert, url),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    }


def _discord_fields(posting: Posting, also: str | None) -> list[dict[str, Any]]:
    details = _details(posting, discord_escape)
    source = _fit_known(posting.source, _NAME_CHARS, discord_escape)
    if source:
        details.append(("Source", source))
    details.append(("ID", discord_escape(_ref(posting))))
    if also:
        details.append(("Also on", also))
    return [{"name": name, "value": value, "inline": True} for name, value in details]


def _discord_description(change: Change) -> str | None:
    if change.kind is ChangeKind.NEW:
        excerpt = _excerpt(change.posting)
        return discord_escape(excerpt) if excerpt else None
    return _changes_text(change, discord_escape)


def _discord_content(alert: Alert, url: str | None) -> str:
    """One line for notifications and for readers who turned embeds off."""
    posting = alert.change.posting
    content = f"**{_kind_label(alert)}:** "
    content += fit(posting_title(posting), _TITLE_CHARS, discord_escape)
    company = _fit_known(posting.company, _NAME_CHARS, discord_escape)
    if company:
        content += f" — {company}"
    if url:
        # Angle brackets stop Discord from adding a preview next to our embed.
        content += f" <{url}>"
    return content
