"""Cloud Run's domain mappings, through the v1 REST API (`domains.cloudrun.com/v1`; v2 has none) on an authorized
session: the only module that speaks it.

The calls are gcloud's (`gcloud beta run domain-mappings`, googlecloudsdk/api_lib/run): a mapping lives on the
regional endpoint under the project's namespace, and the verified domains on the global one. A new mapping's records
come after its create, as gcloud waits for them (DomainMappingResourceRecordPoller: until `status.resourceRecords`
or a failed Ready). Transient answers and lost connections are tried again; a create or delete tried again reads a
409 or 404 as its own earlier try. Answers come back as doki's own types (doki_cli.model.DomainMapping), Google's
errors as DokiErrors with a hint, the 501 of a region without domain mappings naming what to use instead.
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
# How long a new mapping's records take to appear: seconds on Google (DomainRoutable turns True within about 6 s in
# public captures); beyond this, `doki domains list` shows them.
RECORDS_WAIT_SECONDS = 60.0
POLL_SECONDS = 1.0


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
    def __init__(
        self,
        http: Callable[[str | None], RunV1],
        project: str,
        region: str,
        retrier: Retrier,
    ) -> None:
        """`http(region)`: the session and base URL of the regional endpoint (None: the global one)."""
        self._http = http
        self._sessions: dict[str | None, RunV1] = {}
        self.project = project
        self.region = region
        self._retrier = retrier

    def _v1(self, region: str | None) -> RunV1:
        # One session a region: its credentials' token is fetched once, not per call.
        if region not in self._sessions:
            self._sessions[region] = self._http(region)
        return self._sessions[region]

    def _send(
        self,
        method: str,
        path: str,
        *,
        region: str | None,
        doing: str,
        body: Any = None,
        earlier_try: Callable[[Any], bool] = lambda response: False,
    ) -> Any:
        """The response to `method path`, tried again on a transient answer or a lost connection; on a try after
        the first, a response `earlier_try` recognizes as the first try's work counts as success."""
        import requests

        v1 = self._v1(region)
        tried = False

        def once() -> Any:
            nonlocal tried
            retried, tried = tried, True
            try:
                response = v1.session.request(method, v1.base + path, json=body, timeout=60)
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise _Transient(str(exc)) from None
            if response.status_code in _TRANSIENT:
                raise _Transient(f"{response.status_code} {response.text[:200]}")
            # Marked, not changed: the caller reads the work of the earlier try (a 409's body is no mapping).
            response.doki_earlier_try = retried and earlier_try(response)
            return response

        try:
            return self._retrier.call(once, retry_if=lambda exc: isinstance(exc, _Transient))
        except _Transient as exc:
            raise DokiError(
                Code.GOOGLE_UNAVAILABLE,
                f"{doing}: Cloud Run kept failing or could not be reached ({exc})",
                "try again in a minute; https://status.cloud.google.com shows outages (with the emulator: is it "
                "running? doki emulator status)",
            ) from None

    def _json(self, response: Any, doing: str, resource: str) -> Any:
        if response.status_code >= 400:
            raise self._error(response, doing, resource)
        return response.json() if response.content else {}

    def _error(self, response: Any, doing: str, resource: str) -> DokiError:
        from google.api_core import exceptions

        from doki_cli.gcp.errors import google_error

        try:
            error = response.json().get("error", {})
        except ValueError:
            error = {}
        message = error.get("message") or response.text[:300]
        if response.status_code == 501 or error.get("status") == "UNIMPLEMENTED":
            return DokiError(
                Code.DOMAIN_MAPPINGS_UNAVAILABLE,
                f"{doing}: Cloud Run has no domain mappings in {self.region} ({message})",
                "map the domain through a global external Application Load Balancer with a serverless NEG (Google's "
                "recommended route: https://cloud.google.com/run/docs/mapping-custom-domains), or Firebase Hosting; or "
                "deploy the service in a region with domain mappings (us-central1, europe-west1, asia-northeast1, …)",
            )
        # The rest as every Google error (an API not enabled, credentials refused, permission, …).
        detail = message + ("" if "SERVICE_DISABLED" not in response.text else " SERVICE_DISABLED")
        exc = exceptions.from_http_status(response.status_code, detail)  # type: ignore[no-untyped-call]
        return google_error(exc, action=doing, resource=resource, api="run", role="roles/run.admin")

    def _path(self, domain: str | None = None) -> str:
        return f"{API}/namespaces/{self.project}/domainmappings" + (f"/{domain}" if domain else "")

    def verified_domains(self) -> list[str]:
        """The domains the caller has verified ownership of (and so their subdomains), as gcloud reads them."""
        doing = f"reading the verified domains of project {self.project}"
        response = self._send("GET", f"/v1/projects/{self.project}/authorizeddomains", region=None, doing=doing)
        return [item["id"] for item in self._json(response, doing, f"projects/{self.project}").get("domains", [])]

    def get(self, domain: str) -> DomainMapping | None:
        doing = f"reading the domain mapping of {domain}"
        response = self._send("GET", self._path(domain), region=self.region, doing=doing)
        if response.status_code == 404:
            return None
        return _mapping(self._json(response, doing, domain), self.region)

    def list(self) -> list[DomainMapping]:
        doing = f"listing the domain mappings in {self.region}"
        answer = self._json(self._send("GET", self._path(), region=self.region, doing=doing), doing, self.region)
        return [_mapping(item, self.region) for item in answer.get("items", [])]

    def create(self, domain: str, service: str, *, dry_run: bool = False) -> DomainMapping:
        """Map `domain` to `service` (`dry_run`: Cloud Run only checks it can, with `dryRun=all`); the mapping as the
        create answered it (its records come later: `wait_for_records`)."""
        body = {
            "apiVersion": "domains.cloudrun.com/v1",
            "kind": "DomainMapping",
            "metadata": {"name": domain, "namespace": self.project},
            "spec": {"routeName": service, "certificateMode": "AUTOMATIC"},
        }
        doing = f"mapping {domain} to {service}"
        response = self._send(
            "POST",
            self._path() + ("?dryRun=all" if dry_run else ""),
            region=self.region,
            doing=doing,
            body=body,
            # A 409 after a try whose answer was lost: that try made it.
            earlier_try=lambda answer: answer.status_code == 409,
        )
        if response.doki_earlier_try:
            found = self.get(domain)
            if found is not None:
                return found
        return _mapping(self._json(response, doing, domain), self.region)

    def wait_for_records(
        self, domain: str, *, sleep: Callable[[float], None], clock: Callable[[], float]
    ) -> DomainMapping | None:
        """The mapping once Cloud Run names its records or fails it (gcloud waits the same), or as it is after
        RECORDS_WAIT_SECONDS."""
        start = clock()
        while True:
            mapping = self.get(domain)
            if mapping is None or mapping.records or mapping.ready == "False":
                return mapping
            if clock() - start >= RECORDS_WAIT_SECONDS:
                return mapping
            sleep(POLL_SECONDS)

    def delete(self, domain: str) -> None:
        doing = f"deleting the domain mapping of {domain}"
        response = self._send(
            "DELETE",
            self._path(domain),
            region=self.region,
            doing=doing,
            earlier_try=lambda answer: answer.status_code == 404,  # the lost try deleted it
        )
        if not response.doki_earlier_try:
            self._json(response, doing, domain)
