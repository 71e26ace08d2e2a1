"""Cloud Run Admin API v1 over REST (Knative serving's resources), over the same state as v2.

What gcloud speaks: `gcloud run deploy`, `services describe|list|update|delete|update-traffic`, `revisions
list|describe` call the v1 API on the region's endpoint (gcloud puts the region before the API host,
DeriveRegionalEndpoint in lib/googlecloudsdk/command_lib/run/connection_context.py: https://REGION-run.googleapis.com),
and the IAM methods on projects/P/locations/L/services/S. The region of a namespaces call is in the host the request
was sent to, so the router reads it from the Host header (through gcloud's proxy setting, the request line carries
the absolute URL and the Host header keeps the name). The global endpoint serves lists across regions.

Writes answer the object at once, not an operation: v1 is Knative's API, where a client polls the object until its
Ready condition is True for its latest generation (status.observedGeneration), as gcloud does.
"""

from __future__ import annotations

import re
from typing import Any

from google.iam.v1 import iam_policy_pb2
from google.longrunning import operations_pb2

from doki_cli.emulator import protojson
from doki_cli.emulator.errors import invalid_argument, not_found
from doki_cli.emulator.projects import project_number
from doki_cli.emulator.rest import Request, Response, Router
from doki_cli.emulator.run import RUN_HOST, knative
from doki_cli.emulator.run.domains import DomainMappings
from doki_cli.emulator.run.state import SPEC_FIELDS, CloudRun

SERVICES_V2 = "google.cloud.run.v2.Services"
REVISIONS_V2 = "google.cloud.run.v2.Revisions"
_NAMESPACE = r"/apis/serving\.knative\.dev/v1/namespaces/(?P<project>[^/]+)"
_IAM = r"/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/services/(?P<service>[^/:]+)"
_RUN_HOSTS = r"(?:[a-z0-9-]+-)?" + re.escape(RUN_HOST)
# The v2 Service fields a v1 object carries: a replace sets all of them (absent ones are cleared; what v1 cannot show
# inside them is kept, knative.keep_what_v1_cannot_say). The others have no v1 form at all.
V1_FIELDS = tuple(
    name for name in SPEC_FIELDS if name not in ("multi_region_settings", "threat_detection_enabled", "build_config")
)


def region_of(request: Request) -> str | None:
    """The region a request was sent to, from its host (REGION-run.doki-emulator); None on the global endpoint
    (run.doki-emulator). A host that names no Cloud Run region is NOT_FOUND: on Google its name would not resolve."""
    host = request.host_name
    if host == RUN_HOST:
        return None
    region = host.removesuffix("-" + RUN_HOST)
    if region == host:
        # The emulator's wording: it tells Cloud Run's regional endpoints apart only by the name doki emulator env
        # gives gcloud.
        raise not_found(f"Send Cloud Run calls to {RUN_HOST} or REGION-{RUN_HOST} (see doki emulator env), not {host}.")
    if region not in REGIONS:
        raise not_found(f"Location {region} is not a Cloud Run region (https://cloud.google.com/run/docs/locations).")
    return region


class KnativeApi:
    """The v1 routes' handlers; `run`: the shared Cloud Run state."""

    def __init__(self, run: CloudRun) -> None:
        self._run = run

    # -- names ----------------------------------------------------------------------------------------------------

    def project(self, namespace: str) -> str:
        """The project a namespace names: its id, or its number (Cloud Run answers with the number, and gcloud uses
        what it read back, e.g. to find a service's revisions)."""
        if namespace.isdigit():
            for project in self._run.projects():
                if str(project_number(project)) == namespace:
                    return project
        return namespace

    def _regional(self, request: Request) -> str:
        region = region_of(request)
        if region is None:
            # Only lists are served by the global endpoint (https://cloud.google.com/run/docs/reference/rest:
            # "the global endpoint only supports list methods"); the wording is the emulator's.
            raise invalid_argument(
                "This method is served by the regional endpoint only: send it to https://REGION-run.googleapis.com."
            )
        return region

    def _service_name(self, request: Request, name: str | None = None) -> str:
        project = self.project(request.params["project"])
        return f"projects/{project}/locations/{self._regional(request)}/services/{name or request.params['name']}"

    @staticmethod
    def _namespace(name: str) -> str:
        return str(project_number(name.split("/")[1]))

    # -- services -------------------------------------------------------------------------------------------------

    def render_service(self, name: str) -> dict[str, Any]:
        return knative.service_to_v1(self._run.get_service(name), self._namespace(name), self._run.knative_labels(name))

    def create_service(self, request: Request) -> Response:
        body = request.json()
        service_id = (body.get("metadata") or {}).get("name", "")
        if not service_id:
            raise invalid_argument("metadata.name: required field not present.")
        name = self._service_name(request, service_id)
        self._check_namespace(body, request)
        service, labels = knative.service_from_v1(body, name)
        parent = name.rsplit("/services/", 1)[0]
        dry_run = request.arg("dryRun") == "all"
        operation = self._run.create_service(parent, service_id, service, validate_only=dry_run, knative_labels=labels)
        return Response.json(knative.service_to_v1(_written(operation), self._namespace(name), labels))

    def replace_service(self, request: Request) -> Response:
        body = request.json()
        name = self._service_name(request)
        metadata = body.get("metadata") or {}
        if metadata.get("name", request.params["name"]) != request.params["name"]:
            raise invalid_argument(
                f"metadata.name: '{metadata['name']}' does not match the name in the URL, '{request.params['name']}'."
            )
        self._check_namespace(body, request)
        service, labels = knative.service_from_v1(body, name)
        knative.keep_what_v1_cannot_say(self._run.get_service(name), service)
        # metadata.resourceVersion is v1's concurrency check: the etag it was read with.
        service.etag = metadata.get("resourceVersion", "")
        dry_run = request.arg("dryRun") == "all"
        operation = self._run.update_service(
            service, update_mask=V1_FIELDS, validate_only=dry_run, knative_labels=labels
        )
        return Response.json(knative.service_to_v1(_written(operation), self._namespace(name), labels))

    def _check_namespace(self, body: dict[str, Any], request: Request) -> None:
        namespace = (body.get("metadata") or {}).get("namespace")
        if namespace and self.project(namespace) != self.project(request.params["project"]):
            raise invalid_argument(
                f"metadata.namespace: '{namespace}' does not match the namespace in the URL, "
                f"'{request.params['project']}'."
            )

    def get_service(self, request: Request) -> Response:
        return Response.json(self.render_service(self._service_name(request)))

    def list_services(self, request: Request) -> Response:
        services = self._services(self.project(request.params["project"]), region_of(request) or "-")
        selector = _selector(request.arg("labelSelector") or "")
        items = [knative.service_to_v1(s, self._namespace(s.name), self._run.knative_labels(s.name)) for s in services]
        items = [item for item in items if selector(item["metadata"]["labels"])]
        return Response.json({"apiVersion": knative.API_VERSION, "kind": "ServiceList", "metadata": {}, "items": items})

    def delete_service(self, request: Request) -> Response:
        name = self._service_name(request)
        uid = self._run.get_service(name).uid
        self._run.delete_service(name, validate_only=request.arg("dryRun") == "all")
        # Knative answers a deletion with a Status (the v1 API's namespaces.services.delete response).
        return Response.json(
            {
                "apiVersion": "v1",
                "kind": "Status",
                "status": "Success",
                "details": {
                    "name": request.params["name"],
                    "group": "serving.knative.dev",
                    "kind": "services",
                    "uid": uid,
                },
            }
        )

    # -- revisions ------------------------------------------------------------------------------------------------

    def _render_revision(self, revision: Any) -> dict[str, Any]:
        service_name = revision.name.rsplit("/revisions/", 1)[0]
        service = self._run.get_service(service_name)
        serving = {s.revision for s in service.traffic_statuses if s.percent > 0}
        return knative.revision_to_v1(
            revision,
            self._namespace(revision.name),
            service_uid=service.uid,
            serving=revision.name.rsplit("/", 1)[-1] in serving,
            digests=self._run.revision_digests(revision.name),
            knative_labels=self._run.knative_labels(revision.name),
        )

    def _revision_name(self, request: Request) -> str:
        """The full name of the revision a request names: its service is the part of its name before the
        generated suffix, found among the location's services."""
        project = self.project(request.params["project"])
        region = self._regional(request)
        revision_id = request.params["name"]
        for revision in self._all_revisions(project, region):
            if revision.name.rsplit("/", 1)[-1] == revision_id:
                return str(revision.name)
        # Cloud Run's words for a missing resource (see state._not_found).
        raise not_found(f"Revision named '{revision_id}' not found.")

    def _all_revisions(self, project: str, location: str) -> list[Any]:
        revisions: list[Any] = []
        locations = [location] if location != "-" else sorted({s.name.split("/")[3] for s in self._services(project)})
        for region in locations:
            revisions += _every_page(
                lambda token, region=region: self._run.list_revisions(
                    f"projects/{project}/locations/{region}/services/-", 0, token
                )
            )
        return revisions

    def _services(self, project: str, location: str = "-") -> list[Any]:
        """Every service of the project in `location` ("-": in every location)."""
        return _every_page(lambda token: self._run.list_services(f"projects/{project}/locations/{location}", 0, token))

    def get_revision(self, request: Request) -> Response:
        return Response.json(self._render_revision(self._run.get_revision(self._revision_name(request))))

    def list_revisions(self, request: Request) -> Response:
        project = self.project(request.params["project"])
        selector = _selector(request.arg("labelSelector") or "")
        items = [self._render_revision(r) for r in self._all_revisions(project, region_of(request) or "-")]
        items = [item for item in items if selector(item["metadata"]["labels"])]
        return Response.json(
            {"apiVersion": knative.API_VERSION, "kind": "RevisionList", "metadata": {}, "items": items}
        )

    def delete_revision(self, request: Request) -> Response:
        name = self._revision_name(request)
        self._run.delete_revision(name, validate_only=request.arg("dryRun") == "all")
        return Response.json(
            {
                "apiVersion": "v1",
                "kind": "Status",
                "status": "Success",
                "details": {"name": request.params["name"], "group": "serving.knative.dev", "kind": "revisions"},
            }
        )

    # -- IAM and locations ----------------------------------------------------------------------------------------

    def _iam_resource(self, request: Request) -> str:
        params = request.params
        name = f"projects/{params['project']}/locations/{params['location']}/services/{params['service']}"
        self._run.check_service_exists(name)
        return name

    def get_iam_policy(self, request: Request) -> Response:
        return Response.json(protojson.to_dict(self._run.policies.get_policy(self._iam_resource(request))))

    def set_iam_policy(self, request: Request) -> Response:
        resource = self._iam_resource(request)
        try:
            parsed = protojson.from_dict(iam_policy_pb2.SetIamPolicyRequest, request.json())
        except ValueError as exc:
            raise invalid_argument(f"Invalid JSON payload received. {exc}") from None
        return Response.json(protojson.to_dict(self._run.policies.set_policy(resource, parsed.policy)))

    def test_iam_permissions(self, request: Request) -> Response:
        # No existence check: `gcloud run deploy` asks before it creates a service (CanSetIamPolicyBinding in
        # lib/googlecloudsdk/command_lib/run/serverless_operations.py, called by every first deploy), which Google
        # answers; permissions are held on the project as much as on the service.
        asked = request.json().get("permissions") or []
        # The emulator has no caller identity: every permission asked about is granted, as over gRPC.
        return Response.json({"permissions": list(asked)} if asked else {})

    def list_locations(self, request: Request) -> Response:
        project = request.params["project"]
        return Response.json(
            {
                "locations": [
                    {"name": f"projects/{project}/locations/{region}", "locationId": region} for region in REGIONS
                ]
            }
        )


# Cloud Run's regions (https://cloud.google.com/run/docs/locations), as its locations list answers them.
REGIONS = (
    "africa-south1",
    "asia-east1",
    "asia-east2",
    "asia-northeast1",
    "asia-northeast2",
    "asia-northeast3",
    "asia-south1",
    "asia-south2",
    "asia-southeast1",
    "asia-southeast2",
    "australia-southeast1",
    "australia-southeast2",
    "europe-central2",
    "europe-north1",
    "europe-southwest1",
    "europe-west1",
    "europe-west2",
    "europe-west3",
    "europe-west4",
    "europe-west6",
    "europe-west8",
    "europe-west9",
    "europe-west10",
    "europe-west12",
    "me-central1",
    "me-central2",
    "me-west1",
    "northamerica-northeast1",
    "northamerica-northeast2",
    "southamerica-east1",
    "southamerica-west1",
    "us-central1",
    "us-east1",
    "us-east4",
    "us-east5",
    "us-south1",
    "us-west1",
    "us-west2",
    "us-west3",
    "us-west4",
)


def _written(operation: operations_pb2.Operation) -> Any:
    """The service as a write left it (or, validating only, would leave it): the operation's metadata, taken before
    the revision comes up, so the answer shows the write, not how far it got since."""
    from google.cloud import run_v2

    service = run_v2.Service.pb()()
    operation.metadata.Unpack(service)
    return run_v2.Service.wrap(service)


def _every_page(list_page: Any) -> list[Any]:
    """Every item of a paged list: `list_page(token)` answers (items, next token), "" when it was the last page."""
    items: list[Any] = []
    token = ""
    while True:
        page, token = list_page(token)
        items += page
        if not token:
            return items


def _selector(text: str) -> Any:
    """A Kubernetes label selector's equality requirements ("a=b, c==d, e!=f", a bare key for existence), as a
    predicate on labels; set-based requirements are refused (the emulator's wording)."""
    requirements: list[tuple[str, str, str]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = re.fullmatch(r"(?P<key>[^=!\s]+)\s*(?P<op>==|!=|=)\s*(?P<value>[^=!\s]*)", part)
        if match:
            requirements.append((match["key"], match["op"], match["value"]))
        elif re.fullmatch(r"!?[^=!\s()]+", part):
            requirements.append((part.lstrip("!"), "!" if part.startswith("!") else "exists", ""))
        else:
            raise invalid_argument(f"labelSelector: unsupported requirement '{part}'.")

    def matches(labels: dict[str, str]) -> bool:
        for key, op, value in requirements:
            if op in ("=", "==") and labels.get(key) != value:
                return False
            if op == "!=" and labels.get(key) == value:
                return False
            if op == "exists" and key not in labels:
                return False
            if op == "!" and key in labels:
                return False
        return True

    return matches


def add_routes(router: Router, run: CloudRun, domains: DomainMappings) -> None:
    """Every v1 route, each counted, faulted and gated as the v2 method it stands for (domain mappings, which v2 does
    not have, as v1 methods of their own)."""
    api = KnativeApi(run)
    add_domain_routes(router, api, domains)

    def namespace_project(request: Request) -> str:
        # A namespace may be the project's number (Cloud Run answers with it): the gate checks the project itself.
        return api.project(request.params["project"])

    def route(method: str, pattern: str, handler: Any, rpc: str) -> None:
        router.add(method, _NAMESPACE + pattern, handler, rpc=rpc, project=namespace_project)

    route("GET", r"/services", api.list_services, f"{SERVICES_V2}/ListServices")
    route("POST", r"/services", api.create_service, f"{SERVICES_V2}/CreateService")
    route("GET", r"/services/(?P<name>[^/]+)", api.get_service, f"{SERVICES_V2}/GetService")
    route("PUT", r"/services/(?P<name>[^/]+)", api.replace_service, f"{SERVICES_V2}/UpdateService")
    route("DELETE", r"/services/(?P<name>[^/]+)", api.delete_service, f"{SERVICES_V2}/DeleteService")
    route("GET", r"/revisions", api.list_revisions, f"{REVISIONS_V2}/ListRevisions")
    route("GET", r"/revisions/(?P<name>[^/]+)", api.get_revision, f"{REVISIONS_V2}/GetRevision")
    route("DELETE", r"/revisions/(?P<name>[^/]+)", api.delete_revision, f"{REVISIONS_V2}/DeleteRevision")
    router.add("GET", _IAM + r":getIamPolicy", api.get_iam_policy, rpc=f"{SERVICES_V2}/GetIamPolicy")
    router.add("POST", _IAM + r":setIamPolicy", api.set_iam_policy, rpc=f"{SERVICES_V2}/SetIamPolicy")
    router.add("POST", _IAM + r":testIamPermissions", api.test_iam_permissions, rpc=f"{SERVICES_V2}/TestIamPermissions")
    # Secret Manager's locations list has this path too: this one answers only on Cloud Run's endpoint.
    router.add("GET", r"/v1/projects/(?P<project>[^/]+)/locations", api.list_locations, host=_RUN_HOSTS)


_DOMAINS = r"/apis/domains\.cloudrun\.com/v1/namespaces/(?P<project>[^/]+)/domainmappings"
DOMAINS_V1 = "google.cloud.run.v1.DomainMappings"


def add_domain_routes(router: Router, api: KnativeApi, domains: DomainMappings) -> None:
    """The domain mappings of `gcloud beta run domain-mappings` (run_v1_client.py's NamespacesDomainmappingsService)
    and the verified domains gcloud reads before a create (ProjectsAuthorizeddomainsService, on the global host)."""

    def project(request: Request) -> str:
        return api.project(request.params["project"])

    def create(request: Request) -> Response:
        body = request.json()
        namespace = (body.get("metadata") or {}).get("namespace")
        if namespace and api.project(namespace) != project(request):
            raise invalid_argument(
                f"metadata.namespace: '{namespace}' does not match the namespace in the URL, "
                f"'{request.params['project']}'."
            )
        mapping = domains.create(project(request), api._regional(request), body, dry_run=request.arg("dryRun") == "all")
        return Response.json(mapping)

    def listing(request: Request) -> Response:
        items = domains.list(project(request), region_of(request))
        return Response.json(
            {"apiVersion": "domains.cloudrun.com/v1", "kind": "DomainMappingList", "items": items, "metadata": {}}
        )

    def get(request: Request) -> Response:
        return Response.json(domains.get(project(request), api._regional(request), request.params["name"]))

    def delete(request: Request) -> Response:
        return Response.json(domains.delete(project(request), api._regional(request), request.params["name"]))

    def authorized(request: Request) -> Response:
        name = project(request)
        verified = domains.verified(name)
        return Response.json(
            {"domains": [{"id": d, "name": f"projects/{name}/authorizedDomains/{d}"} for d in verified]}
            if verified
            else {}
        )

    def route(method: str, pattern: str, handler: Any, rpc: str) -> None:
        router.add(method, pattern, handler, rpc=f"{DOMAINS_V1}/{rpc}", project=project)

    route("POST", _DOMAINS, create, "CreateDomainMapping")
    route("GET", _DOMAINS, listing, "ListDomainMappings")
    route("GET", _DOMAINS + r"/(?P<name>[^/]+)", get, "GetDomainMapping")
    route("DELETE", _DOMAINS + r"/(?P<name>[^/]+)", delete, "DeleteDomainMapping")
    router.add(
        "GET",
        r"/v1/projects/(?P<project>[^/]+)/authorizeddomains",
        authorized,
        rpc="google.cloud.run.v1.AuthorizedDomains/ListAuthorizedDomains",
        project=project,
        host=_RUN_HOSTS,
    )
