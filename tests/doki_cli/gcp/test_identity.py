"""ID tokens for a private service's URL: minted through IAM Credentials as the account doki.toml names, or as the
account the credentials impersonate; a user's own login, which cannot mint one, gets the fix instead."""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest

from doki_cli.emulator.server import Emulator
from doki_cli.errors import DokiError
from doki_cli.gcp.clients import ClientFactory
from doki_cli.gcp.google import Google
from doki_cli.gcp.identity import NAME_AN_ACCOUNT, _impersonated_account

PROJECT = "acme-prod"
INVOKER = f"release-checks@{PROJECT}.iam.gserviceaccount.com"
AUDIENCE = "https://api-abc-uc.a.run.app"


def test_a_named_account_gets_a_token_for_the_audience_with_its_email(emulator: Emulator) -> None:
    emulator.accounts.add(PROJECT, INVOKER)
    google = Google(ClientFactory(emulator.grpc_address, quota_project=PROJECT), PROJECT)
    claims = jwt.decode(google.identity.token(AUDIENCE, INVOKER), options={"verify_signature": False})
    assert (claims["aud"], claims["email"]) == (AUDIENCE, INVOKER)


def test_an_account_that_does_not_exist_is_named_with_how_to_create_it(emulator: Emulator) -> None:
    google = Google(ClientFactory(emulator.grpc_address, quota_project=PROJECT), PROJECT)
    with pytest.raises(DokiError) as failed:
        google.identity.token(AUDIENCE, INVOKER)
    assert (failed.value.code, failed.value.message) == (
        "service_account_missing",
        f"minting an ID token for {AUDIENCE} as projects/-/serviceAccounts/{INVOKER}: the service account {INVOKER} "
        "does not exist",
    )


def test_without_an_account_the_emulator_mints_none_and_says_which_key_names_one(emulator: Emulator) -> None:
    google = Google(ClientFactory(emulator.grpc_address, quota_project=PROJECT), PROJECT)
    with pytest.raises(DokiError) as failed:
        google.identity.token(AUDIENCE)
    assert (failed.value.code, failed.value.message, failed.value.hint) == (
        "no_identity_token",
        f"no ID token for {AUDIENCE}: the emulator's stand-in credentials are no service account's, and no account "
        "to mint one as is named",
        NAME_AN_ACCOUNT,
    )


def _adc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, info: dict[str, object]) -> None:
    path = tmp_path / "adc.json"
    path.write_text(json.dumps(info))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))


def test_workload_identity_credentials_mint_as_the_account_they_impersonate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What google-github-actions/auth writes for doki's workflow: no key, an impersonation URL.
    deployer = f"doki-deployer@{PROJECT}.iam.gserviceaccount.com"
    (tmp_path / "oidc-token").write_text("github-oidc-token")
    _adc(
        tmp_path,
        monkeypatch,
        {
            "type": "external_account",
            "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/gh",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": "https://sts.googleapis.com/v1/token",
            "credential_source": {"file": str(tmp_path / "oidc-token")},
            "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/"
            f"serviceAccounts/{deployer}:generateAccessToken",
        },
    )
    assert _impersonated_account() == deployer


def test_a_users_own_login_impersonates_no_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What `gcloud auth application-default login` writes. (An --impersonate-service-account login's file is minted
    # for by fetch_id_token itself, through its source credentials.)
    _adc(
        tmp_path,
        monkeypatch,
        {"type": "authorized_user", "client_id": "id", "client_secret": "s", "refresh_token": "r"},
    )
    assert _impersonated_account() is None
