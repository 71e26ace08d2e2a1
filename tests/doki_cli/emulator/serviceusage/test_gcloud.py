"""`gcloud services` and the API check of `gcloud run deploy` against the emulator, gcloud unchanged but for its
documented endpoint overrides, sharing Service Usage's state with the gRPC client; and a disabled API refusing
gcloud as Google does, in the words gcloud parses to offer enabling it.

What gcloud sends (googlecloudsdk/api_lib/services/serviceusage.py):
- `gcloud services list`: `GET /v1/projects/P/services?alt=json&filter=state%3AENABLED&pageSize=200`
  (`--available`: no filter);
- `gcloud services enable A`: `POST /v1/projects/P/services/A:enable?alt=json` with `{}`; with several APIs,
  `POST /v1/projects/P/services:batchEnable?alt=json` with `{"serviceIds": [A, B]}`; an operation not yet done is
  polled with `GET /v1/operations/ID?alt=json`, the first time after 2 s (services_util.WaitOperation);
- `gcloud services disable A`: `POST /v1/projects/P/services/A:disable?alt=json` with
  `{"checkIfServiceHasUsage": "CHECK", "disableDependentServices": false}`;
- `gcloud run deploy` (surface/run/deploy.py, api_lib/run/api_enabler.py): before any Cloud Run call,
  `GET /v1/projects/P/services/run.googleapis.com?alt=json` (and artifactregistry, cloudbuild for --source, in name
  order); for each API not ENABLED, after a prompt that defaults to yes, one
  `POST /v1/projects/P/services:batchEnable?alt=json` with `{"serviceIds": [...]}`, polled as above.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.cloud import service_usage_v1 as su

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from tests.helpers.gcloud import Gcloud

pytestmark = pytest.mark.gcloud

SERVICE_USAGE = "/google.api.serviceusage.v1.ServiceUsage/"
GET_OPERATION = "/google.longrunning.Operations/GetOperation"


def state(usage: Any, api: str) -> su.State:
    return su.State(usage.get_service(request={"name": f"projects/p/services/{api}"}).state)


def listed(gcloud: Gcloud, *args: str) -> list[str]:
    return gcloud("services", "list", *args, "--format=value(config.name)").decode().split()


def test_gcloud_services_enable_disable_and_list_change_and_show_what_grpc_sees(
    gcloud: Gcloud, clients: ClientFactory
) -> None:
    usage = clients.service_usage()
    usage.disable_service(request={"name": "projects/p/services/cloudbuild.googleapis.com"}).result(timeout=10)
    assert "cloudbuild.googleapis.com" not in listed(gcloud)
    assert "run.googleapis.com" in listed(gcloud)

    gcloud("services", "enable", "cloudbuild.googleapis.com")
    gcloud("services", "disable", "run.googleapis.com")

    assert state(usage, "cloudbuild.googleapis.com") == su.State.ENABLED
    assert state(usage, "run.googleapis.com") == su.State.DISABLED
    assert "run.googleapis.com" not in listed(gcloud)
    available = json.loads(gcloud("services", "list", "--available", "--format=json"))
    assert {s["config"]["name"]: s["state"] for s in available}["run.googleapis.com"] == "DISABLED"


def test_gcloud_enables_several_apis_in_one_batch_and_polls_the_operation_to_its_end(
    gcloud: Gcloud, clients: ClientFactory, emulator: Emulator
) -> None:
    usage = clients.service_usage()
    for api in ("run.googleapis.com", "cloudbuild.googleapis.com"):
        usage.disable_service(request={"name": f"projects/p/services/{api}"}).result(timeout=10)
    emulator.faults.lro_delay = 0.5  # the operation is not done when the call answers: gcloud has to poll it

    done = gcloud.run("services", "enable", "run.googleapis.com", "cloudbuild.googleapis.com")

    assert done.returncode == 0, done.stderr.decode()
    assert "finished successfully" in done.stderr.decode()
    assert emulator.faults.calls[SERVICE_USAGE + "BatchEnableServices"] == 1
    assert emulator.faults.calls[GET_OPERATION] >= 1
    assert (state(usage, "run.googleapis.com"), state(usage, "cloudbuild.googleapis.com")) == (
        su.State.ENABLED,
        su.State.ENABLED,
    )


def test_run_deploy_checks_the_cloud_run_api_and_enables_it_when_disabled(
    gcloud: Gcloud, clients: ClientFactory, emulator: Emulator
) -> None:
    usage = clients.service_usage()
    usage.disable_service(request={"name": "projects/p/services/run.googleapis.com"}).result(timeout=10)
    deploy = ("run", "deploy", "api", "--image=europe-docker.pkg.dev/p/doki/api:1", "--region=europe-west1")
    # Only the check is this test's concern. Cloud Run's own calls come after it and go to the region's endpoint,
    # which gcloud derives by prefixing the region to the override's host (command_lib/run/connection_context.py,
    # DeriveRegionalEndpoint): from an IPv6 literal that makes an endpoint gcloud refuses at once, so the deploy
    # stops there, before any Cloud Run call and without looking up a host name that does not exist.
    run_endpoint = {"CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN": "http://[::1]:9/"}

    first = gcloud.run(*deploy, **run_endpoint)

    assert "Enabling APIs on project [p]..." in first.stderr.decode()
    assert "[http://europe-west1-[::1]:9/] is not a valid endpoint override" in first.stderr.decode()
    assert emulator.faults.calls[SERVICE_USAGE + "GetService"] == 1
    assert emulator.faults.calls[SERVICE_USAGE + "BatchEnableServices"] == 1
    assert state(usage, "run.googleapis.com") == su.State.ENABLED  # a gRPC GetService: the count's second
    emulator.faults.calls.clear()

    second = gcloud.run(*deploy, **run_endpoint)

    assert "Enabling APIs" not in second.stderr.decode()
    assert emulator.faults.calls[SERVICE_USAGE + "GetService"] == 1
    assert emulator.faults.calls[SERVICE_USAGE + "BatchEnableServices"] == 0


def test_a_disabled_api_refuses_gcloud_with_the_error_it_parses_as_not_enabled(
    gcloud: Gcloud, emulator: Emulator
) -> None:
    emulator.service_usage.set_enabled("p", ["logging.googleapis.com"], False)

    refused = gcloud.fails("logging", "read", 'resource.type="cloud_run_revision"')

    url = "https://console.developers.google.com/apis/api/logging.googleapis.com/overview?project=p"
    assert (
        "ERROR: (gcloud.logging.read) PERMISSION_DENIED: Cloud Logging API has not been used in project p before or "
        f"it is disabled. Enable it by visiting {url} then retry. If you enabled this API recently, wait a few minutes "
        "for the action to propagate to our systems and retry." in refused
    )
    assert "reason: SERVICE_DISABLED" in refused
    assert f"activationUrl: {url}" in refused


def test_on_a_terminal_gcloud_offers_to_enable_a_disabled_api_and_retries_once_it_is(
    gcloud: Gcloud, emulator: Emulator, clients: ClientFactory
) -> None:
    emulator.service_usage.set_enabled("p", ["logging.googleapis.com"], False)
    emulator.logs.emit(project="p", log_id="app", resource_type="global", labels={}, line="found it")

    code, printed = gcloud.answering("y", "logging", "read", "--format=value(textPayload)")

    # googlecloudsdk/api_lib/util/api_enablement.py recognised Google's message and asked.
    assert "API [logging.googleapis.com] not enabled on project [p]." in " ".join(printed.split())
    assert code == 0, printed
    assert "Enabling service [logging.googleapis.com] on project [p]..." in printed
    assert printed.rstrip().endswith("found it")
    assert state(clients.service_usage(), "logging.googleapis.com") == su.State.ENABLED
