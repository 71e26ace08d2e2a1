"""Google Sheets: the user's spreadsheets (Drive files.list), their tabs and columns with inferred types, and
preview rows (Sheets values API).

Values are read with `valueRenderOption=UNFORMATTED_VALUE` and `dateTimeRenderOption=FORMATTED_STRING`: numbers
and booleans arrive as JSON numbers and booleans, dates and times as the text the sheet shows. Text cells that
look like numbers, booleans or dates (typical of imported CSV) are recognised too, except numbers with leading
zeros, which are identifiers (postcodes, phone numbers) that a number type would corrupt.

Column types come from a bounded sample (`SAMPLE_ROWS` rows under the header): string, integer, number, boolean,
date, datetime, or empty when the sample has no value. Integers and numbers together make number; dates and
datetimes together make datetime; any other mix is string. A column is nullable when a sampled row leaves it empty.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from doki.connectors.errors import (
    ConnectorError,
    google_error,
    google_rate_limited,
    google_reconnect_required,
    rate_limit_reason,
)
from doki.connectors.google import DATA_SCOPES, GoogleUnauthorizedError

if TYPE_CHECKING:
    import httpx

    from doki.connectors.http import Upstream

SPREADSHEET_MIME_TYPE = "application/vnd.google-apps.spreadsheet"
SAMPLE_ROWS = 200
DRIVE_PAGE_SIZE = 1000  # Drive's maximum
# A Drive with more spreadsheets than this many pages is not listed further (and a looping page token ends).
MAX_DRIVE_PAGES = 100
# values:batchGet takes every range in the query string: a few tabs per request keeps URLs short.
RANGES_PER_BATCH = 20
# Google spreadsheet ids: letters, digits, '-' and '_'. Checked before an id goes into a URL path.
SPREADSHEET_ID_PATTERN = r"^[A-Za-z0-9_-]{1,200}$"

CellType = Literal["string", "integer", "number", "boolean", "date", "datetime", "empty"]


# --- type inference ------------------------------------------------------------------------------------------

_INTEGER = re.compile(r"[+-]?(?:0|[1-9][0-9]*)")
_NUMBER = re.compile(r"[+-]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_ISO_DATE = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})")
_LOCAL_DATE = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:\s*([AaPp][Mm]))?")
_ZONE = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})?")
_BOOLEANS = frozenset({"true", "false"})


def cell_type(value: Any) -> CellType:
    """The type of one cell value as the Sheets API returns it (JSON number, boolean, string, or missing)."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if math.isfinite(value) and value.is_integer() and abs(value) < 2**53 else "number"
    text = str(value).strip()
    if not text:
        return "empty"
    if text.lower() in _BOOLEANS:
        return "boolean"
    if _INTEGER.fullmatch(text):
        return "integer"
    if _NUMBER.fullmatch(text):
        return "number"
    return _temporal_type(text)


def _temporal_type(text: str) -> CellType:
    date_part, _, time_part = text.replace("T", " ", 1).partition(" ")
    if not _is_date(date_part):
        return "string"
    if not time_part:
        return "date"
    time_part = time_part.strip()
    match = _TIME.match(time_part)
    if match is None or not _ZONE.fullmatch(time_part[match.end() :].strip()):
        return "string"
    hours, minutes = int(match.group(1)), int(match.group(2))
    seconds = int(match.group(3) or 0)
    limit = 12 if match.group(4) else 23
    if hours > limit or minutes > 59 or seconds > 59:
        return "string"
    return "datetime"


def _is_date(text: str) -> bool:
    if match := _ISO_DATE.fullmatch(text):
        year, month, day = (int(g) for g in match.groups())
        return _valid_date(year, month, day)
    if match := _LOCAL_DATE.fullmatch(text):
        first, second, year = (int(g) for g in match.groups())
        # Month first (en-US) or day first (most other locales): a date either way.
        return _valid_date(year, first, second) or _valid_date(year, second, first)
    return False


def _valid_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def column_type(types: list[CellType]) -> CellType:
    """The type of a column whose sampled cells have `types` (empty cells included)."""
    present = {t for t in types if t != "empty"}
    if not present:
        return "empty"
    if len(present) == 1:
        return present.pop()
    if present <= {"integer", "number"}:
        return "number"
    if present <= {"date", "datetime"}:
        return "datetime"
    return "string"


@dataclass(frozen=True)
class Column:
    name: str
    index: int
    letter: str
    type: CellType
    nullable: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "index": self.index,
            "letter": self.letter,
            "type": self.type,
            "nullable": self.nullable,
        }


def column_letter(index: int) -> str:
    """A1 column letters of a 0-based index: 0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def header_names(header: list[Any], width: int) -> list[str]:
    """Column names from the header row: blank ones become the column letter, repeats get a _2, _3 suffix."""
    names: list[str] = []
    seen: set[str] = set()
    for index in range(width):
        raw = header[index] if index < len(header) else None
        name = _cell_text(raw) or column_letter(index)
        unique, counter = name, 2
        while unique in seen:
            unique, counter = f"{name}_{counter}", counter + 1
        seen.add(unique)
        names.append(unique)
    return names


def infer_columns(rows: list[list[Any]]) -> list[Column]:
    """Columns of a tab from its first rows: the header row, then the sample under it."""
    if not rows:
        return []
    header, sample = rows[0], rows[1:]
    width = max(len(row) for row in rows)
    names = header_names(header, width)
    columns = []
    for index, name in enumerate(names):
        types = [cell_type(row[index] if index < len(row) else None) for row in sample]
        columns.append(
            Column(
                name=name,
                index=index,
                letter=column_letter(index),
                type=column_type(types),
                # No sampled row at all says nothing is known: nullable.
                nullable=not types or "empty" in types,
            )
        )
    return columns


def _cell_text(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return "" if value is None else str(value).upper()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


# --- the API -------------------------------------------------------------------------------------------------


def a1_range(tab: str, rows: int) -> str:
    """The first `rows` rows of `tab`, in A1 notation with the tab name quoted (quotes doubled)."""
    quoted = tab.replace("'", "''")
    return f"'{quoted}'!1:{rows}"


class SheetsClient:
    """Drive files.list and the Sheets API, called with a user's access token."""

    def __init__(self, upstream: Upstream, *, drive_url: str, sheets_url: str) -> None:
        self._upstream = upstream
        self._drive_url = drive_url
        self._sheets_url = sheets_url

    async def list_spreadsheets(self, token: str) -> list[dict[str, Any]]:
        """Every spreadsheet the user can open, newest first, across all of Drive's pages."""
        files: list[dict[str, Any]] = []
        page_token: str | None = None
        seen_tokens: set[str] = set()
        for _ in range(MAX_DRIVE_PAGES):
            params = {
                "q": f"mimeType='{SPREADSHEET_MIME_TYPE}' and trashed=false",
                "orderBy": "modifiedTime desc",
                "pageSize": str(DRIVE_PAGE_SIZE),
                # Drive returns only what `fields` names (without it: kind, id, name, mimeType per file), so
                # every field read below is named here, and nextPageToken too, or paging would stop at page one.
                "fields": "nextPageToken,files(id,name,modifiedTime,webViewLink)",
                "includeItemsFromAllDrives": "true",
                "supportsAllDrives": "true",
            }
            if page_token:
                params["pageToken"] = page_token
            body = await self._get(f"{self._drive_url}/files", token, params, what="Drive")
            for item in body.get("files") or []:
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    link = _text(item.get("webViewLink"))
                    files.append(
                        {
                            "id": item["id"],
                            # The original backend's contract: name a string, the Drive link as web_view_link.
                            "name": _text(item.get("name")) or "",
                            "modified_time": _text(item.get("modifiedTime")),
                            "web_view_link": link,
                            "url": link or f"https://docs.google.com/spreadsheets/d/{item['id']}/edit",
                        }
                    )
            page_token = body.get("nextPageToken")
            if not page_token or page_token in seen_tokens:
                break
            seen_tokens.add(page_token)
        return files

    async def schema(self, token: str, spreadsheet_id: str, *, sample_rows: int = SAMPLE_ROWS) -> dict[str, Any]:
        """Every grid tab with its columns and their types, inferred from up to `sample_rows` rows each."""
        meta = await self._spreadsheet(token, spreadsheet_id)
        tabs = _grid_tabs(meta)
        values: list[list[list[Any]]] = []
        for start in range(0, len(tabs), RANGES_PER_BATCH):
            ranges = [a1_range(tab["title"], sample_rows + 1) for tab in tabs[start : start + RANGES_PER_BATCH]]
            body = await self._get(
                f"{self._sheets_url}/spreadsheets/{spreadsheet_id}/values:batchGet",
                token,
                [("ranges", r) for r in ranges] + _RENDER,
                what="Sheets",
            )
            value_ranges = body.get("valueRanges") or []
            values += [_rows(vr) for vr in value_ranges]
            values += [[] for _ in range(len(ranges) - len(value_ranges))]
        described = [
            {**tab, "columns": [c.as_dict() for c in infer_columns(rows)]}
            for tab, rows in zip(tabs, values, strict=True)
        ]
        return {
            "spreadsheet_id": spreadsheet_id,
            # The original backend's defaults: "Untitled" for a spreadsheet without a title, 0 for a tab without id.
            "title": _text((meta.get("properties") or {}).get("title")) or "Untitled",
            "sample_rows": sample_rows,
            # The original's name for the tabs, each with its sheet_name; `tabs` is the same list under ours.
            "sheets": [
                {
                    "sheet_name": tab["title"],
                    **tab,
                    "sheet_id": tab["sheet_id"] if isinstance(tab["sheet_id"], int) else 0,
                }
                for tab in described
            ],
            "tabs": described,
        }

    async def preview(self, token: str, spreadsheet_id: str, tab: str | None, limit: int) -> dict[str, Any]:
        """The first `limit` rows of `tab` (the first tab when None) as records keyed by the header's names."""
        if tab is None:
            tabs = _grid_tabs(await self._spreadsheet(token, spreadsheet_id))
            if not tabs:
                raise ConnectorError(
                    404, "tab_not_found", "the spreadsheet has no tab with cells", hint="pick another spreadsheet"
                )
            tab = str(tabs[0]["title"])
        url = f"{self._sheets_url}/spreadsheets/{spreadsheet_id}/values/{quote(a1_range(tab, limit + 1), safe='')}"
        rows = _rows(await self._get(url, token, _RENDER, what="Sheets", tab=tab))
        if not rows:
            return {"spreadsheet_id": spreadsheet_id, "tab": tab, "columns": [], "rows": []}
        width = max(len(row) for row in rows)
        names = header_names(rows[0], width)
        records = [{name: _value(row, index) for index, name in enumerate(names)} for row in rows[1:]]
        return {"spreadsheet_id": spreadsheet_id, "tab": tab, "columns": names, "rows": records}

    async def _spreadsheet(self, token: str, spreadsheet_id: str) -> dict[str, Any]:
        return await self._get(
            f"{self._sheets_url}/spreadsheets/{spreadsheet_id}",
            token,
            {"fields": "spreadsheetId,properties.title,sheets.properties", "includeGridData": "false"},
            what="Sheets",
        )

    async def _get(self, url: str, token: str, params: Any, *, what: str, tab: str | None = None) -> dict[str, Any]:
        response = await self._upstream.request(
            "GET", url, params=params, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
        )
        if response.status_code == 200:
            try:
                body = response.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                raise ConnectorError(
                    502, "google_error", f"{what} answered with something not a JSON object", hint="retry"
                )
            return body
        raise _api_error(response, what, tab, spreadsheet=what == "Sheets")


_RENDER = [("valueRenderOption", "UNFORMATTED_VALUE"), ("dateTimeRenderOption", "FORMATTED_STRING")]


def _api_error(response: httpx.Response, what: str, tab: str | None, *, spreadsheet: bool) -> Exception:
    """What a Drive or Sheets refusal means. `spreadsheet`: the request named a spreadsheet (Sheets API calls),
    so a 403 or 404 can be about it; Drive's list names none."""
    status, message = google_error(response)
    if response.status_code == 401:
        return GoogleUnauthorizedError(message)
    if response.status_code == 403 and rate_limit_reason(response):
        # Retried by Upstream already; still refused after its last try.
        return google_rate_limited(f"{what} answered 403 ({rate_limit_reason(response)}: {message}), every try")
    text = response.text.lower()
    if response.status_code == 403 and ("has not been used" in text or "service_disabled" in text):
        return ConnectorError(
            502,
            "google_api_disabled",
            f"the {what} API is disabled for this app's Google Cloud project: {message}",
            hint=f"enable the Google {what} API in the Google Cloud console for the OAuth client's project",
        )
    if response.status_code == 403 and "insufficient" in text and "scope" in text:
        return google_reconnect_required(
            f"the Google connection lacks a scope {what} needs: reconnect and allow Drive and Sheets", list(DATA_SCOPES)
        )
    if response.status_code == 400 and tab is not None:
        return ConnectorError(
            404,
            "tab_not_found",
            f"the spreadsheet has no tab named {tab!r}",
            hint="pick a tab from /connectors/sheets/schema",
        )
    if response.status_code == 403 and not spreadsheet:
        return ConnectorError(
            403,
            "google_forbidden",
            f"{what} refused this Google account ({status or 'no status'}: {message})",
            hint="the account's Google Workspace administrator may restrict Drive for apps: ask them, or connect "
            "another Google account",
        )
    if spreadsheet and response.status_code in (403, 404):
        # Not there and not shared with this user look the same from here, and should: either way, not found.
        return ConnectorError(
            404,
            "spreadsheet_not_found",
            "no such spreadsheet, or this Google account cannot open it",
            hint="pick a spreadsheet from /connectors/sheets/list",
        )
    return ConnectorError(
        502,
        "google_error",
        f"{what} answered {response.status_code} ({status or 'no status'}: {message})",
        hint="retry; if it persists, check the request",
    )


def _grid_tabs(meta: dict[str, Any]) -> list[dict[str, Any]]:
    tabs = []
    for sheet in meta.get("sheets") or []:
        props = sheet.get("properties") if isinstance(sheet, dict) else None
        if not isinstance(props, dict) or props.get("sheetType", "GRID") != "GRID":
            continue  # chart sheets and data-source sheets have no cells to read
        grid = props.get("gridProperties") or {}
        tabs.append(
            {
                "title": str(props.get("title", "")),
                "sheet_id": props.get("sheetId"),
                "index": props.get("index"),
                "row_count": grid.get("rowCount"),
                "column_count": grid.get("columnCount"),
            }
        )
    return sorted(tabs, key=lambda t: t["index"] if isinstance(t["index"], int) else 0)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _rows(value_range: Any) -> list[list[Any]]:
    values = value_range.get("values") if isinstance(value_range, dict) else None
    return [row if isinstance(row, list) else [] for row in values] if isinstance(values, list) else []


def _value(row: list[Any], index: int) -> Any:
    value = row[index] if index < len(row) else None
    return None if value == "" else value
