"""How much work lexbor's HTML tree builder will do on a document, estimated before it runs.

Tree construction rescans the stack of open elements for many tokens (is a ``p`` open
to close? is this end tag's element in scope?), so its work grows with tokens times
nesting: 40,000 nested ``div`` elements take lexbor about three seconds, a 16 MiB page
of them hours, and everything downstream that walks up or down the tree pays again.
Browsers cap the nesting (Chrome at 512 elements); lexbor does not. It also revisits a
``select``'s options as each is added: 40,000 options take twelve seconds.

``html_problem`` replays the document's tags against a model of the stack of open
elements. The model closes an element only where the HTML parser surely would (the
end tag's element in scope, a new ``p``, ``li`` or cell closing the last one), so where
it is unsure it errs on the deep side; on well-formed and the usual sloppy markup it
tracks the real depth.
"""

from __future__ import annotations

import re

MAX_DEPTH = 512
MAX_WORK = 200_000_000  # the stack depth summed over the tags: about 0.4 s of lexbor

_TOKEN = re.compile(r"<(?:(!--)|(/?)([a-z][^\t\n\f\r />]*))")
_VOID = frozenset(
    {
        "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image",
        "img", "input", "keygen", "link", "meta", "param", "source", "track", "wbr",
    }
)  # fmt: skip
_IMPLICIT = frozenset({"html", "head", "body"})  # always there, never nested
_RAW_TEXT = frozenset(
    {"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes"}
)
_FOREIGN = frozenset({"svg", "math"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_SPECIAL = _VOID | _IMPLICIT | _HEADINGS | frozenset(
    {
        "address", "applet", "article", "aside", "blockquote", "button", "caption", "center",
        "colgroup", "dd", "details", "dir", "div", "dl", "dt", "fieldset", "figcaption",
        "figure", "footer", "form", "frameset", "header", "hgroup", "iframe", "li", "listing",
        "main", "marquee", "menu", "nav", "noembed", "noframes", "noscript", "object", "ol", "p",
        "plaintext", "pre", "script", "search", "section", "select", "style", "summary",
        "table", "tbody", "td", "template", "textarea", "tfoot", "th", "thead", "title", "tr",
        "ul", "xmp",
    }
)  # fmt: skip
# The elements that end the search of each scope, by the end tags that search it.
_SCOPE = frozenset(
    {
        "applet", "caption", "html", "table", "td", "th", "marquee", "object", "template",
        "mi", "mo", "mn", "ms", "mtext", "annotation-xml", "foreignobject", "desc",
    }
)  # fmt: skip
_BUTTON_SCOPE = _SCOPE | {"button"}
_LIST_SCOPE = _SCOPE | {"ol", "ul"}
_TABLE_SCOPE = frozenset({"html", "table", "template"})
_TABLE_PARTS = frozenset(
    {"table", "caption", "colgroup", "tbody", "thead", "tfoot", "tr", "td", "th"}
)
# A start tag of these closes an open p first.
_CLOSES_P = _HEADINGS | frozenset(
    {
        "address", "article", "aside", "blockquote", "center", "details", "dialog", "dir",
        "div", "dl", "fieldset", "figcaption", "figure", "footer", "header", "hgroup", "main",
        "menu", "nav", "ol", "p", "search", "section", "summary", "ul", "pre", "listing", "form",
        "table", "hr", "xmp", "li", "dd", "dt", "plaintext",
    }
)  # fmt: skip
# What a start tag closes when it is open (and nothing that blocks the search is above it).
_SIBLINGS = {
    "li": frozenset({"li"}),
    "dd": frozenset({"dd", "dt"}),
    "dt": frozenset({"dd", "dt"}),
    "td": frozenset({"td", "th"}),
    "th": frozenset({"td", "th"}),
    "tr": frozenset({"tr"}),
    "tbody": frozenset({"tbody", "thead", "tfoot"}),
    "thead": frozenset({"tbody", "thead", "tfoot"}),
    "tfoot": frozenset({"tbody", "thead", "tfoot"}),
    "a": frozenset({"a"}),
}
_KINDS = {
    "scope": _SCOPE,
    "button": _BUTTON_SCOPE,
    "list": _LIST_SCOPE,
    "table": _TABLE_SCOPE,
    "special": _SPECIAL | _SCOPE,
    # what stops a new li, dd or dt from closing the last one
    "li": (_SPECIAL | _SCOPE) - {"address", "div", "p"},
}
_SEARCHED_BY = {"p": "button", "li": "list"} | {part: "table" for part in _TABLE_PARTS}
_KINDS_OF = {
    name: tuple(kind for kind, members in _KINDS.items() if name in members)
    for name in frozenset().union(*_KINDS.values())
}
_START_RULES = _SIBLINGS.keys() | _CLOSES_P | {"option", "select", "plaintext"}
_P = frozenset({"p"})
_OPTION_COST = 4  # an option's insertion costs lexbor about four stack-scan steps per option
_FOREIGN_TAG_END = 256  # how far to look for the ">" of a tag inside svg or math


class _OpenElements:
    """The stack of open elements, with the topmost position of each name and of each
    kind of element that ends a search, so that every question is answered at once."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.foreign = 0  # open svg and math elements
        self._at: dict[str, list[int]] = {}
        self._kinds: dict[str, list[int]] = {kind: [] for kind in _KINDS}

    def push(self, name: str) -> None:
        position = len(self.names)
        self.names.append(name)
        self._at.setdefault(name, []).append(position)
        for kind in _KINDS_OF.get(name, ()):
            self._kinds[kind].append(position)
        if name in _FOREIGN:
            self.foreign += 1

    def topmost(self, names: frozenset[str]) -> int:
        position = -1
        for name in names:
            at = self._at.get(name)
            if at and at[-1] > position:
                position = at[-1]
        return position

    def last(self, kind: str) -> int:
        positions = self._kinds[kind]
        return positions[-1] if positions else -1

    def is_open(self, name: str) -> bool:
        return bool(self._at.get(name))

    def close(self, position: int) -> None:
        """Pop every element from the top down to the one at ``position``."""
        while len(self.names) > position:
            name = self.names.pop()
            self._at[name].pop()
            for kind in _KINDS_OF.get(name, ()):  # the element was on top of each of these
                self._kinds[kind].pop()
            if name in _FOREIGN:
                self.foreign -= 1

    def close_if_clear(self, names: frozenset[str], kind: str) -> None:
        """Close the topmost of ``names`` unless an element of ``kind`` sits above it."""
        position = self.topmost(names)
        if position >= 0 and position >= self.last(kind):
            self.close(position)


def html_problem(html: str) -> str | None:
    """Why lexbor should not parse ``html``, or None when its work stays bounded."""
    if html.count("<") <= MAX_DEPTH:
        return None  # too few tags to nest too deep or cost much
    text = html.lower()
    stack = _OpenElements()
    work = options = 0
    position = 0
    while (found := _TOKEN.search(text, position)) is not None:
        position = found.end()
        comment, slash, name = found.groups()
        if comment:
            position = _comment_end(text, position)
            if position < 0:
                break  # the rest is a comment
            continue
        if slash:
            _end_tag(stack, name)
        elif name in _START_RULES:
            if name == "plaintext":
                break  # the rest is text
            if name == "select":
                options = 0
            elif name == "option" and stack.is_open("select"):
                # lexbor revisits a select's options as each one is added
                options += 1
                work += _OPTION_COST * options
            _start_tag(stack, name)
        elif (
            name in _VOID or name in _IMPLICIT or (stack.foreign and _self_closing(text, position))
        ):
            pass
        else:
            stack.push(name)
            if name in _RAW_TEXT and not stack.foreign:
                end = text.find(f"</{name}", position)
                if end < 0:
                    break
                position = end
        depth = len(stack.names)
        if depth > MAX_DEPTH:
            return f"it nests elements more than {MAX_DEPTH} deep"
        work += depth
        if work > MAX_WORK:
            return "its markup would take too long to parse"
    return None


def _start_tag(stack: _OpenElements, name: str) -> None:
    """A start tag that may close open elements first."""
    if name in _SIBLINGS:
        kind = "li" if name in ("li", "dd", "dt") else _SEARCHED_BY.get(name, "special")
        stack.close_if_clear(_SIBLINGS[name], kind)
    if name in _CLOSES_P and stack.is_open("p"):
        stack.close_if_clear(_P, "button")
    top = stack.names[-1] if stack.names else ""
    if (name in _HEADINGS and top in _HEADINGS) or (name == "option" and top == "option"):
        stack.close(len(stack.names) - 1)
    if name not in _VOID:
        stack.push(name)


def _end_tag(stack: _OpenElements, name: str) -> None:
    if name in _IMPLICIT or name in _VOID:
        return
    if name in _HEADINGS:
        stack.close_if_clear(_HEADINGS, "scope")
    elif name in _SPECIAL:
        stack.close_if_clear(frozenset({name}), _SEARCHED_BY.get(name, "scope"))
    else:
        # Any other end tag closes its element unless a special element is above it.
        stack.close_if_clear(frozenset({name}), "special")


def _self_closing(text: str, start: int) -> bool:
    """Whether the tag whose name ends at ``start`` ends with "/>" (only svg and math
    elements close themselves that way)."""
    end = text.find(">", start, start + _FOREIGN_TAG_END)
    return end > start and text[end - 1] == "/"


def _comment_end(text: str, start: int) -> int:
    """Where a comment whose "<!--" ends at ``start`` ends, or -1 at the end of the text."""
    if text.startswith(">", start):
        return start + 1  # "<!-->" is an empty comment
    if text.startswith("->", start):
        return start + 2
    end = text.find("-->", start)
    bang = text.find("--!>", start, end if end >= 0 else len(text))
    if bang >= 0:
        return bang + 4
    return end + 3 if end >= 0 else -1
