"""The disabled-API gate on every REST surface: calls to a disabled API refused with Google's SERVICE_DISABLED error
body."""

from __future__ import annotations

from typing import Any

from doki_cli.emulator.server import Emulator
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
