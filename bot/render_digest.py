"""Many alerts for one target as a digest: few messages, grouped by company (pure).

Each page is one message within its platform's limits, and names the alerts it
shows, so the delivery worker can mark exactly those sent once the platform has
accepted the page:

- Slack: a header, a context line and at most 48 sections (50 blocks), each at
  most 3,000 characters, all sections together far below the ~11,000 characters
  at which Slack is reported to refuse a message;
- Discord: one embed whose description stays within 4,096 characters (all
  embeds: 6,000) and a one-line content (2,000);
- console: one page, however long.

Posting text is escaped with ``bot.render``'s helpers, as in single alerts.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.models import Alert, ChangeKind
from bot.render import (
    KIND_LABELS,
    Escape,
    discord_escape,
    fit,
    format_locations,
    format_salary,
    one_line,
    posting_link,
    posting_title,
    slack_text,
    truncate,
)

_TITLE_CHARS = 150
_COMPANY_CHARS = 100
_LOCATION_CHARS = 120
_SALARY_CHARS = 60
_CHANGED_CHARS = 100
_REF_CHARS = 80
_URL_CHARS = 400  # escaped; a longer link is left out rather than crowd out the list

_SLACK_SECTIONS = 48  # plus the header and the context block: Slack's 50
_SLACK_SECTION_CHARS = 3000
_SLACK_PAGE_CHARS = 8000
_SLACK_HEADER_CHARS = 150
_DISCORD_DESCRIPTION_CHARS = 4000  # of 4,096
_DISCORD_TITLE_CHARS = 256
_DISCORD_COLOUR = 0x5865F2
_UNKNOWN_COMPANY = "Company not given"
_DIVIDES = "\u2223"  # looks like "|", which cannot appear in a Slack link label


@dataclass(frozen=True, slots=True)
class DigestPage:
    """One message of a digest: the alerts it shows and the platform's message body
    (console pages: ``{"text": …}``)."""

    alerts: tuple[Alert, ...]
    payload: dict[str, Any]

    @property
    def key(self) -> str:
        """The same alerts make the same key (25 characters: a Discord nonce)."""
        joined = "\x1f".join(alert.key or "" for alert in self.alerts)
        return hashlib.sha256(joined.encode()).hexdigest()[:25]


@dataclass(frozen=True, slots=True)
class _Limits:
    section_chars: int
    page_chars: int
    sections: int


@dataclass(slots=True)
class _Section:
    heading: str
    lines: list[str] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    size: int = 0

    def add(self, line: str, alert: Alert) -> None:
        self.lines.append(line)
        self.alerts.append(alert)
        self.size += len(line) + 1

    @property
    def text(self) -> str:
        return "\n".join([self.heading, *self.lines])


Page = list[_Section]


# ---------------------------------------------------------------- grouping and paging


def _company(alert: Alert) -> str:
    return one_line(alert.change.posting.company or "") or _UNKNOWN_COMPANY


def by_company(alerts: Sequence[Alert]) -> list[tuple[str, list[Alert]]]:
    """Alerts grouped by company (A to Z, unnamed last), each group by title."""
    groups: dict[str, list[Alert]] = {}
    for alert in alerts:
        groups.setdefault(_company(alert), []).append(alert)
    order = sorted(groups, key=lambda name: (name == _UNKNOWN_COMPANY, name.casefold()))
    return [
        (name, sorted(groups[name], key=lambda a: one_line(a.change.posting.title).casefold()))
        for name in order
    ]


def _paginate(
    alerts: Sequence[Alert],
    line: Callable[[Alert], str],
    heading: Callable[[str, bool], str],
    limits: _Limits,
) -> list[Page]:
    """Sections of one company's lines, filled in order onto pages within ``limits``;
    a company that goes on in a new section repeats its heading, marked continued."""
    pages: list[Page] = [[]]
    used = 0
    for company, group in by_company(alerts):
        section: _Section | None = None
        for alert in group:
            text = line(alert)
            if (
                section is not None
                and section.size + len(text) + 1 <= limits.section_chars
                and used + len(text) + 1 <= limits.page_chars
            ):
                section.add(text, alert)
                used += len(text) + 1
                continue
            title = heading(company, section is not None)
            section = _Section(title, size=len(title))
            cost = len(title) + len(text) + 3  # its newline, and the gap before the section
            if pages[-1] and (used + cost > limits.page_chars or len(pages[-1]) >= limits.sections):
                pages.append([])
                used = 0
            section.add(text, alert)
            pages[-1].append(section)
            used += cost
    return pages if pages[0] else []


def _facts(alert: Alert, escape: Escape) -> list[str]:
    """Where, pay, what changed, the posting's ID and the subscription: the parts
    after the title."""
    posting = alert.change.posting
    parts = []
    where = format_locations(posting, _LOCATION_CHARS, escape)
    if where:
        parts.append(where)
    salary = format_salary(posting)
    if salary:
        parts.append(fit(salary, _SALARY_CHARS, escape))
    if alert.change.kind is ChangeKind.CHANGED and alert.change.fields:
        names = ", ".join(one_line(str(f.field)) for f in alert.change.fields)
        parts.append(fit(f"changed: {names}", _CHANGED_CHARS, escape))
    parts.append(fit(one_line(posting.ref), _REF_CHARS, escape))  # for /jobs why
    parts.append(f"#{alert.subscription.id}")
    return parts


def _summary(alerts: Sequence[Alert]) -> str:
    companies = len({_company(alert) for alert in alerts})
    return (
        f"{len(alerts)} alert{'s' if len(alerts) != 1 else ''} from {companies}"
        f" compan{'ies' if companies != 1 else 'y'}"
    )


def _page_note(number: int, total: int) -> str:
    return f" (page {number} of {total})" if total > 1 else ""


# ---------------------------------------------------------------- console


def text_digest_pages(alerts: Sequence[Alert]) -> list[DigestPage]:
    """The console's digest: one page of plain text."""
    unbounded = _Limits(sys.maxsize, sys.maxsize, sys.maxsize)
    pages = _paginate(alerts, _text_line, _text_heading, unbounded)
    header = f"Job digest: {_summary(alerts)}"
    return [
        DigestPage(
            tuple(a for section in page for a in section.alerts),
            {"text": "\n".join([header, *(section.text for section in page)])},
        )
        for page in pages
    ]


def _text_heading(company: str, continued: bool) -> str:
    return truncate(company, _COMPANY_CHARS) + (" (continued)" if continued else "")


def _text_line(alert: Alert) -> str:
    label = KIND_LABELS[alert.change.kind]
    line = f"  {label}: {truncate(posting_title(alert.change.posting), _TITLE_CHARS)}"
    line += "".join(f" · {part}" for part in _facts(alert, one_line))
    link = posting_link(alert.change.posting)
    return line + (f"\n    {link}" if link else "")


# ---------------------------------------------------------------- Slack


def slack_digest_pages(alerts: Sequence[Alert]) -> list[DigestPage]:
    """Block Kit messages, with the same list as mrkdwn text for notifications and for
    clients that show no blocks."""
    limits = _Limits(_SLACK_SECTION_CHARS, _SLACK_PAGE_CHARS, _SLACK_SECTIONS)
    pages = _paginate(alerts, _slack_line, _slack_heading, limits)
    header = truncate(f"Job digest: {_summary(alerts)}", _SLACK_HEADER_CHARS)
    result = []
    for number, page in enumerate(pages, start=1):
        shown = tuple(a for section in page for a in section.alerts)
        note = (
            f"Page {number} of {len(pages)}: {len(shown)} of {len(alerts)} alerts"
            if len(pages) > 1
            else "Grouped by company"
        )
        sections = [section.text for section in page]
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": False}},
            {"type": "context", "elements": [{"type": "plain_text", "text": note}]},
        ]
        blocks += [
            {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}
            for text in sections
        ]
        payload = {
            "text": "\n".join([header + _page_note(number, len(pages)), *sections]),
            "blocks": blocks,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        result.append(DigestPage(shown, payload))
    return result


def _slack_heading(company: str, continued: bool) -> str:
    return f"*{fit(company, _COMPANY_CHARS, slack_text)}*" + (" (continued)" if continued else "")


def _slack_line(alert: Alert) -> str:
    title = posting_title(alert.change.posting)
    link = posting_link(alert.change.posting)
    url = link.replace("&", "&amp;") if link else None
    if url and len(url) <= _URL_CHARS:
        label = fit(title, _TITLE_CHARS, lambda text: slack_text(text).replace("|", _DIVIDES))
        shown = f"<{url}|{label}>"
    else:
        shown = fit(title, _TITLE_CHARS, slack_text)
    facts = "".join(f" · {part}" for part in _facts(alert, slack_text))
    return f"• *{KIND_LABELS[alert.change.kind]}:* {shown}{facts}"


# ---------------------------------------------------------------- Discord


def discord_digest_pages(alerts: Sequence[Alert]) -> list[DigestPage]:
    """One embed per message; the content is a one-line summary for notifications."""
    limits = _Limits(_DISCORD_DESCRIPTION_CHARS, _DISCORD_DESCRIPTION_CHARS, sys.maxsize)
    pages = _paginate(alerts, _discord_line, _discord_heading, limits)
    summary = _summary(alerts)
    result = []
    for number, page in enumerate(pages, start=1):
        embed: dict[str, Any] = {
            "title": truncate(f"Job digest: {summary}", _DISCORD_TITLE_CHARS),
            "description": "\n\n".join(section.text for section in page),
            "color": _DISCORD_COLOUR,
        }
        if len(pages) > 1:
            embed["footer"] = {"text": f"Page {number} of {len(pages)}"}
        payload = {
            "content": f"**Job digest:** {summary}{_page_note(number, len(pages))}",
            "embeds": [embed],
            "allowed_mentions": {"parse": []},
        }
        result.append(DigestPage(tuple(a for s in page for a in s.alerts), payload))
    return result


def _discord_heading(company: str, continued: bool) -> str:
    name = fit(company, _COMPANY_CHARS, discord_escape)
    return f"**{name}**" + (" (continued)" if continued else "")


def _discord_line(alert: Alert) -> str:
    title = fit(posting_title(alert.change.posting), _TITLE_CHARS, discord_escape)
    link = posting_link(alert.change.posting)
    # A masked link ends at the first ")", so the URL may hold none.
    url = link.replace("(", "%28").replace(")", "%29") if link else None
    shown = f"[{title}]({url})" if url and len(url) <= _URL_CHARS else title
    facts = "".join(f" · {part}" for part in _facts(alert, discord_escape))
    return f"• **{KIND_LABELS[alert.change.kind]}:** {shown}{facts}"
