"""Google's `fields` masks in the fake, and the Sheets client's use of them.

Drive (https://developers.google.com/drive/api/guides/fields-parameter): without `fields` files.list gives each file
only kind, id, name and mimeType; with it, only what it names; an unknown field is a 400. Sheets
(https://developers.google.com/sheets/api/guides/field-masks): without `fields` spreadsheets.get gives the whole
Spreadsheet resource; with it, only what it names, dot-separated; an unknown field is a 400 in Sheets' own words.
The Sheets client asks each for every field it reads, and for no more than it reads."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from doki.connectors.http import Upstream
from doki.connectors.sheets import SheetsClient
from tests.fakes.google import CLIENT_ID, SCOPE_DRIVE_READONLY, FakeGoogle

REDIRECT_URI = "http://127.0.0.1:8000/auth/google/callback"


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle() as fake:
        fake.redirect_uris.add(REDIRECT_URI)
        ada = fake.add_account("ada@gmail.com")
        fake.add_spreadsheet(ada, "Budget", modified_time="2026-03-01T00:00:00.000Z")
        fake.add_spreadsheet(ada, "Plan", modified_time="2026-02-01T00:00:00.000Z")
        yield fake


def access_token(google: FakeGoogle) -> str:
    """What a user's consent and the code exchange give: an access token with drive.readonly."""
    query = urlencode(
        {"client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "response_type": "code", "scope": SCOPE_DRIVE_READONLY}
    )
    code = parse_qs(urlsplit(google.authorize(f"{google.url}/o/oauth2/v2/auth?{query}")).query)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": CLIENT_ID,
        "client_secret": google.client_secret,
    }
    token: str = httpx.post(f"{google.url}/token", data=form).json()["access_token"]
    return token


def files_list(google: FakeGoogle, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {access_token(google)}"}
    return httpx.get(f"{google.url}/drive/v3/files", params={"orderBy": "name", **params}, headers=headers)


def test_without_fields_each_file_has_only_kind_id_name_and_mime_type(google: FakeGoogle) -> None:
    body = files_list(google).json()
    assert set(body) == {"kind", "incompleteSearch", "files"}
    assert body["kind"] == "drive#fileList"
    assert [set(f) for f in body["files"]] == [{"kind", "id", "name", "mimeType"}] * 2
    assert [f["name"] for f in body["files"]] == ["Budget", "Plan"]


def test_without_fields_the_next_page_token_is_still_given(google: FakeGoogle) -> None:
    google.drive_page_size_cap = 1
    assert "nextPageToken" in files_list(google).json()


@pytest.mark.parametrize(
    ("fields", "file_fields", "top"),
    [
        ("files(id,name,modifiedTime,webViewLink)", {"id", "name", "modifiedTime", "webViewLink"}, {"files"}),
        # The original backend's spelling, spaces and all.
        ("files(id, name, modifiedTime, webViewLink)", {"id", "name", "modifiedTime", "webViewLink"}, {"files"}),
        ("nextPageToken, files/id, files/name", {"id", "name"}, {"files", "nextPageToken"}),
        ("kind,files(id)", {"id"}, {"kind", "files"}),
        ("files", {"kind", "id", "name", "mimeType", "modifiedTime", "webViewLink", "trashed"}, {"files"}),
        ("files(*)", {"kind", "id", "name", "mimeType", "modifiedTime", "webViewLink", "trashed"}, {"files"}),
        # A File field the fake never fills is a valid selection with nothing in it, as Drive omits empty fields.
        ("files(id,capabilities/canEdit)", {"id"}, {"files"}),
    ],
)
def test_with_fields_each_answer_has_only_what_they_name(
    google: FakeGoogle, fields: str, file_fields: set[str], top: set[str]
) -> None:
    google.drive_page_size_cap = 1
    response = files_list(google, fields=fields)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == top
    assert set(body["files"][0]) == file_fields


def test_a_mask_without_next_page_token_loses_the_next_page(google: FakeGoogle) -> None:
    google.drive_page_size_cap = 1
    assert "nextPageToken" not in files_list(google, fields="files(id)").json()


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ("files(id,capabilities,canAddChildren)", "canAddChildren"),  # Google's own example
        ("files(id,web_view_link)", "web_view_link"),
        ("spreadsheets", "spreadsheets"),
        ("id", "id"),  # a File field, asked of the FileList
    ],
)
def test_an_unknown_field_is_drives_400_naming_it(google: FakeGoogle, fields: str, named: str) -> None:
    response = files_list(google, fields=fields)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT"
    assert error["message"] == f"Invalid field selection {named}"
    assert error["errors"][0]["reason"] == "invalidParameter" and error["errors"][0]["location"] == "fields"


@pytest.mark.parametrize("fields", ["files(id", "files()", "files(id))", ",", "files(id,,name)"])
def test_a_mask_that_does_not_parse_is_a_400(google: FakeGoogle, fields: str) -> None:
    assert files_list(google, fields=fields).status_code == 400


def test_the_sheets_client_gets_every_field_it_reads_from_a_strict_drive_across_pages(google: FakeGoogle) -> None:
    # Were `fields` dropped from its request, modified_time and web_view_link would come back null; were
    # nextPageToken left out of it, only the first page.
    google.drive_page_size_cap = 1
    token = access_token(google)

    async def main() -> list[dict[str, Any]]:
        async with httpx.AsyncClient() as http:
            client = SheetsClient(Upstream(http), drive_url=f"{google.url}/drive/v3", sheets_url=f"{google.url}/v4")
            return await client.list_spreadsheets(token)

    listed = asyncio.run(main())
    ids = {s.name: s.id for s in google.spreadsheets.values()}
    assert listed == [
        {
            "id": ids[name],
            "name": name,
            "modified_time": modified,
            "web_view_link": f"https://docs.google.com/spreadsheets/d/{ids[name]}/edit?usp=drivesdk",
            "url": f"https://docs.google.com/spreadsheets/d/{ids[name]}/edit?usp=drivesdk",
        }
        for name, modified in (("Budget", "2026-03-01T00:00:00.000Z"), ("Plan", "2026-02-01T00:00:00.000Z"))
    ]
    assert google.calls("/drive/v3/files") == 2


# --- Sheets: spreadsheets.get --------------------------------------------------------------------------------


@pytest.fixture
def workbook(google: FakeGoogle) -> str:
    """A spreadsheet of two tabs, so the second has a sheet id and index that are not the defaults (0)."""
    ada = google.accounts[0]
    return google.add_spreadsheet(ada, "Workbook", {"Plan": [["step", "done"], ["one", True]], "Log": [["at"]]})


def spreadsheets_get(google: FakeGoogle, spreadsheet_id: str, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {access_token(google)}"}
    return httpx.get(f"{google.url}/v4/spreadsheets/{spreadsheet_id}", params=params, headers=headers)


def test_without_fields_spreadsheets_get_gives_the_whole_spreadsheet(google: FakeGoogle, workbook: str) -> None:
    body = spreadsheets_get(google, workbook).json()
    assert set(body) == {"spreadsheetId", "properties", "sheets", "spreadsheetUrl"}
    assert body["properties"] == {"title": "Workbook", "locale": "en_US"}
    assert [sheet["properties"] for sheet in body["sheets"]] == [
        {
            "sheetId": 0,
            "title": "Plan",
            "index": 0,
            "sheetType": "GRID",
            "gridProperties": {"rowCount": 1000, "columnCount": 26},
        },
        {
            "sheetId": 1000,
            "title": "Log",
            "index": 1,
            "sheetType": "GRID",
            "gridProperties": {"rowCount": 1000, "columnCount": 26},
        },
    ]


def tab_properties(whole: dict[str, Any], *names: str) -> list[dict[str, Any]]:
    """Each tab of `whole` with only `names` of its properties (all of them when none)."""
    return [
        {"properties": {k: v for k, v in sheet["properties"].items() if not names or k in names}}
        for sheet in whole["sheets"]
    ]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # What Doki's Sheets client asks for.
        (
            "spreadsheetId,properties.title,sheets.properties",
            lambda whole: {
                "spreadsheetId": whole["spreadsheetId"],
                "properties": {"title": "Workbook"},
                "sheets": tab_properties(whole),
            },
        ),
        # Google's own example (the field-masks guide).
        (
            "sheets.properties(sheetId,title,sheetType,gridProperties)",
            lambda whole: {"sheets": tab_properties(whole, "sheetId", "title", "sheetType", "gridProperties")},
        ),
        # `/` for `.`, and names separated_by_underscores for camelCase.
        ("sheets/properties/title", lambda whole: {"sheets": tab_properties(whole, "title")}),
        (
            "spreadsheet_id,sheets.properties.grid_properties.row_count",
            lambda whole: {
                "spreadsheetId": whole["spreadsheetId"],
                "sheets": [{"properties": {"gridProperties": {"rowCount": 1000}}}] * 2,
            },
        ),
        # An object named alone is all of it; `*` is every field.
        ("properties", lambda whole: {"properties": {"title": "Workbook", "locale": "en_US"}}),
        ("*", lambda whole: whole),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_with_fields_spreadsheets_get_gives_only_what_they_name(
    google: FakeGoogle, workbook: str, fields: str, expected: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    whole = spreadsheets_get(google, workbook).json()
    response = spreadsheets_get(google, workbook, fields=fields)
    assert response.status_code == 200, response.text
    assert response.json() == expected(whole)


EXPANDING = "Error expanding 'fields' parameter."


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ("sheets.sheetProperties", "sheets.sheetProperties"),  # recorded from the live API (r-lib/gargle)
        # Sheets, unlike Drive, reads the space as part of the name (ringo380/claude-google-sheets-mcp issue 2).
        ("properties, sheets.properties", " sheets.properties"),
        ("sheets.properties(sheetId,sheet_name)", "sheets.properties.sheet_name"),
        ("properties.title.text", "properties.title.text"),  # inside a string
        ("files(id)", "files.id"),  # Drive's, asked of Sheets: the whole path is named
    ],
)
def test_an_unknown_field_is_sheets_400_naming_its_path(
    google: FakeGoogle, workbook: str, fields: str, path: str
) -> None:
    response = spreadsheets_get(google, workbook, fields=fields)
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": 400,
            "message": "Request contains an invalid argument.",
            "status": "INVALID_ARGUMENT",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [{"description": f"{EXPANDING} Cannot find matching fields for path '{path}'."}],
                }
            ],
        }
    }


@pytest.mark.parametrize("fields", ["sheets(properties", "sheets()", ",", "sheets..properties", "sheets.properties)"])
def test_a_sheets_mask_that_does_not_parse_is_a_400(google: FakeGoogle, workbook: str, fields: str) -> None:
    response = spreadsheets_get(google, workbook, fields=fields)
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_the_sheets_client_asks_spreadsheets_get_for_only_the_fields_it_reads_and_gets_them(
    google: FakeGoogle, workbook: str
) -> None:
    # Without `fields` Sheets answers the whole resource: every tab's merges, formats, filters, charts. So the client
    # names what it reads: dropping the mask fails the first assertion; a mask missing a field the client reads
    # loses it from the schema (sheet_id 1000 would be 0, the row counts null); a misspelt one is Sheets' 400.
    token = access_token(google)

    async def main() -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            client = SheetsClient(Upstream(http), drive_url=f"{google.url}/drive/v3", sheets_url=f"{google.url}/v4")
            return await client.schema(token, workbook)

    schema = asyncio.run(main())
    [params] = [params for method, path, params in google.requests if path == f"/v4/spreadsheets/{workbook}"]
    assert params.get("fields") == ["spreadsheetId,properties.title,sheets.properties"]
    assert schema["title"] == "Workbook"
    assert [
        (tab["sheet_name"], tab["sheet_id"], tab["index"], tab["row_count"], tab["column_count"])
        for tab in schema["sheets"]
    ] == [("Plan", 0, 0, 1000, 26), ("Log", 1000, 1, 1000, 26)]
    assert [[column["name"] for column in tab["columns"]] for tab in schema["sheets"]] == [["step", "done"], ["at"]]
