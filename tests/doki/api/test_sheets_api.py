"""The Sheets routes through the whole app: listing, schema and preview with the user's own Google connection,
refreshed when needed; 409 when Google must be (re)connected, 404 for what the user cannot open, never a 500."""

from __future__ import annotations

import httpx
import pytest
import schemathesis

from tests.doki.api.google_harness import Backend, account, backend
from tests.fakes.google import FakeGoogle
from tests.fakes.supabase_auth import FakeSupabaseAuth

BUDGET = {
    "Expenses": [
        ["item", "amount", "paid", "due", "", "item"],
        ["rent", 900, True, "1/31/2026", None, "x"],
        ["food", 12.5, False, "", None, "y"],
    ],
    "Empty": [],
}


def connected(doki: Backend, email: str = "ada@example.com") -> tuple[str, dict[str, str]]:
    """A signed-in user who connected the fake's current consent account."""
    user_id, headers = doki.signed_in(email)
    assert doki.connect(headers["Authorization"].removeprefix("Bearer ")).status_code == 200
    return user_id, headers


def documented(doki: Backend, method: str, path: str, response: httpx.Response) -> None:
    """`response` is one the app's own OpenAPI document describes, body and all (schemathesis checks it)."""
    spec = doki.client.get("/openapi.json").json()
    schemathesis.openapi.from_dict(spec)[path][method].validate_response(response)


@pytest.mark.parametrize("route", ["list", "schema?spreadsheet_id=abc", "preview?spreadsheet_id=abc"])
def test_without_google_every_sheets_route_answers_409_saying_to_connect_google(doki: Backend, route: str) -> None:
    _, headers = doki.signed_in()
    response = doki.client.get(f"/connectors/sheets/{route}", headers=headers)
    assert response.status_code == 409
    assert response.json() == {
        "detail": "Google is not connected for this user",
        "code": "google_not_connected",
        "hint": "connect Google: POST /auth/google/connect, then open the authorization_url it returns",
        "connect": "POST /auth/google/connect",
    }


def test_production_sheets_routes_need_a_signed_in_user(google: FakeGoogle, supabase: FakeSupabaseAuth) -> None:
    with backend("production", google, supabase) as doki:
        assert doki.client.get("/connectors/sheets/list").status_code == 401


def test_list_gives_every_spreadsheet_across_all_pages_newest_first(doki: Backend) -> None:
    ada = account(doki.google, "ada@gmail.com")
    for day in (3, 1, 5, 2, 4):
        doki.google.add_spreadsheet(ada, f"Sheet {day}", modified_time=f"2026-01-0{day}T10:00:00.000Z")
    doki.google.add_spreadsheet(ada, "Notes", mime_type="application/vnd.google-apps.document")
    doki.google.add_spreadsheet(ada, "Old", trashed=True)
    doki.google.drive_page_size_cap = 2
    _, headers = connected(doki)
    response = doki.client.get("/connectors/sheets/list", headers=headers)
    assert response.status_code == 200
    listed = response.json()
    assert [s["name"] for s in listed] == ["Sheet 5", "Sheet 4", "Sheet 3", "Sheet 2", "Sheet 1"]
    assert [s["modified_time"] for s in listed] == [f"2026-01-0{day}T10:00:00.000Z" for day in (5, 4, 3, 2, 1)]
    assert doki.google.calls("/drive/v3/files") == 3


def test_list_is_a_bare_array_with_the_original_backends_fields_and_ours_beside(doki: Backend) -> None:
    # The original answered List[SpreadsheetInfo{id, name, modified_time, web_view_link}]: a frontend reads those.
    ada = account(doki.google, "ada@gmail.com")
    budget = doki.google.add_spreadsheet(ada, "Budget", modified_time="2026-02-03T04:05:06.789Z")
    _, headers = connected(doki)
    response = doki.client.get("/connectors/sheets/list", headers=headers)
    assert response.status_code == 200
    link = f"https://docs.google.com/spreadsheets/d/{budget}/edit?usp=drivesdk"
    assert response.json() == [
        {
            "id": budget,
            "name": "Budget",
            "modified_time": "2026-02-03T04:05:06.789Z",
            "web_view_link": link,
            "url": link,
        }
    ]
    documented(doki, "GET", "/connectors/sheets/list", response)


def test_list_includes_spreadsheets_shared_with_the_user(doki: Backend) -> None:
    bob = doki.google.add_account("bob@gmail.com")
    ada = account(doki.google, "ada@gmail.com")
    doki.google.add_spreadsheet(bob, "Shared", shared_with=(ada,))
    doki.google.add_spreadsheet(bob, "Private")
    _, headers = connected(doki)
    assert [s["name"] for s in doki.client.get("/connectors/sheets/list", headers=headers).json()] == ["Shared"]


def test_schema_gives_each_tab_its_header_columns_with_types_and_nullability(doki: Backend) -> None:
    spreadsheet_id = doki.google.add_spreadsheet(account(doki.google, "ada@gmail.com"), "Budget", BUDGET)
    _, headers = connected(doki)
    response = doki.client.get("/connectors/sheets/schema", params={"spreadsheet_id": spreadsheet_id}, headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["title"] == "Budget" and body["sample_rows"] == 200
    expenses, empty = body["tabs"]
    assert expenses["title"] == "Expenses" and expenses["index"] == 0
    assert [(c["name"], c["letter"], c["type"], c["nullable"]) for c in expenses["columns"]] == [
        ("item", "A", "string", False),
        ("amount", "B", "number", False),
        ("paid", "C", "boolean", False),
        ("due", "D", "date", True),
        ("E", "E", "empty", True),
        ("item_2", "F", "string", False),
    ]
    assert empty["title"] == "Empty" and empty["columns"] == []


def test_schema_keeps_the_original_backends_sheets_with_sheet_name_and_gains_column_types(doki: Backend) -> None:
    # The original answered SpreadsheetSchema{spreadsheet_id, title, sheets: [{sheet_name, sheet_id, columns:
    # [{name, index}]}]}; `tabs` is the same list under this backend's names.
    tabs = {"Expenses": BUDGET["Expenses"], "Notes": [["text"], ["hello"], []]}
    spreadsheet_id = doki.google.add_spreadsheet(account(doki.google, "ada@gmail.com"), "Budget", tabs)
    _, headers = connected(doki)
    response = doki.client.get("/connectors/sheets/schema", params={"spreadsheet_id": spreadsheet_id}, headers=headers)
    assert response.status_code == 200
    body = response.json()

    def column(name: str, index: int, type_: str, nullable: bool) -> dict[str, object]:
        letter = "ABCDEF"[index]
        return {"name": name, "index": index, "letter": letter, "type": type_, "nullable": nullable}

    expenses = {
        "title": "Expenses",
        "sheet_id": 0,
        "index": 0,
        "row_count": 1000,
        "column_count": 26,
        "columns": [
            column("item", 0, "string", False),
            column("amount", 1, "number", False),
            column("paid", 2, "boolean", False),
            column("due", 3, "date", True),
            column("E", 4, "empty", True),
            column("item_2", 5, "string", False),
        ],
    }
    notes = {
        "title": "Notes",
        "sheet_id": 1000,
        "index": 1,
        "row_count": 1000,
        "column_count": 26,
        "columns": [column("text", 0, "string", False)],
    }
    assert body == {
        "spreadsheet_id": spreadsheet_id,
        "title": "Budget",
        "sample_rows": 200,
        "sheets": [{"sheet_name": "Expenses", **expenses}, {"sheet_name": "Notes", **notes}],
        "tabs": [expenses, notes],
    }
    documented(doki, "GET", "/connectors/sheets/schema", response)


def test_schema_reads_only_a_bounded_sample_of_rows(doki: Backend) -> None:
    rows: list[list[object]] = [["n"]] + [[i] for i in range(500)] + [["not a number"]]
    spreadsheet_id = doki.google.add_spreadsheet(account(doki.google, "ada@gmail.com"), "Big", {"Data": rows})
    _, headers = connected(doki)
    body = doki.client.get("/connectors/sheets/schema", params={"spreadsheet_id": spreadsheet_id}, headers=headers)
    assert body.json()["tabs"][0]["columns"][0]["type"] == "integer"  # row 502's text was never read
    [(_, _, params)] = [r for r in doki.google.requests if r[1].endswith("values:batchGet")]
    assert params["ranges"] == ["'Data'!1:201"]


def test_schema_without_a_spreadsheet_id_is_a_422_that_names_it(doki: Backend) -> None:
    _, headers = connected(doki)
    response = doki.client.get("/connectors/sheets/schema", headers=headers)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "spreadsheet_id"] and error["type"] == "missing"


@pytest.mark.parametrize("bad_id", ["../drive/v3/files", "abc/values", "a b", ""])
def test_a_spreadsheet_id_that_is_not_one_is_a_422_before_google_is_asked(doki: Backend, bad_id: str) -> None:
    _, headers = connected(doki)
    response = doki.client.get("/connectors/sheets/schema", params={"spreadsheet_id": bad_id}, headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "spreadsheet_id"]
    assert doki.google.calls("/v4") == 0


def test_an_unknown_spreadsheet_is_a_404(doki: Backend) -> None:
    _, headers = connected(doki)
    response = doki.client.get("/connectors/sheets/schema", params={"spreadsheet_id": "1nope"}, headers=headers)
    assert response.status_code == 404
    assert response.json()["code"] == "spreadsheet_not_found"


def test_a_spreadsheet_the_users_google_account_cannot_open_is_a_404_too(doki: Backend) -> None:
    bob = doki.google.add_account("bob@gmail.com")
    private = doki.google.add_spreadsheet(bob, "Bob's", BUDGET)
    _, headers = connected(doki)
    for route in ("schema", "preview"):
        response = doki.client.get(f"/connectors/sheets/{route}", params={"spreadsheet_id": private}, headers=headers)
        assert response.status_code == 404
        assert response.json()["code"] == "spreadsheet_not_found"


def test_preview_gives_the_first_rows_of_the_first_tab_keyed_by_the_header(doki: Backend) -> None:
    spreadsheet_id = doki.google.add_spreadsheet(account(doki.google, "ada@gmail.com"), "Budget", BUDGET)
    _, headers = connected(doki)
    response = doki.client.get(
        "/connectors/sheets/preview", params={"spreadsheet_id": spreadsheet_id, "limit": 1}, headers=headers
    )
    assert response.json() == {
        "spreadsheet_id": spreadsheet_id,
        "tab": "Expenses",
        "columns": ["item", "amount", "paid", "due", "E", "item_2"],
        "rows": [{"item": "rent", "amount": 900, "paid": True, "due": "1/31/2026", "E": None, "item_2": "x"}],
    }


def test_preview_of_a_named_tab_with_quotes_in_its_name(doki: Backend) -> None:
    tabs = {"First": [["a"], [1]], "Ada's 'tab'": [["name"], ["x"], ["y"]]}
    spreadsheet_id = doki.google.add_spreadsheet(account(doki.google, "ada@gmail.com"), "Quotes", tabs)
    _, headers = connected(doki)
    response = doki.client.get(
        "/connectors/sheets/preview",
        params={"spreadsheet_id": spreadsheet_id, "tab": "Ada's 'tab'"},
        headers=headers,
    )
    assert response.json()["rows"] == [{"name": "x"}, {"name": "y"}]


def test_preview_of_an_unknown_tab_is_a_404_that_says_so(doki: Backend) -> None:
    spreadsheet_id = doki.google.add_spreadsheet(account(doki.google, "ada@gmail.com"), "Budget", BUDGET)
    _, headers = connected(doki)
    response = doki.client.get(
        "/connectors/sheets/preview", params={"spreadsheet_id": spreadsheet_id, "tab": "Nope"}, headers=headers
    )
    assert response.status_code == 404
    assert response.json()["code"] == "tab_not_found"


@pytest.mark.parametrize("limit", [0, 501])
def test_preview_limits_outside_1_to_500_are_refused(doki: Backend, limit: int) -> None:
    _, headers = connected(doki)
    response = doki.client.get(
        "/connectors/sheets/preview", params={"spreadsheet_id": "abc", "limit": limit}, headers=headers
    )
    assert response.status_code == 422


def test_one_user_never_reads_with_another_users_google_connection(doki: Backend) -> None:
    ada_sheet = doki.google.add_spreadsheet(account(doki.google, "ada@gmail.com"), "Ada's", BUDGET)
    _, ada_headers = connected(doki, "ada@example.com")
    _, eve_headers = doki.signed_in("eve@example.com")
    # Eve has no connection of her own: Ada's is not hers to use.
    listed = doki.client.get("/connectors/sheets/list", headers=eve_headers)
    assert listed.status_code == 409 and listed.json()["code"] == "google_not_connected"
    assert doki.client.get("/auth/google", headers=eve_headers).json()["connected"] is False
    # With her own Google account, Ada's spreadsheet stays out of reach.
    doki.google.will_consent(doki.google.add_account("eve@gmail.com"))
    doki.connect(eve_headers["Authorization"].removeprefix("Bearer "))
    schema = doki.client.get("/connectors/sheets/schema", params={"spreadsheet_id": ada_sheet}, headers=eve_headers)
    assert schema.status_code == 404
    assert (
        doki.client.get(
            "/connectors/sheets/schema", params={"spreadsheet_id": ada_sheet}, headers=ada_headers
        ).status_code
        == 200
    )


def test_tokens_copied_into_another_users_row_are_refused(doki: Backend) -> None:
    ada_id, _ = connected(doki, "ada@example.com")
    eve_id, eve_headers = doki.signed_in("eve@example.com")
    stolen = doki.stored(ada_id)
    assert stolen is not None
    doki.app.state.store.put(eve_id, "google", stolen.ciphertext, stolen.metadata)
    response = doki.client.get("/connectors/sheets/list", headers=eve_headers)
    assert response.status_code == 409
    assert response.json()["code"] == "google_reconnect_required"
    assert doki.google.calls("/drive") == 0


def test_an_access_token_google_stopped_accepting_is_refreshed_and_the_call_retried(doki: Backend) -> None:
    doki.google.add_spreadsheet(account(doki.google, "ada@gmail.com"), "Budget")
    _, headers = connected(doki)
    doki.google.expire_access_tokens()
    response = doki.client.get("/connectors/sheets/list", headers=headers)
    assert response.status_code == 200 and [s["name"] for s in response.json()] == ["Budget"]
    assert doki.google.calls("/drive/v3/files") == 2
    # The refreshed token was stored: the next call needs no refresh.
    token_calls = doki.google.calls("/token")
    doki.client.get("/connectors/sheets/list", headers=headers)
    assert doki.google.calls("/token") == token_calls


def test_a_revoked_google_grant_deletes_the_stored_tokens_and_says_reconnect(doki: Backend) -> None:
    user_id, headers = connected(doki)
    doki.google.revoke_access(account(doki.google, "ada@gmail.com"))
    response = doki.client.get("/connectors/sheets/list", headers=headers)
    assert response.status_code == 409
    error = response.json()
    assert error["code"] == "google_reconnect_required"
    assert "reconnect Google" in error["hint"]
    assert doki.stored(user_id) is None
    assert doki.client.get("/connectors/sheets/list", headers=headers).json()["code"] == "google_not_connected"


def test_google_failing_briefly_is_retried_with_backoff(doki: Backend) -> None:
    doki.google.add_spreadsheet(account(doki.google, "ada@gmail.com"), "Budget")
    _, headers = connected(doki)
    doki.google.fail_next(2, 503, path="/drive")
    response = doki.client.get("/connectors/sheets/list", headers=headers)
    assert response.status_code == 200
    assert doki.sleeps == [0.5, 1.0]


def test_google_rate_limiting_honours_retry_after_up_to_the_cap(doki: Backend) -> None:
    _, headers = connected(doki)
    doki.google.fail_next(2, 429, path="/drive", retry_after="3")
    doki.google.fail_next(1, 429, path="/drive", retry_after="3600")
    assert doki.client.get("/connectors/sheets/list", headers=headers).status_code == 200
    assert doki.sleeps == [3.0, 3.0, 8.0]


def test_google_failing_for_good_is_a_503_with_retry_after_never_a_500(doki: Backend) -> None:
    _, headers = connected(doki)
    doki.google.fail_next(100, 500, path="/drive")
    response = doki.client.get("/connectors/sheets/list", headers=headers)
    assert response.status_code == 503
    assert response.json()["code"] == "google_unavailable"
    assert response.headers["retry-after"] == "30"
    assert doki.google.calls("/drive") == 4


def test_google_rate_limiting_for_good_is_a_429(doki: Backend) -> None:
    _, headers = connected(doki)
    doki.google.fail_next(100, 429, path="/v4")
    response = doki.client.get("/connectors/sheets/schema", params={"spreadsheet_id": "abc"}, headers=headers)
    assert response.status_code == 429
    assert response.json()["code"] == "google_rate_limited"


def test_drive_rate_limiting_with_a_403_is_retried_and_then_a_429_not_a_missing_spreadsheet(doki: Backend) -> None:
    _, headers = connected(doki)
    doki.google.fail_next(2, 403, path="/drive", reason="userRateLimitExceeded")
    assert doki.client.get("/connectors/sheets/list", headers=headers).status_code == 200
    assert doki.sleeps == [0.5, 1.0]

    doki.google.fail_next(100, 403, path="/v4", reason="rateLimitExceeded")
    response = doki.client.get("/connectors/sheets/schema", params={"spreadsheet_id": "abc"}, headers=headers)
    assert response.status_code == 429
    assert response.json()["code"] == "google_rate_limited"
    assert response.headers["retry-after"] == "60"


def test_a_drive_refusal_on_the_list_is_a_403_saying_so_not_a_missing_spreadsheet(doki: Backend) -> None:
    _, headers = connected(doki)
    doki.google.fail_next(1, 403, path="/drive", reason="domainPolicy")
    response = doki.client.get("/connectors/sheets/list", headers=headers)
    assert response.status_code == 403
    assert response.json()["code"] == "google_forbidden"
    assert doki.sleeps == []


@pytest.mark.parametrize(("path", "route"), [("/drive", "list"), ("/v4", "schema?spreadsheet_id=abc")])
def test_google_answering_200_with_a_page_that_is_not_json_is_a_502(doki: Backend, path: str, route: str) -> None:
    _, headers = connected(doki)
    doki.google.fail_next(1, 200, path=path, body=b"<html><body>Sign in to the Wi-Fi</body></html>")
    response = doki.client.get(f"/connectors/sheets/{route}", headers=headers)
    assert response.status_code == 502
    assert response.json()["code"] == "google_error"


def test_a_token_endpoint_answering_200_with_a_page_that_is_not_json_is_a_502(doki: Backend) -> None:
    _, headers = connected(doki)
    doki.google.expire_access_tokens()
    doki.google.fail_next(1, 200, path="/token", body=b"<html>maintenance</html>")
    response = doki.client.get("/connectors/sheets/list", headers=headers)
    assert response.status_code == 502
    assert response.json() == {
        "detail": "Google answered with a body that is not JSON",
        "code": "google_error",
        "hint": "retry; if it persists, check GOOGLE_TOKEN_URL",
    }


def test_all_google_calls_of_one_request_share_one_time_budget(doki: Backend) -> None:
    _, headers = connected(doki)
    doki.app.state.upstreams.google_budget_seconds = 2.0
    doki.google.fail_next(100, 503, path="/drive")
    response = doki.client.get("/connectors/sheets/list", headers=headers)
    assert response.status_code == 503
    assert response.json()["code"] == "google_unavailable"
    assert "out of time for more" in response.json()["detail"]
    # Waits of 0.5 and 1.0 fit in two seconds; the 2.0 that would follow does not, so it is not waited.
    assert doki.sleeps == [0.5, 1.0]
    assert doki.google.calls("/drive") == 3


def test_every_sheets_route_declares_the_bearer_scheme(doki: Backend) -> None:
    paths = doki.client.get("/openapi.json").json()["paths"]
    for route in ("list", "schema", "preview"):
        # Development also lists "no token" ({}): it runs tokenless requests as its development user.
        assert {"HTTPBearer": []} in paths[f"/connectors/sheets/{route}"]["get"]["security"]
