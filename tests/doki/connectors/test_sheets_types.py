"""Type inference for spreadsheet columns: each cell as the Sheets API returns it, then the column from its cells."""

from __future__ import annotations

from typing import Any

import pytest

from doki.connectors.sheets import a1_range, cell_type, column_letter, column_type, header_names, infer_columns


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # JSON values, as UNFORMATTED_VALUE returns numbers and booleans
        (42, "integer"),
        (-7, "integer"),
        (0, "integer"),
        (42.0, "integer"),  # a whole number the API sent as a float
        (12.5, "number"),
        (float(2**53 - 1), "integer"),
        (float(2**53), "number"),  # from 2**53 on a float no longer holds every integer exactly
        (1e300, "number"),
        (float("nan"), "number"),
        (True, "boolean"),
        (False, "boolean"),
        (None, "empty"),
        # text, as imported CSV leaves it
        ("", "empty"),
        ("   ", "empty"),
        ("17", "integer"),
        ("-17", "integer"),
        ("+17", "integer"),
        ("007", "string"),  # leading zeros: an identifier, which a number would corrupt
        ("0", "integer"),
        ("3.14", "number"),
        ("-0.5", "number"),
        (".5", "number"),
        ("1e6", "number"),
        ("1,234", "string"),
        ("12%", "string"),
        ("TRUE", "boolean"),
        ("false", "boolean"),
        ("yes", "string"),
        # dates, as the sheet shows them (dateTimeRenderOption=FORMATTED_STRING)
        ("2026-01-31", "date"),
        ("2026/1/31", "date"),
        ("1/31/2026", "date"),  # en-US
        ("31/01/2026", "date"),  # day first
        ("31.01.2026", "date"),
        ("2026-02-30", "string"),  # no such day
        ("13/13/2026", "string"),
        ("2026-01", "string"),
        # datetimes
        ("2026-01-31T13:45:00Z", "datetime"),
        ("2026-01-31T13:45:00.123+02:00", "datetime"),
        ("2026-01-31 13:45", "datetime"),
        ("1/31/2026 13:45:00", "datetime"),
        ("1/31/2026 1:45:00 PM", "datetime"),
        ("2026-01-31 25:00", "string"),
        ("2026-01-31 13:45 tomorrow", "string"),
        ("1/31/2026 13:45:00 PM", "string"),  # 13 o'clock PM is no time
        ("hello", "string"),
        ("12:30", "string"),  # a time alone is no date
    ],
)
def test_each_cell_gets_the_type_its_value_shows(value: Any, expected: str) -> None:
    assert cell_type(value) == expected


@pytest.mark.parametrize(
    ("types", "expected"),
    [
        (["integer", "integer"], "integer"),
        (["integer", "number"], "number"),
        (["date", "datetime"], "datetime"),
        (["date", "date", "empty"], "date"),
        (["boolean", "integer"], "string"),
        (["date", "integer"], "string"),
        (["string", "integer"], "string"),
        (["empty", "empty"], "empty"),
        ([], "empty"),
    ],
)
def test_a_columns_type_is_the_narrowest_that_holds_all_its_cells(types: list[Any], expected: str) -> None:
    assert column_type(types) == expected


def test_columns_take_names_from_the_header_and_nullability_from_empty_cells() -> None:
    rows: list[list[Any]] = [
        ["id", "price", "active", "since", "notes"],
        [1, 9.5, True, "2026-01-01", "a"],
        [2, 10, False, "2026-01-02 10:00"],  # trailing cells omitted, as the Sheets API omits them
        [3, "", True, "2026-01-03", None],
    ]
    columns = [(c.name, c.type, c.nullable) for c in infer_columns(rows)]
    assert columns == [
        ("id", "integer", False),
        ("price", "number", True),
        ("active", "boolean", False),
        ("since", "datetime", False),
        ("notes", "string", True),
    ]


def test_a_tab_with_only_a_header_has_empty_nullable_columns() -> None:
    [column] = infer_columns([["name"]])
    assert (column.type, column.nullable) == ("empty", True)


def test_a_tab_without_cells_has_no_columns() -> None:
    assert infer_columns([]) == []


def test_data_beyond_the_header_gets_columns_named_by_their_letter() -> None:
    columns = infer_columns([["a"], [1, "x", None, 2]])
    assert [(c.name, c.letter, c.index) for c in columns] == [
        ("a", "A", 0),
        ("B", "B", 1),
        ("C", "C", 2),
        ("D", "D", 3),
    ]


def test_header_names_are_trimmed_unique_and_never_blank() -> None:
    assert header_names([" name ", "name", "", None, 2024, True, 1.0, "name"], 9) == [
        "name",
        "name_2",
        "C",
        "D",
        "2024",
        "TRUE",
        "1",
        "name_3",
        "I",
    ]


@pytest.mark.parametrize(
    ("index", "letters"), [(0, "A"), (25, "Z"), (26, "AA"), (51, "AZ"), (52, "BA"), (701, "ZZ"), (702, "AAA")]
)
def test_column_letters_follow_a1_notation(index: int, letters: str) -> None:
    assert column_letter(index) == letters


@pytest.mark.parametrize(
    ("tab", "expected"),
    [("Sheet1", "'Sheet1'!1:201"), ("Ada's tab", "'Ada''s tab'!1:201"), ("A!B:C", "'A!B:C'!1:201")],
)
def test_ranges_quote_the_tab_name(tab: str, expected: str) -> None:
    assert a1_range(tab, 201) == expected
