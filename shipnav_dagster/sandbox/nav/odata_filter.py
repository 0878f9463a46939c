"""OData V4 `$filter`, `$orderby` and key-predicate parsing for the NAV emulator.

Covers what NAV / Business Central document for page web services
(https://learn.microsoft.com/dynamics365/business-central/dev-itpro/webservices/use-filter-expressions-in-odata-uris):
eq/ne/gt/ge/lt/le, and/or, parentheses, startswith/endswith/contains, tolower/toupper, and
literals (single-quoted strings with '' as an escaped quote, numbers, bare ISO dates, ISO
date-times, true/false, null). NAV turns a filter into AL field filters, so it cannot OR two
different fields and it cannot compare a field with another field; both are rejected here the
way NAV rejects them. Types are checked against the entity's EDM types, so a quoted date or an
unquoted code is an error, as it is for the real server.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

SYNTAX_CODE = "BadRequest_NotFound"
OR_DISTINCT_MESSAGE = "The 'OR' operator is not supported on distinct fields on an OData filter"

COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
BOOL_FUNCTIONS = ("startswith", "endswith", "contains")
STRING_FUNCTIONS = ("tolower", "toupper")
NUMERIC_TYPES = ("Edm.Int32", "Edm.Int64", "Edm.Decimal", "Edm.Double")


class FilterError(ValueError):
    """A query the server refuses; ``code`` is the NAV error code of the 400 response."""

    def __init__(self, message: str, code: str = SYNTAX_CODE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# --- syntax tree -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    kind: str  # string | int | decimal | date | datetime | bool | null
    value: Any


@dataclass(frozen=True)
class FieldRef:
    name: str


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple["Node", ...]


@dataclass(frozen=True)
class Compare:
    op: str
    left: "Node"
    right: "Node"


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or
    left: "Node"
    right: "Node"


Node = Literal | FieldRef | Call | Compare | BoolOp


# --- tokens ----------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[(),=])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise FilterError(f"Bad Request - Error in query syntax at position {pos}.")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


def literal_from_token(token: Token) -> Literal:
    text = token.text
    if token.kind == "string":
        return Literal("string", text[1:-1].replace("''", "'"))
    if token.kind == "date":
        try:
            return Literal("date", date.fromisoformat(text).isoformat())
        except ValueError as exc:
            raise FilterError(f"Bad Request - Error in query syntax: invalid date {text}.") from exc
    if token.kind == "datetime":
        try:
            return Literal("datetime", datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError as exc:
            raise FilterError(f"Bad Request - Error in query syntax: invalid date-time {text}.") from exc
    if token.kind == "number":
        if re.fullmatch(r"-?\d+", text):
            return Literal("int", int(text))
        return Literal("decimal", Decimal(text))
    if token.kind == "ident" and text in ("true", "false"):
        return Literal("bool", text == "true")
    if token.kind == "ident" and text == "null":
        return Literal("null", None)
    raise FilterError("Bad Request - Error in query syntax.")


# --- parser ----------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self) -> Token:
        token = self.peek()
        if token is None:
            raise FilterError("Bad Request - Error in query syntax: unexpected end of expression.")
        self.i += 1
        return token

    def expect(self, text: str) -> None:
        token = self.next()
        if token.text != text:
            raise FilterError(f"Bad Request - Error in query syntax: expected '{text}' at {token.pos}.")

    def at_word(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "ident" and token.text == word

    def parse(self) -> Node:
        node = self.or_expr()
        if self.peek() is not None:
            token = self.next()
            raise FilterError(f"Bad Request - Error in query syntax at position {token.pos}.")
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.at_word("or"):
            self.next()
            node = BoolOp("or", node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.comparison()
        while self.at_word("and"):
            self.next()
            node = BoolOp("and", node, self.comparison())
        return node

    def comparison(self) -> Node:
        if self.at_word("not"):
            # Not among the operators NAV documents for page web services.
            raise FilterError("The 'not' operator is not supported on an OData filter.")
        left = self.operand()
        token = self.peek()
        if token is not None and token.kind == "ident" and token.text in COMPARISONS:
            self.next()
            return Compare(token.text, left, self.operand())
        return left

    def operand(self) -> Node:
        token = self.next()
        if token.text == "(":
            node = self.or_expr()
            self.expect(")")
            return node
        if token.kind == "ident" and token.text not in ("true", "false", "null"):
            following = self.peek()
            if following is not None and following.text == "(":
                return self.call(token)
            return FieldRef(token.text)
        return literal_from_token(token)

    def call(self, name: Token) -> Call:
        self.expect("(")
        args: list[Node] = [self.or_expr()]
        while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
            self.next()
            args.append(self.or_expr())
        self.expect(")")
        return Call(name.text, tuple(args))


def parse_filter(text: str) -> Node:
    if not text.strip():
        raise FilterError("Bad Request - Error in query syntax: empty $filter.")
    return _Parser(text).parse()


# --- static checks ---------------------------------------------------------------------------


def _fields_in(node: Node) -> set[str]:
    if isinstance(node, FieldRef):
        return {node.name}
    if isinstance(node, Call):
        return set().union(*(_fields_in(a) for a in node.args))
    if isinstance(node, Compare | BoolOp):
        return _fields_in(node.left) | _fields_in(node.right)
    return set()


def _literal_fits(kind: str, edm: str) -> bool:
    if kind == "null":
        return True
    if edm == "Edm.String":
        return kind == "string"
    if edm in NUMERIC_TYPES:
        return kind in ("int", "decimal")
    if edm == "Edm.Date":
        return kind == "date"
    if edm == "Edm.DateTimeOffset":
        return kind == "datetime"
    if edm == "Edm.Boolean":
        return kind == "bool"
    return False


def _operand_type(node: Node, fields: Mapping[str, str]) -> str:
    """The EDM type of a field-side operand (a field, or tolower/toupper of a string field)."""
    if isinstance(node, FieldRef):
        if node.name not in fields:
            raise FilterError(f"Could not find a property named '{node.name}' on type 'NAV'.")
        return fields[node.name]
    if isinstance(node, Call) and node.name in STRING_FUNCTIONS:
        if len(node.args) != 1 or _operand_type(node.args[0], fields) != "Edm.String":
            raise FilterError(f"Bad Request - Error in query syntax: {node.name} takes one string field.")
        return "Edm.String"
    raise FilterError("Bad Request - Error in query syntax: expected a field.")


def _check_compare(node: Compare, fields: Mapping[str, str]) -> None:
    left, right = node.left, node.right
    if isinstance(left, Literal) and not isinstance(right, Literal):
        left, right = right, left
    if not isinstance(right, Literal):
        # AL filters compare a field with constants only.
        raise FilterError("A filter can only compare a field with a constant value.")
    edm = _operand_type(left, fields)
    if not _literal_fits(right.kind, edm):
        raise FilterError(
            "A binary operator with incompatible types was detected. Found operand types "
            f"'{edm}' and '{right.kind}' for operator kind '{node.op}'."
        )


def _check_call(node: Call, fields: Mapping[str, str]) -> None:
    if node.name not in BOOL_FUNCTIONS:
        raise FilterError(f"The function '{node.name}' is not supported on an OData filter.")
    if len(node.args) != 2 or not isinstance(node.args[1], Literal) or node.args[1].kind != "string":
        raise FilterError(f"Bad Request - Error in query syntax: {node.name}(Field,'text') expected.")
    if _operand_type(node.args[0], fields) != "Edm.String":
        raise FilterError(f"The function '{node.name}' needs a string field.")


def check_filter(node: Node, fields: Mapping[str, str]) -> None:
    """Reject what NAV rejects: unknown fields, type mismatches, OR across distinct fields."""
    if isinstance(node, BoolOp):
        check_filter(node.left, fields)
        check_filter(node.right, fields)
        if node.op == "or" and len(_fields_in(node)) > 1:
            raise FilterError(OR_DISTINCT_MESSAGE, code="BadRequest_NotSupported")
    elif isinstance(node, Compare):
        _check_compare(node, fields)
    elif isinstance(node, Call):
        _check_call(node, fields)
    else:
        raise FilterError("Bad Request - Error in query syntax: a condition is expected.")


# --- evaluation ------------------------------------------------------------------------------


def _comparable(value: Any, edm: str) -> Any:
    if value is None:
        return None
    if edm in NUMERIC_TYPES:
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None
    if edm == "Edm.Date" and isinstance(value, date):
        return value.isoformat()
    return value


def _value(node: Node, record: Mapping[str, Any], fields: Mapping[str, str]) -> Any:
    if isinstance(node, FieldRef):
        return _comparable(record.get(node.name), fields[node.name])
    if isinstance(node, Call) and node.name in STRING_FUNCTIONS:
        inner = _value(node.args[0], record, fields)
        return inner.lower() if node.name == "tolower" else inner.upper()
    if isinstance(node, Literal):
        return Decimal(node.value) if node.kind in ("int", "decimal") else node.value
    raise FilterError("Bad Request - Error in query syntax.")


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and b is not None and a > b,
    "ge": lambda a, b: a is not None and b is not None and a >= b,
    "lt": lambda a, b: a is not None and b is not None and a < b,
    "le": lambda a, b: a is not None and b is not None and a <= b,
}


def evaluate(node: Node, record: Mapping[str, Any], fields: Mapping[str, str]) -> bool:
    """Whether ``record`` passes the (already checked) filter."""
    if isinstance(node, BoolOp):
        if node.op == "and":
            return evaluate(node.left, record, fields) and evaluate(node.right, record, fields)
        return evaluate(node.left, record, fields) or evaluate(node.right, record, fields)
    if isinstance(node, Compare):
        return _OPS[node.op](_value(node.left, record, fields), _value(node.right, record, fields))
    if isinstance(node, Call):
        haystack = str(_value(node.args[0], record, fields) or "")
        needle = str(_value(node.args[1], record, fields))
        if node.name == "startswith":
            return haystack.startswith(needle)
        if node.name == "endswith":
            return haystack.endswith(needle)
        return needle in haystack
    raise FilterError("Bad Request - Error in query syntax.")


# --- $orderby and key predicates -------------------------------------------------------------


def parse_orderby(text: str, fields: Mapping[str, str]) -> list[tuple[str, bool]]:
    """``Field [asc|desc], ...`` -> [(field, descending)]."""
    result: list[tuple[str, bool]] = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise FilterError("Bad Request - Error in query syntax: invalid $orderby.")
        if words[0] not in fields:
            raise FilterError(f"Could not find a property named '{words[0]}' for $orderby.")
        result.append((words[0], len(words) == 2 and words[1] == "desc"))
    return result


def parse_key_predicate(text: str) -> list[tuple[str | None, Literal]]:
    """``'102001'`` -> [(None, lit)]; ``Document_Type='Order',No='1'`` -> [(name, lit), ...]."""
    tokens = tokenize(text)
    if len(tokens) == 1:
        return [(None, literal_from_token(tokens[0]))]
    pairs: list[tuple[str | None, Literal]] = []
    i = 0
    while i < len(tokens):
        chunk = tokens[i : i + 3]
        if len(chunk) < 3 or chunk[0].kind != "ident" or chunk[1].text != "=":
            raise FilterError("Bad Request - Error in query syntax.")
        pairs.append((chunk[0].text, literal_from_token(chunk[2])))
        i += 3
        if i < len(tokens):
            if tokens[i].text != ",":
                raise FilterError("Bad Request - Error in query syntax.")
            i += 1
            if i == len(tokens):
                raise FilterError("Bad Request - Error in query syntax.")
    return pairs
