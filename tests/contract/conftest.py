"""The contract suite's world: this backend wired to the repository's fakes (Google, Supabase Auth with the
deployment's PostgREST behind it, and a user's own Supabase project), in production and, where they differ, in
development too, as the API tests build it (tests/doki/api/google_harness.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.doki.api.google_harness import Backend, backend, new_google, new_supabase
from tests.doki.conftest import SUPABASE_SECRET
from tests.fakes.google import FakeGoogle
from tests.fakes.postgrest import FakePostgrest, TableSpec
from tests.fakes.supabase_auth import FakeSupabaseAuth
from tests.helpers import secret

PROJECT_SECRET = secret("the contract user's Supabase secret key", "sb_secret_ContractProject0123456789abcdefgh")
PROJECT_ANON = "sb_publishable_ContractProject0123456789ab"
# The user's project: one table whose columns give every JSON type the original's TableColumn has.
CUSTOMERS = TableSpec(
    columns=("id", "email", "vip", "created_at"),
    primary_key=("id",),
    not_null=frozenset({"id", "email"}),
    types={"id": "bigint", "vip": "boolean", "created_at": "timestamp with time zone"},
    sql_defaults={"vip": "false", "created_at": "now()"},
)


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    fake = new_google()
    yield fake
    fake.stop()


@pytest.fixture
def deployment_rest() -> Iterator[FakePostgrest]:
    """The deployment's own Supabase database (production keeps credentials there)."""
    with FakePostgrest(SUPABASE_SECRET) as server:
        yield server


@pytest.fixture
def supabase(google: FakeGoogle, deployment_rest: FakePostgrest) -> Iterator[FakeSupabaseAuth]:
    fake = new_supabase(google, deployment_rest)
    yield fake
    fake.stop()


# Production, or both: most of the original's contract does not depend on the environment, and each backend built
# costs its fakes and app (~0.6 s), so those cases run once, in production, the stricter of the two (every route needs
# a token, the session cookie is Secure, credentials go to the deployment's Supabase, as they do once deployed). The
# environments differ in who a request is: development lets a request without a token through as its development
# user, and the original's did too. The cases about tokens and sign-out, where that shows, take `each_environment`.


@pytest.fixture
def doki(production: Backend) -> Backend:
    """The backend for every case the environment does not change: production's."""
    return production


@pytest.fixture(params=["development", "production"])
def each_environment(
    request: pytest.FixtureRequest, google: FakeGoogle, supabase: FakeSupabaseAuth
) -> Iterator[Backend]:
    """The backend in development, then in production: for the cases about tokens, which the two treat apart."""
    with backend(request.param, google, supabase) as harness:
        yield harness


@pytest.fixture
def development(google: FakeGoogle, supabase: FakeSupabaseAuth) -> Iterator[Backend]:
    with backend("development", google, supabase) as harness:
        yield harness


@pytest.fixture
def production(google: FakeGoogle, supabase: FakeSupabaseAuth) -> Iterator[Backend]:
    with backend("production", google, supabase) as harness:
        yield harness


@pytest.fixture
def project() -> Iterator[FakePostgrest]:
    """The user's own Supabase project, reached on loopback (allowed while Doki's own Supabase is a local one)."""
    with FakePostgrest(PROJECT_SECRET, {"customers": CUSTOMERS}, anon_key=PROJECT_ANON) as server:
        yield server
