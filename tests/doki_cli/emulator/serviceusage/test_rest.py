"""Service Usage over REST, as gcloud calls it, and the disabled-API gate on every REST surface: Google's JSON,
enabling as long-running operations polled at /v1/operations, and calls to a disabled API refused with Google's
SERVICE_DISABLED error body."""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

from google.cloud import service_usage_v1 as su

from doki_cli.emulator.server import Emulator
from doki_cli.emulator.serviceusage.state import CATALOG
from doki_cli.gcp.clients import ClientFactory
from tests.doki_cli.emulator.rest_client import call

RUN = "projects/p/services/run.googleapis.com"
BUILD = "projects/p/services/cloudbuild.googleapis.com"
ACTIVATION = "https://console.developers.google.com/apis/api/{api}/overview?project={project}"


def disable(emulator: Emulator, project: str, *apis: str) -> None:
    emulator.service_usage.set_enabled(project, list(apis), False)


def service_disabled_body(project: str, api: str, title: str) -> dict[str, Any]:
    """Google's JSON error for a call to `api` by `project` while the project has not enabled it."""
    url = ACTIVATION.format(api=api, project=project)
    return {
        "error": {
            "code": 403,
            "message": f"{title} has not been used in project {project} before or it is disabled. Enable it by "
            f"visiting {url} then retry. If you enabled this API recently, wait a few minutes for the action to "
            "propagate to our systems and retry.",
            "status": "PERMISSION_DENIED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "SERVICE_DISABLED",
                    "domain": "googleapis.com",
                    "metadata": {
                        "service": api,
                        "consumer": f"projects/{project}",
                        "serviceTitle": title,
                        "containerInfo": project,
                        "activationUrl": url,
                    },
                },
                {
                    "@type": "type.googleapis.com/google.rpc.Help",
                    "links": [{"description": "Google developers console API activation", "url": url}],
                },
            ],
        }
    }


# Service Usage


def test_a_service_is_answered_in_google_s_json(emulator: Emulator) -> None:
    assert call(emulator, "GET", f"/v1/{RUN}?alt=json") == (
        200,
        {
            "name": RUN,
            "parent": "projects/p",
            "config": {"name": "run.googleapis.com", "title": "Cloud Run Admin API"},
            "state": "ENABLED",
        },
    )


def test_enabling_over_rest_is_an_operation_polled_at_v1_operations(emulator: Emulator, clients: ClientFactory) -> None:
    disable(emulator, "p", "cloudbuild.googleapis.com")
    emulator.faults.lro_delay = 0.3  # the call answers before the work is done, so the client has to poll

    status, operation = call(emulator, "POST", f"/v1/{BUILD}:enable", {})
    assert status == 200
    assert operation["name"].startswith("operations/acat.p2-")
    assert operation["metadata"] == {
        "@type": "type.googleapis.com/google.api.serviceusage.v1.OperationMetadata",
        "resourceNames": [BUILD],
    }
    assert "done" not in operation  # false is the default, which Google's JSON leaves out
    deadline = time.monotonic() + 10
    while not operation.get("done") and time.monotonic() < deadline:
        time.sleep(0.1)
        operation = call(emulator, "GET", f"/v1/{operation['name']}")[1]

    assert operation["response"]["@type"] == "type.googleapis.com/google.api.serviceusage.v1.EnableServiceResponse"
    assert operation["response"]["service"]["state"] == "ENABLED"
    assert clients.service_usage().get_service(request={"name": BUILD}).state == su.State.ENABLED
    assert call(emulator, "GET", "/v1/operations/acat.p2-nothing")[0] == 404


def test_disabling_and_batch_enabling_over_rest_change_what_grpc_sees(
    emulator: Emulator, clients: ClientFactory
) -> None:
    usage = clients.service_usage()
    body = {"disableDependentServices": False, "checkIfServiceHasUsage": "CHECK"}  # what gcloud sends
    operation = call(emulator, "POST", f"/v1/{RUN}:disable", body)[1]
    assert operation["done"] is True
    assert operation["response"]["service"]["state"] == "DISABLED"
    assert usage.get_service(request={"name": RUN}).state == su.State.DISABLED

    batch = {"serviceIds": ["run.googleapis.com", "cloudbuild.googleapis.com"]}
    operation = call(emulator, "POST", "/v1/projects/p/services:batchEnable", batch)[1]
    assert [s["config"]["name"] for s in operation["response"]["services"]] == [
        "run.googleapis.com",
        "cloudbuild.googleapis.com",
    ]
    assert usage.get_service(request={"name": RUN}).state == su.State.ENABLED


def test_listing_filters_by_state_and_pages(emulator: Emulator) -> None:
    disable(emulator, "p", "cloudbuild.googleapis.com", "run.googleapis.com")
    status, disabled = call(emulator, "GET", "/v1/projects/p/services?filter=state%3ADISABLED&pageSize=200")
    assert status == 200
    assert [s["config"]["name"] for s in disabled["services"]] == ["cloudbuild.googleapis.com", "run.googleapis.com"]
    first = call(emulator, "GET", "/v1/projects/p/services?filter=state:ENABLED&pageSize=3")[1]
    rest = call(emulator, "GET", f"/v1/projects/p/services?filter=state:ENABLED&pageToken={first['nextPageToken']}")
    names = [s["config"]["name"] for s in first["services"] + rest[1]["services"]]
    assert "run.googleapis.com" not in names
    assert len(names) == len(CATALOG) - 2
    assert call(emulator, "GET", "/v1/projects/p/services?filter=state:ON")[1]["error"]["status"] == "INVALID_ARGUMENT"


def test_batch_get_takes_each_name_as_a_repeated_query_parameter(emulator: Emulator) -> None:
    disable(emulator, "p", "cloudbuild.googleapis.com")
    query = urllib.parse.urlencode([("names", BUILD), ("names", RUN)])
    status, body = call(emulator, "GET", f"/v1/projects/p/services:batchGet?{query}")
    assert status == 200
    assert [(s["config"]["name"], s["state"]) for s in body["services"]] == [
        ("cloudbuild.googleapis.com", "DISABLED"),
        ("run.googleapis.com", "ENABLED"),
    ]


def test_an_unknown_service_is_refused_as_google_refuses_it(emulator: Emulator) -> None:
    assert call(emulator, "GET", "/v1/projects/p/services/nothing.googleapis.com") == (
        403,
        {
            "error": {
                "code": 403,
                "message": "Not found or permission denied for service(s): nothing.googleapis.com.",
                "status": "PERMISSION_DENIED",
            }
        },
    )
    status, body = call(emulator, "GET", "/v1/folders/1/services/run.googleapis.com")
    assert (status, body["error"]["status"]) == (400, "INVALID_ARGUMENT")


# The gate


def test_a_rest_call_to_a_disabled_api_is_refused_with_google_s_service_disabled_error(emulator: Emulator) -> None:
    disable(emulator, "p", "logging.googleapis.com")
    status, body = call(emulator, "POST", "/v2/entries:list", {"resourceNames": ["projects/p"]})
    assert (status, body) == (403, service_disabled_body("p", "logging.googleapis.com", "Cloud Logging API"))
    # A refused call is not served: it counts no read and reaches no fault.
    assert emulator.faults.calls["/google.logging.v2.LoggingServiceV2/ListLogEntries"] == 0
    assert call(emulator, "POST", "/v2/entries:list", {"resourceNames": ["projects/q"]})[0] == 200


def test_a_route_whose_path_names_the_project_is_refused_for_that_project(emulator: Emulator) -> None:
    disable(emulator, "p", "secretmanager.googleapis.com")
    status, body = call(emulator, "GET", "/v1/projects/p/secrets")
    assert (status, body) == (403, service_disabled_body("p", "secretmanager.googleapis.com", "Secret Manager API"))
    assert call(emulator, "GET", "/v1/projects/q/secrets") == (200, {})


def test_the_quota_project_a_rest_caller_names_is_the_one_whose_api_must_be_enabled(emulator: Emulator) -> None:
    disable(emulator, "billed", "secretmanager.googleapis.com")
    status, body = call(emulator, "GET", "/v1/projects/q/secrets", headers={"x-goog-user-project": "billed"})
    assert (status, body) == (
        403,
        service_disabled_body("billed", "secretmanager.googleapis.com", "Secret Manager API"),
    )
    disable(emulator, "q", "secretmanager.googleapis.com")
    assert call(emulator, "GET", "/v1/projects/q/secrets", headers={"x-goog-user-project": "enabled"})[0] == 200


def test_service_usage_is_never_gated_so_a_project_can_enable_what_it_lacks(emulator: Emulator) -> None:
    disable(emulator, "p", "serviceusage.googleapis.com", "logging.googleapis.com")
    assert call(emulator, "GET", "/v1/projects/p/services/logging.googleapis.com")[1]["state"] == "DISABLED"
    operation = call(emulator, "POST", "/v1/projects/p/services/logging.googleapis.com:enable", {})[1]
    assert operation["done"] is True
    assert call(emulator, "POST", "/v2/entries:list", {"resourceNames": ["projects/p"]})[0] == 200
