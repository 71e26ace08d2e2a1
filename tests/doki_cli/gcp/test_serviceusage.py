"""The Service Usage adapter against the emulator: which required APIs are off, enabling them, and what a call to a
disabled API becomes in doki."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from doki_cli.emulator.server import Emulator, EmulatorConfig
from doki_cli.errors import DokiError
from doki_cli.gcp.clients import ClientFactory
from doki_cli.gcp.google import Google
from doki_cli.gcp.serviceusage import REQUIRED_APIS

OFF = ("cloudbuild.googleapis.com", "secretmanager.googleapis.com")


@pytest.fixture
def google() -> Iterator[Google]:
    with Emulator(EmulatorConfig(disabled_apis=OFF)) as emulator:
        yield Google(ClientFactory(emulator.grpc_address), "p-apis")


def test_disabled_names_the_apis_that_are_off_in_the_order_asked(google: Google) -> None:
    assert google.service_usage.disabled(REQUIRED_APIS) == ["secretmanager.googleapis.com", "cloudbuild.googleapis.com"]
    assert google.service_usage.disabled(["run.googleapis.com"]) == []


def test_enable_waits_until_the_apis_are_on(google: Google) -> None:
    google.service_usage.enable(["cloudbuild.googleapis.com", "secretmanager.googleapis.com"])
    assert google.service_usage.disabled(REQUIRED_APIS) == []


def test_a_call_to_a_disabled_api_becomes_api_disabled_with_the_command_that_enables_it(google: Google) -> None:
    with pytest.raises(DokiError) as failed:
        google.secrets.exists("encryption-key")
    assert (failed.value.code, failed.value.message, failed.value.hint) == (
        "api_disabled",
        "reading projects/p-apis/secrets/encryption-key: the secretmanager.googleapis.com API is not enabled",
        "enable it: gcloud services enable secretmanager.googleapis.com",
    )


def test_enabling_without_the_role_says_which_role_it_takes() -> None:
    with Emulator(EmulatorConfig()) as emulator:
        emulator.faults.fail("BatchEnableServices", "PERMISSION_DENIED", message="Permission denied to enable service")
        google = Google(ClientFactory(emulator.grpc_address), "p-apis")
        with pytest.raises(DokiError) as failed:
            google.service_usage.enable(["run.googleapis.com"])
    assert failed.value.code == "permission_denied"
    assert failed.value.message == (
        "enabling run.googleapis.com in projects/p-apis: permission denied (Permission denied to enable service)"
    )
    assert failed.value.hint == (
        "grant your account the roles/serviceusage.serviceUsageAdmin role on projects/p-apis or its project, "
        "or run as an identity that has it"
    )
