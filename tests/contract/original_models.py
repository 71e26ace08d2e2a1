"""The original Doki backend's data shapes, transcribed from its source, for the contract suite to hold ours to.

Source: the public repository Tsu-kimi/Doki-Backend at commit 3beecd6df8800d628cd3151f55d3189551b4724f (its HEAD,
"refactor: simplify secret handling to use direct environment variables instead of Secret Manager", 2025-10-18):
- `app/models/connectors.py`: SpreadsheetInfo, SheetColumn, SheetTab, SpreadsheetSchema, SupabaseConnectionRequest,
  SupabaseConnectionResponse, TableColumn, TableSchema, as written there (fields, types, defaults, constraints;
  descriptions left out);
- `app/models/auth.py`: SignUpRequest, SignInRequest, AuthResponse, SignOutResponse, likewise;
- `app/models/agent.py`: InterpretRequest, the body of the route this backend dropped;
- the bodies its routes returned as dicts, not through a model, written here as models of what those dicts held:
  RootResponse (`app/main.py`, `root`), AuthUser (`app/api/auth.py`, the `user` of `signup` and `signin`),
  GoogleCallbackUser and GoogleCallbackResponse (`app/api/auth.py`, `google_callback`), SupabaseTestResponse
  (`app/api/connectors.py`, `test_supabase`);
- ErrorBody: the body of FastAPI's `HTTPException`, the only way the original answered an error (`{"detail": str}`),
  and ValidationErrorBody, FastAPI's 422 for a request its models refused (FastAPI's `HTTPValidationError`).

Written from the original, not from this backend: where ours differs, the suite says so in the open.

One change: the original typed `email` as pydantic's `EmailStr`, which needs the email-validator package, not one
this project installs; here it is `str`. It only checks addresses the suite itself writes, all of them valid.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

# --- app/models/connectors.py ----------------------------------------------------------------------------------


class SpreadsheetInfo(BaseModel):
    id: str
    name: str
    modified_time: str | None = None
    web_view_link: str | None = None


class SheetColumn(BaseModel):
    name: str
    index: int


class SheetTab(BaseModel):
    sheet_name: str
    sheet_id: int
    columns: list[SheetColumn] = Field(default_factory=list)


class SpreadsheetSchema(BaseModel):
    spreadsheet_id: str
    title: str
    sheets: list[SheetTab]


class SupabaseConnectionRequest(BaseModel):
    project_url: str
    anon_key: str | None = None
    service_role_key: str


class SupabaseConnectionResponse(BaseModel):
    success: bool
    message: str
    connection_id: str | None = None


class TableColumn(BaseModel):
    name: str
    type: str
    is_nullable: bool = True
    default_value: str | None = None


class TableSchema(BaseModel):
    table_name: str
    schema_name: str = "public"
    columns: list[TableColumn]


# --- app/models/auth.py ----------------------------------------------------------------------------------------


class SignUpRequest(BaseModel):
    email: str  # EmailStr in the original: see the module's docstring
    password: str = Field(min_length=6)
    display_name: str = Field(min_length=1)


class SignInRequest(BaseModel):
    email: str  # EmailStr in the original
    password: str


class AuthResponse(BaseModel):
    status: str
    access_token: str
    refresh_token: str | None = None
    user: dict  # as untyped as the original's; AuthUser says what its routes put in it
    message: str


class SignOutResponse(BaseModel):
    status: str
    message: str


# --- app/models/agent.py ---------------------------------------------------------------------------------------


class InterpretRequest(BaseModel):
    prompt: str


# --- the dicts the original's routes returned --------------------------------------------------------------------


class RootResponse(BaseModel):
    """`GET /`: `{"message": "Doki Backend up"}`."""

    message: str


class AuthUser(BaseModel):
    """`AuthResponse.user` as `signup` and `signin` filled it: `display_name` the sign-up's, or the user metadata's
    (`""` when it has none)."""

    id: str
    email: str
    display_name: str


class GoogleCallbackUser(BaseModel):
    id: str
    email: str


class GoogleCallbackResponse(BaseModel):
    """`GET /auth/google/callback`: `status` "authenticated", `access_token` the Supabase session's."""

    status: str
    access_token: str
    user: GoogleCallbackUser
    message: str


class SupabaseTestResponse(BaseModel):
    """`GET /connectors/supabase/test`, always a 200: connected, or disconnected (none, or one that failed)."""

    status: Literal["connected", "disconnected"]
    message: str


# --- FastAPI's error bodies --------------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    """Every `HTTPException` the original raised, and FastAPI's own (404 "Not Found", ...)."""

    detail: str


class ValidationError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorBody(BaseModel):
    """FastAPI's 422 for a request the route's models refuse."""

    detail: list[ValidationError]


# Every route the original served (app/main.py and its three routers), as method and path.
ORIGINAL_ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", "/"),
    ("POST", "/auth/signup"),
    ("POST", "/auth/signin"),
    ("POST", "/auth/signout"),
    ("GET", "/auth/google/login"),
    ("GET", "/auth/google/callback"),
    ("GET", "/connectors/sheets/list"),
    ("GET", "/connectors/sheets/schema"),
    ("POST", "/connectors/supabase/connect"),
    ("GET", "/connectors/supabase/test"),
    ("GET", "/connectors/supabase/list"),
    ("POST", "/agent/interpret"),
)
