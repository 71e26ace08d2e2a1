"""Drive's `fields` in the fake, as Drive documents it (https://developers.google.com/drive/api/guides/fields-parameter):
without it files.list gives each file only kind, id, name and mimeType; with it, only what it names; an unknown
field is a 400. And the Sheets client asks for every field it reads, so it gets them from a Drive that strict."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
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
