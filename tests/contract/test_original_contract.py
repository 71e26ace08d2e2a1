"""Issue 20's contract: a frontend written for the original Doki backend works against this one.

Every route the original served is called as its frontend called it (requests built from the original's own request
models, tests/contract/original_models.py, transcribed from its source), on this backend wired to the fakes: in
production, and in development too for the cases about tokens and sign-out, the only ones where the two environments
answer apart (tests/contract/conftest.py says why). Each success body is read strictly as the original's response
model: every field it had present (none filled from the model's default), with the same JSON type (a string stays a
string, an int an int, an array an array), this backend's own fields allowed beside them. Every error is the
original's `{"detail": "<text>"}`.

Where this backend answers differently on purpose, the test asserts the difference itself and that
docs/migrating-from-the-original.md tells a frontend about it: every row of its table of status codes that differ, and
each of its small differences. Two of those the fakes do not produce by themselves, a chart sheet and a Google ID token
without an email, so their tests extend the fakes for the case (`with_a_chart_sheet`, `without_email`).
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import httpx
import jwt
import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from tests.contract.conftest import PROJECT_ANON, PROJECT_SECRET
from tests.contract.original_models import (
    ORIGINAL_ROUTES,
    AuthResponse,
    AuthUser,
    ErrorBody,
    GoogleCallbackResponse,
    InterpretRequest,
    RootResponse,
    SignInRequest,
    SignOutResponse,
    SignUpRequest,
    SpreadsheetInfo,
    SpreadsheetSchema,
    SupabaseConnectionRequest,
    SupabaseConnectionResponse,
    SupabaseTestResponse,
    TableSchema,
    ValidationErrorBody,
)
from tests.doki.api.google_harness import Backend, account, backend
from tests.fakes.google import Account, FakeGoogle
from tests.fakes.postgrest import FakePostgrest
from tests.fakes.supabase_auth import FakeSupabaseAuth
from tests.helpers import REPO, secret

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

PASSWORD = secret("the contract user's password", "correct horse battery staple")
GUIDE = REPO / "docs" / "migrating-from-the-original.md"


# --- reading answers as the original's ---------------------------------------------------------------------------


def original(model: type[M], response: httpx.Response) -> M:
    """A 200 whose body is the original's `model`, read strictly (JSON types as they are, none coerced) and whole."""
    assert response.status_code == 200, response.text
    return whole(model.model_validate_json(response.text, strict=True))


def original_list(model: type[M], response: httpx.Response) -> list[M]:
    """A 200 whose body is a bare array of the original's `model`, read strictly and whole."""
    assert response.status_code == 200, response.text
    return whole(TypeAdapter(list[model]).validate_json(response.text, strict=True))


def original_dict(model: type[M], value: object) -> M:
    """An object inside a body (AuthResponse's untyped `user`) read as the original's `model`, strictly and whole."""
    return whole(model.model_validate(value, strict=True))


def whole(read: T, where: str = "the body") -> T:
    """`read` (a model, or a list of them), having checked that the JSON held every field of every model in it.

    Validation fills a field the JSON lacks from its default (`web_view_link: str | None = None`), so a body without
    it would pass; but the original always sent it: FastAPI writes every field of a `response_model` (`null` for
    None), and the routes that returned dicts wrote every key. A frontend reading `table.schema_name` gets undefined
    where it got a string. Pydantic records which fields the input set (`model_fields_set`): each must be all."""
    if isinstance(read, BaseModel):
        fields = type(read).model_fields
        missing = [name for name in fields if name not in read.model_fields_set]
        assert not missing, f"{where} lacks {missing}, which the original always sent"
        for name in fields:
            whole(getattr(read, name), f"{where}.{name}")
    elif isinstance(read, list):
        for index, item in enumerate(read):
            whole(item, f"{where}[{index}]")
    return read


def error(response: httpx.Response, status: int) -> str:
    """An error answer of `status` whose body is the original's `{"detail": str}`; its detail."""
    assert response.status_code == status, response.text
    return ErrorBody.model_validate_json(response.text, strict=True).detail


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- what the migration guide says -------------------------------------------------------------------------------


def status_difference(case: str) -> tuple[str, str]:
    """The guide's (original, Doki) cells in its table of status codes that differ, for the row of `case`."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in GUIDE.read_text().splitlines()
        if line.lstrip().startswith("|")
    ]
    found = [(row[1], row[2]) for row in rows if len(row) == 3 and row[0].startswith(case)]
    assert found, f"the migration guide's table of status codes has no row for {case!r}"
    return found[0]


def guide_says(*phrases: str) -> bool:
    """Whether one paragraph or list item of the guide (its lines joined) holds every one of `phrases`."""
    items = re.split(r"\n(?=\s*- )|\n\s*\n", GUIDE.read_text())
    return any(all(phrase in " ".join(item.split()) for phrase in phrases) for item in items)


# --- the original's flows ----------------------------------------------------------------------------------------


def sign_up(doki: Backend, email: str = "grace@example.com", display_name: str = "Grace Hopper") -> httpx.Response:
    request = SignUpRequest(email=email, password=PASSWORD, display_name=display_name)
    return doki.client.post("/auth/signup", json=request.model_dump())


def signed_up(doki: Backend, email: str = "grace@example.com") -> str:
    """A user signed up by email (Supabase confirming nothing, as the harness sets it up): their access token."""
    body = original(AuthResponse, sign_up(doki, email))
    assert body.status == "authenticated"
    return body.access_token


def signed_in_with_google(doki: Backend) -> str:
    """The original's Google flow (login, Google's consent, the callback's JSON): the access token it gave."""
    return original(GoogleCallbackResponse, doki.sign_in_with_google()).access_token


def ada(doki: Backend) -> Account:
    """The Google account the fake's consent screen signs in with."""
    return account(doki.google, "ada@gmail.com")


def connect(
    doki: Backend, token: str, project: FakePostgrest, service_role_key: str = PROJECT_SECRET
) -> httpx.Response:
    request = SupabaseConnectionRequest(
        project_url=project.url, anon_key=PROJECT_ANON, service_role_key=service_role_key
    )
    return doki.client.post("/connectors/supabase/connect", json=request.model_dump(), headers=bearer(token))


# --- every route -------------------------------------------------------------------------------------------------


def test_every_route_of_the_original_is_served_but_the_agent_placeholder(doki: Backend) -> None:
    paths = doki.client.get("/openapi.json").json()["paths"]
    served = {(method.upper(), path) for path, operations in paths.items() for method in operations}
    assert [route for route in ORIGINAL_ROUTES if route not in served] == [("POST", "/agent/interpret")]


def test_the_root_answers_the_originals_greeting(doki: Backend) -> None:
    assert original(RootResponse, doki.client.get("/")).message == "Doki Backend up"


# --- POST /auth/signup -------------------------------------------------------------------------------------------


def test_sign_up_with_email_confirmation_on_answers_the_originals_pending_confirmation(doki: Backend) -> None:
    doki.supabase.confirm_email = True
    body = original(AuthResponse, sign_up(doki))
    assert (body.status, body.access_token, body.refresh_token) == ("pending_confirmation", "", None)
    user = original_dict(AuthUser, body.user)
    assert (user.id, user.email, user.display_name) == (
        doki.supabase.users["grace@example.com"].id,
        "grace@example.com",
        "Grace Hopper",
    )
    assert body.message == "Signup successful! Please check your email to confirm your account."


def test_sign_up_without_email_confirmation_answers_the_originals_authenticated_body(doki: Backend) -> None:
    body = original(AuthResponse, sign_up(doki))
    assert body.status == "authenticated" and body.message == "Signup successful! You are now logged in."
    assert body.access_token and isinstance(body.refresh_token, str) and body.refresh_token
    user = original_dict(AuthUser, body.user)
    assert (user.email, user.display_name) == ("grace@example.com", "Grace Hopper")
    # The token is the one to send on the original's other routes.
    tested = doki.client.get("/connectors/supabase/test", headers=bearer(body.access_token))
    assert original(SupabaseTestResponse, tested).status == "disconnected"


def test_sign_up_with_an_email_already_registered_is_the_originals_400(doki: Backend) -> None:
    signed_up(doki)
    assert error(sign_up(doki), 400) == "Email already registered"


def test_a_repeated_sign_up_with_email_confirmation_on_answers_as_a_new_one_as_supabase_tells_nothing(
    doki: Backend,
) -> None:
    # Supabase's default (confirmation on) answers a repeated sign-up 200 with a stand-in user, not an error, so that
    # signing up does not tell who has an account: nor can Doki's answer, and it is the pending one, not the 400.
    doki.supabase.confirm_email = True
    grace = doki.supabase.add_user("grace@example.com", PASSWORD)  # her account, confirmed
    body = original(AuthResponse, sign_up(doki))
    assert (body.status, body.access_token, body.refresh_token) == ("pending_confirmation", "", None)
    user = original_dict(AuthUser, body.user)
    assert (user.email, user.display_name) == ("grace@example.com", "Grace Hopper")
    assert user.id != grace.id  # Supabase's stand-in, not her account
    assert guide_says(
        "already registered answers 400", "with email confirmation on", "Doki answers as for a new sign-up"
    )


def test_a_password_the_original_accepted_but_supabase_refuses_is_a_422_where_the_original_said_500(
    doki: Backend,
) -> None:
    doki.supabase.password_min_length = 8  # a project that asks more than Supabase's default 6
    request = SignUpRequest(email="grace@example.com", password="abc123", display_name="Grace")  # valid there
    detail = error(doki.client.post("/auth/signup", json=request.model_dump()), 422)
    assert detail == "Password should be at least 8 characters."
    assert status_difference("password the Supabase project finds weak") == (
        "500",
        "422 `weak_password`, with Supabase's `reasons`; `detail` a string, not FastAPI's list",
    )


def test_a_password_shorter_than_6_is_fastapis_422_as_the_originals_sign_up_request_refused_it(doki: Backend) -> None:
    # The original's SignUpRequest had `password: str = Field(min_length=6)`: FastAPI refused the body itself, with
    # its own 422 (`detail` an array of problems), before Supabase was asked. A frontend may show that array's `msg`.
    request = {"email": "grace@example.com", "password": "abc12", "display_name": "Grace"}
    with pytest.raises(ValueError, match="at least 6 characters"):
        SignUpRequest.model_validate(request)
    response = doki.client.post("/auth/signup", json=request)
    assert response.status_code == 422, response.text
    [problem] = ValidationErrorBody.model_validate_json(response.text, strict=True).detail
    assert (problem.loc, problem.type, problem.msg) == (
        ["body", "password"],
        "string_too_short",
        "String should have at least 6 characters",
    )
    assert "grace@example.com" not in doki.supabase.users


# --- POST /auth/signin -------------------------------------------------------------------------------------------


def test_sign_in_answers_the_originals_body_with_the_display_name_given_at_sign_up(doki: Backend) -> None:
    signed_up(doki)
    request = SignInRequest(email="grace@example.com", password=PASSWORD)
    body = original(AuthResponse, doki.client.post("/auth/signin", json=request.model_dump()))
    assert (body.status, body.message) == ("authenticated", "Sign in successful!")
    assert body.access_token and isinstance(body.refresh_token, str)
    user = original_dict(AuthUser, body.user)
    assert (user.id, user.email, user.display_name) == (
        doki.supabase.users["grace@example.com"].id,
        "grace@example.com",
        "Grace Hopper",
    )


def test_sign_in_with_a_wrong_password_is_the_originals_401(doki: Backend) -> None:
    signed_up(doki)
    request = SignInRequest(email="grace@example.com", password="not the password")
    assert error(doki.client.post("/auth/signin", json=request.model_dump()), 401) == "Invalid email or password"


def test_sign_in_before_confirming_the_email_is_the_originals_403(doki: Backend) -> None:
    doki.supabase.confirm_email = True
    original(AuthResponse, sign_up(doki))
    request = SignInRequest(email="grace@example.com", password=PASSWORD)
    detail = error(doki.client.post("/auth/signin", json=request.model_dump()), 403)
    assert detail == "Please confirm your email before signing in"


# --- POST /auth/signout ------------------------------------------------------------------------------------------


def test_sign_out_answers_the_originals_body(each_environment: Backend) -> None:
    token = signed_up(each_environment)
    body = original(SignOutResponse, each_environment.client.post("/auth/signout", headers=bearer(token)))
    assert (body.status, body.message) == ("signed_out", "Successfully signed out")


def test_sign_out_in_development_needs_no_token_as_the_originals_did(development: Backend) -> None:
    body = original(SignOutResponse, development.client.post("/auth/signout"))
    assert (body.status, body.message) == ("signed_out", "Successfully signed out")
    assert guide_says("sign-out answers 200", "in development it needs no token")


# --- the token every other route needs ---------------------------------------------------------------------------

BEARER_ROUTES = [
    ("POST", "/auth/signout"),
    ("GET", "/connectors/sheets/list"),
    ("GET", "/connectors/sheets/schema?spreadsheet_id=1abc"),
    ("POST", "/connectors/supabase/connect"),
    ("GET", "/connectors/supabase/test"),
    ("GET", "/connectors/supabase/list"),
]


def body_for(method: str, path: str) -> dict[str, str] | None:
    """The JSON body the original's route took, if any (a valid one: the token is what is refused)."""
    if path == "/connectors/supabase/connect":
        url = "https://abcdefghijklmnopqrst.supabase.co"
        return SupabaseConnectionRequest(project_url=url, service_role_key="sb_secret_x").model_dump()
    return None


@pytest.mark.parametrize(("method", "path"), BEARER_ROUTES)
def test_production_without_a_token_is_the_originals_401(production: Backend, method: str, path: str) -> None:
    response = production.client.request(method, path, json=body_for(method, path))
    assert error(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), BEARER_ROUTES)
def test_a_token_that_is_not_one_is_the_originals_401(each_environment: Backend, method: str, path: str) -> None:
    response = each_environment.client.request(method, path, json=body_for(method, path), headers=bearer("not.a.token"))
    assert error(response, 401)


# --- GET /auth/google/login and /auth/google/callback ------------------------------------------------------------


def test_google_login_redirects_the_browser_to_googles_consent_screen(doki: Backend) -> None:
    response = doki.login()
    assert response.is_redirect
    assert response.headers["location"].startswith(f"{doki.google.url}/o/oauth2/v2/auth?")
    # The original's RedirectResponse answered 307; a browser follows a GET's 302 the same way.
    assert response.status_code == 302
    assert guide_says("`GET /auth/google/login`", "302", "307")


def test_google_login_on_a_server_without_googles_settings_is_a_503_where_the_original_said_500(
    google: FakeGoogle, supabase: FakeSupabaseAuth
) -> None:
    # The original's case: GOOGLE_REDIRECT_URI unset (500 "GOOGLE_REDIRECT_URI is not configured"). Ours is 503, the
    # server not set up for it rather than broken, with the settings to set in the hint.
    with backend("production", google, supabase, google_redirect_uri=None) as unconfigured:
        response = unconfigured.login()
    assert error(response, 503) == "Google sign-in is not configured on this server"
    assert response.json()["code"] == "google_not_configured"
    assert "GOOGLE_REDIRECT_URI" in response.json()["hint"]
    original_status, ours = status_difference("`auth/google/login` on a server without")
    assert original_status == "500" and ours.startswith("503 `google_not_configured`")


def test_the_google_callback_answers_the_originals_json_whose_token_opens_the_other_routes(doki: Backend) -> None:
    body = original(GoogleCallbackResponse, doki.sign_in_with_google())
    assert body.status == "authenticated"
    assert body.message == "Successfully authenticated with Supabase. Use the access_token for API requests."
    assert (body.user.id, body.user.email) == (doki.supabase.users["ada@gmail.com"].id, "ada@gmail.com")
    # Google is connected by the same trip: the list answers (empty: Ada's Drive has no spreadsheet yet).
    listed = doki.client.get("/connectors/sheets/list", headers=bearer(body.access_token))
    assert original_list(SpreadsheetInfo, listed) == []


def without_email(google: FakeGoogle, monkeypatch: pytest.MonkeyPatch) -> None:
    """Google's ID tokens carry no `email` from now on, as Google's carry none without the `email` scope
    (https://developers.google.com/identity/openid-connect/openid-connect#an-id-tokens-payload). The fake always
    writes it, so each token it issues is signed again without `email` and `email_verified`, with the fake's key."""
    issue = google.id_token

    def id_token(account: Account, **kwargs: Any) -> str:
        claims = jwt.decode(issue(account, **kwargs), options={"verify_signature": False})
        claims = {name: value for name, value in claims.items() if name not in {"email", "email_verified"}}
        token = jwt.encode(claims, google.key, algorithm="RS256", headers={"kid": google.kid})
        return secret("a Google ID token without email", token)

    monkeypatch.setattr(google, "id_token", id_token)


def test_the_callbacks_user_email_is_null_where_googles_id_token_carries_none(
    doki: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_email(doki.google, monkeypatch)
    response = doki.sign_in_with_google()
    assert response.status_code == 200, response.text
    # The one place the body leaves the original's shape, whose `email` was always a string.
    with pytest.raises(ValidationError) as departs:
        original(GoogleCallbackResponse, response)
    assert [(problem["loc"], problem["type"]) for problem in departs.value.errors()] == [
        (("user", "email"), "string_type")
    ]
    assert response.json()["user"]["email"] is None
    assert guide_says("`user.email` is null when Google's ID token carries no email", "always a string")


def test_a_google_callback_the_browser_never_started_is_the_originals_400(doki: Backend) -> None:
    # The original: 400 "Missing OAuth state. Please restart the login flow." for a session without the state.
    path = doki.back_from_google(doki.login().headers["location"])
    doki.client.cookies.clear()
    assert error(doki.callback(path), 400)


# --- GET /connectors/sheets/list and /connectors/sheets/schema ---------------------------------------------------


def test_the_spreadsheet_list_is_the_originals_bare_array(doki: Backend) -> None:
    budget = doki.google.add_spreadsheet(ada(doki), "Budget", modified_time="2026-02-03T04:05:06.789Z")
    plan = doki.google.add_spreadsheet(ada(doki), "Plan", modified_time="2026-01-02T00:00:00.000Z")
    token = signed_in_with_google(doki)
    listed = original_list(SpreadsheetInfo, doki.client.get("/connectors/sheets/list", headers=bearer(token)))
    assert [(s.id, s.name, s.modified_time) for s in listed] == [
        (budget, "Budget", "2026-02-03T04:05:06.789Z"),
        (plan, "Plan", "2026-01-02T00:00:00.000Z"),
    ]
    assert [s.web_view_link for s in listed] == [
        f"https://docs.google.com/spreadsheets/d/{budget}/edit?usp=drivesdk",
        f"https://docs.google.com/spreadsheets/d/{plan}/edit?usp=drivesdk",
    ]


def test_the_schema_is_the_originals_spreadsheet_schema(doki: Backend) -> None:
    tabs = {"Expenses": [["item", "amount"], ["rent", 900]], "Notes": [["text"], ["hello"]]}
    spreadsheet_id = doki.google.add_spreadsheet(ada(doki), "Budget", tabs)
    token = signed_in_with_google(doki)
    response = doki.client.get(
        "/connectors/sheets/schema", params={"spreadsheet_id": spreadsheet_id}, headers=bearer(token)
    )
    schema = original(SpreadsheetSchema, response)
    assert (schema.spreadsheet_id, schema.title) == (spreadsheet_id, "Budget")
    assert [(tab.sheet_name, tab.sheet_id, [(c.name, c.index) for c in tab.columns]) for tab in schema.sheets] == [
        ("Expenses", 0, [("item", 0), ("amount", 1)]),
        ("Notes", 1000, [("text", 0)]),
    ]


def test_a_blank_header_cell_is_named_by_its_column_letter_where_the_original_kept_it_empty(doki: Backend) -> None:
    tabs: dict[str, list[list[Any]]] = {"Expenses": [["item", "", "amount"], ["rent", "monthly", 900]]}
    spreadsheet_id = doki.google.add_spreadsheet(ada(doki), "Budget", tabs)
    token = signed_in_with_google(doki)
    response = doki.client.get(
        "/connectors/sheets/schema", params={"spreadsheet_id": spreadsheet_id}, headers=bearer(token)
    )
    [tab] = original(SpreadsheetSchema, response).sheets
    assert [(c.name, c.index) for c in tab.columns] == [("item", 0), ("B", 1), ("amount", 2)]  # the original: ""
    assert guide_says("a blank header cell gets its column's letter as its name", "kept an empty name")


def with_a_chart_sheet(google: FakeGoogle, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every spreadsheet gains a chart sheet after its tabs: a sheet of `sheetType` OBJECT, which holds no cells and
    has no `gridProperties` (https://developers.google.com/workspace/sheets/api/reference/rest/v4/spreadsheets/sheets#SheetType).
    The fake serves grid tabs only, so its spreadsheet resource is extended here. The ids of the spreadsheets it
    described so, returned."""
    describe, described_with_a_chart = google._spreadsheet_resource, []

    def resource(sheet: Any) -> dict[str, Any]:
        described = describe(sheet)
        described_with_a_chart.append(described["spreadsheetId"])
        chart = {"sheetId": 123456, "title": "Chart1", "index": len(described["sheets"]), "sheetType": "OBJECT"}
        return {**described, "sheets": [*described["sheets"], {"properties": chart}]}

    monkeypatch.setattr(google, "_spreadsheet_resource", resource)
    return described_with_a_chart


def test_the_schema_lists_the_tabs_that_hold_cells_and_no_chart_sheet(
    doki: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    described_with_a_chart = with_a_chart_sheet(doki.google, monkeypatch)
    spreadsheet_id = doki.google.add_spreadsheet(ada(doki), "Budget", {"Expenses": [["item", "amount"]]})
    token = signed_in_with_google(doki)
    response = doki.client.get(
        "/connectors/sheets/schema", params={"spreadsheet_id": spreadsheet_id}, headers=bearer(token)
    )
    assert [tab.sheet_name for tab in original(SpreadsheetSchema, response).sheets] == ["Expenses"]
    assert spreadsheet_id in described_with_a_chart  # Google did describe the chart sheet
    assert guide_says("`sheets[]` lists the tabs that hold cells", "chart sheets")


def test_the_schema_without_a_spreadsheet_id_is_fastapis_422_as_the_originals_was(doki: Backend) -> None:
    token = signed_in_with_google(doki)
    response = doki.client.get("/connectors/sheets/schema", headers=bearer(token))
    assert response.status_code == 422
    [problem] = ValidationErrorBody.model_validate_json(response.text, strict=True).detail
    assert problem.loc == ["query", "spreadsheet_id"]


@pytest.mark.parametrize("path", ["/connectors/sheets/list", "/connectors/sheets/schema?spreadsheet_id=1abc"])
def test_without_google_the_sheets_routes_answer_409_where_the_original_said_401(doki: Backend, path: str) -> None:
    # A frontend reads 401 as "signed out": the user is signed in and has only to connect Google.
    token = signed_up(doki)
    response = doki.client.get(path, headers=bearer(token))
    assert error(response, 409) == "Google is not connected for this user"
    assert response.json()["code"] == "google_not_connected"
    original_status, ours = status_difference("Google not connected")
    assert original_status == "401" and ours.startswith("409 `google_not_connected`")


def test_an_unknown_spreadsheet_is_a_404_where_the_original_said_401(doki: Backend) -> None:
    token = signed_in_with_google(doki)
    response = doki.client.get("/connectors/sheets/schema", params={"spreadsheet_id": "1nope"}, headers=bearer(token))
    assert error(response, 404)
    assert response.json()["code"] == "spreadsheet_not_found"
    assert status_difference("unknown spreadsheet") == ("401", "404 `spreadsheet_not_found`")


# --- /connectors/supabase/* --------------------------------------------------------------------------------------


def test_connecting_a_supabase_project_answers_the_originals_body(doki: Backend, project: FakePostgrest) -> None:
    body = original(SupabaseConnectionResponse, connect(doki, signed_up(doki), project))
    assert (body.success, body.message) == (True, "Supabase project connected successfully")
    assert body.connection_id


def test_the_connection_test_says_connected_once_a_project_is_connected(doki: Backend, project: FakePostgrest) -> None:
    token = signed_up(doki)
    original(SupabaseConnectionResponse, connect(doki, token, project))
    body = original(SupabaseTestResponse, doki.client.get("/connectors/supabase/test", headers=bearer(token)))
    assert (body.status, body.message) == ("connected", "Connection verified")


def test_the_connection_test_says_disconnected_without_a_project(doki: Backend) -> None:
    token = signed_up(doki)
    body = original(SupabaseTestResponse, doki.client.get("/connectors/supabase/test", headers=bearer(token)))
    assert body.status == "disconnected"


def test_the_table_list_is_the_originals_bare_array_of_table_schemas(doki: Backend, project: FakePostgrest) -> None:
    token = signed_up(doki)
    original(SupabaseConnectionResponse, connect(doki, token, project))
    response = doki.client.get("/connectors/supabase/list", params={"schema": "public"}, headers=bearer(token))
    [table] = original_list(TableSchema, response)
    assert (table.table_name, table.schema_name) == ("customers", "public")
    assert [(c.name, c.type, c.is_nullable, c.default_value) for c in table.columns] == [
        ("id", "bigint", False, None),
        ("email", "text", False, None),
        ("vip", "boolean", True, "false"),
        ("created_at", "timestamp with time zone", True, "now()"),
    ]


def test_the_table_list_without_a_project_is_the_originals_404(doki: Backend) -> None:
    response = doki.client.get("/connectors/supabase/list", headers=bearer(signed_up(doki)))
    assert error(response, 404)
    assert status_difference("`supabase/list` without a connection")[0] == "404"


def test_a_connect_the_project_refuses_is_a_400_where_the_original_said_500(
    doki: Backend, project: FakePostgrest
) -> None:
    token = signed_up(doki)
    response = connect(doki, token, project, service_role_key="sb_secret_NotThisProject0123456789abcdefgh")
    assert "rejected the service role key" in error(response, 400)
    original_status, ours = status_difference("`supabase/connect` refused")
    assert original_status == "500" and ours.startswith("400")


def test_the_connection_test_with_the_project_unreachable_is_a_503_where_the_original_said_disconnected(
    doki: Backend, project: FakePostgrest
) -> None:
    # "disconnected" would tell the user to connect again; the project may only be down for a moment.
    token = signed_up(doki)
    original(SupabaseConnectionResponse, connect(doki, token, project))
    project.stop()
    assert error(doki.client.get("/connectors/supabase/test", headers=bearer(token)), 503)
    original_status, ours = status_difference("`supabase/test` when the project")
    assert (original_status, ours) == ("200 `disconnected`", "502/503: retry rather than reconnect")


# --- POST /agent/interpret ---------------------------------------------------------------------------------------


def test_the_originals_agent_interpret_placeholder_is_gone(doki: Backend) -> None:
    token = signed_up(doki)
    request = InterpretRequest(prompt="sum column B")
    assert error(doki.client.post("/agent/interpret", json=request.model_dump(), headers=bearer(token)), 404)
    assert guide_says("`POST /agent/interpret`", "is gone", "404")
