"""Service Usage, through google-cloud-service-usage: the only module that imports it.

Which APIs a project has enabled, and enabling the ones doki needs (`doki doctor` checks them, `doki init
--enable-apis` enables them). Every Google error becomes a DokiError with a hint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from doki_cli.errors import Code, DokiError
from doki_cli.gcp.errors import call_google, google_error
from doki_cli.gcp.operations import OperationTimeout, PollFailed, accepted, wait_for
from doki_cli.gcp.retry import Retrier

# What deploying and releasing with doki calls: Cloud Run, Secret Manager, Cloud Build, Artifact Registry, and IAM
# (whether the runtime account exists; creating it).
REQUIRED_APIS = (
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com",
    "iam.googleapis.com",
)
# Google's limits per call.
_BATCH_GET = 30
_BATCH_ENABLE = 20
# Enabling an API usually takes seconds, sometimes a few minutes.
ENABLE_TIMEOUT = 300.0


def _chunks(items: Sequence[str], size: int) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class ServiceUsage:
    def __init__(self, client: Any, project: str, retrier: Retrier) -> None:
        self._client = client
        self.project = project
        self._retrier = retrier

    @property
    def _parent(self) -> str:
        return f"projects/{self.project}"

    def _call(self, fn: Callable[[], Any], *, action: str, role: str) -> Any:
        return call_google(self._retrier, fn, action=action, resource=self._parent, api="serviceusage", role=role)

    def disabled(self, apis: Sequence[str] = REQUIRED_APIS) -> list[str]:
        """Those of `apis` the project has not enabled, in the order given."""
        from google.cloud import service_usage_v1

        enabled: set[str] = set()
        for chunk in _chunks(list(apis), _BATCH_GET):
            request = {"parent": self._parent, "names": [f"{self._parent}/services/{api}" for api in chunk]}
            response = self._call(
                partial(self._client.batch_get_services, request=request),
                action="reading the enabled APIs of",
                role="roles/serviceusage.serviceUsageViewer",
            )
            enabled |= {s.config.name for s in response.services if s.state == service_usage_v1.State.ENABLED}
        return [api for api in apis if api not in enabled]

    def enable(self, apis: Sequence[str]) -> None:
        """Enable `apis` in the project and wait until Google says they are (enabling an enabled one is a no-op)."""
        from google.api_core import exceptions

        for chunk in _chunks(list(apis), _BATCH_ENABLE):
            request = {"parent": self._parent, "service_ids": list(chunk)}
            action, role = f"enabling {', '.join(chunk)} in", "roles/serviceusage.serviceUsageAdmin"
            # Enabling is idempotent: a retry after a lost answer enables what is already on, a no-op.
            operation = self._call(
                partial(self._client.batch_enable_services, request=request), action=action, role=role
            )
            try:
                wait_for(operation, self._retrier, timeout=ENABLE_TIMEOUT)
            except exceptions.GoogleAPICallError as exc:
                raise google_error(exc, action=action, resource=self._parent, api="serviceusage", role=role) from None
            except PollFailed as failed:
                waiting = f"waiting to finish {action}"
                raise accepted(
                    google_error(failed.cause, action=waiting, resource=self._parent, api="serviceusage")
                ) from None
            except OperationTimeout:
                raise DokiError(
                    Code.ENABLE_TIMEOUT,
                    f"{', '.join(chunk)} were not enabled in {self._parent} after {ENABLE_TIMEOUT:.0f} s",
                    f"check again in a few minutes: gcloud services list --enabled --project {self.project}",
                ) from None
