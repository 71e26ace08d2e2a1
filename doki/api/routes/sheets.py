"""Google Sheets routes: the signed-in user's spreadsheets, their tabs and columns with types, and preview rows.

Every route reads with the user's own Google connection (refreshed as needed). Not connected, or connected
without Drive and Sheets access, answers 409 with a body saying to connect Google; Google failing answers 503.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from doki.api.deps import PrincipalDep, UpstreamsDep
from doki.api.errors import error_responses
from doki.api.routes.google import http_error
from doki.connectors import Upstreams
from doki.connectors.errors import ConnectorError
from doki.connectors.sheets import SPREADSHEET_ID_PATTERN

router = APIRouter(prefix="/connectors/sheets", tags=["sheets"])

T = TypeVar("T")
SpreadsheetId = Annotated[
    str,
    Query(
        description="the spreadsheet's id, as /connectors/sheets/list gives it",
        pattern=SPREADSHEET_ID_PATTERN,
    ),
]
_NEEDS_GOOGLE = error_responses(
    {
        409: "Google not connected, or connected without Drive and Sheets: connect Google",
        429: "google_rate_limited: Google keeps refusing for now, retry later",
        502: "Google answered something unexpected, or its Drive or Sheets API is disabled for the OAuth client",
        503: "Google failing or unreachable: retry later",
    }
)


class SpreadsheetOut(BaseModel):
    """One spreadsheet: the original backend's `SpreadsheetInfo` fields (`id`, `name`, `modified_time`,
    `web_view_link`), and `url` beside them, always set."""

    id: str
    name: str = Field(description="the file's name in Drive (empty when Drive gives none)")
    modified_time: str | None = Field(description="RFC 3339, as Drive gives it")
    web_view_link: str | None = Field(description="Drive's link to open it in a browser, when Drive gives one")
    url: str = Field(description="web_view_link, or the spreadsheet's docs.google.com link when Drive gives none")


class ColumnOut(BaseModel):
    name: str
    index: int
    letter: str
    type: Literal["string", "integer", "number", "boolean", "date", "datetime", "empty"]
    nullable: bool


class TabOut(BaseModel):
    title: str
    sheet_id: int | None
    index: int | None
    row_count: int | None
    column_count: int | None
    columns: list[ColumnOut]


class SheetOut(BaseModel):
    """A tab under the original backend's names (`sheet_name`, `sheet_id`, `columns` of `{name, index}`), with
    the column types and the tab's other fields beside them."""

    sheet_name: str
    sheet_id: int = Field(description="Google's sheetId; 0 when Google gives none, as the original backend said")
    title: str = Field(description="the same as sheet_name")
    index: int | None
    row_count: int | None
    column_count: int | None
    columns: list[ColumnOut]


class SchemaOut(BaseModel):
    spreadsheet_id: str
    title: str = Field(description='the spreadsheet\'s title; "Untitled" when it has none')
    sample_rows: int = Field(description="at most this many rows under the header were read to infer types")
    sheets: list[SheetOut] = Field(description="the tabs, in order, under the original backend's names")
    tabs: list[TabOut] = Field(description="the same tabs under this backend's names")


class PreviewOut(BaseModel):
    spreadsheet_id: str
    tab: str
    columns: list[str]
    rows: list[dict[str, Any]]


@router.get(
    "/list",
    response_model=list[SpreadsheetOut],
    summary="The user's spreadsheets, newest first: a JSON array, as the original backend answered",
    responses={
        **error_responses({403: "google_forbidden: Google refuses Drive to this account (a Workspace policy)"}),
        **_NEEDS_GOOGLE,
    },
)
async def list_spreadsheets(principal: PrincipalDep, upstreams: UpstreamsDep) -> list[SpreadsheetOut]:
    sheets = upstreams.sheets()
    files = await _with_google(upstreams, principal.user_id, sheets.list_spreadsheets)
    return [SpreadsheetOut.model_validate(file) for file in files]


@router.get(
    "/schema",
    response_model=SchemaOut,
    summary="Tabs and columns of a spreadsheet, with inferred types",
    responses={**error_responses({404: "no such spreadsheet, or not shared with the user"}), **_NEEDS_GOOGLE},
)
async def schema(principal: PrincipalDep, upstreams: UpstreamsDep, spreadsheet_id: SpreadsheetId) -> SchemaOut:
    sheets = upstreams.sheets()
    body = await _with_google(upstreams, principal.user_id, lambda token: sheets.schema(token, spreadsheet_id))
    return SchemaOut.model_validate(body)


@router.get(
    "/preview",
    response_model=PreviewOut,
    summary="The first rows of a tab, as records keyed by the header",
    responses={**error_responses({404: "no such spreadsheet or tab"}), **_NEEDS_GOOGLE},
)
async def preview(
    principal: PrincipalDep,
    upstreams: UpstreamsDep,
    spreadsheet_id: SpreadsheetId,
    tab: Annotated[str | None, Query(min_length=1, max_length=100, description="default: the first tab")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> PreviewOut:
    sheets = upstreams.sheets()
    body = await _with_google(
        upstreams, principal.user_id, lambda token: sheets.preview(token, spreadsheet_id, tab, limit)
    )
    return PreviewOut.model_validate(body)


async def _with_google(upstreams: Upstreams, user_id: str, call: Callable[[str], Awaitable[T]]) -> T:
    try:
        with upstreams.google_deadline():
            return await upstreams.google().run(user_id, call)
    except ConnectorError as failure:
        raise http_error(failure) from None
