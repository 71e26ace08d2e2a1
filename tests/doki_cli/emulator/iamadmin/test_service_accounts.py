"""Service accounts in the emulator, through IAM Admin's official client: each project has its Compute Engine default
account, others exist once created, and Cloud Run and every IAM policy refuse an account that does not exist with
Google's code and words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from google.api_core import exceptions
from google.cloud import run_v2
from google.iam.v1 import policy_pb2

from doki_cli.emulator.projects import compute_default_account
from doki_cli.emulator.server import Emulator, EmulatorConfig
from doki_cli.gcp.clients import ClientFactory

PROJECT = "acme-prod"
RUNTIME = f"api-runtime@{PROJECT}.iam.gserviceaccount.com"


@pytest.fixture
def iam(emulator: Emulator) -> Any:
    return ClientFactory(emulator.grpc_address).iam_admin()


def create(iam: Any, account_id: str, project: str = PROJECT) -> Any:
    return iam.create_service_account(
        request={
            "name": f"projects/{project}",
            "account_id": account_id,
            "service_account": {"display_name": "API runtime", "description": "runs the API"},
        }
    )


def test_every_project_has_its_compute_default_account_and_lists_it(iam: Any) -> None:
    default = compute_default_account(PROJECT)
    found = iam.get_service_account(request={"name": f"projects/{PROJECT}/serviceAccounts/{default}"})
    assert (found.email, found.project_id, found.display_name) == (
        default,
        PROJECT,
        "Compute Engine default service account",
    )
    listed = iam.list_service_accounts(request={"name": f"projects/{PROJECT}"})
    assert [a.email for a in listed] == [default]


def test_a_created_account_reads_back_by_its_email_under_its_project_or_any(iam: Any) -> None:
    made = create(iam, "api-runtime")
    assert (made.name, made.email, made.project_id, made.display_name, made.description) == (
        f"projects/{PROJECT}/serviceAccounts/{RUNTIME}",
        RUNTIME,
        PROJECT,
        "API runtime",
        "runs the API",
    )
    assert len(made.unique_id) == 21 and made.oauth2_client_id == made.unique_id
    for project in (PROJECT, "-"):
        assert iam.get_service_account(request={"name": f"projects/{project}/serviceAccounts/{RUNTIME}"}) == made
    assert RUNTIME in [a.email for a in iam.list_service_accounts(request={"name": f"projects/{PROJECT}"})]
    assert [a.email for a in iam.list_service_accounts(request={"name": "projects/other-project"})] == [
        compute_default_account("other-project")
    ]


def test_create_refuses_what_google_refuses_in_googles_words(iam: Any) -> None:
    create(iam, "api-runtime")
    with pytest.raises(exceptions.AlreadyExists, match=r"Service account api-runtime already exists within project "):
        create(iam, "api-runtime")
    with pytest.raises(exceptions.InvalidArgument) as short:
        create(iam, "api")
    assert short.value.message == 'The account ID "api" does not have a length between 6 and 30.'
    with pytest.raises(exceptions.InvalidArgument) as pattern:
        create(iam, "API_runtime")
    assert pattern.value.message == "API_runtime does not match [a-zA-Z][a-zA-Z\\d\\-]*[a-zA-Z\\d]."


def test_an_account_that_does_not_exist_is_not_found_in_googles_words(iam: Any) -> None:
    name = f"projects/-/serviceAccounts/{RUNTIME}"
    with pytest.raises(exceptions.NotFound) as missing:
        iam.get_service_account(request={"name": name})
    assert missing.value.message == f"Service account {name} does not exist."
    create(iam, "api-runtime")
    with pytest.raises(exceptions.NotFound):  # an account belongs to one project
        iam.get_service_account(request={"name": f"projects/elsewhere/serviceAccounts/{RUNTIME}"})


def test_a_secret_policy_naming_an_account_that_does_not_exist_is_refused_until_it_does(
    emulator: Emulator, iam: Any
) -> None:
    client = ClientFactory(emulator.grpc_address).secret_manager()
    secret = client.create_secret(
        request={"parent": f"projects/{PROJECT}", "secret_id": "api-key", "secret": {"replication": {"automatic": {}}}}
    ).name
    binding = policy_pb2.Binding(role="roles/secretmanager.secretAccessor", members=[f"serviceAccount:{RUNTIME}"])
    with pytest.raises(exceptions.InvalidArgument) as refused:
        client.set_iam_policy(request={"resource": secret, "policy": policy_pb2.Policy(bindings=[binding])})
    assert refused.value.message == f"Service account {RUNTIME} does not exist."
    assert list(client.get_iam_policy(request={"resource": secret}).bindings) == []  # nothing half-written

    create(iam, "api-runtime")
    client.set_iam_policy(request={"resource": secret, "policy": policy_pb2.Policy(bindings=[binding])})
    default = policy_pb2.Binding(
        role="roles/secretmanager.secretAccessor", members=[f"serviceAccount:{compute_default_account(PROJECT)}"]
    )
    client.set_iam_policy(request={"resource": secret, "policy": policy_pb2.Policy(bindings=[default])})


def test_cloud_run_refuses_a_revision_identity_that_does_not_exist_as_an_act_as_denial(
    emulator: Emulator, iam: Any
) -> None:
    services = ClientFactory(emulator.grpc_address).run_services()
    parent = f"projects/{PROJECT}/locations/us-central1"
    service = run_v2.Service(
        template=run_v2.RevisionTemplate(
            service_account=RUNTIME, containers=[run_v2.Container(image="us-docker.pkg.dev/cloudrun/container/hello")]
        )
    )
    with pytest.raises(exceptions.PermissionDenied) as refused:
        services.create_service(request={"parent": parent, "service_id": "api", "service": service})
    assert refused.value.message == (
        f"Permission 'iam.serviceaccounts.actAs' denied on service account {RUNTIME} (or it may not exist)."
    )
    with pytest.raises(exceptions.NotFound):
        services.get_service(request={"name": f"{parent}/services/api"})  # nothing was created

    create(iam, "api-runtime")
    services.create_service(request={"parent": parent, "service_id": "api", "service": service})
    assert services.get_service(request={"name": f"{parent}/services/api"}).template.service_account == RUNTIME


def test_the_control_api_adds_an_account_of_another_project(emulator: Emulator, iam: Any) -> None:
    email = "shared-runtime@platform-team.iam.gserviceaccount.com"
    answer = httpx.post(
        f"{emulator.rest_url}/_doki/service-accounts", json={"project": "platform-team", "email": email}
    )
    assert answer.json() == {
        "project": "platform-team",
        "email": email,
        "name": f"projects/platform-team/serviceAccounts/{email}",
    }
    assert (
        iam.get_service_account(request={"name": f"projects/-/serviceAccounts/{email}"}).project_id == "platform-team"
    )


def test_the_control_api_refuses_an_account_without_project_or_email(emulator: Emulator) -> None:
    refused = httpx.post(
        f"{emulator.rest_url}/_doki/service-accounts", json={"email": "no-project@x.iam.gserviceaccount.com"}
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == 'send {"project": P, "email": "NAME@P.iam.gserviceaccount.com"}'


def test_created_accounts_survive_a_restart(tmp_path: Path) -> None:
    config = EmulatorConfig(state_dir=tmp_path / "state")
    with Emulator(config) as first:
        create(ClientFactory(first.grpc_address).iam_admin(), "api-runtime")
    with Emulator(config) as second:
        iam = ClientFactory(second.grpc_address).iam_admin()
        assert iam.get_service_account(request={"name": f"projects/-/serviceAccounts/{RUNTIME}"}).email == RUNTIME


def test_calls_to_iam_are_refused_where_the_project_has_not_enabled_it(tmp_path: Path) -> None:
    config = EmulatorConfig(disabled_apis=("iam.googleapis.com",))
    with Emulator(config) as running:
        iam = ClientFactory(running.grpc_address, quota_project=PROJECT).iam_admin()
        with pytest.raises(exceptions.PermissionDenied) as refused:
            iam.get_service_account(request={"name": f"projects/{PROJECT}/serviceAccounts/{RUNTIME}"})
    assert refused.value.reason == "SERVICE_DISABLED"
    assert "Identity and Access Management (IAM) API has not been used in project acme-prod" in refused.value.message
