"""Schemathesis against the backend's own OpenAPI document, in-process: whatever a client sends, valid or not,
signed in or not, in development and in production, no answer is a 500, and every answer is one the document
lists, with the body and headers it describes. All of schemathesis's checks run, `ignored_auth` among them (a
route that declares the bearer token must refuse a request without one, or with a wrong one).

Behind the app: fake Supabase Auth and PostgREST (the credential store in production), fake Google, and the
signed-in user's own Supabase project, all on loopback. That user has Google and a project connected, so their
requests reach the connectors' real answers (spreadsheets, tables), not only "not connected".

Examples are drawn derandomized (the same every run) without Hypothesis's example database: CI stays reproducible.
DOKI_FUZZ_EXAMPLES sets how many per operation, caller and mode (default 25, about 20 s in all); raise it to search
longer, e.g. `DOKI_FUZZ_EXAMPLES=1000 .venv/bin/pytest tests/doki/hardening/test_fuzz_api.py`.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi

from doki.app import create_app
from tests.doki.api.google_harness import ANON_KEY, FRONTEND_ORIGIN, REDIRECT_URI, new_google, new_supabase
from tests.doki.conftest import SUPABASE_SECRET, development_settings, production_settings
from tests.fakes.postgrest import FakePostgrest, TableSpec
from tests.helpers import secret

EXAMPLES = int(os.environ.get("DOKI_FUZZ_EXAMPLES", "25"))
PROJECT_SECRET = secret("the user's Supabase secret key", "sb_secret_FuzzedUsersProject0123456789abcdef")
CUSTOMERS = TableSpec(
    columns=("id", "email", "created_at"),
    primary_key=("id",),
    not_null=frozenset({"id", "email"}),
    types={"id": "bigint", "created_at": "timestamp with time zone"},
)

# schemathesis's defaults, plus what the document cannot express and the server rightly refuses anyway: a
# redirect_to off the allowed origins, a project URL that is no Supabase project, a schema name PostgREST would
# not take, a callback without its sign-in in the session, a connect code that is not the callback's, a password
# Supabase's policy refuses.
_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
_BUSINESS_RULES = {
    "/auth/google/login": ["400"],
    "/auth/google/connect": ["400"],
    "/auth/google/connect/complete": ["400"],
    "/auth/google/callback": ["400"],
    "/connectors/supabase/connect": ["400"],
    "/connectors/supabase/tables": ["400"],
    "/connectors/supabase/list": ["400"],
    "/auth/signup": ["400", "422"],
    "/auth/signin": ["400", "422"],
}
# A project URL is the client's to choose: one on loopback with nothing listening is honestly 502 or 503.
_UPSTREAM_CHOSEN_BY_CLIENT = {"/connectors/supabase/connect": ["2xx", "3xx", "4xx", "502", "503"]}


def _config(token: str | None) -> SchemathesisConfig:
    """schemathesis's configuration; with `token`, sent as the bearer wherever the document asks for one."""
    operations = []
    for path, refused in _BUSINESS_RULES.items():
        checks: dict[str, Any] = {"positive_data_acceptance": {"expected-statuses": [*_ACCEPTED, *refused]}}
        if path in _UPSTREAM_CHOSEN_BY_CLIENT:
            checks["not_a_server_error"] = {"expected-statuses": _UPSTREAM_CHOSEN_BY_CLIENT[path]}
        operations.append({"include-path": path, "checks": checks})
    config: dict[str, Any] = {"operations": operations}
    if token is not None:
        # As configured auth, not a header forced onto every request: negative cases that drop or break the
        # header stay as generated, and `ignored_auth` knows the token is a real one to take away.
        config["auth"] = {"openapi": {"HTTPBearer": {"bearer": token}}}
    return SchemathesisConfig.from_dict(config)


SIGNED_IN_READS = ("GET /auth/me", "GET /connectors/sheets/list", "GET /connectors/supabase/tables")
HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a shared CI machine is slow at times: time is not what this test measures
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


@dataclass
class Served:
    app: Any
    token: str

    def schema(self, *, signed_in: bool) -> Any:
        config = _config(self.token if signed_in else None)
        return schemathesis.openapi.from_asgi("/openapi.json", self.app, config=config)


async def _no_wait(seconds: float) -> None:
    """Retries against the fakes need no back-off."""


@pytest.fixture(params=["development", "production"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    google = new_google()
    credential_store = FakePostgrest(SUPABASE_SECRET).start()
    supabase = new_supabase(google, credential_store)
    project = FakePostgrest(PROJECT_SECRET, {"customers": CUSTOMERS}).start()
    try:
        values = google.settings(REDIRECT_URI)
        if request.param == "production":
            app_settings = production_settings(supabase.url, **values)
        else:
            app_settings = development_settings(
                state_dir=tmp_path / "state",
                supabase_url=supabase.url,
                supabase_anon_key=ANON_KEY,
                allowed_origins=f"{FRONTEND_ORIGIN},http://localhost:3000",
                **{k: v for k, v in values.items() if v is not None},
            )
        app = create_app(app_settings)
        user = supabase.add_user("ada@example.com", "correct horse battery staple")
        token = supabase.mint({"sub": user.id, "email": user.email})
        owner = google.accounts[0]
        google.add_spreadsheet(owner, "Customers", {"Sheet1": [["id", "name", "joined"], [1, "Ada", "2026-01-02"]]})
        # The first request starts the app's lifespan in schemathesis's client; it lasts until the teardown.
        _connect(app, google, project, {"Authorization": f"Bearer {token}"})
        app.state.upstreams.sleep = _no_wait
        yield Served(app, token)
    finally:
        asgi.shutdown_lifespans()
        for server in (project, supabase, credential_store, google):
            server.stop()


def _connect(app: Any, google: Any, project: FakePostgrest, authorization: dict[str, str]) -> None:
    """The signed-in user connects Google (the browser's round trip) and their own Supabase project."""
    # https: production's session cookie is Secure, and the client sends it back only over https.
    with asgi.ASGIClient(app, base_url="https://testserver") as browser:
        start = browser.post("/auth/google/connect", headers=authorization, json={})
        assert start.status_code == 200, start.text
        back = google.authorize(start.json()["authorization_url"]).removeprefix("https://testserver")
        connected = browser.get(back, allow_redirects=False)
        assert connected.json()["google"]["status"] == "connected", connected.text
        payload = {"project_url": project.url, "service_role_key": PROJECT_SECRET}
        linked = browser.post("/connectors/supabase/connect", headers=authorization, json=payload)
        assert linked.status_code == 200, linked.text


def _operations(schema: Any) -> list[Any]:
    """Every documented operation; disconnecting ones last, so the others meet a connected user."""
    operations = [result.ok() for result in schema.get_all_operations()]
    return sorted(operations, key=lambda operation: operation.method.upper() == "DELETE")


def _fuzz(operation: Any, mode: GenerationMode) -> set[int]:
    """The statuses `operation` answered; none when it has no invalid request to make (no parameters, body or
    required header), so no negative case."""
    statuses: set[int] = set()

    @HYPOTHESIS
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        statuses.add(case.call_and_validate().status_code)

    try:
        run()
    except Unsatisfiable:
        if mode is not GenerationMode.NEGATIVE:
            raise
    return statuses


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("caller", ["anonymous", "signed-in"])
def test_every_answer_is_documented_and_none_is_a_server_error(
    served: Served, caller: str, mode: GenerationMode
) -> None:
    failures: dict[str, str] = {}
    answered: dict[str, set[int]] = {}
    for operation in _operations(served.schema(signed_in=caller == "signed-in")):
        try:
            answered[operation.label] = _fuzz(operation, mode)
        except (Exception, BaseExceptionGroup) as exc:
            failures[operation.label] = "".join(traceback.format_exception_only(exc))

    assert not failures, "\n\n".join(f"=== {label}\n{text}" for label, text in failures.items())
    # Bodies, query parameters and required headers are there to be broken: those operations were all tried.
    assert all(answered[label] for label in ("POST /auth/signin", "GET /connectors/sheets/preview"))
    if caller == "signed-in" and mode is GenerationMode.POSITIVE:
        # The token was sent, and reached the connected user's spreadsheets and tables.
        assert all(200 in answered[label] for label in SIGNED_IN_READS), answered
