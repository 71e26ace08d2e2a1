"""The Google connector on its own, against the fake Google: code exchange with PKCE, the token store with its
refreshes, and the retry policy. Time is an injected clock and waits are recorded, never slept."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from cryptography.fernet import Fernet

from doki.connectors.errors import ConnectorError
from doki.connectors.google import (
    SCOPE_DRIVE_READONLY,
    SCOPE_SHEETS_READONLY,
    GoogleAccounts,
    GoogleClientConfig,
    GoogleOAuth,
    OAuthFlow,
    TokenGrant,
    UsedStates,
    connect_state_user,
    nonce_digest,
    pkce_challenge,
)
from doki.connectors.http import Upstream, _deadline, deadline
from doki.crypto import CredentialCipher
from doki.storage import SQLiteCredentialStore
from tests.fakes.google import FakeGoogle

USER = "5b0c1d5e-0000-4000-8000-00000000abcd"
REDIRECT_URI = "http://127.0.0.1:8080/auth/google/callback"
T = TypeVar("T")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class World:
    """A GoogleAccounts over SQLite with its OAuth client pointed at the fake."""

    def __init__(self, google: FakeGoogle, store_path: Path) -> None:
        self.google = google
        self.clock = Clock()
        google.clock = self.clock
        self.sleeps: list[float] = []
        self.store = SQLiteCredentialStore(store_path)
        self.cipher = CredentialCipher.from_keys([Fernet.generate_key().decode()])
        settings = google.settings(REDIRECT_URI)
        self.config = GoogleClientConfig(
            client_id=settings["google_client_id"],
            client_secret=settings["google_client_secret"],
            redirect_uri=REDIRECT_URI,
            auth_url=settings["google_auth_url"],
            token_url=settings["google_token_url"],
            revoke_url=settings["google_revoke_url"],
        )

    def run(self, make: Callable[[GoogleOAuth, GoogleAccounts], Awaitable[T]]) -> T:
        async def main() -> T:
            async def sleep(seconds: float) -> None:
                self.sleeps.append(seconds)

            async with httpx.AsyncClient() as http:
                oauth = GoogleOAuth(self.config, Upstream(http, sleep=sleep), clock=self.clock)
                accounts = GoogleAccounts(oauth, self.store, self.cipher, clock=self.clock)
                return await make(oauth, accounts)

        return asyncio.run(main())

    def code(self, oauth: GoogleOAuth, flow: OAuthFlow) -> str:
        location = self.google.authorize(oauth.authorization_url(flow))
        return dict(httpx.URL(location).params)["code"]

    def connect(self) -> TokenGrant:
        """A user connected with the fake's current consent: the grant stored for USER."""

        async def go(oauth: GoogleOAuth, accounts: GoogleAccounts) -> TokenGrant:
            flow = OAuthFlow.start(now=self.clock())
            grant = await oauth.exchange_code(self.code(oauth, flow), flow.verifier)
            assert grant.id_token is not None
            await accounts.save(USER, grant, oauth.id_token_claims(grant.id_token))
            return grant

        return self.run(go)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with FakeGoogle() as google:
        google.add_account("ada@gmail.com")
        yield World(google, tmp_path / "credentials.sqlite3")


# --- PKCE and the code exchange ------------------------------------------------------------------------------


def test_pkce_challenge_is_the_rfc_7636_s256_of_the_verifier() -> None:
    # RFC 7636, appendix B.
    assert (
        pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_the_nonce_google_signs_is_the_sha256_hex_of_the_one_kept() -> None:
    assert nonce_digest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_a_code_is_exchanged_with_its_verifier_for_tokens_and_the_granted_scopes(world: World) -> None:
    grant = world.connect()
    assert grant.access_token.startswith("ya29.") and grant.refresh_token and grant.expires_in == 3599
    assert {SCOPE_DRIVE_READONLY, SCOPE_SHEETS_READONLY, "openid"} <= grant.scopes
    assert "https://www.googleapis.com/auth/userinfo.email" in grant.scopes  # `email`, as Google spells it back
    [(_, _, form)] = [r for r in world.google.requests if r[1] == "/token"]
    assert form["redirect_uri"] == [REDIRECT_URI]
    assert form["grant_type"] == ["authorization_code"]


@pytest.mark.parametrize(("verifier", "reason"), [("", "Missing code verifier."), ("x" * 64, "Invalid code verifier.")])
def test_a_code_redeemed_without_its_verifier_is_refused(world: World, verifier: str, reason: str) -> None:
    async def go(oauth: GoogleOAuth, accounts: GoogleAccounts) -> None:
        code = world.code(oauth, OAuthFlow.start(now=0))
        with pytest.raises(ConnectorError) as refused:
            await oauth.exchange_code(code, verifier)
        assert (refused.value.status_code, refused.value.code) == (400, "google_code_rejected")
        assert reason in refused.value.message

    world.run(go)


def test_a_code_is_good_for_one_exchange_only(world: World) -> None:
    async def go(oauth: GoogleOAuth, accounts: GoogleAccounts) -> None:
        flow = OAuthFlow.start(now=0)
        code = world.code(oauth, flow)
        await oauth.exchange_code(code, flow.verifier)
        with pytest.raises(ConnectorError, match="Google refused the authorization code"):
            await oauth.exchange_code(code, flow.verifier)

    world.run(go)


def test_an_id_token_issued_to_another_client_is_refused(world: World) -> None:
    async def go(oauth: GoogleOAuth, accounts: GoogleAccounts) -> None:
        foreign = world.google.id_token(world.google.accounts[0], nonce=None, audience="someone-else")
        with pytest.raises(ConnectorError, match="another OAuth client"):
            oauth.id_token_claims(foreign)
        with pytest.raises(ConnectorError, match="not a JWT"):
            oauth.id_token_claims("garbage")

    world.run(go)


def test_an_id_token_from_another_issuer_or_expired_is_refused(world: World) -> None:
    ada = world.google.accounts[0]

    async def go(oauth: GoogleOAuth, accounts: GoogleAccounts) -> None:
        assert oauth.id_token_claims(world.google.id_token(ada, nonce=None, issuer="accounts.google.com"))["sub"]
        with pytest.raises(ConnectorError, match="Google did not issue"):
            oauth.id_token_claims(world.google.id_token(ada, nonce=None, issuer="https://evil.example"))
        expired = world.google.id_token(ada, nonce=None, lifetime=-61)
        with pytest.raises(ConnectorError, match="has expired"):
            oauth.id_token_claims(expired)
        # A minute's difference between clocks is tolerated.
        assert oauth.id_token_claims(world.google.id_token(ada, nonce=None, lifetime=-30))["sub"] == ada.sub

    world.run(go)


def test_a_connect_state_names_its_user_and_nothing_else_reads_as_one() -> None:
    flow = OAuthFlow.start(now=0, user_id=USER)
    assert flow.state.startswith(f"connect.{USER}.") and connect_state_user(flow.state) == USER
    assert connect_state_user(OAuthFlow.start(now=0).state) is None
    assert connect_state_user(OAuthFlow.start(now=0, user_id="not-a-uuid").state) is None
    for forged in ("connect.", f"connect.{USER}", f"connect.{USER}.", "connect.x.y", f"connect.{USER.upper()}.y"):
        assert connect_state_user(forged) is None


def test_a_kept_connect_round_trip_is_taken_once_and_only_with_its_whole_state(world: World) -> None:
    async def go(oauth: GoogleOAuth, accounts: GoogleAccounts) -> None:
        flow = OAuthFlow.start(now=world.clock(), user_id=USER)
        await accounts.keep_connect(flow)
        assert await accounts.take_connect(flow.state[:-1]) is None
        assert await accounts.take_connect(flow.state) == flow
        assert await accounts.take_connect(flow.state) is None

    world.run(go)
    assert world.store.get(USER, "google_connect") is None


def test_a_state_can_be_claimed_once_within_the_flow_lifetime() -> None:
    used = UsedStates(max_age=100)
    assert used.claim("s", now=0) is True
    assert used.claim("s", now=50) is False
    assert used.claim("t", now=50) is True


def test_used_states_stay_bounded() -> None:
    used = UsedStates(max_age=10**9, max_entries=3)
    for index in range(10):
        used.claim(f"s{index}", now=index)
    assert len(used._seen) == 3


# --- the token store -----------------------------------------------------------------------------------------


def test_stored_tokens_are_encrypted_for_the_user_and_metadata_holds_no_token(world: World) -> None:
    grant = world.connect()
    row = world.store.get(USER, "google")
    assert row is not None
    assert grant.access_token not in row.ciphertext and str(grant.refresh_token) not in row.ciphertext
    assert row.metadata["status"] == "connected" and row.metadata["email"] == "ada@gmail.com"
    assert grant.access_token in world.cipher.decrypt(USER, row.ciphertext)
    assert not any(grant.access_token in value for value in row.metadata.values())


def test_a_fresh_access_token_is_used_without_asking_google(world: World) -> None:
    grant = world.connect()
    world.clock.now += 3599 - 61
    assert world.run(lambda oauth, accounts: accounts.access_token(USER)) == grant.access_token
    assert world.google.calls("/token") == 1


def test_an_access_token_about_to_expire_is_refreshed_and_the_new_one_stored(world: World) -> None:
    grant = world.connect()
    world.clock.now += 3599 - 59
    fresh = world.run(lambda oauth, accounts: accounts.access_token(USER))
    assert fresh != grant.access_token
    assert world.run(lambda oauth, accounts: accounts.access_token(USER)) == fresh
    assert world.google.calls("/token") == 2


def test_concurrent_requests_with_an_expired_token_share_one_refresh(world: World) -> None:
    world.connect()
    world.clock.now += 7200

    async def go(oauth: GoogleOAuth, accounts: GoogleAccounts) -> list[str]:
        return list(await asyncio.gather(*(accounts.access_token(USER) for _ in range(5))))

    tokens = world.run(go)
    assert len(set(tokens)) == 1
    assert world.google.calls("/token") == 2  # the exchange, then one refresh


def test_a_refresh_google_refuses_deletes_the_tokens_and_asks_to_reconnect(world: World) -> None:
    world.connect()
    world.google.revoke_access(world.google.accounts[0])
    world.clock.now += 7200

    async def go(oauth: GoogleOAuth, accounts: GoogleAccounts) -> None:
        with pytest.raises(ConnectorError) as refused:
            await accounts.access_token(USER)
        assert (refused.value.status_code, refused.value.code) == (409, "google_reconnect_required")

    world.run(go)
    assert world.store.get(USER, "google") is None


def test_without_a_refresh_token_an_expired_connection_asks_for_offline_access(world: World) -> None:
    world.google.will_consent(refresh_token=False)
    world.connect()
    assert world.store.get(USER, "google").metadata["missing_scopes"] == "offline_access"  # type: ignore[union-attr]
    world.clock.now += 7200

    async def go(oauth: GoogleOAuth, accounts: GoogleAccounts) -> Any:
        with pytest.raises(ConnectorError) as refused:
            await accounts.access_token(USER)
        return refused.value.body()

    assert world.run(go)["missing_scopes"] == ["offline_access"]


def test_a_google_server_error_on_refresh_keeps_the_tokens(world: World) -> None:
    world.connect()
    world.clock.now += 7200
    world.google.fail_next(10, 500, path="/token")

    async def go(oauth: GoogleOAuth, accounts: GoogleAccounts) -> None:
        with pytest.raises(ConnectorError) as failed:
            await accounts.access_token(USER)
        assert failed.value.code == "google_unavailable"

    world.run(go)
    assert world.store.get(USER, "google") is not None


# --- refreshes racing with writes ---------------------------------------------------------------------------


def _second_instance(world: World, oauth: GoogleOAuth) -> GoogleAccounts:
    """Another server instance on the same store: it shares no lock with the first."""
    return GoogleAccounts(oauth, world.store, world.cipher, clock=world.clock)


async def _settle(task: asyncio.Future[Any]) -> None:
    """Give `task` the chance to run as far as it can while the refresh is held: to its end, unless it waits
    for the user's lock (then this waits in vain, briefly: no outcome depends on how long)."""
    await asyncio.wait({task}, timeout=0.5)


def _reconnect(world: World, oauth: GoogleOAuth, accounts: GoogleAccounts, email: str) -> Awaitable[Any]:
    world.google.will_consent(next(a for a in world.google.accounts if a.email == email))
    flow = OAuthFlow.start(now=world.clock())
    code = world.code(oauth, flow)

    async def go() -> Any:
        grant = await oauth.exchange_code(code, flow.verifier)
        assert grant.id_token is not None
        return await accounts.save(USER, grant, oauth.id_token_claims(grant.id_token))

    return go()


def test_a_disconnect_while_a_refresh_is_in_flight_is_not_undone_by_it(world: World) -> None:
    world.connect()
    world.clock.now += 7200
    held = world.google.hold_next("/token", grant_type="refresh_token")

    async def go(oauth: GoogleOAuth, accounts: GoogleAccounts) -> None:
        refresh = asyncio.create_task(accounts.access_token(USER))
        await asyncio.to_thread(held.wait_arrived)
        disconnect = asyncio.create_task(accounts.disconnect(USER))
        await _settle(disconnect)
        held.release()
        token, disconnected = await asyncio.gather(refresh, disconnect)
        # The refresh finished first (the disconnect waited for it), then the disconnect deleted its result.
        assert token.startswith("ya29.") and disconnected == {"disconnected": True, "revoked": True}

    world.run(go)
    assert world.store.get(USER, "google") is None


def test_a_disconnect_on_another_instance_during_a_refresh_is_not_undone_by_it(world: World) -> None:
    world.connect()
    world.clock.now += 7200
    held = world.google.hold_next("/token", grant_type="refresh_token")

    async def go(oauth: GoogleOAuth, accounts: GoogleAccounts) -> None:
        refresh = asyncio.create_task(accounts.access_token(USER))
        await asyncio.to_thread(held.wait_arrived)
        assert (await _second_instance(world, oauth).disconnect(USER))["disconnected"] is True
        held.release()
        with pytest.raises(ConnectorError) as refused:
            await refresh
        assert refused.value.code == "google_not_connected"

    world.run(go)
    assert world.store.get(USER, "google") is None


def test_a_reconnect_on_another_instance_during_a_refresh_keeps_the_new_account(world: World) -> None:
    world.connect()  # ada
    world.google.add_account("bob@gmail.com")
    world.clock.now += 7200
    held = world.google.hold_next("/token", grant_type="refresh_token")

    async def go(oauth: GoogleOAuth, accounts: GoogleAccounts) -> str:
        refresh = asyncio.create_task(accounts.access_token(USER))
        await asyncio.to_thread(held.wait_arrived)
        connection = await _reconnect(world, oauth, _second_instance(world, oauth), "bob@gmail.com")
        assert connection.email == "bob@gmail.com"
        held.release()
        return await refresh

    token = world.run(go)
    row = world.store.get(USER, "google")
    assert row is not None and row.metadata["email"] == "bob@gmail.com"
    # The refresh lost the race and handed out the connection that won it: bob's.
    assert f'"access_token":"{token}"' in world.cipher.decrypt(USER, row.ciphertext)
    assert '"email":"bob@gmail.com"' in world.cipher.decrypt(USER, row.ciphertext)


def test_a_reconnect_while_a_refresh_is_in_flight_is_written_after_it(world: World) -> None:
    world.connect()
    world.google.add_account("bob@gmail.com")
    world.clock.now += 7200
    held = world.google.hold_next("/token", grant_type="refresh_token")

    async def go(oauth: GoogleOAuth, accounts: GoogleAccounts) -> None:
        refresh = asyncio.create_task(accounts.access_token(USER))
        await asyncio.to_thread(held.wait_arrived)
        reconnect = asyncio.ensure_future(_reconnect(world, oauth, accounts, "bob@gmail.com"))
        await _settle(reconnect)
        held.release()
        await asyncio.gather(refresh, reconnect)

    world.run(go)
    row = world.store.get(USER, "google")
    assert row is not None and row.metadata["email"] == "bob@gmail.com"


def test_a_refresh_refused_after_a_reconnect_elsewhere_deletes_nothing(world: World) -> None:
    world.connect()
    ada = world.google.accounts[0]
    world.clock.now += 7200
    world.google.revoke_access(ada)  # the old grant dies...
    held = world.google.hold_next("/token", grant_type="refresh_token")

    async def go(oauth: GoogleOAuth, accounts: GoogleAccounts) -> str:
        refresh = asyncio.create_task(accounts.access_token(USER))
        await asyncio.to_thread(held.wait_arrived)
        await _reconnect(world, oauth, _second_instance(world, oauth), "ada@gmail.com")  # ...a new one replaces it
        held.release()
        return await refresh

    token = world.run(go)
    row = world.store.get(USER, "google")
    assert row is not None, "the refused refresh deleted the new connection"
    assert f'"access_token":"{token}"' in world.cipher.decrypt(USER, row.ciphertext)


def test_revoking_an_unknown_token_reports_failure_without_raising(world: World) -> None:
    assert world.run(lambda oauth, accounts: oauth.revoke("ya29.unknown")) is False


# --- the retry policy ----------------------------------------------------------------------------------------


def _get(world: World, url: str, **options: Any) -> httpx.Response:
    async def main() -> httpx.Response:
        async def sleep(seconds: float) -> None:
            world.sleeps.append(seconds)

        async with httpx.AsyncClient() as http:
            return await Upstream(http, sleep=sleep, **options).request("GET", url)

    return asyncio.run(main())


def test_a_502_then_a_503_are_retried_with_doubling_waits(world: World) -> None:
    world.google.fail_next(1, 502)
    world.google.fail_next(1, 503)
    assert _get(world, f"{world.google.url}/drive/v3/files").status_code == 401  # reached Google: no token
    assert world.sleeps == [0.5, 1.0]


def test_client_errors_are_not_retried(world: World) -> None:
    assert _get(world, f"{world.google.url}/v4/spreadsheets/x").status_code == 401
    assert world.sleeps == []


def test_waits_never_exceed_the_cap(world: World) -> None:
    world.google.fail_next(10, 503)
    with pytest.raises(ConnectorError):
        _get(world, f"{world.google.url}/drive/v3/files", attempts=6, base_delay=1.0, max_delay=4.0)
    assert world.sleeps == [1.0, 2.0, 4.0, 4.0, 4.0]


def test_an_unparsable_retry_after_falls_back_to_the_backoff(world: World) -> None:
    world.google.fail_next(1, 429, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    _get(world, f"{world.google.url}/drive/v3/files")
    assert world.sleeps == [0.5]


def test_an_unreachable_google_is_retried_then_a_503(world: World) -> None:
    url = f"{world.google.url}/drive/v3/files"
    world.google.stop()
    with pytest.raises(ConnectorError) as failed:
        _get(world, url)
    assert (failed.value.status_code, failed.value.code) == (503, "google_unavailable")
    assert "cannot reach Google (ConnectError)" in failed.value.message
    assert world.sleeps == [0.5, 1.0, 2.0]


def _timed_get(world: World, url: str, times: int = 1, *, at: float | None = None, **options: Any) -> list[str]:
    """`times` GETs on a clock moved only by the waits (inside `deadline(at)` when given): how each ended."""
    elapsed = [0.0]

    async def sleep(seconds: float) -> None:
        world.sleeps.append(seconds)
        elapsed[0] += seconds

    async def main() -> list[str]:
        ends = []
        async with httpx.AsyncClient() as http:
            upstream = Upstream(http, sleep=sleep, clock=lambda: elapsed[0], **options)
            with deadline(at) if at is not None else nullcontext():
                for _ in range(times):
                    try:
                        ends.append(str((await upstream.request("GET", url)).status_code))
                    except ConnectorError as error:
                        ends.append(error.message)
        return ends

    return asyncio.run(main())


def test_a_request_outside_any_deadline_gives_up_after_its_own_thirty_seconds(world: World) -> None:
    world.google.fail_next(100, 503)
    [end] = _timed_get(world, f"{world.google.url}/drive/v3/files", attempts=20)
    # 0.5 + 1 + 2 + 4 + 8 + 8 = 23.5 s waited; another 8 would end past 30.
    assert world.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert end.endswith("7 times, out of time for more")


def test_requests_inside_one_deadline_share_it(world: World) -> None:
    world.google.fail_next(5, 503)
    ends = _timed_get(world, f"{world.google.url}/drive/v3/files", times=2, at=3.0)
    # The first request waits 0.5 and 1, and has no time for a wait of 2; the second starts at 1.5 s, not at 0.
    assert world.sleeps == [0.5, 1.0, 0.5]
    assert ends[0].endswith("3 times, out of time for more")
    assert ends[1].endswith("2 times, out of time for more")


def test_an_enclosing_deadline_stands_over_a_nested_one() -> None:
    seen: list[float | None] = []
    with deadline(5.0), deadline(100.0):
        seen.append(_deadline.get())
    seen.append(_deadline.get())
    assert seen == [5.0, None]


def test_no_try_starts_once_the_deadline_has_passed(world: World) -> None:
    [end] = _timed_get(world, f"{world.google.url}/drive/v3/files", at=0.0)
    assert "no time was left" in end
    assert world.google.calls("/drive") == 0
