"""The Logging query language (the subset doki uses), parsed once into a predicate over a LogEntry's JSON form.

Grammar, with Google's precedence (NOT binds tightest, then OR, then AND; adjacent terms are ANDed):

    query       := disjunction { ["AND"] disjunction }
    disjunction := negation { "OR" negation }
    negation    := ("NOT" | "-") negation | primary
    primary     := "(" query ")" | FIELD OP values | log_id("ID") | VALUE
    values      := VALUE | "(" VALUE expression with AND, OR, NOT ")"
    OP          := "=" | "!=" | ">" | ">=" | "<" | "<=" | ":" | "=~" | "!~"

A bare VALUE (quoted or not) is a global restriction: a case-insensitive substring search over the payload
(textPayload, or every value in jsonPayload). Fields: logName, resource.type, resource.labels.K, labels.K, severity,
timestamp, receiveTimestamp, textPayload, jsonPayload.PATH, insertId, trace, spanId (snake_case spellings too; a
segment with dots or slashes is quoted: labels."a.b/c"). String comparisons ignore case, as Google's do; regular
expressions (=~, !~) do not. `FIELD:*` tests presence. `FIELD != V` is `NOT FIELD = V`, so it also matches entries
without the field. Anything else is refused with INVALID_ARGUMENT naming the part the emulator does not support.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from google.logging.type import log_severity_pb2  # type: ignore[import-untyped]  # ships .pyi, no py.typed

from doki_cli.emulator.errors import ApiError, invalid_argument

# Google's limit on a filter's length.
MAX_FILTER_LENGTH = 20_000

# LogSeverity names and numbers: DEFAULT=0 < DEBUG=100 < ... < EMERGENCY=800.
SEVERITY_LEVELS: dict[str, int] = {name: number for name, number in log_severity_pb2.LogSeverity.items()}
SEVERITY_NAMES: dict[int, str] = {number: name for name, number in SEVERITY_LEVELS.items()}

Entry = Mapping[str, Any]
Predicate = Callable[[Entry], bool]

_OPERATORS = ("!=", ">=", "<=", "=~", "!~", "=", ">", "<", ":")
_NEGATED = {"!=": "=", "!~": "=~"}
_KEYWORDS = ("AND", "OR", "NOT")
# Characters that end an unquoted word (Google: unquoted text must not contain special characters).
_SPECIAL = set('()"=!<>:~')
_MISSING = object()
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
_SUPPORTED_FIELDS = (
    "logName, resource.type, resource.labels.KEY, labels.KEY, severity, timestamp, receiveTimestamp, "
    "textPayload, jsonPayload.PATH, insertId, trace, spanId"
)


def parse_timestamp(text: str) -> int | None:
    """Nanoseconds since the epoch of an RFC 3339 time, or None when `text` is not one."""
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction, zulu, sign, offset_hours, offset_minutes = match.group(7, 8, 9, 10, 11)
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None
    seconds = calendar.timegm(moment.utctimetuple())
    if not zulu:
        offset = int(offset_hours) * 3600 + int(offset_minutes) * 60
        seconds -= offset if sign == "+" else -offset
    nanos = int((fraction or "").ljust(9, "0")[:9])
    return seconds * 1_000_000_000 + nanos


@dataclass
class _Token:
    kind: str  # "(", ")", "op", "word", "string", "keyword", "end"
    text: str
    start: int
    end: int
    segments: tuple[str, ...] = ()  # a word's dot-separated parts, quoted parts unquoted


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def tokens(self) -> list[_Token]:
        tokens: list[_Token] = []
        text = self.text
        while True:
            while self.pos < len(text) and text[self.pos].isspace():
                self.pos += 1
            if self.pos >= len(text):
                tokens.append(_Token("end", "", self.pos, self.pos))
                return tokens
            start = self.pos
            char = text[start]
            if char in "()":
                self.pos += 1
                tokens.append(_Token(char, char, start, self.pos))
            elif char == '"':
                value = self._quoted()
                tokens.append(_Token("string", value, start, self.pos))
            elif char in _SPECIAL:
                operator = next((op for op in _OPERATORS if text.startswith(op, start)), None)
                if operator is None:
                    raise _syntax_error(text, start, char)
                self.pos += len(operator)
                tokens.append(_Token("op", operator, start, self.pos))
            else:
                tokens.append(self._word())

    def _quoted(self) -> str:
        """A double-quoted string from the current position, with its backslash escapes resolved."""
        text = self.text
        start = self.pos
        self.pos += 1
        chars: list[str] = []
        # Other escapes keep their backslash, so regular expressions such as "\d+" need no doubling.
        escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
        while self.pos < len(text):
            char = text[self.pos]
            if char == "\\" and self.pos + 1 < len(text):
                following = text[self.pos + 1]
                chars.append(escapes.get(following, "\\" + following))
                self.pos += 2
            elif char == '"':
                self.pos += 1
                return "".join(chars)
            else:
                chars.append(char)
                self.pos += 1
        raise _syntax_error(text, start, '"', "the quoted string is never closed")

    def _word(self) -> _Token:
        """An unquoted word; quoted segments after a dot belong to it (labels."k8s-pod/app")."""
        text = self.text
        start = self.pos
        segments: list[str] = []
        current: list[str] = []
        while self.pos < len(text):
            char = text[self.pos]
            if char == '"' and self.pos > start and text[self.pos - 1] == ".":
                current.append(self._quoted())
            elif char.isspace() or char in _SPECIAL:
                break
            elif char == ".":
                segments.append("".join(current))
                current = []
                self.pos += 1
            else:
                current.append(char)
                self.pos += 1
        segments.append("".join(current))
        raw = text[start : self.pos]
        kind = "keyword" if raw in _KEYWORDS else "word"
        return _Token(kind, raw, start, self.pos, tuple(segments))


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _syntax_error(text: str, offset: int, token: str, reason: str = "") -> ApiError:
    line, column = _position(text, offset)
    where = f"Unparseable filter: syntax error at line {line}, column {column}, token '{token}'"
    return invalid_argument(f"{where}: {reason}" if reason else where)


@dataclass(frozen=True)
class _Value:
    """One right-hand value, pre-parsed for the field it is compared with."""

    raw: str
    folded: str
    quoted: bool
    number: float | None = None
    severity: int | None = None
    nanos: int | None = None
    pattern: re.Pattern[str] | None = None

    @property
    def wildcard(self) -> bool:
        return self.raw == "*" and not self.quoted

    @property
    def null(self) -> bool:
        return self.raw == "NULL_VALUE" and not self.quoted


ValueTest = Callable[[_Value], bool]
ValueExpr = Callable[[ValueTest], bool]


@dataclass(frozen=True)
class _Field:
    """A field path resolved against the entry's JSON form; `kind` chooses how values compare."""

    name: str
    path: tuple[str, ...]
    kind: str  # "value", "severity" or "timestamp"

    def get(self, entry: Entry) -> Any:
        node: Any = entry
        for part in self.path:
            if not isinstance(node, Mapping) or part not in node:
                return SEVERITY_NAMES[0] if self.kind == "severity" else _MISSING
            node = node[part]
        return node


# Fields without a sub-path, by their case- and underscore-insensitive spelling: (JSON name, kind).
_TOP_FIELDS: dict[str, tuple[str, str]] = {
    "logname": ("logName", "value"),
    "severity": ("severity", "severity"),
    "timestamp": ("timestamp", "timestamp"),
    "receivetimestamp": ("receiveTimestamp", "timestamp"),
    "textpayload": ("textPayload", "value"),
    "insertid": ("insertId", "value"),
    "trace": ("trace", "value"),
    "spanid": ("spanId", "value"),
}


def _resolve_field(token: _Token, text: str) -> _Field:
    segments = token.segments
    head = segments[0].replace("_", "").lower()
    rest = segments[1:]
    if any(not part for part in segments):
        raise _syntax_error(text, token.start, token.text, "a field name has an empty part")
    if head in _TOP_FIELDS and not rest:
        name, kind = _TOP_FIELDS[head]
        return _Field(token.text, (name,), kind)
    if head == "jsonpayload":
        return _Field(token.text, ("jsonPayload", *rest), "value")
    if head == "labels" and len(rest) <= 1:
        return _Field(token.text, ("labels", *rest), "value")
    if head == "resource" and len(rest) == 1 and rest[0].lower() == "type":
        return _Field(token.text, ("resource", "type"), "value")
    if head == "resource" and 1 <= len(rest) <= 2 and rest[0].lower() == "labels":
        return _Field(token.text, ("resource", "labels", *rest[1:]), "value")
    raise invalid_argument(
        f'Unsupported filter field "{token.text}": the doki emulator filters on {_SUPPORTED_FIELDS} only'
    )


def _format_number(number: float) -> str:
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)


def _to_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _ordered(left: Any, op: str, right: Any) -> bool:
    if op == "=":
        return bool(left == right)
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


def _compare_value(actual: Any, op: str, value: _Value) -> bool:
    """A JSON value (string, number, bool, null, list, object) against one filter value."""
    if isinstance(actual, list):
        return any(_compare_value(item, op, value) for item in actual)
    if actual is None:
        return value.null and op in ("=", ":")
    if isinstance(actual, Mapping):
        return False
    if isinstance(actual, bool):
        actual = "true" if actual else "false"
    if value.pattern is not None:
        text = _format_number(float(actual)) if isinstance(actual, float | int) else actual
        return value.pattern.search(text) is not None
    if isinstance(actual, float | int):
        if op != ":" and value.number is not None:
            return _ordered(float(actual), op, value.number)
        actual = _format_number(float(actual))
    folded = str(actual).casefold()
    if op == ":":
        return value.folded in folded
    return _ordered(folded, op, value.folded)


def _compare_severity(actual: Any, op: str, value: _Value) -> bool:
    name = actual if isinstance(actual, str) else SEVERITY_NAMES.get(int(actual), str(actual))
    if value.pattern is not None:
        return value.pattern.search(name) is not None
    level = SEVERITY_LEVELS.get(name, 0) if isinstance(actual, str) else int(actual)
    assert value.severity is not None  # parsed with the value, for every operator but the regular expressions
    return _ordered(level, "=" if op == ":" else op, value.severity)


def _compare_timestamp(actual: Any, op: str, value: _Value) -> bool:
    nanos = parse_timestamp(actual) if isinstance(actual, str) else None
    if nanos is None or value.nanos is None:
        return False
    return _ordered(nanos, op, value.nanos)


_COMPARE = {"value": _compare_value, "severity": _compare_severity, "timestamp": _compare_timestamp}


def _payload_contains(entry: Entry, value: _Value) -> bool:
    """A global restriction: does any payload value contain `value`, ignoring case?"""
    pending: list[Any] = [entry.get("textPayload"), entry.get("jsonPayload")]
    while pending:
        node = pending.pop()
        if isinstance(node, Mapping):
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
        else:
            text = _scalar_text(node)
            if text is not None and value.folded in text:
                return True
    return False


def _scalar_text(node: Any) -> str | None:
    """A JSON scalar as a global restriction searches it (case-folded), or None for null."""
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, float | int):
        return _format_number(float(node))
    if isinstance(node, str):
        return node.casefold()
    return None


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _Lexer(text).tokens()
        self.index = 0

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def take(self) -> _Token:
        token = self.peek()
        self.index += 1
        return token

    def error(self, token: _Token, reason: str) -> ApiError:
        shown = token.text if token.kind != "end" else "<end of filter>"
        return _syntax_error(self.text, token.start, shown, reason)

    def parse(self) -> Predicate:
        if self.peek().kind == "end":
            return lambda entry: True
        predicate = self.query()
        token = self.peek()
        if token.kind != "end":
            raise self.error(token, "unbalanced parentheses" if token.kind == ")" else "expected AND, OR or the end")
        return predicate

    def query(self) -> Predicate:
        terms = [self.disjunction()]
        while True:
            token = self.peek()
            if token.kind in ("end", ")"):
                break
            if token.kind == "keyword" and token.text == "AND":
                self.take()
            terms.append(self.disjunction())
        if len(terms) == 1:
            return terms[0]
        return lambda entry: all(term(entry) for term in terms)

    def disjunction(self) -> Predicate:
        terms = [self.negation()]
        while self.peek().kind == "keyword" and self.peek().text == "OR":
            self.take()
            terms.append(self.negation())
        if len(terms) == 1:
            return terms[0]
        return lambda entry: any(term(entry) for term in terms)

    def negation(self) -> Predicate:
        token = self.peek()
        if (token.kind == "keyword" and token.text == "NOT") or (token.kind == "word" and token.text == "-"):
            self.take()
        elif token.kind == "word" and token.text.startswith("-"):
            # "-severity>=ERROR": the rest of the word is the negated term.
            rest = _Lexer(token.text[1:]).tokens()[0]
            offset = token.start + 1
            self.tokens[self.index] = _Token(
                rest.kind, rest.text, rest.start + offset, rest.end + offset, rest.segments
            )
        else:
            return self.primary()
        inner = self.negation()
        return lambda entry: not inner(entry)

    def primary(self) -> Predicate:
        token = self.peek()
        if token.kind == "(":
            self.take()
            inner = self.query()
            closing = self.take()
            if closing.kind != ")":
                raise self.error(closing, "expected ')'")
            return inner
        if token.kind == "word" and self.peek(1).kind == "op":
            return self.comparison()
        if token.kind == "word" and self.peek(1).kind == "(" and self.peek(1).start == token.end:
            return self.function()
        if token.kind in ("word", "string"):
            self.take()
            if self.peek().kind == "op":
                raise self.error(self.peek(), "a field name cannot be quoted")
            value = _Value(token.text, token.text.casefold(), token.kind == "string")
            return lambda entry: _payload_contains(entry, value)
        raise self.error(token, "expected a term")

    def function(self) -> Predicate:
        name = self.take()
        self.take()  # "("
        argument = self.take()
        closing = self.take()
        if name.text != "log_id":
            raise invalid_argument(
                f"Unsupported filter function {name.text}(): the doki emulator supports log_id() only"
            )
        if argument.kind not in ("string", "word") or closing.kind != ")":
            raise self.error(argument if argument.kind not in ("string", "word") else closing, 'use log_id("ID")')
        suffix = "/logs/" + quote(argument.text, safe="")
        return lambda entry: str(entry.get("logName", "")).endswith(suffix)

    def comparison(self) -> Predicate:
        field_token = self.take()
        field = _resolve_field(field_token, self.text)
        operator = self.take().text
        base = _NEGATED.get(operator, operator)
        expression = self.values(field, base)
        compare = _COMPARE[field.kind]

        def test(entry: Entry) -> bool:
            actual = field.get(entry)

            def one(value: _Value) -> bool:
                if base == ":" and value.wildcard:
                    return actual is not _MISSING
                return actual is not _MISSING and compare(actual, base, value)

            return expression(one)

        if base != operator:
            return lambda entry: not test(entry)
        return test

    def values(self, field: _Field, op: str) -> ValueExpr:
        token = self.peek()
        if token.kind != "(":
            value = self.value(field, op)
            return lambda test: test(value)
        self.take()
        expression = self.value_query(field, op)
        closing = self.take()
        if closing.kind != ")":
            raise self.error(closing, "expected ')'")
        return expression

    def value_query(self, field: _Field, op: str) -> ValueExpr:
        terms = [self.value_disjunction(field, op)]
        while self.peek().kind not in (")", "end"):
            if self.peek().kind == "keyword" and self.peek().text == "AND":
                self.take()
            terms.append(self.value_disjunction(field, op))
        if len(terms) == 1:
            return terms[0]
        return lambda test: all(term(test) for term in terms)

    def value_disjunction(self, field: _Field, op: str) -> ValueExpr:
        terms = [self.value_negation(field, op)]
        while self.peek().kind == "keyword" and self.peek().text == "OR":
            self.take()
            terms.append(self.value_negation(field, op))
        if len(terms) == 1:
            return terms[0]
        return lambda test: any(term(test) for term in terms)

    def value_negation(self, field: _Field, op: str) -> ValueExpr:
        token = self.peek()
        if token.kind == "keyword" and token.text == "NOT":
            self.take()
            inner = self.value_negation(field, op)
            return lambda test: not inner(test)
        if token.kind == "(":
            return self.values(field, op)
        value = self.value(field, op)
        return lambda test: test(value)

    def value(self, field: _Field, op: str) -> _Value:
        token = self.take()
        if token.kind not in ("word", "string"):
            raise self.error(token, f"expected a value after {field.name} {op}")
        raw = token.text
        quoted = token.kind == "string"
        if op == ":" and raw == "*" and not quoted:
            return _Value(raw, raw, quoted)
        if op == "=~" and field.kind == "timestamp":
            raise invalid_argument(
                f"Unsupported filter: {field.name} takes =, !=, <, <=, > or >=, not regular expressions"
            )
        if op == "=~":
            try:
                return _Value(raw, raw, quoted, pattern=re.compile(raw))
            except re.error as err:
                raise invalid_argument(f'Invalid regular expression "{raw}" in filter: {err}') from None
        if field.kind == "severity":
            level = SEVERITY_LEVELS.get(raw.upper())
            if level is None and raw.isdigit():
                level = int(raw)
            if level is None:
                names = ", ".join(SEVERITY_LEVELS)
                raise invalid_argument(f'Invalid severity "{raw}" in filter: use one of {names}, or a number')
            return _Value(raw, raw.casefold(), quoted, severity=level)
        if field.kind == "timestamp":
            if op == ":":
                raise invalid_argument(f"Unsupported filter: {field.name} takes =, !=, <, <=, > or >=, not ':'")
            nanos = parse_timestamp(raw)
            if nanos is None:
                raise invalid_argument(
                    f'Invalid timestamp "{raw}" in filter: use RFC 3339, e.g. "2024-05-01T12:00:00Z"'
                )
            return _Value(raw, raw.casefold(), quoted, nanos=nanos)
        return _Value(raw, raw.casefold(), quoted, number=_to_float(raw))


class LogFilter:
    """A parsed filter: `matches(entry)` tests a LogEntry in its JSON form (camelCase keys, as protojson gives)."""

    def __init__(self, text: str) -> None:
        if len(text) > MAX_FILTER_LENGTH:
            raise invalid_argument(
                f"Filter is {len(text)} characters long; the maximum is {MAX_FILTER_LENGTH} characters"
            )
        self.text = text
        self._predicate = _Parser(text).parse()

    def matches(self, entry: Entry) -> bool:
        return self._predicate(entry)


def parse(text: str) -> LogFilter:
    """Parse `text` once; INVALID_ARGUMENT names the part that is malformed or not supported."""
    return LogFilter(text)
