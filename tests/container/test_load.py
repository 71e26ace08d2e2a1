"""A bounded load test of the production image on loopback: a few thousand requests on the health route and on an
authenticated one (bearer tokens from the fake Supabase Auth, verified against its JWKS), with production settings.

No errors are allowed, memory must stay flat once warm, and the latencies are printed (`pytest -s` shows them), not
asserted: this machine is shared. Bounded to a few seconds of load; DOKI_LOAD_REQUESTS runs it longer.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.fakes.postgrest import FakePostgrest
from tests.fakes.supabase_auth import FakeSupabaseAuth
from tests.helpers import Build, container, secret, wait_for_http

pytestmark = pytest.mark.docker

# Requests per route and round; the connections the generator keeps open.
REQUESTS = int(os.environ.get("DOKI_LOAD_REQUESTS", "1000"))
CONCURRENCY = 32
# Growth allowed from the warm round to the end (2.5 KiB a request at the default 4000): a leak of anything
# kept per request shows beyond it, allocator noise does not.
MEMORY_GROWTH_LIMIT = 10 * 1024 * 1024
SUPABASE_SECRET = secret("the Supabase secret key", "sb_secret_LoadTest0123456789abcdefghijklmn")


@dataclass
class Round:
    """What one round of requests on one route saw."""

    latencies: list[float] = field(default_factory=list)  # seconds, of the answered requests
    errors: list[str] = field(default_factory=list)  # what went wrong, per failed request

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000

    def summary(self) -> str:
        return (
            f"{len(self.latencies)} ok, {len(self.errors)} errors; ms p50 {self.percentile(0.5):.1f} "
            f"p99 {self.percentile(0.99):.1f} max {max(self.latencies) * 1000:.1f} "
            f"(mean {statistics.fmean(self.latencies) * 1000:.1f})"
        )


async def load(url: str, count: int, headers: list[dict[str, str]]) -> Round:
    """`count` GETs of `url` over CONCURRENCY connections, each with the next of `headers` in turn."""
    seen = Round()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(count):
        queue.put_nowait(number)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            number = queue.get_nowait()
            started = time.perf_counter()
            try:
                response = await client.get(url, headers=headers[number % len(headers)])
            except httpx.HTTPError as exc:
                seen.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            if response.status_code == 200:
                seen.latencies.append(time.perf_counter() - started)
            else:
                seen.errors.append(f"{response.status_code} {response.text[:200]}")

    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return seen


def memory(container: Any) -> int:
    """The container's memory in use, as `docker stats` counts it (without the reclaimable file cache)."""
    stats = container.stats(stream=False)["memory_stats"]
    cache = stats.get("stats", {}).get("inactive_file", stats.get("stats", {}).get("total_inactive_file", 0))
    return int(stats["usage"]) - int(cache)


@pytest.fixture
def supabase() -> Iterator[FakeSupabaseAuth]:
    with FakePostgrest(SUPABASE_SECRET) as rest, FakeSupabaseAuth() as auth:
        auth.serve_rest_from(rest.url)
        yield auth


@pytest.fixture
def production_container(
    docker_client: Any, image: Build, supabase: FakeSupabaseAuth, reserve_port: Callable[[], int]
) -> Iterator[tuple[Any, str]]:
    port = reserve_port()
    environment = {
        "ENVIRONMENT": "production",
        "PORT": str(port),
        "ALLOWED_ORIGINS": "https://app.doki.com",
        "SESSION_SECRET_KEY": secret("the session secret", "load-session-0123456789abcdefghijklmnopqrstu"),
        "ENCRYPTION_KEY": secret("the Fernet key", Fernet.generate_key().decode()),
        "SUPABASE_URL": supabase.url,
        "SUPABASE_SECRET_KEY": SUPABASE_SECRET,
        "GOOGLE_CLIENT_ID": "1234-load.apps.googleusercontent.com",
        "GOOGLE_CLIENT_SECRET": secret("the Google client secret", "GOCSPX-load-test-secret"),
    }
    with container(docker_client, image.image_id, network_mode="host", environment=environment) as started:
        url = f"http://127.0.0.1:{port}"
        assert wait_for_http(f"{url}/").status_code == 200, started.logs().decode()
        yield started, url


def test_the_production_image_answers_thousands_of_requests_without_an_error_or_growing(
    production_container: tuple[Any, str], supabase: FakeSupabaseAuth
) -> None:
    container, url = production_container
    users = [f"user-{number}@example.com" for number in range(20)]
    tokens = [{"Authorization": f"Bearer {supabase.mint({'email': email})}"} for email in users]

    def round_of(count: int) -> dict[str, Round]:
        return {
            "GET /": asyncio.run(load(f"{url}/", count, [{}])),
            "GET /auth/me": asyncio.run(load(f"{url}/auth/me", count, tokens)),
        }

    round_of(REQUESTS // 4)  # warm: imports on first use, the JWKS fetched, the allocator's pools grown
    warm = memory(container)
    rounds = [round_of(REQUESTS), round_of(REQUESTS)]
    after = memory(container)

    for number, seen in enumerate(rounds, 1):
        for route, result in seen.items():
            print(f"round {number} {route}: {result.summary()}")
    print(f"memory: {warm / 2**20:.1f} MiB warm, {after / 2**20:.1f} MiB after {4 * REQUESTS} requests")

    for seen in rounds:
        for route, result in seen.items():
            assert result.errors == [], f"{route}: {result.errors[:5]}"
            assert len(result.latencies) == REQUESTS
    assert after - warm < MEMORY_GROWTH_LIMIT, f"memory grew from {warm} to {after} bytes"
    # Who the tokens say: each answered with its own user, not a cached or mixed-up one.
    answered = {httpx.get(f"{url}/auth/me", headers=header).json()["email"] for header in tokens}
    assert answered == set(users)
    # The JWKS was fetched once for all of it: the cache held.
    assert supabase.fetch_count == 1
