"""The error catalog: every code doki raises is in it, every code in it is raised, and docs/errors.md says the same."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from doki_cli.emulator.process import EmulatorCode
from doki_cli.errors import Code, DokiError
from tests.helpers import REPO

SOURCES = sorted((REPO / "doki_cli").rglob("*.py"))
DOC = (REPO / "docs" / "errors.md").read_text()


def _raised_codes(path: Path) -> Iterator[tuple[int, ast.expr]]:
    """The first argument of every DokiError made in `path` (directly, or by a subclass's __init__)."""
    text = path.read_text()
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        made = isinstance(node.func, ast.Name) and node.func.id == "DokiError"
        by_subclass = isinstance(node.func, ast.Attribute) and node.func.attr == "__init__" and "(DokiError)" in text
        if made or by_subclass:
            yield node.lineno, node.args[0]


def test_every_error_is_made_with_a_code_of_the_catalog_never_a_string() -> None:
    # The tests' fakes too: mypy reads only the product, and a string there fails only when the fake raises.
    strays = [
        f"{path.relative_to(REPO)}:{line}: {ast.unparse(code)}"
        for path in [*SOURCES, *sorted((REPO / "tests").rglob("*.py"))]
        for line, code in _raised_codes(path)
        if isinstance(code, ast.Constant)
    ]
    assert strays == []


def _emulator_codes() -> set[str]:
    """The codes of the emulator's own error (it imports nothing of doki): `doki emulator` reports them as doki's."""
    return {code.value for code in EmulatorCode}


def test_the_emulators_error_codes_are_in_the_catalog() -> None:
    # `doki emulator` looks each up by name in the catalog: a code missing there would be a KeyError, not an error.
    assert sorted(_emulator_codes() - {code.value for code in Code}) == []


def test_every_code_of_the_catalog_is_raised_somewhere() -> None:
    used = {
        name
        for path in SOURCES
        if path != REPO / "doki_cli" / "errors.py"
        for name in re.findall(r"\bCode\.([A-Z_]+)\b", path.read_text())
    } | {code.upper() for code in _emulator_codes()}
    assert [code.name for code in Code if code.name not in used] == []


def test_codes_are_distinct_snake_case_words_with_a_meaning_and_an_exit_code() -> None:
    assert len({code.value for code in Code}) == len(Code)
    for code in Code:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", code.value), code
        assert code.name == code.value.upper()
        assert code.meaning and not code.meaning.endswith("."), code
        assert code.exit_code in (1, 2, 3, 4, 5, 78, 124, 130), code


def test_docs_list_every_code_with_its_exit_code_and_meaning_as_the_catalog_does() -> None:
    rows = re.findall(r"^\| `([a-z_]+)` \| (\d+) \| (.+) \|$", DOC, flags=re.M)
    assert [(value, int(exit_code), meaning) for value, exit_code, meaning in rows] == [
        (code.value, code.exit_code, code.meaning)
        for code in Code  # in the enumeration's order
    ]


@pytest.mark.parametrize(
    ("code", "exit_code", "expected"),
    [(Code.SECRET_MISSING, None, 78), (Code.BAD_OPTION, None, 1), (Code.REVISION_NOT_READY, 3, 3)],
)
def test_an_error_exits_with_its_codes_exit_code_unless_the_command_says_otherwise(
    code: Code, exit_code: int | None, expected: int
) -> None:
    error = DokiError(code, "message", "hint", exit_code=exit_code)
    assert error.exit_code == expected
    assert error.as_dict() == {"code": code.value, "message": "message", "hint": "hint"}
