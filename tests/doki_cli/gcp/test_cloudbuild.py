"""The Cloud Build adapter's identity: the account a remote build runs as, sent as Cloud Build requires it, read back
from the build the emulator recorded; and Cloud Build's refusals of an identity, each with the fix that works."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.cloud.devtools import cloudbuild_v1 as cb

from doki_cli.emulator.projects import project_number
from doki_cli.emulator.server import Emulator
from doki_cli.errors import DokiError
from doki_cli.gcp.clients import ClientFactory
from doki_cli.gcp.cloudbuild import build_identity, start_error
from doki_cli.gcp.google import Google

PROJECT = "p-builds"
BUILDER = f"builder@{PROJECT}.iam.gserviceaccount.com"
IMAGE = f"us-central1-docker.pkg.dev/{PROJECT}/apps/api:v1"
Logging = cb.BuildOptions.LoggingMode


@pytest.fixture
def google(emulator: Emulator, clients: ClientFactory) -> Google:
    """The adapters of a project whose build accounts exist (Cloud Build refuses one that does not)."""
    emulator.accounts.add(PROJECT, BUILDER)
    emulator.accounts.add("shared-builds", "builder@shared-builds.iam.gserviceaccount.com")
    return Google(clients, PROJECT, "us-central1")


def test_a_build_account_that_does_not_exist_is_refused_before_the_build_starts(
    google: Google, clients: ClientFactory
) -> None:
    missing = f"gone@{PROJECT}.iam.gserviceaccount.com"
    with pytest.raises(DokiError) as refused:
        google.cloud_build.submit(b"", [IMAGE], build_args={}, service_account=missing, on_line=lambda line: None)
    assert refused.value.code == "build_account_denied"
    assert (
        f"caller does not have permission to act as service account projects/{PROJECT}/serviceAccounts/{missing}"
        in refused.value.message
    )
    assert list(clients.cloud_build().list_builds(project_id=PROJECT)) == []


def _submitted(google: Google, clients: ClientFactory, account: str | None) -> cb.Build:
    """The build a remote build as `account` started, as GetBuild reads it back. The emulator has no Docker engine
    here, so the build itself fails: what was asked for is what these tests look at."""
    with pytest.raises(DokiError) as failed:
        google.cloud_build.submit(b"", [IMAGE], build_args={}, service_account=account, on_line=lambda line: None)
    assert failed.value.code == "build_failed"
    (listed,) = clients.cloud_build().list_builds(project_id=PROJECT)
    build: cb.Build = clients.cloud_build().get_build(project_id=PROJECT, id=listed.id)
    return build


def test_a_build_with_an_account_runs_as_it_and_keeps_its_logs_in_cloud_logging_only(
    google: Google, clients: ClientFactory
) -> None:
    build = _submitted(google, clients, BUILDER)
    assert build.service_account == f"projects/{PROJECT}/serviceAccounts/{BUILDER}"
    assert build.options.logging == Logging.CLOUD_LOGGING_ONLY


def test_an_account_of_another_project_is_named_under_its_own_project(google: Google, clients: ClientFactory) -> None:
    other = "builder@shared-builds.iam.gserviceaccount.com"
    assert _submitted(google, clients, other).service_account == f"projects/shared-builds/serviceAccounts/{other}"


def test_a_build_without_an_account_is_sent_as_before_and_runs_as_the_compute_engine_default_account(
    google: Google, clients: ClientFactory
) -> None:
    build = _submitted(google, clients, None)
    assert build.options.logging == Logging.LOGGING_UNSPECIFIED
    assert build.service_account == (
        f"projects/{PROJECT}/serviceAccounts/{project_number(PROJECT)}-compute@developer.gserviceaccount.com"
    )


def test_the_announced_identity_names_the_account_or_what_the_default_is() -> None:
    assert build_identity(BUILDER) == f"as {BUILDER}"
    assert build_identity(None) == (
        "as the project's default build account (the Compute Engine default account on projects made since 2024)"
    )


# Cloud Build's refusal when the caller may not act as the build's account (as users quote it, e.g.
# https://github.com/kohei321dev/spot-diggz/issues/164), and IAM's own wording of the same permission.
ACT_AS = {
    "cloud build": "caller does not have permission to act as service account 109095503163182759798",
    "iam": f"Permission 'iam.serviceaccounts.actAs' denied on service account {BUILDER} (or it may not exist).",
}


@pytest.mark.parametrize("said", ACT_AS.values(), ids=ACT_AS.keys())
def test_a_build_account_the_caller_may_not_act_as_says_which_grant_fixes_it(
    google: Google, emulator: Emulator, said: str
) -> None:
    emulator.faults.fail("CreateBuild", "PERMISSION_DENIED", message=said)
    with pytest.raises(DokiError) as failed:
        google.cloud_build.submit(b"", [IMAGE], build_args={}, service_account=BUILDER, on_line=lambda line: None)
    assert (failed.value.code, failed.value.message, failed.value.hint) == (
        "build_account_denied",
        f"starting a build in projects/{PROJECT}: Cloud Build refused to run it as {BUILDER}, which your credentials "
        f"may not act as ({said})",
        f"grant them roles/iam.serviceAccountUser on that account: gcloud iam service-accounts add-iam-policy-binding "
        f"{BUILDER} --member=user:YOU@example.com (or serviceAccount:EMAIL for CI) "
        f"--role=roles/iam.serviceAccountUser --project {PROJECT}; if it does not exist (Cloud Build answers the "
        "same), create it; or set [build] service_account in doki.toml to an account they may act as",
    )


def test_the_default_build_account_the_caller_may_not_act_as_is_named_by_its_project_number() -> None:
    refused = exceptions.PermissionDenied(ACT_AS["cloud build"])
    error = start_error(refused, project=PROJECT, account=None)
    assert error.code == "build_account_denied"
    assert error.message.startswith(
        f"starting a build in projects/{PROJECT}: Cloud Build refused to run it as the project's default build "
        "account (the Compute Engine default account on projects made since 2024), which your credentials may not "
        "act as ("
    )
    assert error.hint == (
        "grant them roles/iam.serviceAccountUser on that account: gcloud iam service-accounts add-iam-policy-binding "
        "PROJECT_NUMBER-compute@developer.gserviceaccount.com --member=user:YOU@example.com (or serviceAccount:EMAIL "
        f"for CI) --role=roles/iam.serviceAccountUser --project {PROJECT} (PROJECT_NUMBER: gcloud projects describe "
        f"{PROJECT} --format 'value(projectNumber)'); if it does not exist (Cloud Build answers the same), create it; "
        "or set [build] service_account in doki.toml to an account they may act as"
    )


def test_other_refusals_to_start_a_build_read_as_every_google_error(google: Google, emulator: Emulator) -> None:
    emulator.faults.fail("CreateBuild", "PERMISSION_DENIED", message="The caller does not have permission")
    with pytest.raises(DokiError) as failed:
        google.cloud_build.submit(b"", [IMAGE], build_args={}, service_account=None, on_line=lambda line: None)
    assert (failed.value.code, failed.value.hint) == (
        "permission_denied",
        f"grant your account the roles/cloudbuild.builds.editor role on projects/{PROJECT} or its project, or run as "
        "an identity that has it",
    )


def test_a_remote_build_says_it_uploads_the_source_where_only_v_showed_anything(google: Google) -> None:
    said: list[str] = []
    with pytest.raises(DokiError) as failed:  # an emulator without an engine cannot run the build
        google.cloud_build.submit(
            b"", [IMAGE], build_args={}, service_account=BUILDER, on_line=lambda line: None, on_progress=said.append
        )
    assert failed.value.code == "build_failed"
    assert said == ["uploading the source (0.0 MB) to Cloud Storage"]  # and no wait: the build ended at once
