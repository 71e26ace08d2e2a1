"""The Google-connector test setup the API tests share: fake Google and Supabase Auth on loopback, and the backend
against them in development and in production (each test using `doki` runs in both)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.doki.api.google_harness import Backend, backend, new_google, new_supabase
from tests.fakes.google import FakeGoogle
from tests.fakes.postgrest import FakePostgrest
from tests.fakes.supabase_auth import FakeSupabaseAuth


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    fake = new_google()
    yield fake
    fake.stop()


@pytest.fixture
def supabase(google: FakeGoogle, fake_postgrest: FakePostgrest) -> Iterator[FakeSupabaseAuth]:
    fake = new_supabase(google, fake_postgrest)
    yield fake
    fake.stop()


@pytest.fixture(params=["development", "production"])
def doki(request: pytest.FixtureRequest, google: FakeGoogle, supabase: FakeSupabaseAuth) -> Iterator[Backend]:
    with backend(request.param, google, supabase) as harness:
        yield harness
