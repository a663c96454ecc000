"""The subscription query language: parse a query into a small AST, match it against postings.

Grammar (``OR`` binds tighter than the implicit AND, as in Gmail and Google search)::

    query       := conjunction
    conjunction := disjunction ( ["AND"] disjunction )*
    disjunction := unary ( "OR" unary )*
    unary       := ["-"] primary
    primary     := term | "(" conjunction ")"
    term        := word | "quoted phrase" | field ":" (word | "quoted phrase")
                 | "remote:" ("yes" | "no") | "salary>=" amount

Words and posting text go through the same ``tokenize``, so matching is by whole tokens,
case- and accent-insensitively. Matching many queries against a posting goes through
``QueryIndex``, which evaluates only the queries that can possibly match it.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from bot.errors import QueryError
from bot.models import Posting

FIELDS = ("title", "company", "location", "team", "source", "remote")
# The fields a word without a field prefix is looked for in (``source`` is only searched
# when named).
_ANYWHERE_FIELDS = ("title", "company", "location", "team", "description")
_YEARLY_MULTIPLIERS = {"hour": 2080, "day": 260, "week": 52, "month": 12, "year": 1}
_MAX_NESTING = 32

_TOKEN = re.compile(r"[^\W_]+")
_QUOTES = frozenset('"“”')
_WORD_BREAKS = frozenset("()") | _QUOTES
_SALARY = re.compile(r"salary(?P<operator>[<>=]+)(?P<amount>.*)", re.IGNORECASE | re.DOTALL)
_AMOUNT = re.compile(
    r"(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<thousands>k)?(?P<currency>[a-z]{3})?", re.IGNORECASE
)


def tokenize(text: str) -> list[str]:
    """Split text into casefolded, accent-free alphanumeric tokens: "Zürich 3D" → zurich, 3d."""
    folded = unicodedata.normalize("NFKD", text).casefold()
    bare = "".join(char for char in folded if not unicodedata.category(char).startswith("M"))
    return _TOKEN.findall(bare)


# --- Posting side ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldText:
    """The tokens of one field. Each value (each location, say) is a segment of its own,
    so a phrase never matches across two values."""

    segments: tuple[tuple[str, ...], ...]
    tokens: frozenset[str]

    @classmethod
    def of(cls, values: Iterable[str | None]) -> FieldText:
        return cls.from_segments(tuple(tokenize(value)) for value in values if value)

    @classmethod
    def merge(cls, parts: Iterable[FieldText]) -> FieldText:
        return cls.from_segments(segment for part in parts for segment in part.segments)

    @classmethod
    def from_segments(cls, segments: Iterable[tuple[str, ...]]) -> FieldText:
        kept = tuple(segments)
        return cls(kept, frozenset(itertools.chain.from_iterable(kept)))

    def has_phrase(self, phrase: tuple[str, ...]) -> bool:
        if not self.tokens.issuperset(phrase):
            return False
        return any(_contains_run(segment, phrase) for segment in self.segments)


def _contains_run(segment: tuple[str, ...], run: tuple[str, ...]) -> bool:
    size = len(run)
    return any(
        segment[start : start + size] == run
        for start, token in enumerate(segment)
        if token == run[0]
    )


@dataclass(frozen=True, slots=True, eq=False)
class PostingText:
    """The tokenised view of one posting, computed once and shared by every query."""

    fields: Mapping[str, FieldText]
    anywhere: FieldText
    tokens: frozenset[str]  # of every field, ``source`` included: what the index looks up
    remote: bool
    yearly_salary: float | None
    salary_currency: str | None

    @classmethod
    def of(cls, posting: Posting) -> PostingText:
        fields = {
            "title": FieldText.of([posting.title]),
            "company": FieldText.of([posting.company]),
            "location": FieldText.of(posting.locations),
            "team": FieldText.of([posting.team]),
            "description": FieldText.of([posting.description]),
            "source": FieldText.of([posting.source]),
        }
        anywhere = FieldText.merge(fields[name] for name in _ANYWHERE_FIELDS)
        return cls(
            fields=fields,
            anywhere=anywhere,
            tokens=anywhere.tokens | fields["source"].tokens,
            remote=posting.remote is True or "remote" in fields["location"].tokens,
            yearly_salary=_yearly_salary_top(posting),
            salary_currency=posting.salary_currency.upper() if posting.salary_currency else None,
        )

    def field(self, name: str | None) -> FieldText:
        return self.anywhere if name is None else self.fields[name]


def _yearly_salary_top(posting: Posting) -> float | None:
    top = posting.salary_max if posting.salary_max is not None else posting.salary_min
    # Sources that give a bare figure without a period almost always mean a yearly one.
    multiplier = _YEARLY_MULTIPLIERS.get((posting.salary_period or "year").lower())
    if top is None or multiplier is None:
        return None
    return top * multiplier


# --- The AST -----------------------------------------------------------------------------


class Node(ABC):
    __slots__ = ()

    @abstractmethod
    def matches(self, text: PostingText) -> bool: ...

    @abstractmethod
    def anchors(self) -> frozenset[str] | None:
        """Tokens of which a matching posting has at least one; None when there are none."""

    def is_positive(self) -> bool:
        """Whether the node asks for something, rather than only excluding."""
        return True


@dataclass(frozen=True, slots=True)
class Word(Node):
    token: str
    field: str | None = None

    def matches(self, text: PostingText) -> bool:
        return self.token in text.field(self.field).tokens

    def anchors(self) -> frozenset[str]:
        return frozenset({self.token})


@dataclass(frozen=True, slots=True)
class Phrase(Node):
    tokens: tuple[str, ...]
    field: str | None = None

    def matches(self, text: PostingText) -> bool:
        return text.field(self.field).has_phrase(self.tokens)

    def anchors(self) -> frozenset[str]:
        # The longest word is the likeliest to be rare, so it wakes the fewest queries.
        return frozenset({max(self.tokens, key=len)})


@dataclass(frozen=True, slots=True)
class Not(Node):
    child: Node

    def matches(self, text: PostingText) -> bool:
        return not self.child.matches(text)

    def anchors(self) -> None:
        return None

    def is_positive(self) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class And(Node):
    children: tuple[Node, ...]

    def matches(self, text: PostingText) -> bool:
        return all(child.matches(text) for child in self.children)

    def anchors(self) -> frozenset[str] | None:
        candidates = [
            anchors for child in self.children if (anchors := child.anchors()) is not None
        ]
        return min(candidates, key=len, default=None)

    def is_positive(self) -> bool:
        return any(child.is_positive() for child in self.children)


@dataclass(frozen=True, slots=True)
class Or(Node):
    children: tuple[Node, ...]

    def matches(self, text: PostingText) -> bool:
        return any(child.matches(text) for child in self.children)

    def anchors(self) -> frozenset[str] | None:
        union: set[str] = set()
        for child in self.children:
            anchors = child.anchors()
            if anchors is None:
                return None
            union |= anchors
        return frozenset(union)

    def is_positive(self) -> bool:
        return all(child.is_positive() for child in self.children)


@dataclass(frozen=True, slots=True)
class Remote(Node):
    wanted: bool

    def matches(self, text: PostingText) -> bool:
        return text.remote == self.wanted

    def anchors(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Salary(Node):
    minimum: float  # yearly
    currency: str | None = None  # upper-case ISO 4217 code

    def matches(self, text: PostingText) -> bool:
        if text.yearly_salary is None or text.yearly_salary < self.minimum:
            return False
        return self.currency is None or text.salary_currency == self.currency

    def anchors(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Query:
    """A compiled subscription query."""

    text: str
    root: Node

    def matches(self, posting: Posting) -> bool:
        return self.root.matches(PostingText.of(posting))

    def matches_text(self, text: PostingText) -> bool:
        return self.root.matches(text)

    def anchors(self) -> frozenset[str] | None:
        """Tokens of which every matching posting has at least one; None = no such set."""
        return self.root.anchors()


# --- Lexer -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "(", ")", "-", "OR", "AND" or "term"
    position: int
    value: str = ""  # a term's word or phrase, without its field prefix or quotes
    value_position: int = 0
    quoted: bool = False
    field: str | None = None  # lower-case, one of FIELDS


def _lex(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    index = 0
    while index < len(query):
        char = query[index]
        if char.isspace():
            index += 1
        elif char in "()":
            tokens.append(_Token(char, index))
            index += 1
        elif char == "-" and _term_follows(query, index + 1):
            tokens.append(_Token("-", index))
            index += 1
        elif char in _QUOTES:
            token, index = _lex_phrase(query, index, start=index, field=None)
            tokens.append(token)
        else:
            token, index = _lex_word(query, index)
            tokens.append(token)
    return tokens


def _term_follows(query: str, index: int) -> bool:
    return index < len(query) and not query[index].isspace() and query[index] != ")"


def _lex_phrase(query: str, quote: int, *, start: int, field: str | None) -> tuple[_Token, int]:
    end = next((i for i in range(quote + 1, len(query)) if query[i] in _QUOTES), None)
    if end is None:
        raise QueryError("unclosed quote", query, quote)
    token = _Token("term", start, query[quote + 1 : end], quote, quoted=True, field=field)
    return token, end + 1


def _lex_word(query: str, start: int) -> tuple[_Token, int]:
    end = start
    while end < len(query) and not query[end].isspace() and query[end] not in _WORD_BREAKS:
        end += 1
    word = query[start:end]
    if word in ("OR", "AND"):
        return _Token(word, start), end
    prefix, colon, value = word.partition(":")
    if not (colon and prefix.isalpha()):
        return _Token("term", start, word, start), end
    quote_follows = end < len(query) and query[end] in _QUOTES
    if not (value or quote_follows or prefix.lower() in FIELDS):
        return _Token("term", start, word, start), end  # "c:" is a word, not a field
    field = _field_name(query, prefix, start)
    if value:
        return _Token("term", start, value, start + len(prefix) + 1, field=field), end
    if quote_follows:
        return _lex_phrase(query, end, start=start, field=field)
    raise QueryError(
        f"nothing after '{prefix}:' (e.g. {prefix}:word or {prefix}:\"a phrase\")", query, end
    )


def _field_name(query: str, prefix: str, position: int) -> str:
    field = prefix.lower()
    if field not in FIELDS:
        raise QueryError(f"unknown field '{prefix}' (fields: {', '.join(FIELDS)})", query, position)
    return field


# --- Parser ------------------------------------------------------------------------------


def parse_query(text: str) -> Query:
    """Compile a subscription query; raise ``QueryError`` pointing at what is wrong."""
    return Query(text, _Parser(text, _lex(text)).parse())


class _Parser:
    def __init__(self, query: str, tokens: list[_Token]) -> None:
        self._query = query
        self._tokens = tokens
        self._next = 0
        self._depth = 0

    def parse(self) -> Node:
        if not self._tokens:
            raise self._error("empty query", 0)
        first = self._tokens[0]
        if first.kind == ")":
            raise self._error("unmatched ')'", first.position)
        root = self._conjunction()
        leftover = self._peek()
        if leftover is not None:  # a conjunction stops only at ")"
            raise self._error("unmatched ')'", leftover.position)
        if not root.is_positive():
            raise self._error(
                "the query needs at least one positive term, not only exclusions",
                first.position,
            )
        return root

    def _conjunction(self) -> Node:
        children: list[Node] = []
        while (token := self._peek()) is not None and token.kind != ")":
            if token.kind == "AND":
                if not children or not self._operand_follows(1):
                    raise self._error("AND needs a term on each side", token.position)
                self._next += 1
            else:
                children.append(self._disjunction())
        return children[0] if len(children) == 1 else And(tuple(children))

    def _disjunction(self) -> Node:
        first = self._tokens[self._next]
        if first.kind == "OR":
            raise self._error("OR needs a term on each side", first.position)
        alternatives = [(first.position, self._unary())]
        while (token := self._peek()) is not None and token.kind == "OR":
            if not self._operand_follows(1):
                raise self._error("OR needs a term on each side", token.position)
            self._next += 1
            alternatives.append((self._tokens[self._next].position, self._unary()))
        if len(alternatives) == 1:
            return alternatives[0][1]
        for position, alternative in alternatives:
            if not alternative.is_positive():  # "a OR -b" would match nearly every posting
                raise self._error(
                    "each side of OR needs a positive term, not only exclusions", position
                )
        return Or(tuple(alternative for _, alternative in alternatives))

    def _unary(self) -> Node:
        token = self._take()
        if token.kind == "-":
            return Not(self._primary(self._take()))
        return self._primary(token)

    def _primary(self, token: _Token) -> Node:
        if token.kind == "term":
            return self._term(token)
        if token.kind == "(":
            return self._group(token)
        # Only reachable after "-": the other callers have consumed every other kind.
        raise self._error("expected a word, a phrase or '(' after '-'", token.position)

    def _group(self, opening: _Token) -> Node:
        inner = self._peek()
        if inner is None:
            raise self._error("unclosed parenthesis", opening.position)
        if inner.kind == ")":
            raise self._error("empty parentheses", opening.position)
        self._depth += 1
        if self._depth > _MAX_NESTING:
            raise self._error("parentheses nested too deeply", opening.position)
        node = self._conjunction()
        self._depth -= 1
        if self._peek() is None:
            raise self._error("unclosed parenthesis", opening.position)
        self._next += 1  # the ")"
        return node

    def _term(self, token: _Token) -> Node:
        if token.field == "remote":
            return self._remote(token)
        salary = None if token.quoted or token.field else _SALARY.fullmatch(token.value)
        if salary is not None:
            return self._salary(token, salary)
        tokens = tokenize(token.value)
        if not tokens:
            problem = (
                "empty phrase"
                if token.quoted and not token.value.strip()
                else f"'{token.value}' has no letters or digits to match"
            )
            raise self._error(problem, token.value_position)
        if len(tokens) == 1:
            return Word(tokens[0], token.field)
        return Phrase(tuple(tokens), token.field)

    def _remote(self, token: _Token) -> Remote:
        answer = token.value.strip().lower()
        if answer not in ("yes", "no"):
            raise self._error(f"remote: takes yes or no, not '{token.value}'", token.value_position)
        return Remote(answer == "yes")

    def _salary(self, token: _Token, salary: re.Match[str]) -> Salary:
        if salary["operator"] != ">=":
            raise self._error(
                "salary takes only '>=' (e.g. salary>=150k)",
                token.value_position + salary.start("operator"),
            )
        written = salary["amount"]
        amount = _AMOUNT.fullmatch(written)
        if amount is None:
            problem = f"'{written}' is not an amount" if written else "the amount is missing"
            raise self._error(
                f"malformed salary: {problem} (e.g. salary>=150000, salary>=150k, salary>=120kgbp)",
                token.value_position + salary.start("amount"),
            )
        minimum = float(amount["number"]) * (1000 if amount["thousands"] else 1)
        currency = amount["currency"].upper() if amount["currency"] else None
        return Salary(minimum, currency)

    def _operand_follows(self, offset: int) -> bool:
        index = self._next + offset
        return index < len(self._tokens) and self._tokens[index].kind not in (")", "OR", "AND")

    def _peek(self) -> _Token | None:
        return self._tokens[self._next] if self._next < len(self._tokens) else None

    def _take(self) -> _Token:
        token = self._tokens[self._next]
        self._next += 1
        return token

    def _error(self, message: str, position: int) -> QueryError:
        return QueryError(message, self._query, position)


# --- Index -------------------------------------------------------------------------------

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class _Indexed:
    query: Query
    anchors: frozenset[str] | None
    order: int


class QueryIndex(Generic[K]):
    """Many queries, looked up by the tokens of a posting.

    Each query is filed under its anchors (or, when it has none, with the few queries that
    are always evaluated), so matching a posting evaluates only the queries filed under
    one of its tokens: cost grows with candidates, not with the number of subscriptions.
    """

    def __init__(self) -> None:
        self._entries: dict[K, _Indexed] = {}
        self._by_token: dict[str, set[K]] = {}
        self._unanchored: set[K] = set()
        self._order = itertools.count()

    def add(self, key: K, query: Query) -> None:
        """File a query under ``key``; a query already there is replaced and moves last."""
        if key in self._entries:
            self.remove(key)
        anchors = query.anchors()
        self._entries[key] = _Indexed(query, anchors, next(self._order))
        if anchors is None:
            self._unanchored.add(key)
        else:
            for token in anchors:
                self._by_token.setdefault(token, set()).add(key)

    def remove(self, key: K) -> None:
        """Forget ``key``; raise ``KeyError`` when it is not there."""
        entry = self._entries.pop(key)
        if entry.anchors is None:
            self._unanchored.discard(key)
            return
        for token in entry.anchors:
            keys = self._by_token[token]
            keys.discard(key)
            if not keys:
                del self._by_token[token]

    def __len__(self) -> int:
        return len(self._entries)

    def match(self, posting: Posting) -> list[K]:
        """The keys whose query matches the posting, in the order they were added."""
        return self.match_text(PostingText.of(posting))

    def match_text(self, text: PostingText) -> list[K]:
        candidates = set(self._unanchored)
        for token in text.tokens:
            candidates.update(self._by_token.get(token, ()))
        matched = [key for key in candidates if self._entries[key].query.matches_text(text)]
        return sorted(matched, key=lambda key: self._entries[key].order)
