"""Cloud Run and Secret Manager in memory, at the level of the deploy core's ports (`doki_cli/deploy/ports.py`).

`FakeCloudRun` answers as the adapter `doki_cli.gcp.run.CloudRun` does over the emulator, as far as the planner, the
executor and the release can observe: services are `LiveService`s with an etag and a generation that change with
each write that changes something; `update` reads, asks `decide`, and writes back guarded by the etag it read
(someone else's write in between, `meanwhile`, makes it read and decide again, `POLICY_ATTEMPTS` times); an `Edit`
means what `doki_cli.gcp.run.apply_edit` makes of it (traffic and annotations alone make no revision; variables,
scaling, a staged revision or `new_revision` make one; a staged revision gets its name); `apply` writes a spec as
`doki_cli.gcp.run.to_service` does (doki's fields set, variables in `keep_env` kept and the others pruned, the
revision name kept for an unchanged template, traffic to latest unless pinned, then unpinned once Ready). A template
that changed makes a revision, Ready unless the test asked for a failure (`fail_next_revision`), which raises
`revision_not_ready` with the adapter's words and leaves the traffic where Cloud Run leaves it. `writes` logs every
write that landed; `FakeSecretManager.granted` every grant.

Where it simplifies:
- Cloud Run's operations are done at once: no progress is reported (`on_progress` is never called) and nothing
  times out.
- A revision checks nothing it runs with (image, secrets, runtime account): it fails only when the test says so.
- The template is doki's fields, the serving container's variables in order, the template's annotations and the
  revision name. Settings made outside doki.toml are not modelled except CPU always allocated, given when a service
  is added (and then kept, as a deploy keeps it); there are no sidecars, probes or other projects' secrets.
- A service created without a runtime account keeps none: Cloud Run would write the Compute Engine default account
  in, which the planner reads as no change either way.
- URLs are made up (`https://NAME-h4sh-uc.a.run.app`, `https://TAG---NAME-h4sh-uc.a.run.app`), times count seconds
  from a fixed date, and a Google refusal (a revision name taken, traffic to a revision that is not there) raises the
  DokiError code the adapter gives it with a message of the double's own.
- Secret Manager has only what the planner and grants read: versions by state, and who may read each secret.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta

from doki_cli.config import is_compute_default
from doki_cli.errors import Code, DokiError, service_not_found
from doki_cli.gcp.iam import POLICY_ATTEMPTS
from doki_cli.gcp.run import RETRY_ANNOTATION
from doki_cli.gcp.secretmanager import VersionInfo
from doki_cli.model import (
    NO_PROBE,
    Edit,
    LiveService,
    Probe,
    RevisionInfo,
    RevisionSettings,
    Routed,
    RunSettings,
    Scaling,
    ServiceSpec,
    Target,
    Vpc,
    to_latest,
)
from doki_cli.waiting import DEFAULT_TIMEOUT

# What a service doki (or gcloud) creates has of the settings doki.toml may declare, as the adapter reads it: CPU only
# while serving with a boost at start, Cloud Run's default TCP startup probe, nothing else.
NEW_SERVICE_SETTINGS = RunSettings(
    cpu_idle=True,
    startup_cpu_boost=True,
    execution_environment="default",
    session_affinity=False,
    labels={},
    vpc=Vpc(),
    cloudsql_instances=(),
    volumes=(),
    startup_probe=Probe("tcp", timeout_seconds=240, period_seconds=240, failure_threshold=1),
    liveness_probe=NO_PROBE,
)

# Where the double's clock starts: revisions and updates are this plus a second per event, in order.
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Variable:
    """One variable of the serving container: a plain value, or a secret's "id:version"."""

    name: str
    value: str
    secret: bool = False


@dataclass(frozen=True)
class Template:
    """What a revision is made from. Two equal templates are one revision; a changed one is a new revision."""

    image: str
    port: int
    memory: str
    cpu: str
    concurrency: int
    timeout_seconds: int
    min_instances: int
    max_instances: int
    service_account: str | None
    variables: tuple[Variable, ...]
    annotations: tuple[tuple[str, str], ...] = ()  # sorted by key
    revision: str = ""  # "": Cloud Run names the revision
    # The Cloud Run settings doki.toml may declare, every one with a value (labels included: the fake keeps the
    # service's with its template, as gcloud copies them there).
    run_settings: RunSettings = field(default_factory=lambda: NEW_SERVICE_SETTINGS)

    @property
    def settings(self) -> RevisionSettings:
        return RevisionSettings(
            self.cpu,
            self.memory,
            self.concurrency,
            self.timeout_seconds,
            self.min_instances,
            self.max_instances,
        )


@dataclass(frozen=True)
class Write:
    """One write that landed on a service, as the deploy core made it through the port."""

    call: str  # update, apply or set_public
    service: str
    edit: Edit | None = None  # update: what `decide` answered on the read that was written back
    spec: ServiceSpec | None = None  # apply
    keep_env: tuple[str, ...] = ()  # apply
    new_revision: bool = False  # apply
    public: bool | None = None  # set_public


@dataclass
class _Revision:
    name: str
    service: str
    template: Template
    created: datetime
    ready: bool
    message: str  # its Ready condition's: why it is not ready, "" once it is


@dataclass
class _Service:
    name: str
    template: Template
    ingress: str
    invoker_iam_check: bool
    traffic: tuple[Target, ...]
    annotations: dict[str, str]
    etag: str
    generation: int
    updated: datetime
    cpu_always_allocated: bool
    latest_created: str = ""
    latest_ready: str | None = None
    routed: tuple[Routed, ...] = ()
    message: str = ""  # the terminal condition's: "" when Ready
    public: bool = False  # allUsers holds the invoker role


class FakeCloudRun:
    """One project and region of Cloud Run in memory; see the module's docstring for what it answers and how."""

    def __init__(self, project: str = "doki-test", region: str = "us-central1") -> None:
        self.project = project
        self.region = region
        self.endpoint = "the in-memory double"
        self.writes: list[Write] = []
        self._services: dict[str, _Service] = {}
        self._revisions: dict[str, _Revision] = {}
        self._failures: list[str] = []
        self._time_outs = 0
        # The --timeout each update and apply was given, in order: what a command passed down.
        self.timeouts: list[float] = []
        self._meanwhile: list[Callable[[], None]] = []
        self._elsewhere = False  # writes made now are someone else's: not logged
        self._events = 0

    # What a test sets up

    def add_service(
        self, name: str, spec: ServiceSpec, *, public: bool = True, cpu_always_allocated: bool = False
    ) -> LiveService:
        """A service deployed before the test (not logged): one Ready revision of `spec` serves all traffic."""
        self._land(
            name,
            _template(spec, keep_env=(), base=None),
            ingress=spec.ingress,
            invoker_iam_check=spec.invoker_iam_check,
            traffic=(Target(None, 100),),
            annotations={},
            traffic_only=False,
            cpu_always_allocated=cpu_always_allocated,
            write=None,
        )
        self._services[name].public = public
        return self._live(self._services[name])

    def fail_next_revision(self, reason: str) -> None:
        """The next revision made (of any service) never becomes Ready, for `reason` (a container's exit, say)."""
        self._failures.append(reason)

    def time_out_next_write(self) -> None:
        """The next update or apply lands, as Cloud Run accepted it, but its wait runs out before the operation ends
        (wait_timeout, as the adapter raises it): what a --timeout shorter than Cloud Run's work meets."""
        self._time_outs += 1

    def _waited(self, name: str, timeout: float, landed: LiveService) -> LiveService:
        self.timeouts.append(timeout)
        if not self._time_outs:
            return landed
        self._time_outs -= 1
        raise DokiError(
            Code.WAIT_TIMEOUT,
            f"{self.path(name)}: waiting for the change, still, after {timeout:.0f} s",
            "the change goes on at Google: `doki status` shows where it is",
        )

    def meanwhile(self, change: Callable[[], None]) -> None:
        """`change` (someone else's write) lands after the next `update` has read and decided, before its write."""
        self._meanwhile.append(change)

    @contextmanager
    def by_someone_else(self) -> Iterator[None]:
        """Writes made inside are another client's (gcloud, the console, another release): not in `writes`."""
        before, self._elsewhere = self._elsewhere, True
        try:
            yield
        finally:
            self._elsewhere = before

    # The port: reading

    def path(self, name: str) -> str:
        return f"projects/{self.project}/locations/{self.region}/services/{name}"

    def get(self, name: str) -> LiveService | None:
        service = self._services.get(name)
        return self._live(service) if service is not None else None

    def revisions(self, name: str) -> list[RevisionInfo]:
        live = self._live(self._existing(name))
        shares, tags = live.shares, live.tags()
        mine = [r for r in self._revisions.values() if r.service == name]
        return [
            RevisionInfo(
                r.name,
                r.created,
                r.ready,
                r.message,
                r.template.image,
                shares.get(r.name, 0),
                tags.get(r.name, ()),
                r.template.settings,
                failed=not r.ready,
                secrets={v.name: v.value for v in r.template.variables if v.secret},
                env={v.name: v.value for v in r.template.variables if not v.secret},
            )
            for r in sorted(mine, key=lambda r: r.created, reverse=True)
        ]

    def is_public(self, name: str) -> bool:
        return self._existing(name).public

    def delete_revision(self, name: str, revision: str) -> None:
        """Delete a revision: refused (the adapter's words aside) while the traffic names it, as Cloud Run does."""
        service = self._existing(name)
        if any(t.revision == revision for t in service.traffic) or any(r.revision == revision for r in service.routed):
            raise DokiError(Code.GOOGLE_ERROR, f"Revision '{revision}' cannot be deleted: it serves traffic", "move it")
        self._revisions.pop(revision, None)
        self._log(Write("delete_revision", name))

    def variable(self, revision: str, name: str) -> str:
        """What a revision's variable holds: its value, or its secret's "id:version" (what a test checks)."""
        return next(v.value for v in self._revisions[revision].template.variables if v.name == name)

    # The port: writing

    def set_public(self, name: str, public: bool) -> bool:
        service = self._existing(name)
        changed = service.public != public
        service.public = public
        self._log(Write("set_public", name, public=public))
        return changed

    def update(
        self,
        name: str,
        decide: Callable[[LiveService], Edit],
        *,
        on_progress: Callable[[str], None],
        timeout: float = DEFAULT_TIMEOUT,
        wait: bool = True,
    ) -> LiveService:
        # A write lands at once here: nothing to wait for, so no timeout to run out.
        for _ in range(POLICY_ATTEMPTS):
            read = self._existing(name)
            etag = read.etag
            edit = decide(self._live(read))
            while self._meanwhile:
                with self.by_someone_else():
                    self._meanwhile.pop(0)()
            if self._existing(name).etag != etag:
                continue  # Cloud Run refuses the write (ABORTED): read again, decide again
            return self._waited(name, timeout, self._write_edit(read, edit, write=Write("update", name, edit=edit)))
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
        base = self._as_read(name, live) if live is not None else None
        template = _template(spec, keep_env=keep_env, base=base.template if base is not None else None)
        if new_revision:
            template = _remade(template)
        # As the adapter: traffic a rollback or a put-back pinned stays pinned until the new revision is Ready.
        pinned = base is not None and any(t.percent and t.revision is not None for t in base.traffic)
        before = base.traffic if base is not None else ()
        applied = self._land(
            name,
            template,
            ingress=spec.ingress,
            invoker_iam_check=spec.invoker_iam_check,
            traffic=before if pinned else to_latest(before),
            annotations=dict(base.annotations) if base is not None else {},
            traffic_only=False,
            cpu_always_allocated=base.cpu_always_allocated if base is not None else False,
            write=Write("apply", name, spec=spec, keep_env=tuple(keep_env), new_revision=new_revision),
        )
        applied = self._waited(name, timeout, applied)
        if not pinned:
            return applied
        # Ready: the pin ends now, in a traffic-only write of the same call.
        return self._write_edit(self._existing(name), Edit(traffic=to_latest(applied.traffic)), write=None)

    # Cloud Run's side

    def _existing(self, name: str) -> _Service:
        service = self._services.get(name)
        if service is None:
            raise service_not_found(self.path(name))
        return service

    def _as_read(self, name: str, live: LiveService) -> _Service:
        """The service as `live` was read; refused, as the adapter refuses it, once it has changed or gone since."""
        service = self._services.get(name)
        if service is None or service.etag != live.etag:
            what = "was deleted" if service is None else "changed"
            raise DokiError(
                Code.CONCURRENT_CHANGE,
                f"{self.path(name)} {what} after doki read it to plan this change; the service was not written",
                "run the command again: it plans from what is live then",
            )
        return service

    def _write_edit(self, read: _Service, edit: Edit, *, write: Write | None) -> LiveService:
        """`edit` made on the service as read (as `doki_cli.gcp.run.apply_edit` makes it), then written."""
        template = read.template
        ingress, invoker = read.ingress, read.invoker_iam_check
        if edit.staged is not None:
            staged = _template(edit.staged.spec, keep_env=edit.staged.keep_env, base=template)
            template = replace(staged, revision=edit.staged.revision)
            ingress, invoker = edit.staged.spec.ingress, edit.staged.spec.invoker_iam_check
        for name, value in edit.env.items():
            template = _with_env(template, name, value)
        for name, version in edit.secret_versions.items():
            template = _with_secret_version(template, name, version)
        if edit.scaling is not None:
            template = _scaled(template, edit.scaling)
        if not edit.keeps_template and edit.staged is None:
            template = replace(template, revision="")  # a new revision, named by Cloud Run
        if edit.new_revision:
            template = _remade(template)
        annotations = dict(read.annotations)
        for key, annotation in edit.annotations.items():
            if annotation is not None:
                annotations[key] = annotation
            else:
                annotations.pop(key, None)
        return self._land(
            read.name,
            template,
            ingress=ingress,
            invoker_iam_check=invoker,
            traffic=edit.traffic if edit.traffic is not None else read.traffic,
            annotations=annotations,
            traffic_only=edit.traffic_only,
            cpu_always_allocated=read.cpu_always_allocated,
            write=write,
        )

    def _land(
        self,
        name: str,
        template: Template,
        *,
        ingress: str,
        invoker_iam_check: bool,
        traffic: tuple[Target, ...],
        annotations: dict[str, str],
        traffic_only: bool,
        cpu_always_allocated: bool,
        write: Write | None,
    ) -> LiveService:
        """What Cloud Run does with a written service (`write` logged once it is accepted; None: not a call of the
        port's): a new revision when the template changed, a new etag and generation when anything did, the traffic
        routed where it can be; the adapter's answer once done."""
        # As the adapter reads the traffic spec back: untagged targets with no share are not kept.
        traffic = tuple(t for t in traffic if t.percent or t.tag)
        service = self._services.get(name)
        template_changed = service is None or template != service.template
        if template_changed and template.revision in self._revisions:
            raise DokiError(
                Code.REVISION_CONFLICT,
                f"updating {self.path(name)}: Google refused it: Revision named '{template.revision}' with different "
                "configuration already exists.",
                "the live template no longer matches the revision it is named after",
            )
        made = template.revision if template_changed else ""
        for target in traffic:
            if target.revision is not None and target.revision != made and target.revision not in self._revisions:
                raise DokiError(
                    Code.INVALID_ARGUMENT,
                    f"updating {self.path(name)}: Google refused it: Revision '{target.revision}' does not exist",
                    "fix the value named",
                )
        if write is not None:
            self._log(write)
        if service is None:
            service = _Service(
                name, template, ingress, invoker_iam_check, traffic, annotations, "", 0, self._tick(), False
            )
            self._services[name] = service
        written = (template, ingress, invoker_iam_check, traffic, annotations, cpu_always_allocated)
        now = (
            service.template,
            service.ingress,
            service.invoker_iam_check,
            service.traffic,
            service.annotations,
            service.cpu_always_allocated,
        )
        if template_changed or written != now:
            service.template, service.ingress, service.invoker_iam_check = template, ingress, invoker_iam_check
            service.traffic, service.annotations = traffic, annotations
            service.cpu_always_allocated = cpu_always_allocated
            service.generation += 1
            service.etag = uuid.uuid4().hex
            service.updated = self._tick()
        if template_changed:
            self._new_revision(service)
        failure = self._reconcile(service)
        live = self._live(service)
        if failure is None or (traffic_only and _routed_as_asked(live)):
            # A traffic-only write is judged by where the traffic went (see CloudRun._wait).
            return live
        where = (
            "traffic stays on the previous revision"
            if service.latest_ready
            else "nothing serves yet: the service has no Ready revision"
        )
        raise DokiError(
            Code.REVISION_NOT_READY,
            f"the new revision of {name} did not become ready: {failure}",
            f"{where}; `doki logs` shows the container's output",
        )

    def _new_revision(self, service: _Service) -> None:
        count = sum(1 for r in self._revisions.values() if r.service == service.name) + 1
        name = service.template.revision or f"{service.name}-{count:05d}-{chr(ord('a') + (count - 1) % 26) * 3}"
        failure = self._failures.pop(0) if self._failures else None
        message = f"Revision '{name}' is not ready and cannot serve traffic. {failure}" if failure is not None else ""
        self._revisions[name] = _Revision(name, service.name, service.template, self._tick(), failure is None, message)
        service.latest_created = name
        if failure is None:
            service.latest_ready = name

    def _reconcile(self, service: _Service) -> str | None:
        """Route the traffic spec (all of it, or none: a target whose revision is not Ready keeps the traffic where
        it was); the terminal condition's failure, or None once the service is Ready."""
        routed = []
        failure = None
        for target in service.traffic:
            revision = self._revisions.get(target.revision or service.latest_ready or service.latest_created)
            if revision is None or not revision.ready:
                failure = failure or (revision.message if revision else "No revision is ready to serve traffic.")
                continue
            uri = _uri(service.name, target.tag) if target.tag else ""
            routed.append(Routed(revision.name, target.percent, target.tag, uri))
        if failure is None:
            service.routed = tuple(routed)
        latest = self._revisions[service.latest_created]
        failure = (latest.message if not latest.ready else None) or failure
        service.message = failure or ""
        return failure

    def _live(self, service: _Service) -> LiveService:
        template = service.template
        spec = ServiceSpec(
            image=template.image,
            port=template.port,
            memory=template.memory,
            cpu=template.cpu,
            concurrency=template.concurrency,
            timeout_seconds=template.timeout_seconds,
            min_instances=template.min_instances,
            max_instances=template.max_instances,
            ingress=service.ingress,
            service_account=template.service_account,
            env={v.name: v.value for v in template.variables if not v.secret},
            secrets={v.name: v.value for v in template.variables if v.secret},
            invoker_iam_check=service.invoker_iam_check,
            settings=template.run_settings,
        )
        return LiveService(
            name=service.name,
            spec=spec,
            uri=_uri(service.name),
            etag=service.etag,
            generation=service.generation,
            updated=service.updated,
            traffic=service.traffic,
            routed=service.routed,
            annotations=dict(service.annotations),
            latest_ready=service.latest_ready,
            latest_created=service.latest_created or None,
            ready=not service.message,
            message=service.message,
            variables=tuple(v.name for v in template.variables),
            cpu_always_allocated=service.cpu_always_allocated,
        )

    def _log(self, write: Write) -> None:
        if not self._elsewhere:
            self.writes.append(write)

    def now(self) -> datetime:
        """A moment on this double's timeline, after every one before (a FakeSecretManager's `clock`)."""
        return self._tick()

    def _tick(self) -> datetime:
        self._events += 1
        return EPOCH + timedelta(seconds=self._events)


def _uri(service: str, tag: str = "") -> str:
    return f"https://{tag + '---' if tag else ''}{service}-h4sh-uc.a.run.app"


def _routed_as_asked(live: LiveService) -> bool:
    """Whether every share of the traffic spec is routed to its revision (as `doki_cli.gcp.run` judges it)."""
    asked: dict[str, int] = {}
    for target in live.traffic:
        revision = target.revision or live.latest_ready
        if target.percent and revision:
            asked[revision] = asked.get(revision, 0) + target.percent
    return bool(asked) and asked == live.shares


def _template(spec: ServiceSpec, *, keep_env: Collection[str], base: Template | None) -> Template:
    """`spec` as a template, onto `base` as `doki_cli.gcp.run.to_service` writes it: doki's fields set, the variables
    merged, an unchanged template keeping its revision name (and its annotations, a retry's included)."""
    # None names the default account, which Cloud Run wrote into the live template: kept, the template is unchanged.
    keeps_default = base is not None and spec.service_account is None and is_compute_default(base.service_account)
    template = Template(
        image=spec.image,
        port=spec.port,
        memory=spec.memory,
        cpu=spec.cpu,
        concurrency=spec.concurrency,
        timeout_seconds=spec.timeout_seconds,
        min_instances=spec.min_instances,
        max_instances=spec.max_instances,
        service_account=base.service_account if base is not None and keeps_default else spec.service_account,
        variables=_merged(base.variables if base is not None else (), spec, set(keep_env)),
        annotations=base.annotations if base is not None else (),
        revision=base.revision if base is not None else "",
        run_settings=replace(
            base.run_settings if base is not None else NEW_SERVICE_SETTINGS, **spec.settings.declared()
        ),
    )
    return template if template == base else replace(template, revision="")


def _merged(live: tuple[Variable, ...], spec: ServiceSpec, keep: set[str]) -> tuple[Variable, ...]:
    """The live variables in their order, doki.toml's values in place of its own, those in `keep` as they are (the
    rest pruned), then doki.toml's new ones."""

    def desired(name: str) -> Variable:
        if name in spec.env:
            return Variable(name, spec.env[name])
        secret, _, version = spec.secrets[name].partition(":")
        return Variable(name, f"{secret}:{version or 'latest'}", secret=True)

    merged = [
        desired(v.name) if v.name in spec.env or v.name in spec.secrets else v
        for v in live
        if v.name in spec.env or v.name in spec.secrets or v.name in keep
    ]
    present = {v.name for v in live}
    merged += [desired(name) for name in [*spec.env, *spec.secrets] if name not in present]
    return tuple(merged)


def _with_secret_version(template: Template, name: str, version: str) -> Template:
    """The secret variable `name` reading another version of its secret."""
    variables = tuple(
        replace(v, value=f"{v.value.rpartition(':')[0]}:{version}") if v.name == name and v.secret else v
        for v in template.variables
    )
    if variables == template.variables and not any(v.name == name and v.secret for v in variables):
        raise DokiError(Code.CONFIG_INVALID, f"no secret variable {name}", "deploy it first")
    return replace(template, variables=variables)


def _with_env(template: Template, name: str, value: str) -> Template:
    """A plain variable set (one that was a secret becomes plain, as a value replaces a value source) or added."""
    variable = Variable(name, value)
    names = [v.name for v in template.variables]
    if name in names:
        variables = tuple(variable if v.name == name else v for v in template.variables)
    else:
        variables = (*template.variables, variable)
    return replace(template, variables=variables)


def _scaled(template: Template, scaling: Scaling) -> Template:
    """The values `scaling` gives (its fields are the template's of the same name); None keeps one."""
    return replace(template, **{key: value for key, value in asdict(scaling).items() if value is not None})


def _remade(template: Template) -> Template:
    """A revision of an unchanged template, as `doki_cli.gcp.run.remake_revision` makes one: a fresh annotation."""
    annotations = dict(template.annotations) | {RETRY_ANNOTATION: uuid.uuid4().hex[:12]}
    return replace(template, annotations=tuple(sorted(annotations.items())), revision="")


@dataclass
class _Secret:
    states: list[str]  # by version number from 1: enabled, disabled or destroyed
    readers: list[str] = field(default_factory=list)
    values: list[bytes | None] = field(default_factory=list)  # by version, for those added with `add_version`
    created: list[datetime] = field(default_factory=list)


class FakeSecretManager:
    """One project's Secret Manager in memory: secrets, their versions' states and values, and who may read them.

    Versions are made on `clock` (a FakeCloudRun's, so their times and its revisions' are on one timeline); `access`
    refuses a version that is not enabled, as Google does (FAILED_PRECONDITION, which the adapter passes on)."""

    def __init__(self, project: str = "doki-test", clock: Callable[[], datetime] = lambda: EPOCH) -> None:
        self.project = project
        self.granted: list[tuple[str, str]] = []  # (secret, member), each grant that changed a policy
        self._secrets: dict[str, _Secret] = {}
        self._clock = clock

    def add(self, secret_id: str, *states: str, readers: Collection[str] = ()) -> None:
        """A secret with versions in these states (1 first), readable by `readers`."""
        self._secrets[secret_id] = _Secret(list(states), list(readers))

    def add_version(self, secret_id: str, data: bytes) -> int:
        """`data` as the secret's newest version (the secret made if need be); its number."""
        secret = self._secrets.setdefault(secret_id, _Secret([]))
        secret.values += [None] * (len(secret.states) - len(secret.values)) + [data]
        secret.created += [EPOCH] * (len(secret.states) - len(secret.created)) + [self._clock()]
        secret.states.append("enabled")
        return len(secret.states)

    def versions(self, secret_id: str) -> list[VersionInfo]:
        secret = self._secrets.get(secret_id)
        if secret is None:
            return []
        created = secret.created + [EPOCH] * (len(secret.states) - len(secret.created))
        listed = [VersionInfo(n, created[n - 1], state.upper()) for n, state in enumerate(secret.states, start=1)]
        return listed[::-1]

    def access(self, secret_id: str, version: str = "latest") -> bytes:
        resolved = self.resolve(secret_id, version)
        name = f"projects/{self.project}/secrets/{secret_id}/versions/{version}"
        if resolved is None:
            raise DokiError(Code.NOT_FOUND, f"reading {name}: Google has no such resource", "check the name")
        number, state = resolved
        values = self._secrets[secret_id].values
        value = values[number - 1] if number <= len(values) else None
        if state != "enabled" or value is None:
            raise DokiError(Code.GOOGLE_ERROR, f"reading {name}: the version is {state.upper()}", "enable it")
        return value

    def value(self, secret_id: str, number: int) -> bytes | None:
        """What version `number` holds, whatever its state: what a test looks at, and no client could."""
        values = self._existing(secret_id).values
        return values[number - 1] if number <= len(values) else None

    def disable(self, secret_id: str, number: int) -> None:
        secret = self._existing(secret_id)
        if secret.states[number - 1] == "destroyed":
            raise DokiError(Code.GOOGLE_ERROR, f"version {number} of {secret_id} is destroyed", "leave it")
        secret.states[number - 1] = "disabled"

    def exists(self, secret_id: str) -> bool:
        return secret_id in self._secrets

    def resolve(self, secret_id: str, version: str) -> tuple[int, str] | None:
        secret = self._secrets.get(secret_id)
        if secret is None or not secret.states:
            return None
        number = len(secret.states) if version == "latest" else int(version) if version.isdigit() else 0
        return (number, secret.states[number - 1]) if 1 <= number <= len(secret.states) else None

    def is_granted(self, secret_id: str, member: str) -> bool:
        return member in self.members(secret_id)

    def members(self, secret_id: str) -> list[str]:
        return list(self._existing(secret_id).readers)

    def grant(self, secret_id: str, member: str) -> bool:
        secret = self._existing(secret_id)
        if member in secret.readers:
            return False
        secret.readers.append(member)
        self.granted.append((secret_id, member))
        return True

    def _existing(self, secret_id: str) -> _Secret:
        secret = self._secrets.get(secret_id)
        if secret is None:
            raise DokiError(
                Code.NOT_FOUND,
                f"reading the IAM policy of projects/{self.project}/secrets/{secret_id}: Google has no such resource",
                "check the name",
            )
        return secret
