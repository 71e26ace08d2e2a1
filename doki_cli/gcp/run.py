"""Cloud Run Admin API v2, through google-cloud-run: the only module that imports it.

Reads a service into doki's `LiveService` (the settings doki.toml may declare through `doki_cli.gcp.run_settings`,
its part of this adapter) and writes doki's changes (a `ServiceSpec`, or an `Edit`) onto the service
as read, so every field doki does not manage goes back as it was; applies a service in one call
(`update_service(allow_missing=True)` creates or updates), follows the long-running operation with progress, and
turns Google errors into DokiErrors with a hint. Google's messages do not leave this module.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from doki_cli.config import cpu_count, is_compute_default
from doki_cli.errors import Code, DokiError, service_not_found
from doki_cli.gcp import run_settings
from doki_cli.gcp.errors import call_google, google_error
from doki_cli.gcp.iam import POLICY_ATTEMPTS, edit_policy, set_member
from doki_cli.gcp.operations import accepted
from doki_cli.gcp.retry import Retrier, no_library_retry
from doki_cli.interrupts import uninterrupted
from doki_cli.model import (
    AFTER,
    BY,
    COMMAND,
    COMMIT,
    COMMIT_IMAGE,
    FROM,
    Edit,
    Kept,
    LiveService,
    Provenance,
    RevisionInfo,
    RevisionSettings,
    Routed,
    Scaling,
    ServiceSpec,
    Target,
    to_latest,
)

# A wait says it is still waiting at the first poll HEARTBEAT_SECONDS after it last spoke (polls are up to 5 s
# apart), so a silent screen or log never means stuck: one heartbeat for every wait, waiting.py's.
from doki_cli.waiting import DEFAULT_TIMEOUT, HEARTBEAT_SECONDS, duration_text

if TYPE_CHECKING:
    from google.cloud import run_v2

INVOKER = "roles/run.invoker"
# A template annotation that differs on each deploy that must make a new revision of an unchanged template.
RETRY_ANNOTATION = "doki.dev/retry"
# doki's own annotations (the retry above, the release lock): not among what a plan lists as kept.
DOKI_ANNOTATIONS = "doki.dev/"
# What a traffic change writes (the release lock is an annotation). The template goes back as read, its revision
# name included, as gcloud's update-traffic sends it (surface/run/services/update_traffic.py); the mask keeps the
# write to these fields, as Google's Firebase CLI does for v2 (src/gcp/runv2.ts updateService). A template written
# back with its revision name and any difference is refused: "Revision named '…' with different configuration
# already exists" (googleapis/google-cloud-python#11870, hashicorp/terraform-provider-google#9438).
TRAFFIC_FIELDS = ("traffic", "annotations")
PUBLIC = "allUsers"
# The startup probe Cloud Run writes into a serving container that declares none, at the container's port
# (https://cloud.google.com/run/docs/configuring/healthchecks, "The default TCP startup probe"): Google's, not a
# setting made outside doki.toml.
DEFAULT_PROBE_SECONDS = 240
_INGRESS = {
    "all": "INGRESS_TRAFFIC_ALL",
    "internal": "INGRESS_TRAFFIC_INTERNAL_ONLY",
    "internal-and-cloud-load-balancing": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
}


class CloudRun:
    """One project and region of Cloud Run. Reads return `LiveService`s; writes take doki's spec or an `Edit`. An
    update carries the etag of the read it starts from, so a change made by someone else in between is not
    overwritten (a create carries none: Cloud Run's update with allow_missing is the one call that creates)."""

    def __init__(
        self,
        services: Any,
        project: str,
        region: str,
        retrier: Retrier,
        *,
        revisions: Any = None,
        endpoint: str = "Google",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._services = services
        self.endpoint = endpoint  # Google, or the emulator at host:port: plans say which
        self._revisions = revisions
        self.project = project
        self.region = region
        self._retrier = retrier
        self._sleep = sleep
        self._clock = clock
        # The last service read under each name: a write that follows a read (a plan, then its deploy) starts from
        # exactly what was read, etag included, without reading again.
        self._read: dict[str, run_v2.Service] = {}
        # What each revision doki makes records of who made it (set by deploy and release); None: only that doki made
        # it, the commit kept when the image is (scale, cors).
        self.provenance: Provenance | None = None

    def path(self, name: str) -> str:
        return f"projects/{self.project}/locations/{self.region}/services/{name}"

    def _call(self, fn: Callable[[], Any], *, action: str, resource: str, role: str = "roles/run.developer") -> Any:
        return call_google(self._retrier, fn, action=action, resource=resource, api="run", role=role)

    # Reading

    def get(self, name: str) -> LiveService | None:
        """The live service, or None when there is none yet."""
        service = self._get(name)
        return to_live(service) if service is not None else None

    def _get(self, name: str) -> run_v2.Service | None:
        from google.api_core import exceptions

        try:
            service: run_v2.Service = self._retrier.call(
                lambda: self._services.get_service(name=self.path(name), retry=no_library_retry())
            )
        except exceptions.NotFound:
            self._read.pop(name, None)
            return None
        except exceptions.GoogleAPICallError as exc:
            raise google_error(
                exc, action="reading", resource=self.path(name), api="run", role="roles/run.viewer"
            ) from None
        self._read[name] = service
        return service

    def _existing(self, name: str) -> run_v2.Service:
        service = self._get(name)
        if service is None:
            raise service_not_found(self.path(name))
        return service

    def is_public(self, name: str) -> bool:
        """Whether anyone may invoke the service (allUsers holds the invoker role)."""
        policy = self._call(
            lambda: self._services.get_iam_policy(request={"resource": self.path(name)}),
            action="reading the IAM policy of",
            resource=self.path(name),
            role="roles/run.viewer",
        )
        return any(b.role == INVOKER and PUBLIC in b.members for b in policy.bindings)

    def revisions(self, name: str, limit: int | None = None, *, live: LiveService | None = None) -> list[RevisionInfo]:
        """The service's revisions, newest first (the `limit` newest), with the traffic each serves now and what doki
        recorded of who made it; `live`: the service as the caller has just read it (else it is read here)."""
        import itertools

        if live is None:
            live = to_live(self._existing(name))
        # Cloud Run lists newest first, a page at a time (the pager follows next_page_token): only the pages that
        # hold the `limit` newest are read, and one revision more, the one made before the last shown.
        size = min(limit + 1, 100) if limit is not None else 100

        def listed_pages() -> list[run_v2.Revision]:
            pager = self._revisions.list_revisions(request={"parent": self.path(name), "page_size": size})
            return list(itertools.islice(pager, limit + 1) if limit is not None else pager)

        listed = self._call(
            listed_pages, action="listing the revisions of", resource=self.path(name), role="roles/run.viewer"
        )
        listed.sort(key=lambda r: (bool(r.create_time), r.create_time or datetime.min), reverse=True)
        shares = live.shares
        tags = live.tags()
        result = []
        for index, revision in enumerate(listed[:limit] if limit is not None else listed):
            short = _short(revision.name)
            ready_condition = next((c for c in revision.conditions if c.type_ == "Ready"), None)
            state = ready_condition.state.name if ready_condition is not None else ""
            reason = ""
            if ready_condition is not None and state == "CONDITION_FAILED":
                reason = (ready_condition.revision_reason or ready_condition.reason).name
            serving_container = ingress_container(revision.containers)
            image = serving_container.image if serving_container is not None else ""
            created = revision.create_time if revision.create_time else None
            before = _short(listed[index + 1].name) if index + 1 < len(listed) else ""
            result.append(
                RevisionInfo(
                    short,
                    created,
                    state == "CONDITION_SUCCEEDED",
                    ready_condition.message if ready_condition is not None else "",
                    image,
                    shares.get(short, 0),
                    tags.get(short, ()),
                    _settings(revision, serving_container),
                    state == "CONDITION_FAILED",
                    reason if reason not in ("COMMON_REASON_UNDEFINED", "REVISION_REASON_UNDEFINED") else "",
                    _provenance(revision.annotations, before),
                    _secret_refs(serving_container),
                    _plain_env(serving_container),
                )
            )
        return result

    # Writing

    def delete_revision(self, name: str, revision: str, timeout: float = 120.0) -> None:
        """Delete revision `revision` of the service, waited for; one already gone is no error. Cloud Run refuses one
        that traffic names (FAILED_PRECONDITION, passed on)."""
        from google.api_core import exceptions

        from doki_cli.gcp.operations import OperationTimeout, PollFailed, wait_for

        path = f"{self.path(name)}/revisions/{revision}"
        try:
            operation = self._retrier.call(lambda: self._revisions.delete_revision(name=path))
            wait_for(operation, self._retrier, timeout=timeout)
        except exceptions.NotFound:
            return
        except exceptions.GoogleAPICallError as exc:
            raise google_error(exc, action="deleting", resource=path, api="run", role="roles/run.developer") from None
        except PollFailed as failed:
            raise accepted(google_error(failed.cause, action="waiting for", resource=path, api="run")) from None
        except OperationTimeout:
            raise DokiError(
                Code.WAIT_TIMEOUT,
                f"{path} was not deleted after {timeout:.0f} s; the deletion goes on at Google",
                "`doki preview list` and `gcloud run revisions list` show what is left",
            ) from None

    def update(
        self,
        name: str,
        decide: Callable[[LiveService], Edit],
        *,
        on_progress: Callable[[str], None],
        timeout: float = DEFAULT_TIMEOUT,
        wait: bool = True,
    ) -> LiveService:
        """Read the service, ask `decide` what to change, write that back with the etag read; on a conflict, read
        again and ask again, so a check `decide` makes (a release lock, say) sees the latest state. Waits up to
        `timeout` seconds for Cloud Run to make the change; not at all when not `wait` (the service as read once
        Cloud Run accepted the write).

        A traffic-only edit writes only TRAFFIC_FIELDS, the template as read."""
        from google.api_core import exceptions
        from google.cloud import run_v2
        from google.protobuf import field_mask_pb2

        for _ in range(POLICY_ATTEMPTS):
            read = self._existing(name)
            edit = decide(to_live(read))
            # Edited as a copy: the read stays as read for a later write that starts from it, should this one fail.
            service = run_v2.Service.deserialize(run_v2.Service.serialize(read))
            apply_edit(service, edit)
            if not edit.keeps_template and makes_revision(service.template, read.template):
                stamp(service.template, self.provenance, after=read.latest_created_revision)
            mask = field_mask_pb2.FieldMask(paths=list(_kept_template_fields(edit))) if edit.keeps_template else None
            try:
                # The write finishes before a Ctrl-C takes effect: abandoned, it could land after our clean-up.
                operation = self._retrier.call(
                    partial(
                        uninterrupted,
                        partial(
                            self._services.update_service,
                            request=run_v2.UpdateServiceRequest(service=service, update_mask=mask),
                        ),
                    )
                )
            except exceptions.Aborted:
                continue  # changed by someone else since we read it
            except exceptions.GoogleAPICallError as exc:
                raise google_error(exc, action="updating", resource=self.path(name), api="run") from None
            if edit.traffic_only:
                what = f"traffic ({to_live(service).traffic_text})"
            elif edit.keeps_template:
                what = "the service's scaling"
            elif edit.staged is not None:
                what = f"revision {edit.staged.revision}"
            else:
                what = "the new revision"
            return self._wait(
                operation,
                name,
                on_progress,
                timeout,
                what=what,
                # Only a plain new revision is named once the operation shows it: the others are named already.
                before=None if edit.keeps_template or edit.staged is not None else read.latest_created_revision,
                moves_traffic_only=edit.keeps_template,
                wait=wait,
            )
        raise DokiError(
            Code.CONCURRENT_CHANGE,
            f"{self.path(name)} kept changing while doki updated it ({POLICY_ATTEMPTS} attempts)",
            "run the command again once other changes have settled",
        )

    def apply(
        self,
        name: str,
        spec: ServiceSpec,
        *,
        keep_env: Collection[str],
        live: LiveService | None,
        on_progress: Callable[[str], None],
        timeout: float = DEFAULT_TIMEOUT,
        wait: bool = True,
        new_revision: bool = False,
    ) -> LiveService:
        """Create the service (`live` None), or update `live` to `spec` with all traffic on the latest revision, the
        serving container's variables named in `keep_env` kept; wait until the operation ends. A failed revision
        raises, traffic untouched. An update carries `live`'s etag: a service changed since is not overwritten.

        `new_revision` makes a revision even when the template is the live one (whose revision never became Ready):
        Cloud Run makes none for an unchanged template. Pinned traffic moves to the new revision only at the wait's
        end, so `wait` False leaves the pin: the deploy command refuses --no-wait for a pinned service, from the
        same read, before anything is written."""
        from google.cloud import run_v2

        base = self._as_read(name, live) if live is not None else None
        service = to_service(spec, keep_env=keep_env, base=base)
        if new_revision:
            remake_revision(service)
        if base is None or makes_revision(service.template, base.template):
            stamp(service.template, self.provenance, after=base.latest_created_revision if base is not None else "")
        # Traffic pinned (by a rollback, or a release put back) stays pinned until the new revision is Ready:
        # "latest" means the latest Ready one, so a new revision that fails would hand the traffic to the very
        # revision the pin moved it away from.
        pinned = base is not None and any(t.percent and t.type_ != _latest_type() for t in base.traffic)
        if pinned and base is not None:
            service.traffic = list(base.traffic)
        service.name = self.path(name)
        request = run_v2.UpdateServiceRequest(service=service, allow_missing=True)
        operation = self._call(
            partial(uninterrupted, partial(self._services.update_service, request=request)),
            action="deploying",
            resource=self.path(name),
        )
        applied = self._wait(
            operation,
            name,
            on_progress,
            timeout,
            what="the new revision" if base is not None else "the service's first revision",
            before=base.latest_created_revision if base is not None else "",
            wait=wait,
        )
        if not pinned:
            return applied
        # Ready: the pin ends now, in a traffic-only update.
        return self.update(
            name, lambda now: Edit(traffic=to_latest(now.traffic)), on_progress=on_progress, timeout=timeout
        )

    def _as_read(self, name: str, live: LiveService) -> run_v2.Service:
        """The service exactly as `live` was read: from the last read when it is that one, else read again, and
        refused when it has changed since."""
        service = self._read.get(name)
        if service is None or service.etag != live.etag:
            service = self._get(name)
        if service is None:
            raise DokiError(
                Code.CONCURRENT_CHANGE,
                f"{self.path(name)} was deleted after doki read it to plan this change; the service was not written",
                "run the command again: it plans from what is live then",
            )
        if service.etag != live.etag:
            raise DokiError(
                Code.CONCURRENT_CHANGE,
                f"{self.path(name)} changed after doki read it to plan this change; the service was not written",
                "run the command again: it plans from what is live then",
            )
        return service

    def _wait(
        self,
        operation: Any,
        name: str,
        on_progress: Callable[[str], None],
        timeout: float,
        *,
        what: str,
        before: str | None,
        moves_traffic_only: bool = False,
        wait: bool = True,
    ) -> LiveService:
        """The service once `operation` is done. A traffic-only write is judged by where the traffic went: its
        operation also fails while the newest revision is not Ready (the service's Ready condition says so), though
        the traffic moved as asked.

        Progress names `what` is waited for (the revision, once the operation's service names a newer one than
        `before`), the condition pending and the time waited: on each change, and every HEARTBEAT_SECONDS."""
        from google.api_core import exceptions

        if not wait:
            # Accepted is all --no-wait asks for: the service as it reads now, the change under way at Google.
            on_progress(f"accepted by Cloud Run ({_operation_name(operation)}); not waiting for it")
            accepted_now = self._get(name)
            if accepted_now is None:  # a creation Cloud Run has not made readable yet
                raise DokiError(
                    Code.SERVICE_NOT_FOUND,
                    f"{self.path(name)} was accepted but cannot be read yet",
                    "`doki status` shows it once Cloud Run has made it",
                )
            live = to_live(accepted_now)
            if before is not None and live.latest_created == (_short(before) or None):
                # Cloud Run has not named the new revision yet (it makes it after accepting the write): the one read
                # is the previous, which --no-wait must not report as the one under way.
                live = replace(live, latest_created=None)
            return live
        started = self._clock()
        deadline = started + timeout
        delay = 0.5
        last = ""
        shown = started
        while True:
            try:
                done = self._retrier.call(partial(operation.done, retry=no_library_retry()))
            except exceptions.GoogleAPICallError as exc:
                error = accepted(google_error(exc, action="waiting for", resource=self.path(name), api="run"))
                error.hint = f"{error.hint}; `doki status` shows where it is"
                raise error from None
            if done:
                break
            waiting = f"waiting for {_waited_for(operation.metadata, before, what)}: {_progress(operation.metadata)}"
            now = self._clock()
            if waiting != last or now - shown >= HEARTBEAT_SECONDS:
                on_progress(f"{waiting} ({now - started:.0f} s)")
                last, shown = waiting, now
            if now > deadline:
                raise DokiError(
                    Code.WAIT_TIMEOUT,
                    f"{self.path(name)}: {waiting}, still, after {duration_text(timeout)}",
                    "the change goes on at Google: `doki status` shows where it is, `doki logs` the revision's output",
                )
            self._sleep(delay)
            delay = min(delay * 1.5, 5.0)
        error = operation.exception()
        if error is not None:
            service = self._get(name)
            if moves_traffic_only and service is not None and _routed_as_asked(to_live(service)):
                return to_live(service)
            condition = service.terminal_condition.message if service is not None else ""
            detail = getattr(error, "message", None) or str(error)
            reason = detail if not condition or condition in detail else f"{detail} ({condition})"
            serving = service is not None and bool(service.latest_ready_revision)
            where = (
                "traffic stays on the previous revision"
                if serving
                else "nothing serves yet: the service has no Ready revision"
            )
            if re.search(r"image .* not found", reason, re.IGNORECASE):
                # Said for every command that makes a revision (scale and cors too): only deploy takes --image.
                hint = (
                    "build and push the image first (`doki build --push`), or deploy one that is there "
                    f"(`doki deploy --image IMAGE`); {where}"
                )
            else:
                hint = f"{where}; `doki logs` shows the container's output"
            raise DokiError(Code.REVISION_NOT_READY, f"the new revision of {name} did not become ready: {reason}", hint)
        result: run_v2.Service = operation.result()
        return to_live(result)

    def set_public(self, name: str, public: bool) -> bool:
        """Add or remove the allUsers invoker binding (read-modify-write with the etag); True if it changed."""
        try:
            return edit_policy(
                self._services,
                self.path(name),
                lambda policy: set_member(policy, INVOKER, PUBLIC, present=public),
                retrier=self._retrier,
                api="run",
                admin_role="roles/run.admin",
            )
        except DokiError as err:
            if err.code != Code.ORG_POLICY_REFUSED:
                raise
            # Cloud Run's own way to a public service that names no principal: its invoker check off.
            raise DokiError(
                Code.PUBLIC_ACCESS_REFUSED,
                f"{name} is deployed but not public: the organisation refused allUsers as its invoker "
                f"({err.details.get('google', err.message)})",
                "set invoker_iam_check = false in doki.toml: doki then makes it public by turning off Cloud Run's "
                "invoker IAM check (as gcloud run services update --no-invoker-iam-check does), which that policy "
                "allows; or set allow_unauthenticated = false to keep it private",
            ) from None


def _operation_name(operation: Any) -> str:
    """The long-running operation's name, as `gcloud run operations describe` takes it; `operation` when unnamed."""
    name = getattr(getattr(operation, "operation", None), "name", "")
    return f"operation {name}" if name else "operation"


def _short(revision: str) -> str:
    return revision.rsplit("/", 1)[-1]


def _latest_type() -> int:
    from google.cloud import run_v2

    return run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST


def to_live(service: run_v2.Service) -> LiveService:
    """The service as doki's plain data."""
    from google.cloud import run_v2

    template = service.template
    container = ingress_container(template.containers) or run_v2.Container()
    env: dict[str, str] = {}
    secrets: dict[str, str] = {}
    foreign: dict[str, str] = {}
    own = f"projects/{service.name.split('/')[1]}/secrets/" if service.name.startswith("projects/") else ""
    for var in container.env:
        if var.value_source and var.value_source.secret_key_ref.secret:
            ref = var.value_source.secret_key_ref
            secrets[var.name] = f"{_secret_id(ref.secret)}:{ref.version or 'latest'}"
            if ref.secret.startswith("projects/") and not ref.secret.startswith(own):
                foreign[var.name] = ref.secret
        else:
            env[var.name] = var.value
    settings = _settings(template, container)
    ingress_name = service.ingress.name or ""
    ingress = {v: k for k, v in _INGRESS.items()}.get(ingress_name, ingress_name)
    spec = ServiceSpec(
        image=container.image,
        port=container.ports[0].container_port if container.ports else 8080,
        memory=settings.memory,
        cpu=settings.cpu,
        concurrency=settings.concurrency,
        timeout_seconds=settings.timeout_seconds,
        min_instances=settings.min_instances,
        max_instances=settings.max_instances,
        ingress=ingress,
        service_account=template.service_account or None,
        env=env,
        secrets=secrets,
        invoker_iam_check=not service.invoker_iam_disabled,
        settings=run_settings.read(service, container),
    )
    latest_ready = _short(service.latest_ready_revision) or None
    return LiveService(
        name=_short(service.name),
        spec=spec,
        uri=service.uri,
        etag=service.etag,
        generation=service.generation,
        updated=service.update_time if service.update_time else None,
        traffic=_targets(service),
        routed=tuple(
            Routed(_short(s.revision) or latest_ready or "", s.percent, s.tag, s.uri) for s in service.traffic_statuses
        ),
        annotations=dict(service.annotations),
        latest_ready=latest_ready,
        latest_created=_short(service.latest_created_revision) or None,
        ready=service.terminal_condition.state.name == "CONDITION_SUCCEEDED",
        message=service.terminal_condition.message,
        variables=tuple(var.name for var in container.env),
        kept=tuple(kept_settings(service)),
        foreign_secrets=foreign,
        cpu_always_allocated="resources" in container and not container.resources.cpu_idle,
        gen2=template.execution_environment == run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN2,
        sidecar_cpus=_sidecar_cpus(template.containers),
        service_min_instances=service.scaling.min_instance_count,
        service_max_instances=service.scaling.max_instance_count,
        sidecar_volumes=run_settings.sidecar_volumes(template, ingress_container(template.containers)),
    )


def _settings(
    revision: run_v2.Revision | run_v2.RevisionTemplate, container: run_v2.Container | None
) -> RevisionSettings:
    """A revision's (or the template's, for the next one) limits and scaling; the fields have one name in both."""
    limits = dict(container.resources.limits) if container is not None and container.resources else {}
    return RevisionSettings(
        cpu=limits.get("cpu", ""),
        memory=limits.get("memory", ""),
        concurrency=revision.max_instance_request_concurrency,
        timeout_seconds=int(revision.timeout.total_seconds()) if revision.timeout else 0,
        min_instances=revision.scaling.min_instance_count,
        max_instances=revision.scaling.max_instance_count,
    )


def _sidecar_cpus(containers: Sequence[run_v2.Container]) -> float:
    """What the containers other than the serving one request together; one CPU each that sets none (or that
    Cloud Run wrote in a form doki does not read)."""
    serving = _ingress_index(containers)
    counts = (cpu_count(c.resources.limits.get("cpu", "1")) for i, c in enumerate(containers) if i != serving)
    return sum(1.0 if count is None else count for count in counts)


def _routed_as_asked(live: LiveService) -> bool:
    """Whether Cloud Run routes every share of the traffic spec to its revision ("latest": the latest Ready one)."""
    asked: dict[str, int] = {}
    for target in live.traffic:
        revision = target.revision or live.latest_ready
        if target.percent and revision:
            asked[revision] = asked.get(revision, 0) + target.percent
    return bool(asked) and asked == live.shares


def _targets(service: run_v2.Service) -> tuple[Target, ...]:
    """The service's traffic spec as plain data, in its order."""
    latest = _latest_type()
    targets = [t for t in service.traffic if t.percent or t.tag]
    return tuple(Target(None if t.type_ == latest else t.revision, t.percent, t.tag) for t in targets)


def apply_edit(service: run_v2.Service, edit: Edit) -> None:
    """Make `edit` on `service` as read; every field it does not name stays as it is."""
    if edit.staged is not None:
        staged = to_service(edit.staged.spec, keep_env=edit.staged.keep_env, base=service)
        # Naming the revision lets a release route to it and tag it in the same write that creates it, so it never
        # serves a request before it has been checked.
        staged.template.revision = edit.staged.revision
        service.template = staged.template
        service.ingress = staged.ingress
        service.invoker_iam_disabled = staged.invoker_iam_disabled
    for name, value in edit.env.items():
        _set_env(service, name, value)
    for name, version in edit.secret_versions.items():
        _set_secret_version(service, name, version)
    if edit.scaling is not None:
        _set_scaling(service, edit.scaling)
    if not edit.keeps_template and edit.staged is None:
        service.template.revision = ""  # a new revision, named by Cloud Run
    if edit.new_revision:
        remake_revision(service)
    if edit.traffic is not None:
        _set_traffic(service, edit.traffic)
    for key, annotation in edit.annotations.items():
        if annotation is not None:
            service.annotations[key] = annotation
        elif key in service.annotations:
            del service.annotations[key]


def _set_traffic(service: run_v2.Service, targets: Sequence[Target]) -> None:
    from google.cloud import run_v2

    pinned = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
    service.traffic = [
        run_v2.TrafficTarget(type_=_latest_type(), percent=t.percent, tag=t.tag)
        if t.revision is None
        else run_v2.TrafficTarget(type_=pinned, revision=t.revision, percent=t.percent, tag=t.tag)
        for t in targets
    ]


def remake_revision(service: run_v2.Service) -> None:
    """Make Cloud Run create a revision although the template is the live one (whose revision never became Ready):
    it makes none for an unchanged template, so a fresh annotation changes it. The changed template cannot keep the
    failed revision's name (a release named it): Cloud Run refuses a different template under a taken name."""
    service.template.annotations[RETRY_ANNOTATION] = uuid.uuid4().hex[:12]
    service.template.revision = ""


def makes_revision(template: run_v2.RevisionTemplate, live: run_v2.RevisionTemplate) -> bool:
    """Whether writing `template` over the `live` one makes a new revision: it differs in more than its name and
    doki's record of who made it. A write retried after its answer was lost reads its own change back as live, and
    must not record itself again (a new `after` would make a second revision, or clash with a staged one's name)."""
    from google.cloud import run_v2

    def bare(of: run_v2.RevisionTemplate) -> bytes:
        copy = run_v2.RevisionTemplate.deserialize(run_v2.RevisionTemplate.serialize(of))
        copy.revision = ""
        for key in (AFTER, COMMAND, BY, FROM, COMMIT, COMMIT_IMAGE):
            copy.annotations.pop(key, None)
        return bytes(run_v2.RevisionTemplate.pb(copy).SerializeToString(deterministic=True))

    return bare(template) != bare(live) or (bool(template.revision) and template.revision != live.revision)


def stamp(template: run_v2.RevisionTemplate, provenance: Provenance | None, *, after: str) -> None:
    """Record on a template that makes a new revision who made it, how and from where (`doki_cli.model`), replacing
    what the template it came from said: that was another revision's."""
    annotations = template.annotations
    annotations[AFTER] = _short(after)
    for key in (COMMAND, BY, FROM):
        annotations.pop(key, None)
    serving = ingress_container(template.containers)
    image = serving.image if serving is not None else ""
    if provenance is not None:
        for key, value in ((COMMAND, provenance.command), (BY, provenance.by), (FROM, provenance.source)):
            if value:
                annotations[key] = value
    if provenance is not None and provenance.commit is not None:
        annotations[COMMIT], annotations[COMMIT_IMAGE] = provenance.commit, image
    elif annotations.get(COMMIT_IMAGE) != image:
        # The commit is kept only with the image it was recorded with (scale, cors): this one is another's.
        annotations.pop(COMMIT, None)
        annotations.pop(COMMIT_IMAGE, None)
    if not annotations.get(COMMIT):
        annotations.pop(COMMIT, None)
        annotations.pop(COMMIT_IMAGE, None)


def _provenance(annotations: Mapping[str, str], before: str) -> Provenance | None:
    """What doki recorded on a revision, when the revision is the one doki made: the one made after `before`."""
    if AFTER not in annotations or annotations[AFTER] != before:
        return None  # not doki's, or copied from doki's template by a later write (gcloud, the console)
    return Provenance(
        annotations.get(COMMAND, ""), annotations.get(COMMIT, ""), annotations.get(BY, ""), annotations.get(FROM, "")
    )


def ingress_container(containers: Sequence[run_v2.Container]) -> run_v2.Container | None:
    """The container that receives requests, which doki's settings apply to: the one with a port.

    Cloud Run lets exactly one container of several (the others are sidecars) declare a port, and gives the port to a
    lone container that declares none (https://cloud.google.com/run/docs/deploying#sidecars); gcloud's flags
    likewise apply to the container with a port."""
    index = _ingress_index(containers)
    return containers[index] if index is not None else None


def _ingress_index(containers: Sequence[run_v2.Container]) -> int | None:
    with_port = [index for index, container in enumerate(containers) if container.ports]
    if with_port:
        return with_port[0]
    return 0 if len(containers) == 1 else None


def _serving_container(service: run_v2.Service) -> run_v2.Container:
    container = ingress_container(service.template.containers)
    if container is None:
        raise DokiError(
            Code.NO_INGRESS_CONTAINER,
            f"{service.name} has {len(service.template.containers)} containers and none declares a port, so doki "
            "cannot tell which one serves",
            "give the serving container a port (gcloud run services update --container NAME --port 8080)",
        )
    return container


def _set_env(service: run_v2.Service, name: str, value: str) -> None:
    from google.cloud import run_v2

    container = _serving_container(service)
    for var in container.env:
        if var.name == name:
            var.value = value
            return
    container.env.append(run_v2.EnvVar(name=name, value=value))


def _secret_refs(container: run_v2.Container | None) -> dict[str, str]:
    """A container's secret variables: ENV_NAME -> "secret:version"."""
    if container is None:
        return {}
    refs = (var for var in container.env if var.value_source.secret_key_ref.secret)
    return {v.name: f"{v.value_source.secret_key_ref.secret}:{v.value_source.secret_key_ref.version}" for v in refs}


def _plain_env(container: run_v2.Container | None) -> dict[str, str]:
    """A container's plain variables, by name."""
    if container is None:
        return {}
    return {var.name: var.value for var in container.env if not var.value_source.secret_key_ref.secret}


def _set_secret_version(service: run_v2.Service, name: str, version: str) -> None:
    """Point the serving container's secret variable `name` at another version of the same secret."""
    for var in _serving_container(service).env:
        if var.name == name and var.value_source.secret_key_ref.secret:
            var.value_source.secret_key_ref.version = version
            return
    raise DokiError(
        Code.CONFIG_INVALID,
        f"{service.name} has no secret variable {name} to point at version {version}",
        "deploy it with the variable in [service.secrets] (`doki deploy`), then run the command again",
    )


def _kept_template_fields(edit: Edit) -> tuple[str, ...]:
    """What a write that keeps the template sends: the traffic fields, and the service-level scaling it changes."""
    changes_service = edit.scaling is not None and edit.scaling.changes_service
    return (*TRAFFIC_FIELDS, "scaling", "launch_stage") if changes_service else TRAFFIC_FIELDS


def _set_scaling(service: run_v2.Service, scaling: Scaling) -> None:
    # The service's own minimum and maximum (Service.scaling, as gcloud run services update --min and beta's --max
    # write them): shared among the revisions that take traffic, no new revision.
    if scaling.service_min_instances is not None:
        service.scaling.min_instance_count = scaling.service_min_instances
    if scaling.service_max_instances is not None:
        service.scaling.max_instance_count = scaling.service_max_instances
    from google.api import launch_stage_pb2

    stage = launch_stage_pb2.LaunchStage
    if service.scaling.max_instance_count and service.launch_stage not in (
        stage.PRELAUNCH,
        stage.EARLY_ACCESS,
        stage.ALPHA,
        stage.BETA,
    ):
        # A service-level maximum is a BETA feature of Cloud Run, refused on a service at GA: declared so, as gcloud's
        # beta track (the only one with --max) declares it (the emulator's SERVICE_MAX_FEATURE rule cites both).
        service.launch_stage = stage.BETA
    if not scaling.changes_template:
        return
    template = service.template
    if scaling.min_instances is not None:
        template.scaling.min_instance_count = scaling.min_instances
    if scaling.max_instances is not None:
        template.scaling.max_instance_count = scaling.max_instances
    if scaling.concurrency is not None:
        template.max_instance_request_concurrency = scaling.concurrency
    limits = _serving_container(service).resources.limits
    if scaling.memory is not None:
        limits["memory"] = scaling.memory
    if scaling.cpu is not None:
        limits["cpu"] = scaling.cpu


def _progress(metadata: Any) -> str:
    """The earliest condition Cloud Run has not met yet, as it names it, with what it means for people."""
    conditions = getattr(metadata, "conditions", None) or []
    # PENDING: not started yet; RECONCILING: under way (Condition.State in google/cloud/run/v2/condition.proto).
    pending = [c for c in conditions if c.state.name in ("CONDITION_PENDING", "CONDITION_RECONCILING")]
    if not pending:
        return "in progress"
    # The earliest stage first: traffic is routed to a revision only once it has started.
    first = min(pending, key=lambda c: list(_CONDITIONS).index(c.type_) if c.type_ in _CONDITIONS else len(_CONDITIONS))
    kind, message = str(first.type_), str(first.message)
    meaning = _CONDITIONS.get(kind)
    return kind + (f", {meaning}" if meaning else "") + (f" ({message})" if message else "")


# The service's conditions in the operation's metadata (Knative's, which Cloud Run reports), in the order they are
# met, and what each waits on.
_CONDITIONS = {
    "ConfigurationsReady": "the configuration is being applied",
    "RoutesReady": "traffic is being routed",
}


def _waited_for(metadata: Any, before: str | None, what: str) -> str:
    """The revision the operation made, once its service names one newer than `before`; else `what` (always, when
    `before` is None: `what` names it already)."""
    created = _short(getattr(metadata, "latest_created_revision", "") or "")
    if before is not None and created and created != _short(before):
        return f"revision {created}"
    return what


def _secret_id(secret: str) -> str:
    return secret.rsplit("/", 1)[-1]  # Cloud Run accepts a short id or projects/P/secrets/ID


def to_service(spec: ServiceSpec, *, keep_env: Collection[str], base: run_v2.Service | None) -> run_v2.Service:
    """`spec` as a `run_v2.Service`: the live one (`base`) with doki's fields set and every other field as it is.

    doki's fields are the serving container's image, port, cpu and memory limits and environment, the template's
    scaling, timeout, concurrency and runtime account, the ingress and the traffic, and the Cloud Run settings
    doki.toml declares (`run_settings`). Sidecars, annotations and each setting doki.toml does not declare stay as
    gcloud, the console or Terraform set them."""
    from google.cloud import run_v2

    service = run_v2.Service.deserialize(run_v2.Service.serialize(base)) if base is not None else run_v2.Service()
    template = service.template
    if base is not None:
        container = _serving_container(service)  # raises: several containers, none with a port
    else:
        # gcloud's defaults for a new service: CPU only while serving, and a boost while starting.
        template.containers = [
            run_v2.Container(resources=run_v2.ResourceRequirements(cpu_idle=True, startup_cpu_boost=True))
        ]
        container = template.containers[0]
    container.image = spec.image
    if container.ports:
        moved_from = container.ports[0].container_port
        container.ports[0].container_port = spec.port  # its name (http1 or h2c) stays
        probe = container.startup_probe
        if moved_from != spec.port and "tcp_socket" in probe and probe.tcp_socket.port == moved_from:
            # A TCP startup probe of the old port follows it, as with gcloud's --port (ContainerPortChange in
            # command_lib/run/config_changes.py): left behind, it would fail every new revision.
            probe.tcp_socket.port = spec.port
    else:
        container.ports = [run_v2.ContainerPort(name="http1", container_port=spec.port)]
    container.resources.limits["cpu"] = spec.cpu
    container.resources.limits["memory"] = spec.memory
    container.env = _merged_env(container.env, spec, set(keep_env))
    run_settings.write(spec.settings, service, container)
    template.scaling.min_instance_count = spec.min_instances
    template.scaling.max_instance_count = spec.max_instances
    template.timeout = timedelta(seconds=spec.timeout_seconds)
    template.max_instance_request_concurrency = spec.concurrency
    # None means the default account, which Cloud Run wrote into the live template: kept, the template is unchanged.
    if spec.service_account is not None or not is_compute_default(template.service_account):
        template.service_account = spec.service_account or ""
    # A changed template gets a new revision, which Cloud Run names; an unchanged one keeps its name (written back
    # without it, it would be a change, and a new revision of the same template). Any change under a kept name
    # would be refused (see TRAFFIC_FIELDS).
    if base is None or not _same_template(template, base.template):
        template.revision = ""
    service.ingress = getattr(run_v2.IngressTraffic, _INGRESS[spec.ingress])
    service.invoker_iam_disabled = not spec.invoker_iam_check
    _set_traffic(service, to_latest(_targets(base) if base is not None else ()))
    service.etag = base.etag if base is not None else ""
    return service


def _same_template(a: run_v2.RevisionTemplate, b: run_v2.RevisionTemplate) -> bool:
    from google.cloud import run_v2

    def text(template: run_v2.RevisionTemplate) -> bytes:
        return bytes(run_v2.RevisionTemplate.pb(template).SerializeToString(deterministic=True))

    return text(a) == text(b)


def _merged_env(live: Sequence[run_v2.EnvVar], spec: ServiceSpec, keep: set[str]) -> list[run_v2.EnvVar]:
    """The live variables in their order, doki.toml's values in place of its own, those in `keep` as they are (the
    rest pruned), then doki.toml's new ones: an unchanged deploy writes the template it read."""
    from google.cloud import run_v2

    def desired(name: str) -> run_v2.EnvVar:
        if name in spec.env:
            return run_v2.EnvVar(name=name, value=spec.env[name])
        secret, _, version = spec.secrets[name].partition(":")
        selector = run_v2.SecretKeySelector(secret=secret, version=version or "latest")
        return run_v2.EnvVar(name=name, value_source=run_v2.EnvVarSource(secret_key_ref=selector))

    managed = [*spec.env, *spec.secrets]
    merged = []
    for var in live:
        if var.name in spec.env or var.name in spec.secrets:
            merged.append(desired(var.name))
        elif var.name in keep:
            merged.append(run_v2.EnvVar.deserialize(run_v2.EnvVar.serialize(var)))
    present = {var.name for var in live}
    merged += [desired(name) for name in managed if name not in present]
    return merged


def _is_default_probe(container: run_v2.Container) -> bool:
    from google.cloud import run_v2

    port = container.ports[0].container_port if container.ports else 0
    default = run_v2.Probe(
        tcp_socket=run_v2.TCPSocketAction(port=port),
        timeout_seconds=DEFAULT_PROBE_SECONDS,
        period_seconds=DEFAULT_PROBE_SECONDS,
        failure_threshold=1,
    )
    return bool(container.startup_probe == default)


def _not_dokis(annotations: Iterable[str]) -> list[str]:
    return [key for key in annotations if not key.startswith(DOKI_ANNOTATIONS)]


def kept_settings(service: run_v2.Service) -> list[Kept]:
    """What the live service has that doki.toml does not manage and a deploy keeps, in a few words each (with the
    doki.toml key that would manage it, where one does)."""
    template = service.template
    index = _ingress_index(template.containers)
    kept = [
        Kept(f"sidecar {container.name or container.image}")
        for position, container in enumerate(template.containers)
        if position != index
    ]
    serving = template.containers[index] if index is not None else None
    kept += run_settings.kept(service, serving, serving is not None and _is_default_probe(serving))
    if _not_dokis(template.annotations):
        kept.append(Kept("revision annotations"))
    annotations = sorted(_not_dokis(service.annotations))
    service_settings = {
        "annotations " + ", ".join(annotations): bool(annotations),
        "service-level scaling": "scaling" in service,
        "binary authorization": "binary_authorization" in service,
        "custom audiences": bool(service.custom_audiences),
        "description": bool(service.description),
    }
    kept += [Kept(label) for label, present in service_settings.items() if present]
    return kept
