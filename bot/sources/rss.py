"""RSS 2.0 and Atom job feeds (We Work Remotely, university vacancy feeds, ...).

feedparser does the XML work; it only ever sees the bytes the fetcher got. Given
a string it would fetch URLs or open local files, so the body goes in as a stream.
"""

from __future__ import annotations

import io
import time
import xml.sax
from datetime import date
from email.utils import parseaddr
from typing import Any

import feedparser

from bot.errors import SourceError
from bot.models import Posting
from bot.sources._urls import join_url
from bot.sources.base import Collected, Fetcher, SourceSpec, body_kind, register
from bot.text import html_to_text, normalize_space, stable_id, text_or_none

# We Work Remotely titles read "Company: Job title"; the job title may hold more colons.
_COMPANY_SEPARATOR = ": "
MAX_TAGS = 250_000


def parse_feed(body: bytes, url: str, source: str, company: str | None) -> list[Posting]:
    """The postings of a feed document fetched from ``url``."""
    feed = _parse(body)
    atom = str(feed.get("version", "")).startswith("atom")
    # An RSS channel's managingEditor is a person, but an Atom feed's author is its publisher.
    feed_author = _author(feed.get("feed", {}), atom) if atom else None
    postings = []
    for entry in feed.get("entries", []):
        author = _author(entry, atom) or feed_author
        posting = _parse_entry(entry, url, source, author, company)
        if posting is not None:
            postings.append(posting)
    return postings


@register("rss")
async def collect(spec: SourceSpec, fetcher: Fetcher) -> Collected:
    response = await fetcher.get(spec.url)
    return Collected(parse_feed(response.body, response.url, spec.name, spec.company))


def _parse(body: bytes) -> Any:
    # feedparser handles each tag in Python (~15 µs): bound the tags, not just the bytes.
    if (tags := _markup(body)) > MAX_TAGS:
        raise SourceError(f"rss: the feed has {tags} tags, more than the {MAX_TAGS} read")
    try:
        # Its HTML sanitizer and link resolver are slow pure Python, and html_to_text
        # already keeps only the text.
        feed = feedparser.parse(io.BytesIO(body), sanitize_html=False, resolve_relative_uris=False)
    except Exception as error:  # a third-party parser on untrusted bytes: fail as a source
        raise SourceError(f"rss: the feed could not be parsed ({type(error).__name__})") from None
    if feed.get("entries"):
        return feed  # feedparser's lenient parser recovered entries from a slightly broken feed
    if not feed.get("version"):
        looks_like = body_kind(body)
        hint = f" (got {looks_like})" if looks_like else ""
        raise SourceError(f"rss: not an RSS or Atom feed{hint}")
    problem = feed.get("bozo_exception")
    if isinstance(problem, xml.sax.SAXException):
        raise SourceError(f"rss: malformed feed ({problem.getMessage()})")
    return feed


def _markup(body: bytes) -> int:
    """The tags and escaped tags of a feed, not counting markup inside CDATA sections."""
    count = body.count(b"&lt;")
    position = 0
    while (start := body.find(b"<![CDATA[", position)) >= 0:
        count += body.count(b"<", position, start)
        end = body.find(b"]]>", start)
        if end < 0:
            return count
        position = end + 3
    return count + body.count(b"<", position)


def _parse_entry(
    entry: Any, url: str, source: str, author: str | None, configured_company: str | None
) -> Posting | None:
    raw_title = normalize_space(_text(entry.get("title_detail")) or "")
    if not raw_title:
        return None
    title, company = raw_title, author
    # Without any author, a "Company: Title" item names its company; a configured company
    # says the feed is one employer's, whose titles may hold a colon ("PhD position: ...").
    if author is None and configured_company is None:
        company, title = _split_company(raw_title)
    link = _link(entry, url)
    return Posting(
        source=source,
        id=text_or_none(entry.get("id")) or link or stable_id(raw_title),
        title=title,
        company=company or configured_company,
        locations=tuple(filter(None, [text_or_none(entry.get("region"))])),
        team=_team(entry.get("tags")),
        employment_type=text_or_none(entry.get("type")),
        posted_at=_posted(entry),
        url=link,
        description=_description(entry),
    )


def _split_company(title: str) -> tuple[str | None, str]:
    company, separator, rest = title.partition(_COMPANY_SEPARATOR)
    company, rest = normalize_space(company), normalize_space(rest)
    if not separator or not company or not rest:
        return None, title
    return company, rest


def _text(detail: Any) -> str | None:
    """The text of a feedparser ``*_detail`` value: HTML becomes plain text."""
    if not isinstance(detail, dict) or not isinstance(detail.get("value"), str):
        return None
    value: str = detail["value"]
    if detail.get("type") == "text/plain":
        return value.strip() or None
    return html_to_text(value) or None


def _author(node: Any, atom: bool) -> str | None:
    """The author's name; an e-mail address is no company name."""
    if atom:
        detail = node.get("author_detail")
        return text_or_none(detail.get("name")) if isinstance(detail, dict) else None
    # RSS: "jobs@acme.com (Acme)", a bare name (dc:creator) or a bare address. feedparser's own
    # split truncates addresses at long top-level domains, so parse the raw value.
    author = text_or_none(node.get("author"))
    if author is None or "@" not in author:
        return author
    return text_or_none(parseaddr(author)[0])


def _link(entry: Any, url: str) -> str | None:
    # feedparser applies xml:base; links still relative are relative to the feed itself.
    link = text_or_none(entry.get("link"))
    return join_url(url, link) if link else None


def _team(tags: Any) -> str | None:
    """The category of an entry that has exactly one (WWR's job category).

    Several categories are tags of mixed kinds (level, field, place), none of them the team.
    """
    if not isinstance(tags, list) or len(tags) != 1 or not isinstance(tags[0], dict):
        return None
    return text_or_none(tags[0].get("term"))


def _posted(entry: Any) -> str | None:
    for key in ("published_parsed", "updated_parsed"):
        # `in` first: feedparser answers a missing "updated_parsed" with a deprecated fallback.
        if key in entry and (day := _date(entry[key])):
            return day
    return None


def _date(parsed: Any) -> str | None:
    """The date of one of feedparser's ``*_parsed`` values (a UTC ``struct_time``)."""
    if not isinstance(parsed, time.struct_time):
        return None
    try:
        return date(parsed.tm_year, parsed.tm_mon, parsed.tm_mday).isoformat()
    except ValueError:
        return None


def _description(entry: Any) -> str | None:
    """The full content when the entry has one, else its summary, as plain text."""
    contents = entry.get("content")
    if isinstance(contents, list):
        for content in contents:
            if text := _text(content):
                return text
    return _text(entry.get("summary_detail"))
