"""Cloud Run's domain mappings, through the v1 REST API (`domains.cloudrun.com/v1`; v2 has none) on an authorized
session: the only module that speaks it.

The calls are gcloud's (`gcloud beta run domain-mappings`, googlecloudsdk/api_lib/run): a mapping lives on the
regional endpoint under the project's namespace, and the project's verified domains on the global one. Answers come
back as doki's own types (doki_cli.model.DomainMapping); Google's errors as DokiErrors with a hint, the 501 of a
region without domain mappings naming what to use instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from doki_cli.errors import Code, DokiError
from doki_cli.gcp.clients import RunV1
from doki_cli.gcp.retry import Retrier
from doki_cli.model import DnsRecord, DomainMapping

API = "/apis/domains.cloudrun.com/v1"
# Statuses worth another try, as the client libraries retry them.
_TRANSIENT = {429, 500, 502, 503, 504}


class _Transient(Exception):
    pass


def _mapping(item: dict[str, Any], region: str) -> DomainMapping:
    metadata, spec, status = item.get("metadata") or {}, item.get("spec") or {}, item.get("status") or {}
    conditions: list[dict[str, str]] = status.get("conditions") or []
    ready: dict[str, str] = next((c for c in conditions if c.get("type") == "Ready"), {})
    records = tuple(
        DnsRecord(record.get("name", ""), record.get("type", ""), record.get("rrdata", ""))
        for record in status.get("resourceRecords") or []
    )
    return DomainMapping(
        domain=metadata.get("name", ""),
        service=spec.get("routeName", ""),
        region=(metadata.get("labels") or {}).get("cloud.googleapis.com/location", region),
        ready=ready.get("status", "Unknown"),
        reason=ready.get("reason", ""),
        message=" ".join(ready.get("message", "").split()),
        records=records,
    )


class DomainMappings:
    def __init__(self, http: Callable[[str | None], RunV1], project: str, region: str, retrier: Retrier) -> None:
        """`http(region)`: the session and base URL of the regional endpoint (None: the global one)."""
        self._http = http
        self.project = project
        self.region = region
        self._retrier = retrier

    def _call(self, method: str, path: str, *, region: str | None, doing: str, body: Any = None) -> Any:
        v1 = self._http(region)

        def once() -> Any:
            response = v1.session.request(method, v1.base + path, json=body, timeout=60)
            if response.status_code in _TRANSIENT:
                raise _Transient(f"{response.status_code} {response.text[:200]}")
            return response

        try:
            response = self._retrier.call(once, retry_if=lambda exc: isinstance(exc, _Transient))
        except _Transient as exc:
            raise DokiError(
                Code.GOOGLE_UNAVAILABLE,
                f"{doing}: Google kept failing ({exc})",
                "try again in a minute; https://status.cloud.google.com shows outages",
            ) from None
        if response.status_code >= 400:
            raise self._error(response, doing)
        return response.json() if response.content else {}

    def _error(self, response: Any, doing: str) -> DokiError:
        try:
            error = response.json().get("error", {})
        except ValueError:
            error = {}
        message = error.get("message") or response.text[:300]
        status = error.get("status", "")
        if response.status_code == 501 or status == "UNIMPLEMENTED":
            return DokiError(
                Code.DOMAIN_MAPPINGS_UNAVAILABLE,
                f"{doing}: Cloud Run has no domain mappings in {self.region} ({message})",
                "map the domain through a global external Application Load Balancer with a serverless NEG (Google's "
                "recommended route: https://cloud.google.com/run/docs/mapping-custom-domains), or Firebase Hosting; or "
                "deploy the service in a region with domain mappings (us-central1, europe-west1, asia-northeast1, …)",
            )
        if response.status_code in (401, 403):
            return DokiError(
                Code.PERMISSION_DENIED,
                f"{doing}: permission denied ({message})",
                "grant your account roles/run.admin on the project, or run as an identity that has it",
            )
        return DokiError(Code.GOOGLE_ERROR, f"{doing}: {response.status_code} {status}: {message}", "rerun with -v")

    def _path(self, domain: str | None = None) -> str:
        return f"{API}/namespaces/{self.project}/domainmappings" + (f"/{domain}" if domain else "")

    def verified_domains(self) -> list[str]:
        """The domains the caller has verified ownership of (and so their subdomains), as gcloud reads them."""
        answer = self._call(
            "GET",
            f"/v1/projects/{self.project}/authorizeddomains",
            region=None,
            doing=f"reading the verified domains of project {self.project}",
        )
        return [item["id"] for item in answer.get("domains", [])]

    def get(self, domain: str) -> DomainMapping | None:
        v1 = self._http(self.region)
        response = self._retrier.call(lambda: v1.session.get(v1.base + self._path(domain), timeout=60))
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise self._error(response, f"reading the domain mapping of {domain}")
        return _mapping(response.json(), self.region)

    def list(self) -> list[DomainMapping]:
        answer = self._call(
            "GET", self._path(), region=self.region, doing=f"listing the domain mappings in {self.region}"
        )
        return [_mapping(item, self.region) for item in answer.get("items", [])]

    def create(self, domain: str, service: str, *, dry_run: bool = False) -> DomainMapping:
        """Map `domain` to `service` (`dry_run`: Cloud Run only checks it can, with `dryRun=all`)."""
        body = {
            "apiVersion": "domains.cloudrun.com/v1",
            "kind": "DomainMapping",
            "metadata": {"name": domain, "namespace": self.project},
            "spec": {"routeName": service, "certificateMode": "AUTOMATIC"},
        }
        answer = self._call(
            "POST",
            self._path() + ("?dryRun=all" if dry_run else ""),
            region=self.region,
            doing=f"mapping {domain} to {service}",
            body=body,
        )
        return _mapping(answer, self.region)

    def delete(self, domain: str) -> None:
        self._call("DELETE", self._path(domain), region=self.region, doing=f"deleting the domain mapping of {domain}")
