"""Service Usage state: per project, which of the known APIs are enabled.

A project the emulator has not seen yet starts with every known API enabled except those the emulator was started
with disabled (`EmulatorConfig.disabled_apis`), so existing flows work unchanged and a test can start from a project
that still has to enable something. Only projects whose state was read or changed are recorded and persisted.
Dependencies between services (disabling one that others need) are not modelled: nothing in doki disables APIs.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import grpc
from google.cloud import service_usage_v1 as su

from doki_cli.emulator.errors import ApiError, invalid_argument
from doki_cli.emulator.paging import Paging

# The services the emulator knows, with the titles Google gives them (they appear in SERVICE_DISABLED messages).
CATALOG = {
    "artifactregistry.googleapis.com": "Artifact Registry API",
    "cloudbilling.googleapis.com": "Cloud Billing API",
    "cloudbuild.googleapis.com": "Cloud Build API",
    "cloudresourcemanager.googleapis.com": "Cloud Resource Manager API",
    "iam.googleapis.com": "Identity and Access Management (IAM) API",
    "iamcredentials.googleapis.com": "IAM Service Account Credentials API",
    "logging.googleapis.com": "Cloud Logging API",
    "monitoring.googleapis.com": "Cloud Monitoring API",
    "run.googleapis.com": "Cloud Run Admin API",
    "secretmanager.googleapis.com": "Secret Manager API",
    "serviceusage.googleapis.com": "Service Usage API",
    "storage.googleapis.com": "Cloud Storage API",
}
MAX_BATCH_GET = 30
MAX_BATCH_ENABLE = 20
PAGING = Paging(
    default_size=50,
    max_size=200,
    bad_size="page_size must be between 0 and 200.",
    bad_page='Invalid page_token "{token}".',
    refuse_above_max=True,
)
FILTERS = {"": None, "state:ENABLED": True, "state:DISABLED": False}

_PARENT = re.compile(r"projects/(?P<project>[^/]+)")
_NAME = re.compile(r"projects/(?P<project>[^/]+)/services/(?P<service>[^/]+)")


def unknown_services(services: Iterable[str]) -> ApiError:
    """What Google answers for a service that does not exist (or that the caller may not see)."""
    return ApiError(
        grpc.StatusCode.PERMISSION_DENIED,
        f"Not found or permission denied for service(s): {', '.join(services)}.",
    )


def project_of_parent(parent: str) -> str:
    match = _PARENT.fullmatch(parent)
    if match is None:
        raise invalid_argument(f'Invalid parent "{parent}": expected "projects/PROJECT".')
    return match["project"]


def split_name(name: str) -> tuple[str, str]:
    """(project, service) of `projects/PROJECT/services/SERVICE`."""
    match = _NAME.fullmatch(name)
    if match is None:
        raise invalid_argument(f'Invalid service name "{name}": expected "projects/PROJECT/services/SERVICE".')
    return match["project"], match["service"]


class ServiceUsage:
    def __init__(self, *, persist: Callable[[], None], disabled: Iterable[str] = ()) -> None:
        unknown = sorted(set(disabled) - set(CATALOG))
        if unknown:
            raise ValueError(f"unknown APIs {', '.join(unknown)}: the emulator knows {', '.join(sorted(CATALOG))}")
        self._persist = persist
        self._lock = threading.Lock()
        self._initial = frozenset(CATALOG) - frozenset(disabled)
        self._enabled: dict[str, set[str]] = {}  # project -> enabled services, for projects seen

    def _project(self, project: str) -> set[str]:
        # Callers hold the lock.
        return self._enabled.setdefault(project, set(self._initial))

    def is_enabled(self, project: str, service: str) -> bool:
        with self._lock:
            enabled = self._enabled.get(project)
            return service in (self._initial if enabled is None else enabled)

    def _message(self, project: str, service: str, enabled: bool) -> su.Service:
        return su.Service(
            name=f"projects/{project}/services/{service}",
            parent=f"projects/{project}",
            config=su.ServiceConfig(name=service, title=CATALOG[service]),
            state=su.State.ENABLED if enabled else su.State.DISABLED,
        )

    def get(self, name: str) -> su.Service:
        project, service = split_name(name)
        if service not in CATALOG:
            raise unknown_services([service])
        return self._message(project, service, self.is_enabled(project, service))

    def batch_get(self, parent: str, names: Sequence[str]) -> list[su.Service]:
        project = project_of_parent(parent)
        if not names:
            raise invalid_argument("names must not be empty.")
        if len(names) > MAX_BATCH_GET:
            raise invalid_argument(f"At most {MAX_BATCH_GET} services can be retrieved at a time.")
        for name in names:
            if split_name(name)[0] != project:
                raise invalid_argument(f'Service "{name}" is not under the parent "{parent}".')
        return [self.get(name) for name in names]

    def list_services(
        self, parent: str, page_size: int, page_token: str, state_filter: str
    ) -> tuple[list[su.Service], str]:
        project = project_of_parent(parent)
        if state_filter not in FILTERS:
            raise invalid_argument(f'Invalid filter "{state_filter}": use "state:ENABLED" or "state:DISABLED".')
        wanted = FILTERS[state_filter]
        with self._lock:
            enabled = set(self._enabled.get(project, self._initial))
        services = [
            self._message(project, s, s in enabled) for s in CATALOG if wanted is None or wanted == (s in enabled)
        ]
        return PAGING.page(services, lambda service: service.name, page_size, page_token)

    def set_enabled(self, project: str, services: Sequence[str], enabled: bool) -> list[su.Service]:
        """Enable or disable `services` of `project` all at once (none changes if one is unknown)."""
        unknown = [s for s in services if s not in CATALOG]
        if unknown:
            raise unknown_services(unknown)
        with self._lock:
            current = self._project(project)
            if enabled:
                current.update(services)
            else:
                current.difference_update(services)
        self._persist()
        return [self._message(project, s, enabled) for s in services]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"enabled": {project: sorted(services) for project, services in self._enabled.items()}}

    def restore(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._enabled = {
                project: {s for s in services if s in CATALOG} for project, services in data.get("enabled", {}).items()
            }
