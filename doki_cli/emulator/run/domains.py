"""Cloud Run's domain mappings (v1, `domains.cloudrun.com/v1`, a Preview feature of fully managed Cloud Run) and the
project's verified domains, as `gcloud beta run domain-mappings` and doki read and write them.

What Google does, and the emulator with it (references beside each rule):
- Mappings are made only in the regions the docs list ("Domain mapping is available in the following regions: …",
  https://cloud.google.com/run/docs/mapping-custom-domains); elsewhere a create is refused 501 UNIMPLEMENTED
  "Creating domain mappings is not allowed in REGION." (many public captures quote it), while lists still answer.
- A create is accepted whatever its domain and service; what is wrong shows in its `Ready` condition: a domain the
  project has not verified ("Caller is not authorized to administer the domain …", terraform-provider-google#19053),
  a service that does not exist (reason `RouteMissing`, terraform-provider-google#5173). Otherwise the domain is
  routable at once, its DNS records are in `status.resourceRecords`, and `Ready` waits on the certificate (reason
  `CertificatePending`, Google's message) until Google sees the DNS records. Here nothing resolves Google's
  challenge: the control API issues the certificate (`certify`), as Google would once DNS is right.
- Records: a subdomain gets a CNAME to `ghs.googlehosted.com.` named by its labels before the registered domain
  (`www`); an apex domain gets Google's four A and four AAAA addresses, with no name (real captures).
- A second mapping of a name in a region is 409; a missing one is 404 in Google's words ("Resource 'X' of kind
  'DOMAIN_MAPPING' in region 'R' in project 'P' does not exist.").
- The namespace in answers is the project's number; the location is the label `cloud.googleapis.com/location`.

The apex test is the emulator's approximation: a name of two labels (example.com) is an apex, as public-suffix
rules would say for most names; `example.co.uk` would be taken for a subdomain.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import grpc

from doki_cli.emulator.errors import ApiError, already_exists, invalid_argument, not_found
from doki_cli.emulator.projects import project_number

# https://cloud.google.com/run/docs/mapping-custom-domains: "Domain mapping is available in the following regions".
REGIONS = (
    "asia-east1",
    "asia-northeast1",
    "asia-southeast1",
    "europe-north1",
    "europe-west1",
    "europe-west4",
    "us-central1",
    "us-east1",
    "us-east4",
    "us-west1",
)
APEX_A = ("216.239.32.21", "216.239.34.21", "216.239.36.21", "216.239.38.21")
APEX_AAAA = ("2001:4860:4802:32::15", "2001:4860:4802:34::15", "2001:4860:4802:36::15", "2001:4860:4802:38::15")
CNAME_TARGET = "ghs.googlehosted.com."
PENDING = "Waiting for certificate provisioning. You must configure your DNS records for certificate issuance to begin."
# Domain mappings are limited to 64 characters (the docs' limitations).
MAX_DOMAIN = 64


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _condition(kind: str, status: str, reason: str = "", message: str = "", **extra: str) -> dict[str, str]:
    condition = {"type": kind, "status": status, "lastTransitionTime": _now(), **extra}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def records_of(domain: str) -> list[dict[str, str]]:
    labels = domain.split(".")
    if len(labels) <= 2:
        return [{"rrdata": address, "type": "A"} for address in APEX_A] + [
            {"rrdata": address, "type": "AAAA"} for address in APEX_AAAA
        ]
    return [{"name": ".".join(labels[:-2]), "rrdata": CNAME_TARGET, "type": "CNAME"}]


def not_allowed(region: str) -> ApiError:
    return ApiError(grpc.StatusCode.UNIMPLEMENTED, f"Creating domain mappings is not allowed in {region}.")


class DomainMappings:
    """Every project's mappings, by (project, region, domain), and its verified domains. Thread-safe."""

    def __init__(self, *, persist: Callable[[], None], service_exists: Callable[[str], bool]) -> None:
        """`service_exists(projects/P/locations/L/services/S)`: whether a mapping's route exists."""
        self._persist = persist
        self._service_exists = service_exists
        self._lock = threading.Lock()
        self._mappings: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._verified: dict[str, list[str]] = {}

    # -- verified domains (a project's Search Console verifications: a control-API switch) ------------------------

    def set_verified(self, project: str, domains: list[str]) -> None:
        with self._lock:
            self._verified[project] = list(domains)
        self._persist()

    def verified(self, project: str) -> list[str]:
        with self._lock:
            return list(self._verified.get(project, []))

    def _authorized(self, project: str, domain: str) -> bool:
        # Verifying a domain authorizes its subdomains too ("by verifying ownership of the domain, or any of its
        # parent domains").
        return any(domain == d or domain.endswith("." + d) for d in self.verified(project))

    # -- mappings ---------------------------------------------------------------------------------------------------

    def create(self, project: str, region: str, body: dict[str, Any], *, dry_run: bool) -> dict[str, Any]:
        if region not in REGIONS:
            raise not_allowed(region)
        metadata, spec = body.get("metadata") or {}, body.get("spec") or {}
        domain, service = metadata.get("name", ""), spec.get("routeName", "")
        if not domain:
            raise invalid_argument("metadata.name: required field not present.")
        if not service:
            raise invalid_argument("spec.routeName: required field not present.")
        if len(domain) > MAX_DOMAIN or "*" in domain or domain != domain.lower():
            # The docs' limits (64 characters, no wildcards); Google's wording is not on record.
            raise invalid_argument(f"metadata.name: '{domain}' is not a domain name a mapping can take.")
        key = (project, region, domain)
        with self._lock:
            if key in self._mappings:
                raise already_exists(
                    f"Resource '{domain}' of kind 'DOMAIN_MAPPING' in region '{region}' in project '{project}' "
                    "already exists."
                )
        mapping = {
            "apiVersion": "domains.cloudrun.com/v1",
            "kind": "DomainMapping",
            "metadata": {
                "name": domain,
                "namespace": str(project_number(project)),
                "uid": str(uuid.uuid4()),
                "generation": 1,
                "creationTimestamp": _now(),
                "resourceVersion": uuid.uuid4().hex[:11],
                "annotations": dict(metadata.get("annotations") or {}),
                "labels": {**(metadata.get("labels") or {}), "cloud.googleapis.com/location": region},
                "selfLink": f"/apis/domains.cloudrun.com/v1/namespaces/{project_number(project)}/domainmappings/"
                f"{domain}",
            },
            # gcloud sends no certificateMode; Google fills in AUTOMATIC (a real describe shows it).
            "spec": {"certificateMode": spec.get("certificateMode") or "AUTOMATIC", **spec},
            # The create answers before Cloud Run looked at the mapping: its conditions and records come on a later
            # read, which is why gcloud polls for them (op_pollers.DomainMappingResourceRecordPoller).
            "status": {},
        }
        if not dry_run:
            with self._lock:
                if key in self._mappings:
                    raise already_exists(
                        f"Resource '{domain}' of kind 'DOMAIN_MAPPING' in region '{region}' in project '{project}' "
                        "already exists."
                    )
                self._mappings[key] = mapping
            self._persist()
        return mapping

    def _looked_at(self, key: tuple[str, str, str], mapping: dict[str, Any]) -> dict[str, Any]:
        """The mapping once Cloud Run has looked at it: its status, decided on the first read after the create."""
        if not mapping["status"]:
            project, region, domain = key
            mapping["status"] = self._status(project, region, domain, mapping["spec"]["routeName"])
            self._persist()
        return mapping

    def _status(self, project: str, region: str, domain: str, service: str) -> dict[str, Any]:
        status: dict[str, Any] = {"observedGeneration": 1, "mappedRouteName": service}
        if not self._authorized(project, domain):
            message = (
                f"Caller is not authorized to administer the domain {domain}. If you own {domain}, you can obtain "
                "authorization by verifying ownership of the domain, or any of its parent domains, via the "
                f"Webmaster Central portal: https://www.google.com/webmasters/verification/verification?domain="
                f"{domain}. We recommend verifying ownership of the largest scope you wish to use with subdomains "
                "(eg. verify 'example.com' if you wish to map 'subdomain.example.com')."
            )
            # The message is Google's (public captures); no reason beside it is on record, so none is given.
            status["conditions"] = [_condition("Ready", "False", "", message)]
            return status
        if not self._service_exists(f"projects/{project}/locations/{region}/services/{service}"):
            status["conditions"] = [_condition("Ready", "False", "RouteMissing", f"Route {service} does not exist.")]
            return status
        status["conditions"] = [
            _condition("Ready", "Unknown", "CertificatePending", PENDING),
            _condition("CertificateProvisioned", "Unknown"),
            _condition("DomainRoutable", "True"),
            _condition(
                "Retry",
                "True",
                "WaitingForOperation",
                "System will retry after 01:00 from lastTransitionTime for polling interval",
                severity="Info",
            ),
        ]
        status["resourceRecords"] = records_of(domain)
        return status

    def get(self, project: str, region: str, domain: str) -> dict[str, Any]:
        with self._lock:
            mapping = self._mappings.get((project, region, domain))
        if mapping is None:
            raise not_found(
                f"Resource '{domain}' of kind 'DOMAIN_MAPPING' in region '{region}' in project '{project}' does not "
                "exist."
            )
        return self._looked_at((project, region, domain), mapping)

    def list(self, project: str, region: str | None) -> list[dict[str, Any]]:
        with self._lock:
            chosen = [
                (key, mapping)
                for key, mapping in sorted(self._mappings.items())
                if key[0] == project and (region is None or key[1] == region)
            ]
        return [self._looked_at(key, mapping) for key, mapping in chosen]

    def delete(self, project: str, region: str, domain: str) -> dict[str, Any]:
        mapping = self.get(project, region, domain)
        with self._lock:
            self._mappings.pop((project, region, domain), None)
        self._persist()
        return {
            "apiVersion": "v1",
            "kind": "Status",
            "status": "Success",
            "details": {
                "name": domain,
                "group": "domains.cloudrun.com",
                "kind": "domainmappings",
                "uid": mapping["metadata"]["uid"],
            },
        }

    def certify(self, project: str, domain: str) -> dict[str, Any]:
        """The certificate is issued (what Google does once it sees the DNS records): Ready, no reason or message."""
        with self._lock:
            found = [(key, m) for key, m in sorted(self._mappings.items()) if key[0] == project and key[2] == domain]
        if not found:
            raise not_found(f"no domain mapping of {domain} in project {project}")
        mapping = self._looked_at(*found[0])
        conditions = mapping["status"].get("conditions", [])
        if not any(c["type"] == "DomainRoutable" and c["status"] == "True" for c in conditions):
            raise invalid_argument(f"{domain} is not routable (its Ready condition says why): no certificate is issued")
        mapping["status"]["conditions"] = [
            _condition("Ready", "True"),
            _condition("CertificateProvisioned", "True"),
            _condition("DomainRoutable", "True"),
        ]
        self._persist()
        return mapping

    # -- persistence ------------------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "mappings": [{"key": list(key), "mapping": mapping} for key, mapping in self._mappings.items()],
                "verified": dict(self._verified),
            }

    def restore(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._mappings = {tuple(item["key"]): item["mapping"] for item in data.get("mappings", [])}
            self._verified = {project: list(domains) for project, domains in data.get("verified", {}).items()}
