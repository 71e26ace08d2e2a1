"""Monitoring filters (https://cloud.google.com/monitoring/api/v3/filters), parsed once into a predicate over a time
series' metric and resource.

Grammar, as the filters page gives it (adjacent terms are ANDed; NOT binds tightest, then OR, then AND: "OR binds
more tightly than AND in the Monitoring API's filter syntax", google/cloud/monitoring_v3/query.py):

    filter    := disjunct { ["AND"] disjunct }
    disjunct  := negation { "OR" negation }
    negation  := "NOT" negation | "(" filter ")" | SELECTOR ("=" | "!=") VALUE
    VALUE     := "string" | starts_with("s") | ends_with("s") | has_substring("s") | one_of("a", "b", ...)
                 | monitoring.regex.full_match("re")
    SELECTOR  := metric.type | resource.type | project | metric.label.KEY | resource.label.KEY

`metric.labels.KEY` and `resource.labels.KEY` are spelled either way, and a KEY may be quoted (`resource.label."x"`).
Comparisons are exact and case-sensitive, as the page says of `=`. The metric type a filter names is what
ListTimeSeries and the alerting conditions read (`metric_types`). What the emulator does not parse (group.id,
metadata labels, numeric comparisons) is refused with INVALID_ARGUMENT naming it, never read loosely.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from doki_cli.emulator.errors import ApiError, invalid_argument

# What a predicate reads: "metric.type", "resource.type", "project", "metric.label.K", "resource.label.K".
Fields = Mapping[str, str]
Predicate = Callable[[Fields], bool]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<op>!=|>=|<=|=|>|<|\(|\)|,)
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*(?:\."(?:[^"\\]|\\.)*")?)
    )""",
    re.VERBOSE,
)
_FUNCTIONS: dict[str, Callable[[str, list[str]], bool]] = {
    "starts_with": lambda value, args: value.startswith(args[0]),
    "ends_with": lambda value, args: value.endswith(args[0]),
    "has_substring": lambda value, args: args[0] in value,
    "one_of": lambda value, args: value in args,
    "monitoring.regex.full_match": lambda value, args: re.fullmatch(args[0], value) is not None,
}
_SINGLE_ARGUMENT = frozenset(_FUNCTIONS) - {"one_of"}
_SELECTOR = re.compile(r'(?P<kind>metric|resource)\.labels?\.(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<key>[A-Za-z0-9_]+))')


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


@dataclass
class Filter:
    """A parsed filter: `matches(fields)`, and the metric types its `metric.type = "…"` terms name."""

    text: str
    matches: Predicate
    metric_types: list[str] = field(default_factory=list)
    names_resource_type: bool = False  # a resource.type term restricts it


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text):
            if text[position:].strip() == "":
                break
            match = _TOKEN.match(text, position)
            if match is None:
                raise self.error(f"unexpected {text[position:].strip()[:20]!r}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.index = 0
        self.metric_types: list[str] = []
        self.names_resource_type = False

    def error(self, why: str) -> ApiError:
        # Google's words for a filter it cannot parse: 'Field filter had an invalid value of "…": Could not parse
        # filter "…"; syntax error at …' (prometheus-community/stackdriver_exporter#52).
        return invalid_argument(
            f'Field filter had an invalid value of "{self.text}": Could not parse filter "{self.text}"; {why}'
        )

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise self.error("the filter ends too soon")
        self.index += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token == ("word", word):
            self.index += 1
            return True
        return False

    def parse(self) -> Predicate:
        predicate = self.conjunction()
        if self.peek() is not None:
            raise self.error(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return predicate

    def conjunction(self) -> Predicate:
        terms = [self.disjunction()]
        while True:
            if self.keyword("AND"):
                terms.append(self.disjunction())
                continue
            token = self.peek()
            if token is None or token == ("op", ")"):
                break
            terms.append(self.disjunction())  # adjacent terms are ANDed
        return terms[0] if len(terms) == 1 else (lambda f: all(term(f) for term in terms))

    def disjunction(self) -> Predicate:
        terms = [self.negation()]
        while self.keyword("OR"):
            terms.append(self.negation())
        return terms[0] if len(terms) == 1 else (lambda f: any(term(f) for term in terms))

    def negation(self) -> Predicate:
        if self.keyword("NOT"):
            inner = self.negation()
            return lambda f: not inner(f)
        if self.peek() == ("op", "("):
            self.take()
            inner = self.conjunction()
            if self.take() != ("op", ")"):
                raise self.error("a parenthesis is not closed")
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        kind, selector = self.take()
        if kind != "word":
            raise self.error(f"expected a selector, not {selector!r}")
        name = self.selector(selector)
        kind, op = self.take()
        if kind != "op" or op not in ("=", "!="):
            raise self.error(f"{selector} must be followed by = or != (the emulator compares no numbers)")
        test = self.value()
        if name == "metric.type" and op == "=" and test.exact is not None:
            self.metric_types.append(test.exact)
        if name == "resource.type":
            self.names_resource_type = True

        def compare(fields: Fields) -> bool:
            value = fields.get(name)
            matched = value is not None and test.check(value)
            return matched if op == "=" else not matched

        return compare

    def selector(self, word: str) -> str:
        if word in ("metric.type", "resource.type", "project"):
            return word
        match = _SELECTOR.fullmatch(word)
        if match is None:
            raise self.error(
                f"the doki emulator reads metric.type, resource.type, project, metric.label.KEY and "
                f"resource.label.KEY, not {word}"
            )
        key = _unquote(f'"{match["quoted"]}"') if match["quoted"] is not None else match["key"]
        return f"{match['kind']}.label.{key}"

    def value(self) -> _Test:
        kind, text = self.take()
        if kind == "string":
            exact = _unquote(text)
            return _Test(lambda value: value == exact, exact)
        if kind != "word" or text not in _FUNCTIONS:
            raise self.error(f"expected a quoted string or one of {', '.join(_FUNCTIONS)}, not {text!r}")
        function = _FUNCTIONS[text]
        if self.take() != ("op", "("):
            raise self.error(f"{text} takes its arguments in parentheses")
        args: list[str] = []
        while True:
            kind, argument = self.take()
            if kind != "string":
                raise self.error(f"{text} takes quoted strings")
            args.append(_unquote(argument))
            kind, after = self.take()
            if after == ")":
                break
            if after != ",":
                raise self.error(f"unexpected {after!r} in {text}(…)")
        if text in _SINGLE_ARGUMENT and len(args) != 1:
            raise self.error(f"{text} takes one argument")
        return _Test(lambda value: function(value, args), None)


@dataclass(frozen=True)
class _Test:
    check: Callable[[str], bool]
    exact: str | None  # the value an equality names, when it is a plain string


def parse(text: str) -> Filter:
    """`text` parsed, or INVALID_ARGUMENT as Google refuses a filter it cannot read."""
    parser = _Parser(text)
    if not parser.tokens:
        raise invalid_argument('Field filter had an invalid value of "": the filter is empty')
    predicate = parser.parse()
    return Filter(text, predicate, parser.metric_types, parser.names_resource_type)


def fields_of(
    project: str,
    metric_type: str,
    metric_labels: Mapping[str, str],
    resource_type: str,
    resource_labels: Mapping[str, str],
) -> dict[str, str]:
    """What a filter reads of one time series."""
    fields = {"metric.type": metric_type, "resource.type": resource_type, "project": project}
    fields.update({f"metric.label.{key}": value for key, value in metric_labels.items()})
    fields.update({f"resource.label.{key}": value for key, value in resource_labels.items()})
    return fields
