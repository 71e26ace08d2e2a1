"""Properties of access token verification (doki.auth.verifier), through the API: a valid token of each kind the
backend accepts (ES256 and RS256 from the project's JWKS, HS256 with the legacy secret), changed anywhere in any
way, gets 401 with an `invalid_token` challenge: never the user, never a 500, and never the token echoed back."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from doki.app import create_app
from tests.doki.conftest import production_settings
from tests.fakes.supabase_auth import FakeSupabaseAuth

JWT_SECRET = "legacy-jwt-hs256-for-hardening-0123456789abcdef"
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None)
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# What a client can put in a header: printable ASCII (a CR or LF would split the header, and is refused by the
# HTTP client before it is sent).
HEADER_CHARACTERS = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


@pytest.fixture(scope="module")
def supabase() -> Iterator[FakeSupabaseAuth]:
    with FakeSupabaseAuth() as server:
        server.new_key("RS256")
        yield server


@pytest.fixture(scope="module")
def client(supabase: FakeSupabaseAuth) -> Iterator[TestClient]:
    app = create_app(production_settings(supabase.url, supabase_jwt_secret=JWT_SECRET))
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module", params=["ES256", "RS256", "HS256"])
def token(request: pytest.FixtureRequest, supabase: FakeSupabaseAuth) -> str:
    claims = {"sub": "5b0c1d5e-0000-4000-8000-00000000abcd", "email": "ada@example.com"}
    if request.param == "HS256":
        return supabase.mint(claims, alg="HS256", key=JWT_SECRET, kid=None)
    return supabase.mint(claims, alg=request.param)


def _refused(client: TestClient, token: str) -> None:
    response = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, (token, response.text)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    if len(token) >= 16:  # a short fragment can be in any text by chance
        assert token not in response.text and token not in response.headers["www-authenticate"]


def test_the_unchanged_token_is_accepted(client: TestClient, token: str) -> None:
    response = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    assert response.json()["email"] == "ada@example.com"


@PROPERTY
@given(data=st.data())
def test_replacing_any_character_with_another_base64url_one_gets_401(
    client: TestClient, token: str, data: st.DataObject
) -> None:
    at = data.draw(st.integers(0, len(token) - 1), label="at")
    assume(token[at] != ".")
    replacement = data.draw(st.sampled_from(BASE64URL.replace(token[at], "")), label="replacement")

    _refused(client, token[:at] + replacement + token[at + 1 :])


@PROPERTY
@given(data=st.data())
def test_flipping_any_bit_of_any_decoded_segment_gets_401(client: TestClient, token: str, data: st.DataObject) -> None:
    segments = token.split(".")
    index = data.draw(st.integers(0, 2), label="segment")
    raw = bytearray(base64.urlsafe_b64decode(segments[index] + "=" * (-len(segments[index]) % 4)))
    bit = data.draw(st.integers(0, len(raw) * 8 - 1), label="bit")
    raw[bit // 8] ^= 1 << (bit % 8)
    segments[index] = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()

    _refused(client, ".".join(segments))


@PROPERTY
@given(data=st.data())
def test_any_edit_of_the_token_gets_401(client: TestClient, token: str, data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(token)), label="at")
    edit = data.draw(st.sampled_from(["insert", "delete", "truncate", "duplicate", "swap"]), label="edit")
    text = data.draw(st.text(HEADER_CHARACTERS, min_size=1, max_size=8), label="text")
    edited = {
        "insert": token[:at] + text + token[at:],
        "delete": token[:at] + token[at + len(text) :],
        "truncate": token[:at],
        "duplicate": token + token[at:],
        "swap": token[at:] + token[:at],
    }[edit]
    assume(edited.strip() and edited != token)

    _refused(client, edited.strip())
