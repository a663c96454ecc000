"""CVF conference career boards (cvpr.thecvf.com/careers, icml.cc/careers, ...).

The markup is known only from text captures, so the parser keys on structure:
a card is the smallest element around an "Apply" link that also holds a title;
its header carries title and company, then come an optional location line, the
description and the Apply link.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qsl, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from bot.errors import SourceError
from bot.models import Posting
from bot.sources._urls import join_url
from bot.sources.base import Collected, Fetcher, SourceSpec, follow_pages, register
from bot.text import html_to_text, normalize_space, page_text, stable_id

_APPLY_TEXT = re.compile(r"apply(?:\s+(?:now|here|online))?", re.IGNORECASE)
# Strongest title signal first: a card is found with the first tier that matches.
_TITLE_TIERS = ('[class*="title"]', "h1, h2, h3, h4, h5, h6", "button, strong, b")
_COMPANY_SELECTOR = '[class*="company"], [class*="employer"], [class*="organization"]'
_LOCATION_SELECTOR = '[class*="location"]'
_LOCATION_CONNECTOR = re.compile(r"^(?:or|and)\s+", re.IGNORECASE)
_PAGE_NUMBER = re.compile(r"\d{1,9}")


def parse_page(
    body: bytes, url: str, source: str, company: str | None
) -> tuple[list[Posting], str | None]:
    """The postings of one board page and the canonical URL of the next page."""
    tree = LexborHTMLParser(page_text("cvpr", body, url))
    root = tree.body or tree.root
    if root is None:
        raise SourceError(f"cvpr: {url} could not be parsed as HTML")
    next_url = _next_page(root, url)  # before the cards are taken apart below
    postings = [
        _parse_card(card, title, apply_link, url, source, company)
        for card, title, apply_link in _cards(root)
    ]
    return postings, next_url


@register("cvpr")
async def collect(spec: SourceSpec, fetcher: Fetcher) -> Collected:
    """Every posting on the board, following the pages; the first copy of an id wins."""
    return await follow_pages(
        spec, fetcher, lambda r: parse_page(r.body, r.url, spec.name, spec.company)
    )


# --- cards -----------------------------------------------------------------


def _cards(root: LexborNode) -> list[tuple[LexborNode, LexborNode, LexborNode]]:
    """Each card with its title and its Apply link (the last one in the card)."""
    cards: dict[int, tuple[LexborNode, LexborNode, LexborNode]] = {}
    for link in root.css("a[href]"):
        if not _APPLY_TEXT.fullmatch(normalize_space(link.text(deep=True))):
            continue
        found = _card_of(link)
        if found is not None:
            card, title = found
            cards[card.mem_id] = (card, title, link)
    # A card without a title of its own climbs to the list around it and borrows a
    # neighbour's title; such a "card" contains real cards and is not one.
    return [
        found
        for found in cards.values()
        if not any(other is not found and _contains(found[0], other[0]) for other in cards.values())
    ]


def _card_of(link: LexborNode) -> tuple[LexborNode, LexborNode] | None:
    """The smallest ancestor of an Apply link that holds a title, and that title."""
    for selector in _TITLE_TIERS:
        node = link.parent
        while node is not None and node.tag not in ("body", "html"):
            title = _first_with_text(node, selector)
            if title is not None:
                return node, title
            node = node.parent
    return None


def _first_with_text(node: LexborNode, selector: str) -> LexborNode | None:
    for match in node.css(selector):
        if normalize_space(match.text(deep=True)):
            return match
    return None


def _parse_card(
    card: LexborNode,
    title_node: LexborNode,
    apply_link: LexborNode,
    page_url: str,
    source: str,
    configured_company: str | None,
) -> Posting:
    header = _header_of(title_node, card, apply_link)
    company_node = card.css_first(_COMPANY_SELECTOR)
    location_node = card.css_first(_LOCATION_SELECTOR)

    title = _own_title(title_node, company_node)
    company = _company(company_node, header, card)
    locations = _split_locations(location_node.text(deep=True)) if location_node else ()
    apply_url = _absolute(page_url, apply_link.attributes.get("href") or "")

    # The description is what is left of the card without header, location and Apply link.
    # remove() detaches without freeing, so nested picks (location in header) stay safe.
    for node in (header, company_node, location_node, apply_link):
        if node is not None:
            node.remove()
    description = html_to_text(card.html or "")

    return Posting(
        source=source,
        # The page's own company, not the configured fallback: renaming it in the
        # config must not turn every posting into a new one.
        id=stable_id(company or "", title, *sorted(locations)),
        title=title,
        company=company or configured_company,
        locations=locations,
        url=apply_url,
        apply_url=apply_url,
        description=description or None,
    )


def _header_of(title_node: LexborNode, card: LexborNode, apply_link: LexborNode) -> LexborNode:
    """The outermost element around the title that stays clear of the card's body."""
    header = title_node
    node = title_node.parent
    while node is not None and node.mem_id != card.mem_id and not _contains(node, apply_link):
        header = node
        node = node.parent
    return header


def _contains(ancestor: LexborNode, node: LexborNode) -> bool:
    current: LexborNode | None = node
    while current is not None:
        if current.mem_id == ancestor.mem_id:
            return True
        current = current.parent
    return False


def _own_title(title_node: LexborNode, company_node: LexborNode | None) -> str:
    """The title text, without the company when the company sits inside the title element."""
    title = normalize_space(title_node.text(deep=True))
    if company_node is not None and _contains(title_node, company_node):
        company_text = normalize_space(company_node.text(deep=True))
        title = normalize_space(title.replace(company_text, "", 1)) or title
    return title


def _company(company_node: LexborNode | None, header: LexborNode, card: LexborNode) -> str | None:
    """The company line, else the alt text of the logo (in the header, else first in the card)."""
    if company_node is not None and (text := normalize_space(company_node.text(deep=True))):
        return text
    for scope in (header, card):
        for img in scope.css("img[alt]"):
            if alt := normalize_space(img.attributes.get("alt") or ""):
                return alt
    return None


def _split_locations(text: str) -> tuple[str, ...]:
    """ "Redwood City, CA; or Remote, US" -> ("Redwood City, CA", "Remote, US")."""
    locations: list[str] = []
    for part in text.split(";"):
        location = _LOCATION_CONNECTOR.sub("", normalize_space(part))
        if location and location not in locations:
            locations.append(location)
    return tuple(locations)


def _absolute(base: str, href: str) -> str | None:
    href = href.strip()
    return join_url(base, href) if href else None


# --- pagination ------------------------------------------------------------


def _next_page(root: LexborNode, url: str) -> str | None:
    """The enabled "Next" link, else the lowest page above the current one."""
    current = _current_page(root, url)
    candidates: list[tuple[int, str]] = []
    for link in root.css("a[href]"):
        target = _page_url(url, link.attributes.get("href") or "")
        if target is None or target[0] <= current or _is_disabled(link):
            continue
        if _is_next_link(link):
            return target[1]
        candidates.append(target)
    return min(candidates)[1] if candidates else None


def _current_page(root: LexborNode, url: str) -> int:
    for marker in root.css('[aria-current="page"], .pagination .active'):
        text = normalize_space(marker.text(deep=True))
        if _PAGE_NUMBER.fullmatch(text):
            return int(text)
    parts = _split(url)
    return (_page_number(parts.query) if parts else None) or 1


def _page_url(page_url: str, href: str) -> tuple[int, str] | None:
    """The page number of a pagination link to this board and its canonical URL."""
    absolute = _absolute(page_url, href)
    parts = _split(absolute) if absolute else None
    base = _split(page_url)
    if parts is None or base is None or not _same_board(parts.netloc, parts.path, base):
        return None
    number = _page_number(parts.query)
    if number is None:
        return None
    return number, urlunsplit((parts.scheme, parts.netloc, parts.path, f"page={number}", ""))


def _split(url: str) -> SplitResult | None:
    try:
        return urlsplit(url)
    except ValueError:
        return None


def _same_board(netloc: str, path: str, base: SplitResult) -> bool:
    # Descriptions may link to "?page=" URLs of other sites; only this board pages.
    return netloc == base.netloc and path.rstrip("/") == base.path.rstrip("/")


def _page_number(query: str) -> int | None:
    """The last ``page`` value of a query string: the server reads the last one."""
    values = [value.strip() for key, value in parse_qsl(query) if key == "page"]
    if values and _PAGE_NUMBER.fullmatch(values[-1]):
        return int(values[-1])
    return None


def _is_next_link(link: LexborNode) -> bool:
    label = (link.attributes.get("aria-label") or "").strip().casefold()
    text = normalize_space(link.text(deep=True)).casefold()
    return label == "next" or text.startswith("next")


def _is_disabled(link: LexborNode) -> bool:
    node: LexborNode | None = link
    while node is not None and node.tag not in ("nav", "body"):
        classes = (node.attributes.get("class") or "").split()
        if "disabled" in classes or node.attributes.get("aria-disabled") == "true":
            return True
        node = node.parent
    return False
