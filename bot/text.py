"""Pure text helpers shared by the source parsers."""

from __future__ import annotations

import hashlib
import math
import re
import warnings
from datetime import UTC, datetime
from html import unescape
from typing import Any

from dateutil import parser as date_parser
from selectolax.lexbor import LexborHTMLParser, LexborNode

from bot.errors import SourceError
from bot.html_budget import html_problem

_SKIPPED_TAGS = frozenset(
    {"head", "title", "script", "style", "noscript", "template", "iframe", "object", "svg"}
)
# Blocks that stand apart from their neighbours with a blank line.
_PARAGRAPH_TAGS = frozenset(
    {
        "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "table", "blockquote",
        "pre", "figure", "section", "article", "header", "footer", "aside", "hr",
    }
)  # fmt: skip
# Blocks that start and end a line.
_LINE_TAGS = frozenset(
    {
        "div", "li", "tr", "dt", "dd", "address", "form", "fieldset", "main", "nav",
        "caption", "figcaption", "details", "summary", "center",
    }
)  # fmt: skip
_CELL_TAGS = frozenset({"td", "th"})
_LIST_TAGS = frozenset({"ul", "ol"})
_WHITESPACE = re.compile(r"\s+")
_EPOCH = re.compile(r"-?\d{9,}(?:\.\d+)?")
# The ATS APIs' usual form; read without dateutil, which costs ~0.3 ms a date.
_ISO_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})?)?"
)
_EPOCH_MS_THRESHOLD = 1e11  # larger absolute values are milliseconds (1e11 s is year 5138)
_MAX_DATE_CHARS = 100  # "Thursday, 09 May 2024 13:45:00 Pacific Daylight Time" is 52
_ID_SEPARATOR = "\x1f"
_MARKUP = re.compile(r"<[A-Za-z!/]")
_TAG = re.compile(r"<[^<>]*>")  # "<" ends a scan too, so that unclosed tags cost no rescans
_BINARY_SNIFF_BYTES = 8000  # like git: a NUL byte this early means binary content
_SURROGATE = re.compile("[\ud800-\udfff]")


def normalize_space(s: str) -> str:
    """Collapse every whitespace run (NBSP included) to one space and strip."""
    return " ".join(s.split())


def text_or_none(value: Any) -> str | None:
    """``value`` with its whitespace normalised if it is a string; None when blank or no string."""
    return (normalize_space(value) or None) if isinstance(value, str) else None


def encodable(text: str) -> str:
    """``text`` with each lone surrogate as ``?``: JSON may escape them (``"\\ud800"``), but
    they cannot be encoded as UTF-8, quoted into a URL, stored or printed."""
    return text.encode("utf-8", "replace").decode("utf-8")


def fix_surrogates(text: str) -> str:
    """``text`` with the halves of a pair that were escaped apart (``\\uD83D\\uDE00``) joined
    and lone halves (from ``\\ud800`` escapes) replaced by U+FFFD."""
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def fixed_text(value: Any) -> str | None:
    """``text_or_none`` with its surrogates fixed (``fix_surrogates``)."""
    text = text_or_none(value)
    return fix_surrogates(text) if text else None


def has_markup(text: str) -> bool:
    """Whether ``text`` holds an HTML tag, comment or doctype."""
    return _MARKUP.search(text) is not None


def page_text(kind: str, body: bytes, url: str) -> str:
    """The body of an HTML page as text; ``SourceError`` when it is clearly no HTML."""
    if b"\x00" in body[:_BINARY_SNIFF_BYTES]:
        raise SourceError(f"{kind}: {url} is not an HTML page (binary content)")
    text = body.decode("utf-8", errors="replace")
    if not has_markup(text):
        raise SourceError(f"{kind}: {url} is not an HTML page (no markup)")
    if problem := html_problem(text):
        raise SourceError(f"{kind}: {url} cannot be parsed safely: {problem}")
    return text


class _TextWriter:
    """Accumulates inline text and requested line breaks into clean lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.line = ""
        self.pending = 0  # newlines owed before the next text: 1 = new line, 2 = blank line
        self.prefix = ""  # bullet waiting for the first text of a list item
        self.list_item_depth = 0

    def request_break(self, newlines: int) -> None:
        # Paragraphs inside a list item stay in the item instead of opening blank lines.
        if self.list_item_depth:
            newlines = 1
        self.pending = max(self.pending, newlines)

    def line_break(self) -> None:
        # Consecutive <br>s escalate to a paragraph break.
        self.pending = min(self.pending + 1, 2)

    def write(self, text: str) -> None:
        text = _WHITESPACE.sub(" ", text)
        if not text.strip():
            if self.line and not self.pending and not self.line.endswith(" "):
                self.line += " "
            return
        if self.pending:
            self._end_line()
        if not self.line:
            text = self.prefix + text.lstrip()
            self.prefix = ""
        elif self.line.endswith(" "):
            text = text.lstrip()
        self.line += text

    def _end_line(self) -> None:
        if self.line:
            self.lines.append(self.line.rstrip())
        if self.pending == 2 and self.lines and self.lines[-1]:
            self.lines.append("")
        self.line = ""
        self.pending = 0

    def text(self) -> str:
        self.request_break(1)
        self._end_line()
        return "\n".join(self.lines).strip()


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment or document, one block per line.

    Paragraphs are separated by one blank line, list items become "• " lines,
    entities are decoded once (by the HTML parser), scripts and styles dropped.
    Markup too deeply nested to parse quickly gives just the text between its tags.
    """
    if html_problem(html):
        return normalize_space(unescape(_TAG.sub(" ", html)))
    tree = LexborHTMLParser(html)
    start = tree.body or tree.root
    writer = _TextWriter()
    if start is not None:
        _walk(start, writer)
    return writer.text()


def _walk(start: LexborNode, writer: _TextWriter) -> None:
    # Iterative so that deeply nested markup cannot exhaust the recursion limit.
    stack: list[tuple[LexborNode, bool]] = [(start, False)]
    list_depth = 0
    while stack:
        node, leaving = stack.pop()
        tag = node.tag or ""
        if leaving:
            if tag in _LIST_TAGS:
                list_depth -= 1
            _close(tag, writer)
            continue
        if node.is_text_node:
            writer.write(node.text_content or "")
            continue
        if not node.is_element_node or tag in _SKIPPED_TAGS:
            continue
        if tag in _LIST_TAGS:
            list_depth += 1
        _open(tag, writer, list_depth)
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(list(node.iter(include_text=True))))


def _open(tag: str, writer: _TextWriter, list_depth: int) -> None:
    if tag == "br":
        writer.line_break()
    elif tag == "li":
        writer.request_break(1)
        writer.prefix = "  " * max(list_depth - 1, 0) + "• "
        writer.list_item_depth += 1
    else:
        _block_edge(tag, writer)


def _close(tag: str, writer: _TextWriter) -> None:
    if tag == "li":
        writer.list_item_depth -= 1
        writer.prefix = ""
        writer.request_break(1)
    else:
        _block_edge(tag, writer)


def _block_edge(tag: str, writer: _TextWriter) -> None:
    """What either edge of an element makes: a blank line, a line break or a cell gap."""
    if tag in _PARAGRAPH_TAGS:
        writer.request_break(2)
    elif tag in _LINE_TAGS:
        writer.request_break(1)
    elif tag in _CELL_TAGS:
        writer.write(" ")


def iso_date(value: str | int | float | None) -> str | None:
    """The UTC calendar date (YYYY-MM-DD) of a timestamp, or None if it is not one.

    Accepts ISO 8601 / RFC 822 / "May 09, 2024" strings (naive ones are taken as
    UTC; a year, month and day are required) and epoch seconds or milliseconds,
    as numbers or as strings of 9+ digits ("20240509" is a date). Never raises.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _epoch_date(value)
    text = value.strip()
    if len(text) > _MAX_DATE_CHARS:  # dateutil's tokenizer takes quadratic time on long text
        return None
    if _EPOCH.fullmatch(text):
        return _epoch_date(float(text))
    parsed = _parse_full_date(text)
    if parsed is None:
        return None
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(UTC)
        except (OverflowError, ValueError):
            return None
    return parsed.date().isoformat()


def _epoch_date(value: float) -> str | None:
    try:
        if not math.isfinite(value):
            return None
        seconds = value / 1000 if abs(value) >= _EPOCH_MS_THRESHOLD else value
        return datetime.fromtimestamp(seconds, UTC).date().isoformat()
    except (OverflowError, OSError, ValueError):  # e.g. an int too large for a float
        return None


def _parse_full_date(text: str) -> datetime | None:
    """Parse ``text`` only if it names a year, a month and a day."""
    if not text:
        return None
    if _ISO_DATE.fullmatch(text):
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass  # e.g. 2024-02-30: dateutil has the last word
    # dateutil fills missing fields from the default; two different defaults
    # that give two different dates reveal a partial date such as "May 2024".
    results: list[datetime] = []
    for default in (datetime(2000, 1, 1), datetime(2001, 2, 2)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", date_parser.UnknownTimezoneWarning)
                results.append(date_parser.parse(text, default=default))
        except (ValueError, OverflowError, TypeError):
            return None
    first, second = results
    if first.date() != second.date():
        return None
    return first


def stable_id(*parts: str) -> str:
    """A short deterministic id from parts, insensitive to case and spacing."""
    key = _ID_SEPARATOR.join(normalize_space(part).casefold() for part in parts)
    return hashlib.sha1(key.encode("utf-8"), usedforsecurity=False).hexdigest()[:16]
