"""IAM Credentials in the emulator, through the official client: GenerateIdToken mints an ID token for a service
account that exists, good for its audience for an hour; anything else is refused in Google's words."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from google.api_core import exceptions

from doki_cli.emulator.iamadmin.state import Account
from doki_cli.emulator.iamcredentials.tokens import IdTokens
from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory

PROJECT = "acme-prod"
CALLER = f"smoke-tester@{PROJECT}.iam.gserviceaccount.com"


@pytest.fixture
def tokens(emulator: Emulator) -> Any:
    emulator.accounts.add(PROJECT, CALLER)
    return ClientFactory(emulator.grpc_address).iam_credentials()


def mint(tokens: Any, email: str = CALLER, audience: str = "https://api-abc.a.run.app", **extra: Any) -> str:
    request = {"name": f"projects/-/serviceAccounts/{email}", "audience": audience, **extra}
    return str(tokens.generate_id_token(request=request).token)


def test_a_token_names_its_audience_and_account_and_lasts_an_hour(emulator: Emulator, tokens: Any) -> None:
    token = mint(tokens, include_email=True)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "RS256"
    assert (claims["iss"], claims["aud"], claims["email"], claims["email_verified"]) == (
        "https://accounts.google.com",
        "https://api-abc.a.run.app",
        CALLER,
        True,
    )
    assert claims["exp"] - claims["iat"] == 3600
    assert emulator.id_tokens.verify(token) == claims  # what a private URL checks


def test_the_email_is_in_the_token_only_when_asked_for(tokens: Any) -> None:
    claims = jwt.decode(mint(tokens), options={"verify_signature": False})
    assert "email" not in claims and claims["sub"].isdigit()


def test_an_account_that_does_not_exist_gets_no_token(tokens: Any) -> None:
    missing = f"nobody-here@{PROJECT}.iam.gserviceaccount.com"
    with pytest.raises(exceptions.NotFound) as refused:
        mint(tokens, email=missing)
    assert refused.value.message == f"Not found; Gaia id not found for email {missing}"


def test_the_name_needs_the_dash_wildcard_and_an_audience(tokens: Any) -> None:
    with pytest.raises(exceptions.InvalidArgument, match="expected projects/-/serviceAccounts/EMAIL"):
        tokens.generate_id_token(request={"name": f"projects/{PROJECT}/serviceAccounts/{CALLER}", "audience": "x"})
    with pytest.raises(exceptions.InvalidArgument, match="audience is required"):
        tokens.generate_id_token(request={"name": f"projects/-/serviceAccounts/{CALLER}"})


def test_a_token_from_another_signer_or_past_its_hour_is_no_id_token() -> None:
    now = [1_000_000.0]
    ours, theirs = IdTokens(clock=lambda: now[0]), IdTokens(clock=lambda: now[0])
    account = Account(PROJECT, CALLER)
    token = ours.mint(account, "https://api", include_email=True)
    assert ours.verify(token) is not None
    assert theirs.verify(token) is None
    assert ours.verify("not-a-jwt") is None
    now[0] += 3600
    assert ours.verify(token) is None
