"""The subscription query language: parse a query into a small AST, match it against postings.

Grammar (``OR`` binds tighter than the implicit AND, as in Gmail and Google search)::

    query       := conjunction
    conjunction := disjunction ( ["AND"] disjunction )*
    disjunction := unary ( "OR" unary )*
    unary       := ["-"] primary
    primary     := term | "(" conjunction ")"
    term        := word | "quoted phrase" | field ":" (word | "quoted phrase")
                 | "remote:" ("yes" | "no") | "salary>=" amount
                 | "~" [threshold] "quoted phrase"       (close in meaning: bot/semantic.py)

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
from dataclasses import dataclass, replace
from operator import itemgetter
from typing import TYPE_CHECKING, Generic, TypeVar

from bot.errors import QueryError
from bot.models import Posting
from bot.normalize import location_names, yearly

if TYPE_CHECKING:
    from bot.semantic import SemanticText

FIELDS = ("title", "company", "location", "team", "source", "remote")
# The fields a word without a field prefix is looked for in (``source`` is only searched
# when named).
_ANYWHERE_FIELDS = ("title", "company", "location", "team", "description")
_MAX_NESTING = 32
# Cosine similarity at which a ``~"phrase"`` term matches, unless the config or the term
# says otherwise; chosen on the fixtures by bench/bench_semantic.py.
DEFAULT_SEMANTIC_THRESHOLD = 0.35

_TOKEN = re.compile(r"[^\W_]+")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_QUOTES = frozenset('"“”')
_WORD_BREAKS = frozenset("()") | _QUOTES
_SALARY = re.compile(r"salary(?P<operator>[<>=]+)(?P<amount>.*)", re.IGNORECASE | re.DOTALL)
_AMOUNT = re.compile(
    r"(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<thousands>k)?(?P<currency>[a-z]{3})?", re.IGNORECASE
)


def tokenize(text: str) -> list[str]:
    """Split text into casefolded, accent-free alphanumeric tokens: "Zürich 3D" → zurich, 3d."""
    folded = unicodedata.normalize("NFKD", text).casefold()
    if not folded.isascii():  # only non-ASCII runs can hold combining marks
        folded = _NON_ASCII.sub(_without_marks, folded)
    return _TOKEN.findall(folded)


def _without_marks(run: re.Match[str]) -> str:
    return "".join(char for char in run[0] if not unicodedata.category(char).startswith("M"))


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
    # The posting's embedding: only where some query has a ``~`` term (bot/semantic.py).
    semantic: SemanticText | None = None

    @classmethod
    def of(cls, posting: Posting) -> PostingText:
        fields = {
            "title": FieldText.of([posting.title]),
            "company": FieldText.of([posting.company]),
            "location": FieldText.of(_with_implied_names(posting.locations)),
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


def _with_implied_names(locations: tuple[str, ...]) -> list[str]:
    """The locations, then the names they imply: "San Francisco, CA" also is in California,
    United States (``bot.normalize``), each name a value of its own."""
    values = list(locations)
    for location in locations:
        values += location_names(location)
    return values


def _yearly_salary_top(posting: Posting) -> float | None:
    top = posting.salary_max if posting.salary_max is not None else posting.salary_min
    return yearly(top, posting.salary_period)


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
        # text.field() inlined: this runs for every candidate query of every posting
        field = text.anywhere if self.field is None else text.fields[self.field]
        return self.token in field.tokens

    def anchors(self) -> frozenset[str]:
        return frozenset({self.token})


@dataclass(frozen=True, slots=True)
class Phrase(Node):
    tokens: tuple[str, ...]
    field: str | None = None

    def matches(self, text: PostingText) -> bool:
        field = text.anywhere if self.field is None else text.fields[self.field]
        return field.has_phrase(self.tokens)

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
        # Loops, not all()/any() over a generator: 20% faster matching (bench/bench_match.py).
        for child in self.children:  # noqa: SIM110
            if not child.matches(text):
                return False
        return True

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
        for child in self.children:  # noqa: SIM110 (see And.matches)
            if child.matches(text):
                return True
        return False

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
class Semantic(Node):
    phrase: str
    threshold: float | None = None  # None: the deployment's default

    def matches(self, text: PostingText) -> bool:
        return text.semantic is not None and text.semantic.about(self.phrase, self.threshold)

    def anchors(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Query:
    """A compiled subscription query."""

    text: str
    root: Node
    semantic: bool = False  # has a ``~`` term: match it on texts with vectors

    def matches(self, posting: Posting) -> bool:
        return self.root.matches(PostingText.of(posting))

    def matches_text(self, text: PostingText) -> bool:
        return self.root.matches(text)

    def anchors(self) -> frozenset[str] | None:
        """Tokens of which every matching posting has at least one; None = no such set."""
        return self.root.anchors()


# --- Explanation -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TermResult:
    """How one term of a query fared against one posting."""

    term: str  # as the query language writes it: location:"united states", -intern
    found: bool  # the posting has the word, the phrase, or meets the condition
    excluded: bool = False  # under a "-": then found means the term blocks the posting
    field: str | None = None  # where it was found: title, company, location, team, …
    value: str | None = None  # what it was found in ("London, UK") or measured against

    @property
    def satisfied(self) -> bool:
        """Whether the term holds: a positive term found or an excluded one absent."""
        return self.found != self.excluded


def explain(query: Query, posting: Posting, text: PostingText | None = None) -> list[TermResult]:
    """Each term of ``query``, in the order written, with whether and where ``posting``
    has it. ``text`` is the posting's text when the caller has it (with its vector, for
    ``~`` terms)."""
    results: list[TermResult] = []
    _explain(query.root, posting, text or PostingText.of(posting), False, results)
    return results


def _explain(
    node: Node, posting: Posting, text: PostingText, excluded: bool, results: list[TermResult]
) -> None:
    if isinstance(node, Not):
        _explain(node.child, posting, text, not excluded, results)
    elif isinstance(node, And | Or):
        for child in node.children:
            _explain(child, posting, text, excluded, results)
    else:
        term = ("-" if excluded else "") + term_text(node)
        field, value = _evidence(node, posting, text)
        results.append(TermResult(term, node.matches(text), excluded, field, value))


def term_text(node: Node) -> str:
    """A term as a query would write it (words folded as they are matched)."""
    prefix = f"{node.field}:" if isinstance(node, Word | Phrase) and node.field else ""
    if isinstance(node, Word):
        return prefix + node.token
    if isinstance(node, Phrase):
        return f'{prefix}"{" ".join(node.tokens)}"'
    if isinstance(node, Remote):
        return f"remote:{'yes' if node.wanted else 'no'}"
    if isinstance(node, Salary):
        return f"salary>={node.minimum:.15g}{(node.currency or '').lower()}"
    if isinstance(node, Semantic):
        threshold = "" if node.threshold is None else f"{node.threshold:g}"
        return f'~{threshold}"{node.phrase}"'
    return repr(node)


def _evidence(node: Node, posting: Posting, text: PostingText) -> tuple[str | None, str | None]:
    """Where a term was found (the field) and in what value, or what a condition measured."""
    if isinstance(node, Word | Phrase):
        for name in (node.field,) if node.field else _ANYWHERE_FIELDS:
            if _holds(node, text.fields[name]):
                return name, _value_with(node, name, posting)
        return None, None
    if isinstance(node, Remote):
        remote = next((loc for loc in posting.locations if "remote" in tokenize(loc)), None)
        return ("location", remote) if remote else (None, None)
    if isinstance(node, Salary):
        if text.yearly_salary is None:
            return None, "no salary given"
        return None, f"{text.yearly_salary:,.0f} {text.salary_currency or ''} a year".strip()
    return None, None


def _value_with(node: Word | Phrase, field: str, posting: Posting) -> str | None:
    """The value of a short field that holds the term: the location that names it (or
    implies it: "San Francisco, CA" for ``location:"united states"``), the title, …"""
    if field == "location":
        for location in posting.locations:
            if _holds(node, FieldText.of([location, *location_names(location)])):
                return location
        return None
    values = {"title": posting.title, "company": posting.company, "team": posting.team}
    return values.get(field, posting.source if field == "source" else None)


def _holds(node: Word | Phrase, field: FieldText) -> bool:
    return node.token in field.tokens if isinstance(node, Word) else field.has_phrase(node.tokens)


# --- Lexer -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "(", ")", "-", "OR", "AND" or "term"
    position: int
    value: str = ""  # a term's word or phrase, without its field prefix or quotes
    value_position: int = 0
    quoted: bool = False
    field: str | None = None  # lower-case, one of FIELDS
    semantic: bool = False  # a ``~"phrase"`` term
    threshold: float | None = None  # of a ``~0.5"phrase"`` term


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
        elif char == "~":
            token, index = _lex_semantic(query, index)
            tokens.append(token)
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


def _lex_semantic(query: str, tilde: int) -> tuple[_Token, int]:
    from bot.semantic import INSTALL_HINT, available  # (bot.semantic imports this module)

    quote = tilde + 1
    while quote < len(query) and (query[quote].isdigit() or query[quote] == "."):
        quote += 1
    if quote == len(query) or query[quote] not in _QUOTES:
        raise QueryError('a semantic term is ~"a phrase" (or ~0.5"a phrase")', query, tilde)
    threshold = None
    if quote > tilde + 1:
        written = query[tilde + 1 : quote]
        threshold = float(written) if re.fullmatch(r"[0-9]*\.?[0-9]+", written) else None
        if threshold is None or not 0 < threshold <= 1:
            raise QueryError(
                f"a semantic threshold is a number above 0 and at most 1, not '{written}'",
                query,
                tilde + 1,
            )
    if not available():
        raise QueryError(INSTALL_HINT, query, tilde)
    token, end = _lex_phrase(query, quote, start=tilde, field=None)
    return replace(token, semantic=True, threshold=threshold), end


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
    tokens = _lex(text)
    return Query(text, _Parser(text, tokens).parse(), any(token.semantic for token in tokens))


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
        if token.semantic:
            return self._semantic(token)
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

    def _semantic(self, token: _Token) -> Semantic:
        phrase = " ".join(token.value.split())
        if not tokenize(phrase):
            raise self._error("a semantic term needs words to compare", token.value_position)
        return Semantic(phrase, token.threshold)

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
        entries, by_token = self._entries, self._by_token
        candidates = set(self._unanchored)
        for token in text.tokens & by_token.keys():
            candidates.update(by_token[token])
        matched = [
            (entry.order, key)
            for key in candidates
            if (entry := entries[key]).query.matches_text(text)
        ]
        matched.sort(key=itemgetter(0))
        return [key for _, key in matched]
