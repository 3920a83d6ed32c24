"""SOQL syntax: a tokenizer and a recursive-descent parser for the subset of apis.md S2.

    SELECT f1, Rel.f2 FROM Obj [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n]

Conditions: `=, !=, <>, <, >, <=, >=, IN (...), NOT IN (...)`, joined by AND or OR (mixing them needs
parentheses, as in Salesforce), `NOT cond`, parentheses. Literals: 'strings' (backslash escapes),
true/false/null, numbers, unquoted ISO datetimes (`2026-11-25T10:00:00.000Z`) and dates.
`SELECT COUNT() FROM Obj` counts. Errors are `SoqlSyntaxError`s that carry the position, which
`query.py` turns into Salesforce's MALFORMED_QUERY message.

    parse("SELECT Id FROM User WHERE IsActive = true LIMIT 5").limit   # 5
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Literal

Op = Literal["=", "!=", "<", ">", "<=", ">="]
LiteralKind = Literal["string", "number", "boolean", "null", "datetime", "date"]


@dataclass(frozen=True)
class Position:
    row: int
    column: int


class SoqlSyntaxError(Exception):
    def __init__(self, message: str, position: Position) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass(frozen=True)
class FieldPath:
    parts: tuple[str, ...]
    position: Position

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Value:
    kind: LiteralKind
    value: str | float | bool | datetime | date | None
    position: Position


@dataclass(frozen=True)
class Comparison:
    field: FieldPath
    op: Op
    value: Value


@dataclass(frozen=True)
class InList:
    field: FieldPath
    values: tuple[Value, ...]
    negated: bool


@dataclass(frozen=True)
class Not:
    inner: Condition


@dataclass(frozen=True)
class And:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Condition, ...]


Condition = Comparison | InList | Not | And | Or


@dataclass(frozen=True)
class OrderItem:
    field: FieldPath
    descending: bool
    nulls_first: bool


@dataclass(frozen=True)
class Query:
    fields: tuple[FieldPath, ...] | None
    """None for `SELECT COUNT()`."""
    object_name: str
    object_position: Position
    where: Condition | None
    order_by: tuple[OrderItem, ...]
    limit: int | None


# -- tokens -----------------------------------------------------------------------------------------

TokenKind = Literal["ident", "string", "number", "datetime", "date", "op", "punct", "eof"]


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str
    position: Position
    value: str | float | datetime | date | None = None

    def is_keyword(self, *words: str) -> bool:
        return self.kind == "ident" and self.text.upper() in words


_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?(Z|[+-]\d{2}:?\d{2})"
)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?![\dT])")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?![\w.])")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = ("!=", "<>", "<=", ">=", "=", "<", ">")
# `\_` and `\%` only mean something to LIKE; elsewhere Salesforce keeps them as written.
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\",
            "_": "\\_", "%": "\\%"}
_KEYWORDS = frozenset({"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "ORDER", "BY", "ASC", "DESC",
                       "NULLS", "FIRST", "LAST", "LIMIT", "TRUE", "FALSE", "NULL", "LIKE", "GROUP",
                       "HAVING", "OFFSET", "WITH", "INCLUDES", "EXCLUDES"})


def _timestamp(match: re.Match[str], at: Position) -> datetime:
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    millis = int((fraction or "0").ljust(3, "0"))
    if zone == "Z":
        tz = UTC
    else:
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                          millis * 1000, tzinfo=tz)
    except ValueError as exc:
        raise SoqlSyntaxError(f"invalid date time: {match.group(0)} ({exc})", at) from exc
    return moment.astimezone(UTC)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, row, line_start = 0, 1, 0
    while i < len(text):
        ch = text[i]
        at = Position(row, i - line_start + 1)
        if ch == "\n":
            i, row, line_start = i + 1, row + 1, i + 1
            continue
        if ch in " \t\r":
            i += 1
            continue
        if ch == "'":
            i, token = _string(text, i, at)
            tokens.append(token)
            continue
        if m := _DATETIME.match(text, i):
            tokens.append(Token("datetime", m.group(0), at, _timestamp(m, at)))
        elif m := _DATE.match(text, i):
            try:
                day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError as exc:
                raise SoqlSyntaxError(f"invalid date: {m.group(0)}", at) from exc
            tokens.append(Token("date", m.group(0), at, day))
        elif m := _NUMBER.match(text, i):
            tokens.append(Token("number", m.group(0), at, float(m.group(0))))
        elif m := _IDENT.match(text, i):
            tokens.append(Token("ident", m.group(0), at))
        elif op := next((o for o in _OPERATORS if text.startswith(o, i)), None):
            tokens.append(Token("op", "!=" if op == "<>" else op, at))
            i += len(op)
            continue
        elif ch in ",().":
            tokens.append(Token("punct", ch, at))
            i += 1
            continue
        else:
            raise SoqlSyntaxError(f"unexpected token: '{ch}'", at)
        i = m.end()
    tokens.append(Token("eof", "<EOF>", Position(row, len(text) - line_start + 1)))
    return tokens


def _string(text: str, start: int, at: Position) -> tuple[int, Token]:
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            escaped = text[i + 1 : i + 2]
            if escaped not in _ESCAPES:
                raise SoqlSyntaxError(
                    f"Invalid string literal '{text[start:i + 2]}'. Illegal character sequence '\\{escaped}' "
                    "in string literal.", at,
                )
            out.append(_ESCAPES[escaped])
            i += 2
            continue
        if ch == "'":
            return i + 1, Token("string", text[start : i + 1], at, "".join(out))
        if ch == "\n":
            break
        out.append(ch)
        i += 1
    raise SoqlSyntaxError(f"unexpected token: {text[start:i]!r} (a string literal is not closed)", at)


# -- parser -----------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.at = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.at]

    def advance(self) -> Token:
        token = self.tokens[self.at]
        if token.kind != "eof":
            self.at += 1
        return token

    def fail(self, token: Token | None = None) -> SoqlSyntaxError:
        token = token or self.current
        shown = token.text if token.kind == "eof" else f"'{token.text}'"
        return SoqlSyntaxError(f"unexpected token: {shown}", token.position)

    def expect_keyword(self, word: str) -> Token:
        if not self.current.is_keyword(word):
            raise self.fail()
        return self.advance()

    def expect_punct(self, ch: str) -> Token:
        if not (self.current.kind == "punct" and self.current.text == ch):
            raise self.fail()
        return self.advance()

    def name(self) -> Token:
        token = self.current
        if token.kind != "ident" or token.text.upper() in _KEYWORDS:
            raise self.fail()
        return self.advance()

    def query(self) -> Query:
        self.expect_keyword("SELECT")
        fields = self.select_list()
        self.expect_keyword("FROM")
        object_token = self.name()
        where = None
        if self.current.is_keyword("WHERE"):
            self.advance()
            where = self.condition()
        order_by: tuple[OrderItem, ...] = ()
        if self.current.is_keyword("ORDER"):
            self.advance()
            self.expect_keyword("BY")
            order_by = self.order_list()
        limit = None
        if self.current.is_keyword("LIMIT"):
            self.advance()
            token = self.current
            if token.kind != "number" or not token.text.isdigit():
                raise self.fail()
            self.advance()
            limit = int(token.text)
        if self.current.kind != "eof":
            raise self.fail()
        return Query(fields, object_token.text, object_token.position, where, order_by, limit)

    def select_list(self) -> tuple[FieldPath, ...] | None:
        if self.current.is_keyword("COUNT") and self.tokens[self.at + 1].text == "(":
            self.advance()
            self.expect_punct("(")
            self.expect_punct(")")
            return None
        fields = [self.field_path()]
        while self.current.kind == "punct" and self.current.text == ",":
            self.advance()
            fields.append(self.field_path())
        return tuple(fields)

    def field_path(self) -> FieldPath:
        first = self.name()
        parts = [first.text]
        while self.current.kind == "punct" and self.current.text == ".":
            self.advance()
            parts.append(self.name().text)
        return FieldPath(tuple(parts), first.position)

    def condition(self) -> Condition:
        items = [self.unary()]
        joiner: str | None = None
        while self.current.is_keyword("AND", "OR"):
            word = self.current.text.upper()
            if joiner is not None and word != joiner:
                # Salesforce refuses `a AND b OR c`: the grouping must be explicit.
                raise self.fail()
            joiner = word
            self.advance()
            items.append(self.unary())
        if joiner is None:
            return items[0]
        return And(tuple(items)) if joiner == "AND" else Or(tuple(items))

    def unary(self) -> Condition:
        if self.current.is_keyword("NOT"):
            self.advance()
            return Not(self.unary())
        if self.current.kind == "punct" and self.current.text == "(":
            self.advance()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Condition:
        field = self.field_path()
        token = self.current
        if token.kind == "op":
            self.advance()
            return Comparison(field, token.text, self.value())  # type: ignore[arg-type]
        negated = False
        if token.is_keyword("NOT"):
            self.advance()
            negated = True
            if not self.current.is_keyword("IN"):
                raise self.fail()
        if self.current.is_keyword("IN"):
            self.advance()
            self.expect_punct("(")
            values = [self.value()]
            while self.current.kind == "punct" and self.current.text == ",":
                self.advance()
                values.append(self.value())
            self.expect_punct(")")
            return InList(field, tuple(values), negated)
        raise self.fail()

    def value(self) -> Value:
        token = self.current
        if token.kind in ("string", "number", "datetime", "date"):
            self.advance()
            return Value(token.kind, token.value, token.position)  # type: ignore[arg-type]
        if token.is_keyword("TRUE", "FALSE"):
            self.advance()
            return Value("boolean", token.text.upper() == "TRUE", token.position)
        if token.is_keyword("NULL"):
            self.advance()
            return Value("null", None, token.position)
        raise self.fail()

    def order_list(self) -> tuple[OrderItem, ...]:
        items = [self.order_item()]
        while self.current.kind == "punct" and self.current.text == ",":
            self.advance()
            items.append(self.order_item())
        return tuple(items)

    def order_item(self) -> OrderItem:
        field = self.field_path()
        descending = False
        if self.current.is_keyword("ASC", "DESC"):
            descending = self.advance().text.upper() == "DESC"
        nulls_first = not descending
        if self.current.is_keyword("NULLS"):
            self.advance()
            if not self.current.is_keyword("FIRST", "LAST"):
                raise self.fail()
            nulls_first = self.advance().text.upper() == "FIRST"
        return OrderItem(field, descending, nulls_first)


def parse(text: str) -> Query:
    """Parse one SOQL query; raises `SoqlSyntaxError` with the offending position."""
    return _Parser(tokenize(text)).query()
