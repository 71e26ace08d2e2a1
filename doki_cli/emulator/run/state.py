"""Cloud Run Admin API v2 state: services, their revisions and traffic, and the rules that change them.

A create or an update that changes the template makes a revision, then a long-running operation brings it up
(a real container when there is a Docker engine) and routes the traffic: LATEST means the latest *ready* revision, so
a revision that fails leaves traffic where it was. Each service URL is a loopback proxy (see `router`); only the
revisions that serve (a percent or a tag) keep a container running. Reconciliation of one service is serialized;
data is guarded by one lock that is never held while waiting on a container.
"""

from __future__ import annotations

import logging
import secrets as secrets_module
import string
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from google.cloud import run_v2
from google.longrunning import operations_pb2

from doki_cli.emulator import protojson
from doki_cli.emulator.artifactregistry.state import ImageRef, Registry
from doki_cli.emulator.cloudlogging.state import LogStore
from doki_cli.emulator.errors import (
    ApiError,
    aborted,
    already_exists,
    failed_precondition,
    invalid_argument,
    not_found,
    permission_denied,
)
from doki_cli.emulator.faults import Faults
from doki_cli.emulator.iam import OrgPolicy, Policies
from doki_cli.emulator.iamadmin.state import ServiceAccounts
from doki_cli.emulator.iamcredentials.tokens import IdTokens
from doki_cli.emulator.operations.state import Operations
from doki_cli.emulator.paging import Paging
from doki_cli.emulator.run import validation
from doki_cli.emulator.run.router import Backend, HeldPorts, Proxy
from doki_cli.emulator.run.runtime import (
    CONTAINER_PREFIX,
    Cancelled,
    ContainerSpec,
    Launch,
    RevisionFailure,
    Runtime,
    in_memory_mounts,
    startup_probe,
)
from doki_cli.emulator.secretmanager.state import SecretStore

if TYPE_CHECKING:
    from doki_cli.emulator.engine import ContainerEngine

log = logging.getLogger("doki.emulator")

State = run_v2.Condition.State
CommonReason = run_v2.Condition.CommonReason
RevisionReason = run_v2.Condition.RevisionReason
T = TypeVar("T")

INVOKER_ROLE = "roles/run.invoker"
# The emulator has no caller identity; this stands for whoever called.
CALLER = "developer@doki-emulator.local"
DEFAULT_STARTUP_TIMEOUT_SECONDS = 60.0
# A negative page size and a token this emulator did not write: the AIP-158 refusals, in the emulator's words.
PAGING = Paging(default_size=100, max_size=1000, bad_size="page_size must not be negative, got {size}.")
NO_ENGINE = (
    "The emulator has no Docker engine, so it cannot run the revision's containers. "
    "Start Docker, then restart `doki emulator`."
)
# The Service fields a client sets; everything else is output only.
SPEC_FIELDS = (
    "description",
    "labels",
    "annotations",
    "client",
    "client_version",
    "ingress",
    "launch_stage",
    "binary_authorization",
    "template",
    "traffic",
    "scaling",
    "invoker_iam_disabled",
    "default_uri_disabled",
    "custom_audiences",
    "multi_region_settings",
    "iap_enabled",
    "threat_detection_enabled",
    "build_config",
)


@dataclass
class _Service:
    message: run_v2.Service
    revision_count: int = 0  # revisions ever made: the number in the next revision's name
    proxy_port: int = 0
    tag_ports: dict[str, int] = field(default_factory=dict)
    # Template labels only v1 can carry: Kubernetes' prefixed keys, such as the nonce gcloud sets on each deploy
    # (client.knative.dev/nonce), which Google Cloud's label rules of v2 refuse. They are part of the template: a new
    # set makes a new revision, which carries them.
    knative_labels: dict[str, str] = field(default_factory=dict)


@dataclass
class _Revision:
    message: run_v2.Revision
    sequence: int  # creation order across the emulator, newest listed first
    port: int = 0  # the loopback port its ingress container listens on (its PORT)
    # Each container's image by digest as deployed ("" for an image outside Artifact Registry): Cloud Run runs the
    # digest a tag named when the revision was made, and v1 reports it (status.imageDigest). The emulator runs an
    # image named by tag from the engine's own tag (builds and pushes are local), one named by digest from its
    # registry.
    digests: list[str] = field(default_factory=list)
    knative_labels: dict[str, str] = field(default_factory=dict)  # see _Service.knative_labels


@dataclass
class _Urls:
    main: Proxy
    tags: dict[str, Proxy] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _etag() -> str:
    return uuid.uuid4().hex


def _copy(message: T) -> T:
    result: T = protojson.copy(message)
    return result


def _condition(
    type_: str,
    state: int,
    message: str = "",
    *,
    reason: int = CommonReason.COMMON_REASON_UNDEFINED,
    revision_reason: int = RevisionReason.REVISION_REASON_UNDEFINED,
) -> run_v2.Condition:
    """A condition as Cloud Run reports it (enums are proto-plus ints)."""
    if state == State.CONDITION_PENDING:
        severity = run_v2.Condition.Severity.SEVERITY_UNSPECIFIED
    elif state == State.CONDITION_FAILED:
        severity = run_v2.Condition.Severity.ERROR
    else:
        severity = run_v2.Condition.Severity.INFO
    fields: dict[str, Any] = {"type_": type_, "state": state, "message": message, "severity": severity}
    # The reasons are a oneof: setting one clears the others, so only the one that says something is set.
    if revision_reason:
        fields["revision_reason"] = revision_reason
    elif reason:
        fields["reason"] = reason
    return run_v2.Condition(last_transition_time=_now(), **fields)


def _outcome(type_: str, failure: str | None) -> run_v2.Condition:
    """A settled condition of a service: failed with the message, or succeeded."""
    if failure:
        return _condition(type_, State.CONDITION_FAILED, failure, reason=CommonReason.REVISION_FAILED)
    return _condition(type_, State.CONDITION_SUCCEEDED)


def _transitions(previous: Iterable[run_v2.Condition], current: list[run_v2.Condition]) -> list[run_v2.Condition]:
    """`current`, where a condition whose state did not change keeps the time of its last transition."""
    before = {condition.type_: condition for condition in previous}
    for condition in current:
        old = before.get(condition.type_)
        if old is not None and old.state == condition.state:
            condition.last_transition_time = old.last_transition_time
    return current


def _not_found(kind: str, resource_id: str, location: validation.Location) -> ApiError:
    # Google's words (GoogleCloudPlatform/generative-ai#1795).
    return not_found(
        f"Resource '{resource_id}' of kind '{kind}' in region '{location.location}' in project "
        f"'{location.project}' does not exist."
    )


def _cancelled() -> ApiError:
    return ApiError(
        grpc.StatusCode.CANCELLED, "The operation was cancelled: the service was deleted or the emulator is stopping."
    )


def _copy_field(source: Any, target: Any, name: str) -> None:
    """Set protobuf field `name` of `target` to that of `source` (absent stays absent)."""
    target.ClearField(name)
    descriptor = source.DESCRIPTOR.fields_by_name[name]
    if descriptor.is_repeated:
        getattr(target, name).MergeFrom(getattr(source, name))
    elif descriptor.message_type is not None:
        if source.HasField(name):
            getattr(target, name).CopyFrom(getattr(source, name))
    else:
        setattr(target, name, getattr(source, name))


def _spec_bytes(service: run_v2.Service) -> bytes:
    pb = run_v2.Service.pb(service)
    spec = type(pb)()
    for name in SPEC_FIELDS:
        _copy_field(pb, spec, name)
    return bytes(spec.SerializeToString(deterministic=True))


def _update_fields(paths: Iterable[str]) -> tuple[str, ...]:
    """The top-level Service fields an update mask names (all spec fields when it names none)."""
    chosen: list[str] = []
    for path in paths:
        head = path.split(".", 1)[0]
        # Masks may be camelCase (REST, gcloud) or snake_case (gRPC clients).
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in head)
        if snake not in SPEC_FIELDS:
            # An output-only field cannot be updated (the v2 protos mark them OUTPUT_ONLY); the wording is the
            # emulator's.
            raise invalid_argument(f"update_mask: '{path}' is not a field of Service that can be updated.")
        chosen.append(snake)
    return tuple(chosen) or SPEC_FIELDS


class CloudRun:
    """Services and revisions of every project; see the module docstring. Thread-safe."""

    def __init__(
        self,
        *,
        persist: Callable[[], None],
        secrets: SecretStore,
        images: Registry,
        logs: LogStore,
        operations: Operations,
        faults: Faults,
        engine: ContainerEngine | None,
        host: str,
        sleep: Callable[[float], None],
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT_SECONDS,
        org: OrgPolicy | None = None,
        accounts: ServiceAccounts | None = None,
        id_tokens: IdTokens | None = None,
        by_digest: Callable[[str], str] | None = None,
        observe: Callable[[str, int, float], None] | None = None,
    ) -> None:
        """`startup_timeout`: how long a revision without a startup probe may take to listen on its PORT; with
        `accounts`, a template may name only an account that exists; `by_digest(image)`: where the engine finds an
        Artifact Registry image named by digest (the emulator's registry: a digest is no local tag); `observe(revision
        name, status, milliseconds)`: what hears of each request a revision answered (Cloud Monitoring's metrics)."""
        self._persist = persist
        self._ports = HeldPorts()  # on the loopback the containers listen on (router.BACKEND_HOST)
        self._secrets = secrets
        self._images = images
        self._operations = operations
        self._faults = faults
        self._host = host
        self._startup_timeout = startup_timeout
        self._lock = threading.RLock()
        self._services: dict[str, _Service] = {}
        self._revisions: dict[str, _Revision] = {}
        self._sequence = 0
        self._state_id = uuid.uuid4().hex
        self._reconciling: dict[str, threading.Lock] = {}
        self._urls: dict[str, _Urls] = {}
        self._runtime = Runtime(engine, logs, state_id=self._state_id, sleep=sleep) if engine is not None else None
        self._stopping = threading.Event()
        self._accounts = accounts
        self._id_tokens = id_tokens  # which bearer tokens are ID tokens (none: every private URL refuses its callers)
        self.policies = Policies(on_change=persist, org=org, accounts=accounts)
        self._inside: dict[str, bool] = {}  # project -> its URLs' callers come from its VPC networks
        self._by_digest = by_digest or (lambda image: image)
        self._observe = observe

    @property
    def state_id(self) -> str:
        """The label value that marks this state's containers (`doki.emulator.state`)."""
        return self._state_id

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Open every service's URLs, then bring back its serving revisions' containers in the background."""
        with self._lock:
            names = list(self._services)
            for name in names:
                self._open_urls(name)
        if names or self._runtime is not None:
            threading.Thread(target=self._resume, args=(names,), name="run-resume", daemon=True).start()

    def _resume(self, names: list[str]) -> None:
        if self._runtime is not None:
            try:
                self._runtime.remove_leftovers()
            except Exception as exc:  # a flaky engine must not keep the services from coming back
                log.warning("could not remove containers left by a previous emulator: %s", exc)
        for name in names:
            threading.Thread(target=self._settle, args=(name,), name=f"run-resume-{name}", daemon=True).start()

    def _settle(self, name: str) -> None:
        try:
            self._reconcile(name)
        except (ApiError, Cancelled) as exc:
            log.info("service %s did not come back Ready: %s", name, exc)

    def stop(self) -> None:
        """Close every URL and remove every container this emulator started."""
        self._stopping.set()
        with self._lock:
            urls = list(self._urls.values())
            self._urls.clear()
        for proxies in urls:
            for proxy in (proxies.main, *proxies.tags.values()):
                proxy.close()
        if self._runtime is not None:
            self._runtime.stop_all()
        self._ports.close()  # after the containers: none listens there any more

    def touch(self, resource: str) -> bool:
        """A change to service `resource` behind every client's back: a new etag."""
        with self._lock:
            record = self._services.get(resource)
            if record is None:
                return False
            record.message.etag = _etag()
        self._persist()
        return True

    # -- services -----------------------------------------------------------------------------------------------

    def create_service(
        self,
        parent: str,
        service_id: str,
        service: run_v2.Service,
        validate_only: bool = False,
        knative_labels: dict[str, str] | None = None,
    ) -> operations_pb2.Operation:
        """CreateService: the service and its first revision now; the operation brings the revision up.
        `knative_labels`: a v1 write's template labels v2 cannot hold (see _Service.knative_labels)."""
        location = validation.parse_parent(parent)
        return self._create(location, service_id, service, validate_only, "CreateServiceRequest", knative_labels)

    def _create(
        self,
        location: validation.Location,
        service_id: str,
        service: run_v2.Service,
        validate_only: bool,
        request: str,
        knative_labels: dict[str, str] | None = None,
    ) -> operations_pb2.Operation:
        validation.check_service_id(service_id, request)
        validation.check_service(service, request, service_id, creating=True)
        self._check_identity(service.template)
        name = f"{location.name}/services/{service_id}"
        for target in service.traffic:
            if validation.target_type(target) == validation.REVISION and target.revision != service.template.revision:
                raise validation.no_such_revision(target.revision)
        with self._lock:
            if name in self._services:
                # ALREADY_EXISTS, as AIP-133 has a create of an existing resource answer; the wording is the
                # emulator's.
                raise already_exists(f"Resource '{service_id}' already exists.")
            message = _copy(service)
            for output in run_v2.Service.pb(message).DESCRIPTOR.fields:
                if output.name not in SPEC_FIELDS:
                    run_v2.Service.pb(message).ClearField(output.name)
            now = _now()
            message.name = name
            message.uid = str(uuid.uuid4())
            message.generation = 1
            message.create_time = now
            message.update_time = now
            message.creator = CALLER
            message.last_modifier = CALLER
            message.etag = _etag()
            self._fill_defaults(message, location)
            record = _Service(message, knative_labels=dict(knative_labels or {}))
            if validate_only:
                preview = _copy(message)
                return self._operations.start(self._operation_name(location), preview, lambda _: preview)
            self._services[name] = record
            self._new_revision(record, location)
            self._mark_reconciling(record)
            self._open_urls(name)
            snapshot = _copy(record.message)
        self._persist()
        return self._operations.start(self._operation_name(location), snapshot, lambda _: self._reconcile(name))

    def _check_identity(self, template: run_v2.RevisionTemplate) -> None:
        """Every write of a service acts as its revisions' account, so the caller needs iam.serviceaccounts.actAs on
        it, and an account that does not exist fails the same way: PERMISSION_DENIED, "(or it may not exist)" (as
        users meet it: GoogleCloudPlatform/cloud-run-release-manager#81, a traffic-only update refused; google/
        keyword_factory#22). The emulator has no callers, so only an account that does not exist is refused."""
        account = template.service_account
        if self._accounts is not None and account:
            self._accounts.require(
                account,
                lambda email: permission_denied(
                    f"Permission 'iam.serviceaccounts.actAs' denied on service account {email} (or it may not exist)."
                ),
            )

    def get_service(self, name: str) -> run_v2.Service:
        with self._lock:
            return _copy(self._service(name).message)

    def check_service_exists(self, name: str) -> None:
        """NOT_FOUND unless service `name` exists (guards its IAM methods)."""
        with self._lock:
            self._service(name)

    def list_services(self, parent: str, page_size: int = 0, page_token: str = "") -> tuple[list[run_v2.Service], str]:
        """Services of a location ("-" for every location), by name."""
        location = validation.parse_parent(parent)
        prefix = f"projects/{location.project}/locations/"
        with self._lock:
            found = [
                record.message
                for name, record in self._services.items()
                if name.startswith(prefix) and location.location in ("-", name.split("/")[3])
            ]
            chosen, token = PAGING.page(found, lambda s: str(s.name), page_size, page_token)
            return [_copy(service) for service in chosen], token

    def update_service(
        self,
        service: run_v2.Service,
        update_mask: Iterable[str] = (),
        validate_only: bool = False,
        allow_missing: bool = False,
        knative_labels: dict[str, str] | None = None,
    ) -> operations_pb2.Operation:
        """UpdateService: a new revision when the template changed; `allow_missing` creates a missing service.
        `knative_labels`: a v1 write's template labels v2 cannot hold (None: a v2 write, which knows none)."""
        location, service_id = validation.parse_service_name(service.name)
        name = service.name
        fields = _update_fields(update_mask)
        with self._lock:
            record = self._services.get(name)
        if record is None:
            if not allow_missing:
                raise _not_found("SERVICE", service_id, location)
            return self._create(location, service_id, service, validate_only, "UpdateServiceRequest", knative_labels)
        with self._lock:
            if service.etag and service.etag != record.message.etag:
                # ABORTED on a stale etag (AIP-154, and the proto's comment on Service.etag: "May be used to detect
                # modification conflict during updates").
                raise aborted(self._stale_etag(service_id))
            merged = _copy(record.message)
            for field_name in fields:
                _copy_field(run_v2.Service.pb(service), run_v2.Service.pb(merged), field_name)
        validation.check_service(merged, "UpdateServiceRequest", service_id, creating=False)
        self._check_identity(merged.template)
        with self._lock:
            record = self._services.get(name)
            if record is None:
                raise _not_found("SERVICE", service_id, location)
            self._fill_defaults(merged, location)
            current = record.message
            template_changed = not validation.same_template(merged.template, current.template) or (
                knative_labels is not None and knative_labels != record.knative_labels
            )
            new_revision = merged.template.revision if template_changed else ""
            if new_revision and f"{name}/revisions/{new_revision}" in self._revisions:
                # A revision's spec never changes under its name (Knative's VerifyNameChange in knative/serving
                # pkg/apis/serving/v1/revision_validation.go; pipe-cd/pipecd#2480 on Cloud Run enforcing it); the
                # wording is the emulator's.
                raise already_exists(f"Revision named '{new_revision}' with different configuration already exists.")
            for target in merged.traffic:
                revision = target.revision
                named = validation.target_type(target) == validation.REVISION and revision != new_revision
                if named and f"{name}/revisions/{revision}" not in self._revisions:
                    raise validation.no_such_revision(revision)
            changed = template_changed or _spec_bytes(merged) != _spec_bytes(current)
            if validate_only:
                preview = _copy(merged)
                return self._operations.start(self._operation_name(location), preview, lambda _: preview)
            if changed:
                spec = run_v2.Service.pb(merged)
                for field_name in SPEC_FIELDS:
                    _copy_field(spec, run_v2.Service.pb(current), field_name)
                current.generation += 1
                current.update_time = _now()
                current.last_modifier = CALLER
                current.etag = _etag()
                if template_changed:
                    # A v2 write's new revision is not the one a v1 client's nonce named.
                    record.knative_labels = dict(knative_labels or {})
                    self._new_revision(record, location)
                self._mark_reconciling(record)
            snapshot = _copy(current)
        if changed:
            self._persist()
        return self._operations.start(self._operation_name(location), snapshot, lambda _: self._reconcile(name))

    def delete_service(self, name: str, etag: str = "", validate_only: bool = False) -> operations_pb2.Operation:
        """DeleteService: the service and its revisions go now; the operation stops their containers and URLs."""
        location, service_id = validation.parse_service_name(name)
        with self._lock:
            record = self._service(name)
            if etag and etag != record.message.etag:
                raise aborted(self._stale_etag(service_id))
            deleted = _copy(record.message)
            deleted.delete_time = _now()
            deleted.reconciling = False
            if validate_only:
                return self._operations.start(self._operation_name(location), deleted, lambda _: deleted)
            del self._services[name]
            revisions = [r for r in self._revisions if r.startswith(name + "/revisions/")]
            for revision in revisions:
                del self._revisions[revision]
            urls = self._urls.pop(name, None)
        self.policies.forget(name)
        self._persist()

        def work(_: Any) -> run_v2.Service:
            if urls is not None:
                for proxy in (urls.main, *urls.tags.values()):
                    proxy.close()
            # A reconciliation under way notices the deletion and ends; the containers go once it has.
            with self._reconcile_lock(name):
                if self._runtime is not None:
                    for revision in revisions:
                        self._runtime.stop(revision)
            return deleted

        return self._operations.start(self._operation_name(location), deleted, work)

    # -- revisions ----------------------------------------------------------------------------------------------

    def get_revision(self, name: str) -> run_v2.Revision:
        with self._lock:
            return _copy(self._revision(name).message)

    def revision_digests(self, name: str) -> list[str]:
        """Each container's image by digest as the revision deployed it ("" where not known)."""
        with self._lock:
            return list(self._revision(name).digests)

    def knative_labels(self, name: str) -> dict[str, str]:
        """The template labels only v1 shows of service or revision `name` (see _Service.knative_labels)."""
        with self._lock:
            record = self._services.get(name) or self._revisions.get(name)
            if record is None:
                (self._revision if "/revisions/" in name else self._service)(name)  # NOT_FOUND in Cloud Run's words
            return dict(record.knative_labels) if record is not None else {}

    def projects(self) -> list[str]:
        """The projects that have services."""
        with self._lock:
            return sorted({validation.parse_service_name(name)[0].project for name in self._services})

    def list_revisions(
        self, parent: str, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[run_v2.Revision], str]:
        """Revisions of a service ("-" for every service of the location), newest first."""
        location, service_id = validation.parse_service_name(parent)
        with self._lock:
            if service_id != "-":
                self._service(parent)
            prefix = f"{location.name}/services/" if service_id == "-" else f"{parent}/revisions/"
            found = [record for name, record in self._revisions.items() if name.startswith(prefix)]
            # Newest first: the key grows as the sequence falls.
            chosen, token = PAGING.page(found, lambda r: f"{10**12 - r.sequence:013d}", page_size, page_token)
            return [_copy(record.message) for record in chosen], token

    def delete_revision(self, name: str, etag: str = "", validate_only: bool = False) -> operations_pb2.Operation:
        """DeleteRevision: refused while the revision serves traffic (or the traffic spec names it)."""
        service_name, revision_id = validation.parse_revision_name(name)
        location, _ = validation.parse_service_name(service_name)
        with self._lock:
            record = self._revision(name)
            if etag and etag != record.message.etag:
                raise aborted(f"The provided etag does not match the current etag of Resource '{revision_id}'.")
            service = self._services[service_name].message
            serving = {status.revision for status in service.traffic_statuses}
            named = {target.revision for target in service.traffic}
            if revision_id in serving | named:
                # A revision that traffic names cannot be deleted. No reference found yet for this refusal or its
                # words (https://cloud.google.com/run/docs/managing/revisions is where Cloud Run documents deletion);
                # kept, as it was, so as not to loosen the emulator.
                raise failed_precondition(
                    f"Revision '{revision_id}' cannot be deleted because it is serving traffic. Route its traffic "
                    "to other revisions first."
                )
            deleted = _copy(record.message)
            deleted.delete_time = _now()
            if validate_only:
                return self._operations.start(self._operation_name(location), deleted, lambda _: deleted)
            del self._revisions[name]
            if service.latest_ready_revision == name:
                service.latest_ready_revision = self._newest_ready(service_name)
        self._persist()

        def work(_: Any) -> run_v2.Revision:
            if self._runtime is not None:
                self._runtime.stop(name)
            return deleted

        return self._operations.start(self._operation_name(location), deleted, work)

    # -- invoking -----------------------------------------------------------------------------------------------

    def set_callers_inside(self, project: str, inside: bool) -> None:
        """Whether requests to `project`'s URLs come from inside its VPC networks (from the host, by default not)."""
        with self._lock:
            self._inside[project] = inside

    def callers_inside(self, project: str) -> bool:
        with self._lock:
            return self._inside.get(project, False)

    def may_reach(self, name: str) -> bool:
        """Cloud Run's ingress check, made before the invoker check: with ingress `internal` or
        `internal-and-cloud-load-balancing`, a run.app URL serves only requests from the project's VPC networks
        (https://cloud.google.com/run/docs/securing/ingress) and answers others 404 (as users find from outside:
        richardhe-fundamenta/practical-gcp-examples#11). The emulator's callers are outside unless a test says."""
        with self._lock:
            record = self._services.get(name)
            if record is None:
                return False
            everyone = record.message.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL
            return everyone or self._inside.get(validation.parse_service_name(name)[0].project, False)

    def invoke_refusal(self, name: str, authorization: str | None) -> int | None:
        """Cloud Run's invoker check of a request to one of the service's URLs: None when it may go through, else the
        HTTP status it gets. Without the invoker check, or with allUsers as roles/run.invoker, anyone may call.
        Otherwise the request needs an ID token (https://cloud.google.com/run/docs/authenticating/service-to-service):
        none at all is 403; one that is not a valid, unexpired token whose audience is one of the service's URLs or
        custom audiences is 401 (GoogleCloudPlatform/cloud-run-proxy#10: a GenerateIdToken token for another
        audience; GoogleCloudPlatform/cloud-networking-solutions#78: only the run.app URLs by default); a valid one
        whose account holds no roles/run.invoker on the service (nor allAuthenticatedUsers) is 403. Google also honours
        the role granted on the project; the emulator keeps no project policies, so only the service's count."""
        # Each request to a service URL passes the fault plan too, as `Invoke`: tests can hook a health check.
        self._faults.check(f"/{name}/Invoke")
        with self._lock:
            record = self._services.get(name)
            if record is None:
                return 403
            if record.message.invoker_iam_disabled:
                return None
            audiences = {*record.message.urls, record.message.uri, *record.message.custom_audiences} - {""}
        invokers = self.policies.members(name, INVOKER_ROLE)
        if "allUsers" in invokers:
            return None
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return 403
        claims = self._id_tokens.verify(token.strip()) if self._id_tokens is not None else None
        if claims is None or claims["aud"] not in audiences:
            return 401
        # A token minted without its email (include_email false, the metadata server's default) names its account by
        # its unique id alone, which Cloud Run resolves as well.
        email = claims.get("email") or (self._accounts.email_of(claims["sub"]) if self._accounts is not None else None)
        if "allAuthenticatedUsers" in invokers or (email and f"serviceAccount:{email}" in invokers):
            return None
        return 403

    def _backend(self, revision: str) -> Backend | None:
        return self._runtime.backend(revision) if self._runtime is not None else None

    # -- internals: records -------------------------------------------------------------------------------------

    def _service(self, name: str) -> _Service:
        location, service_id = validation.parse_service_name(name)
        record = self._services.get(name)
        if record is None:
            raise _not_found("SERVICE", service_id, location)
        return record

    def _revision(self, name: str) -> _Revision:
        service_name, revision_id = validation.parse_revision_name(name)
        location, _ = validation.parse_service_name(service_name)
        record = self._revisions.get(name)
        if record is None:
            raise _not_found("REVISION", revision_id, location)
        return record

    @staticmethod
    def _stale_etag(resource_id: str) -> str:
        return (
            f"The provided etag does not match the current etag of Resource '{resource_id}'. "
            "Read the resource again and retry the change."
        )

    @staticmethod
    def _operation_name(location: validation.Location) -> str:
        return f"{location.name}/operations/{uuid.uuid4()}"

    def _fill_defaults(self, message: run_v2.Service, location: validation.Location) -> None:
        message.template = validation.with_defaults(message.template, location.project)
        if not message.traffic:
            message.traffic = [run_v2.TrafficTarget(type_=validation.LATEST, percent=100)]
        if not message.ingress:
            message.ingress = run_v2.IngressTraffic(run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL)
        if not message.launch_stage:
            message.launch_stage = "GA"

    def _new_revision(self, record: _Service, location: validation.Location) -> None:
        """Record the revision the service's template describes, not yet Ready; it becomes the latest created."""
        service = record.message
        service_id = service.name.rsplit("/", 1)[-1]
        record.revision_count += 1
        template = service.template
        revision_id = template.revision
        while not revision_id or f"{service.name}/revisions/{revision_id}" in self._revisions:
            suffix = "".join(secrets_module.choice(string.ascii_lowercase) for _ in range(3))
            revision_id = f"{service_id}-{record.revision_count:05d}-{suffix}"
        name = f"{service.name}/revisions/{revision_id}"
        now = _now()
        revision = run_v2.Revision(
            name=name,
            uid=str(uuid.uuid4()),
            generation=record.revision_count,
            labels=template.labels,
            annotations=template.annotations,
            create_time=now,
            update_time=now,
            launch_stage=service.launch_stage,
            service=service_id,
            scaling=template.scaling,
            vpc_access=template.vpc_access,
            max_instance_request_concurrency=template.max_instance_request_concurrency,
            timeout=template.timeout,
            service_account=template.service_account,
            containers=template.containers,
            volumes=template.volumes,
            execution_environment=template.execution_environment,
            encryption_key=template.encryption_key,
            session_affinity=template.session_affinity,
            reconciling=True,
            conditions=[
                _condition("Ready", State.CONDITION_PENDING),
                _condition("ContainerHealthy", State.CONDITION_PENDING),
                _condition("ResourcesAvailable", State.CONDITION_PENDING),
            ],
            observed_generation=record.revision_count,
            log_uri=(
                f"https://console.cloud.google.com/logs/viewer?project={location.project}"
                f"&resource=cloud_run_revision/service_name/{service_id}/revision_name/{revision_id}"
            ),
            creator=CALLER,
            etag=_etag(),
        )
        self._sequence += 1
        self._revisions[name] = _Revision(revision, self._sequence, knative_labels=dict(record.knative_labels))
        service.latest_created_revision = name

    @staticmethod
    def _mark_reconciling(record: _Service) -> None:
        service = record.message
        service.reconciling = True
        service.terminal_condition = _transitions(
            [service.terminal_condition], [_condition("Ready", State.CONDITION_PENDING)]
        )[0]
        service.conditions = _transitions(
            service.conditions,
            [
                _condition("RoutesReady", State.CONDITION_PENDING),
                _condition("ConfigurationsReady", State.CONDITION_PENDING),
            ],
        )

    def _newest_ready(self, service_name: str) -> str:
        ready = [
            record
            for name, record in self._revisions.items()
            if name.startswith(service_name + "/revisions/") and self._is_ready(record.message)
        ]
        return max(ready, key=lambda r: r.sequence).message.name if ready else ""

    @staticmethod
    def _is_ready(revision: run_v2.Revision) -> bool:
        return any(c.type_ == "Ready" and c.state == State.CONDITION_SUCCEEDED for c in revision.conditions)

    @staticmethod
    def _is_pending(revision: run_v2.Revision) -> bool:
        return any(c.type_ == "Ready" and c.state == State.CONDITION_PENDING for c in revision.conditions)

    # -- internals: URLs ----------------------------------------------------------------------------------------

    def _open_urls(self, name: str) -> None:
        """The service's main URL (its recorded port when free); call with the lock held."""
        record = self._services[name]
        if name in self._urls:
            return
        proxy = Proxy(
            self._host,
            record.proxy_port,
            refuse=lambda header: self.invoke_refusal(name, header),
            reachable=lambda: self.may_reach(name),
            backend=self._backend,
            observe=self._observe,
        )
        self._urls[name] = _Urls(proxy)
        record.proxy_port = proxy.port
        record.message.uri = proxy.url
        record.message.urls = [proxy.url]
        self._route(name)

    def _tag_proxy(self, name: str, tag: str) -> Proxy:
        urls = self._urls[name]
        proxy = urls.tags.get(tag)
        if proxy is None:
            record = self._services[name]
            proxy = Proxy(
                self._host,
                record.tag_ports.get(tag, 0),
                refuse=lambda header: self.invoke_refusal(name, header),
                reachable=lambda: self.may_reach(name),
                backend=self._backend,
                observe=self._observe,
            )
            urls.tags[tag] = proxy
            record.tag_ports[tag] = proxy.port
        return proxy

    def _route(self, name: str) -> None:
        """Point the service's proxies at its traffic statuses; close the URLs of tags that are gone."""
        urls = self._urls.get(name)
        if urls is None:
            return
        record = self._services[name]
        statuses = record.message.traffic_statuses
        urls.main.route([(f"{name}/revisions/{s.revision}", s.percent) for s in statuses if s.percent > 0])
        tags = {s.tag: s.revision for s in statuses if s.tag}
        for tag, revision in tags.items():
            self._tag_proxy(name, tag).route([(f"{name}/revisions/{revision}", 100)])
        for tag in set(urls.tags) - set(tags):
            urls.tags.pop(tag).close()
            record.tag_ports.pop(tag, None)

    # -- internals: reconciliation ------------------------------------------------------------------------------

    def _reconcile_lock(self, name: str) -> threading.Lock:
        """The lock that serializes the reconciliations (and the final cleanup) of service `name`."""
        with self._lock:
            return self._reconciling.setdefault(name, threading.Lock())

    def _keep_going(self, name: str) -> Callable[[], bool]:
        return lambda: not self._stopping.is_set() and name in self._services

    def _reconcile(self, name: str) -> run_v2.Service:
        """Bring the service to its spec: its newest revision up, traffic routed, idle revisions stopped.

        Returns the service (the operation's response) or raises the failure its terminal condition carries.
        """
        with self._reconcile_lock(name):
            with self._lock:
                latest = self._service(name).message.latest_created_revision
                # Updates in quick succession can each add a revision before one reconciliation runs: all come up.
                pending = sorted(
                    (
                        r
                        for n, r in self._revisions.items()
                        if n.startswith(f"{name}/revisions/") and self._is_pending(r.message)
                    ),
                    key=lambda r: r.sequence,
                )
            config_failure = None
            for revision in pending:
                failure = self._deploy(name, revision.message.name)
                if revision.message.name == latest:
                    config_failure = failure
            routes_failure = self._apply_traffic(name)
            with self._lock:
                record = self._service(name)
                service = record.message
                latest_record = self._revisions.get(service.latest_created_revision)
                if config_failure is None and latest_record is not None and not self._is_ready(latest_record.message):
                    config_failure = self._failure_message(latest_record.message)
                failure = config_failure or routes_failure
                service.conditions = _transitions(
                    service.conditions,
                    [_outcome("RoutesReady", routes_failure), _outcome("ConfigurationsReady", config_failure)],
                )
                service.terminal_condition = _transitions([service.terminal_condition], [_outcome("Ready", failure)])[0]
                service.reconciling = False
                service.observed_generation = service.generation
                result = _copy(service)
            self._persist()
            if failure:
                raise failed_precondition(failure)
            return result

    @staticmethod
    def _failure_message(revision: run_v2.Revision) -> str:
        ready = next((c for c in revision.conditions if c.type_ == "Ready"), None)
        revision_id = revision.name.rsplit("/", 1)[-1]
        if ready is not None and ready.state == State.CONDITION_FAILED:
            return str(ready.message)
        return f"Revision '{revision_id}' is not ready and cannot serve traffic."

    def _deploy(self, service_name: str, revision_name: str) -> str | None:
        """Bring a new revision up; its failure message (the revision is marked failed), or None once Ready."""
        revision_id = revision_name.rsplit("/", 1)[-1]
        service_id = service_name.rsplit("/", 1)[-1]
        try:
            failure = self._faults.take_revision_failure(service_id)
            if failure is not None:
                # The secrets are checked first, as on Google; an injected failure stands for a container that fails.
                self._environments(revision_name)
                raise RevisionFailure(failure, revision_reason=RevisionReason.HEALTH_CHECK_CONTAINER_ERROR)
            self._launch(revision_name, deploying=True)
        except RevisionFailure as exc:
            message = f"Revision '{revision_id}' is not ready and cannot serve traffic. {exc.message}"
            self._set_revision_state(revision_name, State.CONDITION_FAILED, message, exc)
            return message
        except Cancelled:
            raise _cancelled() from None
        self._set_revision_state(revision_name, State.CONDITION_SUCCEEDED, "", None)
        with self._lock:
            record = self._services.get(service_name)
            if record is not None:
                record.message.latest_ready_revision = self._newest_ready(service_name)
        return None

    def _set_revision_state(self, name: str, state: int, message: str, failure: RevisionFailure | None) -> None:
        if failure is None:
            conditions = [
                _condition(kind, State.CONDITION_SUCCEEDED)
                for kind in ("Ready", "ContainerHealthy", "ResourcesAvailable")
            ]
        else:
            # A failure with a common reason (a secret, a missing image) is about resources: no container ran.
            about_resources = failure.reason != CommonReason.COMMON_REASON_UNDEFINED
            failed = _condition("Ready", state, message, reason=failure.reason, revision_reason=failure.revision_reason)
            conditions = [
                failed,
                _condition("ContainerHealthy", State.CONDITION_PENDING)
                if about_resources
                else _condition("ContainerHealthy", state, message, revision_reason=failure.revision_reason),
                _condition("ResourcesAvailable", state, message, reason=failure.reason)
                if about_resources
                else _condition("ResourcesAvailable", State.CONDITION_SUCCEEDED),
            ]
        with self._lock:
            record = self._revisions.get(name)
            if record is None:
                return
            revision = record.message
            revision.conditions = _transitions(revision.conditions, conditions)
            revision.reconciling = False
            revision.update_time = _now()
        self._persist()

    def _apply_traffic(self, name: str) -> str | None:
        """Resolve the traffic spec, start what must serve, route, stop the rest; the failure message or None."""
        with self._lock:
            service = self._service(name).message
            statuses: list[run_v2.TrafficTargetStatus] = []
            failure = None
            for target in service.traffic:
                kind = validation.target_type(target)
                # LATEST "allocates instances to the Service's latest ready Revision" (the proto's comment on
                # TrafficTargetAllocationType): a newer revision that failed gets nothing.
                revision_name = (
                    service.latest_ready_revision
                    if kind == validation.LATEST
                    else f"{name}/revisions/{target.revision}"
                )
                record = self._revisions.get(revision_name)
                if record is None or not self._is_ready(record.message):
                    failure = failure or self._unroutable(service, target, record)
                    continue
                statuses.append(
                    run_v2.TrafficTargetStatus(
                        type_=kind, revision=revision_name.rsplit("/", 1)[-1], percent=target.percent, tag=target.tag
                    )
                )
            serving = {f"{name}/revisions/{s.revision}" for s in statuses if s.percent > 0 or s.tag}
        if failure is not None:
            return failure
        if self._runtime is not None:
            for revision_name in sorted(serving):
                if not self._runtime.is_running(revision_name):
                    try:
                        self._launch(revision_name)
                    except RevisionFailure as exc:
                        revision_id = revision_name.rsplit("/", 1)[-1]
                        return f"Revision '{revision_id}' is not ready and cannot serve traffic. {exc.message}"
                    except Cancelled:
                        raise _cancelled() from None
        elif serving:
            return f"Revision '{sorted(serving)[0].rsplit('/', 1)[-1]}' cannot serve traffic. {NO_ENGINE}"
        with self._lock:
            service = self._service(name).message
            service.traffic_statuses = statuses
            urls = self._urls.get(name)
            if urls is not None:
                self._route(name)
                for status in statuses:
                    if status.tag:
                        status.uri = urls.tags[status.tag].url
                service.traffic_statuses = statuses
        if self._runtime is not None:
            for revision_name in self._runtime.running_revisions():
                if revision_name.startswith(name + "/revisions/") and revision_name not in serving:
                    self._runtime.stop(revision_name)
        return None

    def _unroutable(self, service: run_v2.Service, target: run_v2.TrafficTarget, record: _Revision | None) -> str:
        """Why `target` cannot get traffic: its revision is not Ready, is gone, or (LATEST) none is Ready yet."""
        if record is not None:
            return self._failure_message(record.message)
        if target.revision:
            return validation.no_such_revision(target.revision).message
        latest = self._revisions.get(service.latest_created_revision)
        if latest is not None:
            return self._failure_message(latest.message)
        return "No revision of the service is ready to serve traffic."

    # -- internals: containers ----------------------------------------------------------------------------------

    def _launch(self, revision_name: str, *, deploying: bool = False) -> None:
        """Start the revision's containers and wait until it is Ready (RevisionFailure if it cannot be).

        Its images are looked up in Artifact Registry when it is deployed, not when it starts again: Cloud Run keeps
        a deployed revision's image ("Container images are not pulled from their container repository when a new
        Cloud Run instance is started", https://cloud.google.com/run/docs/deploying)."""
        environments = self._environments(revision_name)
        if self._runtime is None:
            raise RevisionFailure(NO_ENGINE)
        if deploying:
            self._check_images(revision_name)
        service_name, revision_id = validation.parse_revision_name(revision_name)
        location, service_id = validation.parse_service_name(service_name)
        with self._lock:
            record = self._revisions.get(revision_name)
            if record is None:
                raise Cancelled(f"revision {revision_id} was deleted")
            revision = record.message
            taken = frozenset(r.port for r in self._revisions.values() if r is not record)
            if not record.port or record.port in taken or not self._ports.keep(record.port):
                record.port = self._ports.new(taken=taken)
            port = record.port
            ingress = validation.ingress_index(revision)
            containers = []
            for index, container in enumerate(revision.containers):
                env = environments[index]
                env["K_SERVICE"] = service_id
                env["K_REVISION"] = revision_id
                env["K_CONFIGURATION"] = service_id
                if index == ingress:
                    env["PORT"] = str(port)
                suffix = "" if index == ingress else f"-{container.name or index}"
                containers.append(
                    ContainerSpec(
                        name=f"{CONTAINER_PREFIX}{revision_id}{suffix}",
                        image=self._by_digest(container.image) if "@" in container.image else container.image,
                        command=list(container.command),
                        args=list(container.args),
                        environment=env,
                        tmpfs=in_memory_mounts(revision, container),
                    )
                )
            containers.insert(0, containers.pop(ingress))
            launch = Launch(
                project=location.project,
                location=location.location,
                service=service_id,
                revision=revision_name,
                port=port,
                request_timeout=revision.timeout.total_seconds() or validation.DEFAULT_TIMEOUT_SECONDS,
                containers=containers,
                probe=startup_probe(revision.containers[ingress], self._startup_timeout),
                container_port=validation.container_port(revision.containers[ingress]),
                container_name=revision.containers[ingress].name,
            )
        self._persist()
        self._runtime.launch(launch, self._keep_going(service_name))

    def _check_images(self, revision_name: str) -> None:
        """An image in Artifact Registry must have been pushed there: Cloud Run pulls it, and a revision of one that
        is not fails in Google's words, "Image '…' not found." (google-github-actions/deploy-cloudrun#465). The local
        engine holding an image under that name does not count. Images elsewhere (Docker Hub, the stand-in base
        image) come from the engine. The digests found are the revision's from then on."""
        with self._lock:
            record = self._revisions.get(revision_name)
            images = [c.image for c in record.message.containers] if record is not None else []
        digests = []
        for image in images:
            digest = self._images.digest_uri(image)
            if ImageRef.parse(image) is not None and digest is None:
                raise RevisionFailure(f"Image '{image}' not found.", reason=CommonReason.CONTAINER_MISSING)
            digests.append(digest or "")
        with self._lock:
            if record is not None:
                record.digests = digests

    def _environments(self, revision_name: str) -> list[dict[str, str]]:
        """Each container's environment, secrets resolved; RevisionFailure in Cloud Run's words if one cannot be."""
        service_name, _ = validation.parse_revision_name(revision_name)
        location, _ = validation.parse_service_name(service_name)
        with self._lock:
            record = self._revisions.get(revision_name)
            if record is None:
                raise Cancelled(f"revision {revision_name} was deleted")
            revision = _copy(record.message)
        account = revision.service_account or validation.default_service_account(location.project)
        environments: list[dict[str, str]] = []
        for c_index, container in enumerate(revision.containers):
            env: dict[str, str] = {}
            for e_index, variable in enumerate(container.env):
                if "value_source" not in variable:
                    env[variable.name] = variable.value
                    continue
                where = f"spec.template.spec.containers[{c_index}].env[{e_index}].value_from.secret_key_ref.name"
                env[variable.name] = self._secret_value(variable.value_source.secret_key_ref, location, account, where)
            environments.append(env)
        return environments

    def _secret_value(
        self, ref: run_v2.SecretKeySelector, location: validation.Location, account: str, where: str
    ) -> str:
        secret = (
            ref.secret if ref.secret.startswith("projects/") else f"projects/{location.project}/secrets/{ref.secret}"
        )
        version = f"{secret}/versions/{ref.version or 'latest'}"
        if not self._secrets.exists(secret):
            raise RevisionFailure(
                f"{where}: Secret {version} was not found", reason=CommonReason.SECRETS_ACCESS_CHECK_FAILED
            )
        if not self._secrets.can_access(secret, f"serviceAccount:{account}"):
            raise RevisionFailure(
                f"{where}: Permission denied on secret: {version} for Revision service account {account}. The "
                "service account used must be granted the 'Secret Manager Secret Accessor' role "
                "(roles/secretmanager.secretAccessor) at the secret, project or higher level.",
                reason=CommonReason.SECRETS_ACCESS_CHECK_FAILED,
            )
        try:
            return self._secrets.resolve(version).decode(errors="replace")
        except ApiError as err:
            message = f"Secret {version} was not found" if err.code == grpc.StatusCode.NOT_FOUND else err.message
            raise RevisionFailure(f"{where}: {message}", reason=CommonReason.SECRETS_ACCESS_CHECK_FAILED) from None

    # -- persistence --------------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "state_id": self._state_id,
                "sequence": self._sequence,
                "services": [
                    {
                        "service": protojson.to_dict(record.message),
                        "revision_count": record.revision_count,
                        "proxy_port": record.proxy_port,
                        "tag_ports": dict(record.tag_ports),
                        "knative_labels": dict(record.knative_labels),
                    }
                    for record in self._services.values()
                ],
                "revisions": [
                    {
                        "revision": protojson.to_dict(record.message),
                        "sequence": record.sequence,
                        "port": record.port,
                        "digests": record.digests,
                        "knative_labels": record.knative_labels,
                    }
                    for record in self._revisions.values()
                ],
                "policies": self.policies.snapshot(),
            }

    def restore(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._state_id = data.get("state_id", self._state_id)
            if self._runtime is not None:
                self._runtime.state_id = self._state_id
            self._sequence = int(data.get("sequence", 0))
            self._services = {}
            for item in data.get("services", []):
                message = protojson.from_dict(run_v2.Service, item["service"])
                self._services[message.name] = _Service(
                    message,
                    int(item["revision_count"]),
                    int(item["proxy_port"]),
                    dict(item["tag_ports"]),
                    dict(item.get("knative_labels", {})),
                )
            self._revisions = {}
            for item in data.get("revisions", []):
                revision = protojson.from_dict(run_v2.Revision, item["revision"])
                self._revisions[revision.name] = _Revision(
                    revision,
                    int(item["sequence"]),
                    int(item["port"]),
                    list(item.get("digests", [])),
                    dict(item.get("knative_labels", {})),
                )
        self.policies.restore(data.get("policies", {}))
