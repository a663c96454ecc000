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
    tiers = [_TitleTier(root, selector) for selector in _TITLE_TIERS]
    cards: dict[int, tuple[LexborNode, LexborNode, LexborNode]] = {}
    for link in root.css("a[href]"):
        if not _APPLY_TEXT.fullmatch(normalize_space(link.text(deep=True))):
            continue
        found = next((found for tier in tiers if (found := tier.card_of(link))), None)
        if found is not None:
            card, title = found
            cards[card.mem_id] = (card, title, link)
    # A card without a title of its own climbs to the list around it and borrows a
    # neighbour's title; such a "card" contains real cards and is not one.
    containers: set[int] = set()
    for card, _, _ in cards.values():
        node = card.parent
        while node is not None and node.mem_id not in containers:
            containers.add(node.mem_id)
            node = node.parent
    return [found for found in cards.values() if found[0].mem_id not in containers]


class _TitleTier:
    """Finds, for an Apply link, the smallest ancestor that holds a title matching one
    selector, and its first such title. Every page-wide step is done once, and each
    answer remembered, so a page of thousands of links costs time in proportion."""

    def __init__(self, root: LexborNode, selector: str) -> None:
        self._selector = selector
        self._holders: set[int] = set()  # every element with a title in or under it
        for match in root.css(selector):
            if normalize_space(match.text(deep=True)):
                node: LexborNode | None = match
                while node is not None and node.mem_id not in self._holders:
                    self._holders.add(node.mem_id)
                    node = node.parent
        self._nearest: dict[int, LexborNode | None] = {}
        self._titles: dict[int, LexborNode] = {}

    def card_of(self, link: LexborNode) -> tuple[LexborNode, LexborNode] | None:
        """The smallest ancestor of ``link`` below ``body`` that holds a title, and that title."""
        passed: list[int] = []
        node = link.parent
        card = None
        while node is not None and node.tag not in ("body", "html"):
            if node.mem_id in self._nearest:
                card = self._nearest[node.mem_id]
                break
            if node.mem_id in self._holders:
                card = node
                break
            passed.append(node.mem_id)
            node = node.parent
        self._nearest.update(dict.fromkeys(passed, card))
        if card is None:
            return None
        if card.mem_id not in self._titles:
            self._titles[card.mem_id] = next(
                m for m in card.css(self._selector) if normalize_space(m.text(deep=True))
            )
        return card, self._titles[card.mem_id]


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

    title = _own_title(title_node, company_node, card)
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
    if title_node.mem_id == card.mem_id:
        return title_node
    around_link = _lineage(apply_link, card)
    header = title_node
    node = title_node.parent
    while node is not None and node.mem_id not in around_link:
        header = node
        node = node.parent
    return header


def _lineage(node: LexborNode, card: LexborNode) -> set[int]:
    """The ``mem_id`` of ``node`` and of each ancestor up to ``card``, both included."""
    found: set[int] = set()
    current: LexborNode | None = node
    while current is not None:
        found.add(current.mem_id)
        if current.mem_id == card.mem_id:
            break
        current = current.parent
    return found


def _own_title(title_node: LexborNode, company_node: LexborNode | None, card: LexborNode) -> str:
    """The title text, without the company when the company sits inside the title element."""
    title = normalize_space(title_node.text(deep=True))
    if company_node is not None and title_node.mem_id in _lineage(company_node, card):
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
    disabled: dict[int, bool] = {}
    for link in root.css("a[href]"):
        target = _page_url(url, link.attributes.get("href") or "")
        if target is None or target[0] <= current or _is_disabled(link, disabled):
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


def _is_disabled(link: LexborNode, known: dict[int, bool]) -> bool:
    """Whether the link or an element around it (up to its nav) is disabled. ``known``
    keeps the answer for each element passed, so many links share one walk up."""
    passed: list[int] = []
    node: LexborNode | None = link
    answer = False
    while node is not None and node.tag not in ("nav", "body"):
        if node.mem_id in known:
            answer = known[node.mem_id]
            break
        classes = (node.attributes.get("class") or "").split()
        if "disabled" in classes or node.attributes.get("aria-disabled") == "true":
            answer = True
            break
        passed.append(node.mem_id)
        node = node.parent
    known.update(dict.fromkeys(passed, answer))
    return answer
