"""Any other careers page, read with the CSS selectors of the source's config.

``sel@attr`` reads an attribute of the first match instead of its text (a bare
``@attr`` reads the item's own attribute). Links resolve against the page's
``<base href>`` when it has one, else against the fetched URL.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from bot.errors import SourceError
from bot.models import Posting
from bot.sources.base import Collected, Fetcher, Response, SourceSpec, follow_pages, register
from bot.text import html_to_text, iso_date, normalize_space, page_text, stable_id

log = logging.getLogger(__name__)

# The CSS ends with a non-space, so the space before "@" is scanned once, not per CSS length.
_FIELD_WITH_ATTRIBUTE = re.compile(
    r"(?P<css>(?:.*?\S)?)\s*@(?P<attribute>[A-Za-z_:][-\w:.]*)", re.ASCII
)
_OPTIONAL_FIELDS = ("url", "location", "company", "posted", "description", "next_page")
_LINK_SCHEMES = frozenset({"http", "https", "file"})


@dataclass(frozen=True, slots=True)
class Selector:
    """A CSS selector (empty: the item itself) and the attribute to read, if not the text."""

    css: str
    attribute: str | None = None


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a page keeps its postings: the configured selectors and location separator."""

    item: str
    title: Selector
    url: Selector | None = None
    location: Selector | None = None
    company: Selector | None = None
    posted: Selector | None = None
    description: Selector | None = None
    next_page: Selector | None = None
    location_separator: str | None = None


def layout_from_options(options: Mapping[str, Any]) -> Layout:
    """The ``Layout`` of ``spec.options`` (``{"selectors": {...}, "location_separator": ";"}``)."""
    selectors = options.get("selectors")
    if not isinstance(selectors, Mapping) or not all(
        isinstance(selectors.get(key), str) and selectors[key].strip() for key in ("item", "title")
    ):
        raise SourceError("html source needs selectors: item and title")
    separator = options.get("location_separator")
    return Layout(
        item=_checked("item", selectors["item"].strip()),
        title=_selector("title", selectors["title"]),
        location_separator=separator if isinstance(separator, str) and separator else None,
        **{key: _selector(key, selectors[key]) for key in _OPTIONAL_FIELDS if selectors.get(key)},
    )


def parse_page(
    body: bytes, url: str, source: str, company: str | None, layout: Layout
) -> tuple[list[Posting], str | None]:
    """The postings of one page fetched from ``url`` and the URL of the next page."""
    tree = LexborHTMLParser(page_text("html", body, url))
    root = tree.root
    if root is None:
        return [], None
    base = _base_url(root, url)
    postings = [
        posting
        for item in _outermost(root.css(layout.item))
        if (posting := _parse_item(item, layout, base, source, company)) is not None
    ]
    return postings, _next_page(root, layout, url, base)


def _outermost(items: list[LexborNode]) -> list[LexborNode]:
    """The items not inside another item: a match within an item is part of its content
    (and reading nested items again and again would cost time with every level)."""
    ids = {item.mem_id for item in items}
    inside: dict[int, bool] = {}  # element -> whether an item is around it, as found
    outermost = []
    for item in items:
        passed: list[int] = []
        node = item.parent
        answer = False
        while node is not None:
            if node.mem_id in inside:
                answer = inside[node.mem_id]
                break
            if node.mem_id in ids:
                answer = True
                break
            passed.append(node.mem_id)
            node = node.parent
        inside.update(dict.fromkeys(passed, answer))
        if not answer:
            outermost.append(item)
    return outermost


@register("html")
async def collect(spec: SourceSpec, fetcher: Fetcher) -> Collected:
    """Every posting, following the next-page links; the first copy of an id wins."""
    layout = layout_from_options(spec.options)
    found_any = False

    def read_page(response: Response) -> tuple[list[Posting], str | None]:
        nonlocal found_any
        page, next_url = parse_page(response.body, response.url, spec.name, spec.company, layout)
        if not page and not found_any:
            log.warning("%s: nothing on %s matches %r", spec.name, response.url, layout.item)
        found_any = found_any or bool(page)
        return page, next_url

    return await follow_pages(spec, fetcher, read_page)


# --- selectors -------------------------------------------------------------------


def _selector(name: str, value: Any) -> Selector:
    if not isinstance(value, str):
        raise SourceError(f"html: selector {name!r} must be a string")
    value = value.strip()
    match = _FIELD_WITH_ATTRIBUTE.fullmatch(value)
    if match is None:
        return Selector(_checked(name, value))
    css = match["css"]
    return Selector(_checked(name, css) if css else "", match["attribute"])


def _checked(name: str, css: str) -> str:
    try:
        LexborHTMLParser("").css(css)
    except SelectolaxError:
        raise SourceError(f"html: invalid CSS in selector {name!r}: {css!r}") from None
    return css


def _first(scope: LexborNode, selector: Selector) -> LexborNode | None:
    return scope.css_first(selector.css) if selector.css else scope


def _value(scope: LexborNode, selector: Selector) -> str | None:
    """The attribute (or the text) of the first match, whitespace-normalised."""
    node = _first(scope, selector)
    return _read(node, selector.attribute) if node is not None else None


def _read(node: LexborNode, attribute: str | None) -> str | None:
    if attribute is not None:
        return normalize_space(node.attributes.get(attribute) or "") or None
    return normalize_space(html_to_text(node.html or "")) or None


# --- one item --------------------------------------------------------------------


def _parse_item(
    item: LexborNode, layout: Layout, base: str, source: str, configured_company: str | None
) -> Posting | None:
    title_node = _first(item, layout.title)
    title = _read(title_node, layout.title.attribute) if title_node is not None else None
    if title_node is None or title is None:
        return None
    url = _item_url(item, title_node, layout.url, base)
    company = _value(item, layout.company) if layout.company else None
    locations = _locations(item, layout)
    return Posting(
        source=source,
        id=_posting_id(url, base, company, title, locations),
        title=title,
        company=company or configured_company,
        locations=locations,
        posted_at=_posted(item, layout.posted) if layout.posted else None,
        url=url,
        description=_description(item, layout.description) if layout.description else None,
    )


def _item_url(
    item: LexborNode, title_node: LexborNode, selector: Selector | None, base: str
) -> str | None:
    if selector is None:
        return _absolute(base, _link_href(title_node, item))
    node = _first(item, selector)
    if node is None:
        return None
    href = node.attributes.get(selector.attribute) if selector.attribute else _link_href(node)
    return _absolute(base, href)


def _link_href(node: LexborNode, within: LexborNode | None = None) -> str | None:
    """The href of ``node`` if it is a link, else of the first link inside it, else of the
    link around it (up to ``within``): ``<a href><h3>Title</h3></a>`` is a common card."""
    if node.attributes.get("href"):
        return node.attributes["href"]
    inner = node.css_first("a[href]")
    if inner is not None:
        return inner.attributes.get("href")
    if within is None or node.mem_id == within.mem_id:
        return None
    ancestor = node.parent
    while ancestor is not None and ancestor.mem_id != within.mem_id:
        if ancestor.tag == "a" and ancestor.attributes.get("href"):
            return ancestor.attributes["href"]
        ancestor = ancestor.parent
    return None


def _posting_id(
    url: str | None, base: str, company: str | None, title: str, locations: tuple[str, ...]
) -> str:
    # A link back to the listing itself ("#apply", "#job-3") identifies nothing; the page's
    # own company (not the configured one) keeps ids stable when the config is edited.
    canonical = _canonical(url) if url else None
    if canonical and canonical != _canonical(base):
        return stable_id(canonical)
    return stable_id(company or "", title, *locations)


def _locations(item: LexborNode, layout: Layout) -> tuple[str, ...]:
    """Every match of the location selector, each split on the configured separator."""
    if layout.location is None:
        return ()
    selector = layout.location
    nodes = item.css(selector.css) if selector.css else [item]
    cells = (_read(node, selector.attribute) or "" for node in nodes)
    separator = layout.location_separator
    parts = (part for cell in cells for part in (cell.split(separator) if separator else [cell]))
    return tuple(dict.fromkeys(location for part in parts if (location := normalize_space(part))))


def _posted(item: LexborNode, selector: Selector) -> str | None:
    node = _first(item, selector)
    if node is None:
        return None
    # Without @attr, a <time datetime> says the date more reliably than its display text.
    attribute = selector.attribute or ("datetime" if node.attributes.get("datetime") else None)
    value = _read(node, attribute)
    return iso_date(value) if value else None


def _description(item: LexborNode, selector: Selector) -> str | None:
    node = _first(item, selector)
    if node is None:
        return None
    if selector.attribute is not None:
        return _read(node, selector.attribute)
    return html_to_text(node.html or "") or None


# --- links and pages -------------------------------------------------------------


def _base_url(root: LexborNode, url: str) -> str:
    """The page's ``<base href>`` (itself relative to the fetched URL), else that URL."""
    base = root.css_first("base[href]")
    return _absolute(url, base.attributes.get("href") if base else None) or url


def _next_page(root: LexborNode, layout: Layout, url: str, base: str) -> str | None:
    if layout.next_page is None:
        return None
    node = _first(root, layout.next_page)
    if node is None:
        return None
    attribute = layout.next_page.attribute
    href = node.attributes.get(attribute) if attribute else _link_href(node)
    # Paging stays on the site that was fetched: a <base> pointing elsewhere marks a saved
    # copy (a file: page keeps the live site's <base>), whose pages sit beside it.
    same_site = _origin(base) == _origin(url)
    absolute = _absolute(base if same_site else url, href)
    return _canonical(absolute) if absolute else None


def _absolute(base: str, href: str | None) -> str | None:
    href = normalize_space(href or "")
    if not href:
        return None
    try:
        absolute = urljoin(base, href)
        scheme = urlsplit(absolute).scheme.lower()
    except ValueError:  # e.g. a malformed IPv6 host
        return None
    return absolute if scheme in _LINK_SCHEMES else None


def _canonical(url: str) -> str:
    return urldefrag(url).url


def _origin(url: str) -> tuple[str, str]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "", ""
    return parts.scheme.lower(), parts.netloc.lower()
