"""The planner: reads the live service and says what a change would do to it. It only reads.

Two kinds of plan, both plain data. A `Plan` is a deploy's: the service as doki.toml describes it (a release stages
the same). An `EditPlan` is one change to the live service that doki.toml does not drive: the origins (`doki cors`),
scaling (`doki scale`), where traffic goes (`doki rollback`). The executor applies either; a dry run only displays
it. An empty plan means the live service already is what was asked, and the command then makes no mutating call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from doki_cli.config import (
    GEN2_VOLUMES,
    RANGES,
    SecretRef,
    ServiceConfig,
    account_project,
    is_compute_default,
    kept_setting_problems,
    resource_problems,
)
from doki_cli.deploy import traffic
from doki_cli.deploy.cost import Cost, Sizing, priced
from doki_cli.deploy.lock import LOCK, Lock, ensure_ours
from doki_cli.deploy.ports import RunPort, SecretsPort
from doki_cli.errors import Code, DokiError, service_not_found
from doki_cli.model import (
    CHECKS_FAILED,
    Edit,
    LiveService,
    RevisionInfo,
    RunPrices,
    Scaling,
    ServiceSpec,
    Target,
    pinned,
    setting_text,
)

REDIRECT_ENV = "GOOGLE_REDIRECT_URI"
REDIRECT_PATH = "/auth/google/callback"
FIELDS = (
    ("image", "image"),
    ("port", "port"),
    ("memory", "memory"),
    ("cpu", "cpu"),
    ("concurrency", "concurrency"),
    ("timeout_seconds", "timeout"),
    ("min_instances", "min instances"),
    ("max_instances", "max instances"),
    ("ingress", "ingress"),
    ("service_account", "service account"),
)


@dataclass(frozen=True)
class Change:
    what: str
    before: str | None  # None: added
    after: str | None  # None: removed


@dataclass(frozen=True)
class Plan:
    service: str
    path: str
    desired: ServiceSpec
    live: LiveService | None  # what the update starts from: every field doki does not manage survives it
    keep_env: tuple[str, ...]  # live variables doki.toml does not declare, kept unless --prune
    changes: list[Change] = field(default_factory=list)
    unmanaged: list[str] = field(default_factory=list)
    prune: bool = False
    public: bool = True
    grants: list[str] = field(default_factory=list)  # secrets the runtime account cannot read yet
    member: str | None = None
    set_redirect: bool = False  # first deploy: GOOGLE_REDIRECT_URI follows from the URL Cloud Run assigns
    skipped_checks: list[str] = field(default_factory=list)  # what --skip-checks let through (see preflight)
    warnings: list[str] = field(default_factory=list)  # what may keep the new revision from starting
    endpoint: str = "Google"  # or the emulator at host:port
    # The new revision would be the failed one again: its image and every other setting unchanged.
    repeats_failure: bool = False
    cost: Cost | None = None  # what the change does to the bill (doki_cli.deploy.cost), when it changes it

    @property
    def creates(self) -> bool:
        return self.live is None

    @property
    def kept(self) -> list[str]:
        """What the live service has that doki.toml does not manage, which the deploy keeps as it is."""
        declared = self.desired.settings.declared()
        return [str(kept) for kept in self.live.kept if kept.key not in declared] if self.live is not None else []

    @property
    def binding(self) -> bool:
        """Whether the service should hold the allUsers invoker binding: public, with the invoker check on."""
        return self.public and self.desired.invoker_iam_check

    @property
    def writes_invoker_check(self) -> bool:
        """The service's invoker IAM check (a field of the service, not of its template) changes."""
        return self.live is not None and self.live.spec.invoker_iam_check != self.desired.invoker_iam_check

    @property
    def updates_service(self) -> bool:
        return self.creates or self.writes_invoker_check or any(c.what not in ("invoker",) for c in self.changes)

    @property
    def makes_revision(self) -> bool:
        """The update writes a template Cloud Run makes a revision of (and pulls its image for): not when only the
        traffic or the invokers change."""
        return self.creates or any(c.what not in ("invoker", "traffic") for c in self.changes)

    @property
    def retries_revision(self) -> bool:
        """The live template's revision never became Ready: the deploy must make a new one even if nothing changed."""
        return any(c.what == "revision" for c in self.changes)

    @property
    def invoker_changes(self) -> bool:
        return any(c.what == "invoker" for c in self.changes)

    @property
    def empty(self) -> bool:
        return not self.changes and not self.grants and not self.creates


def desired_spec(config: ServiceConfig, image: str, secret_versions: dict[SecretRef, int]) -> ServiceSpec:
    """doki.toml's service with `image` and each secret pinned to a version number (`latest` resolved)."""
    secrets = {env_name: f"{ref.secret}:{secret_versions[ref]}" for env_name, ref in config.secrets.items()}
    return ServiceSpec(
        image=image,
        port=config.port,
        memory=config.memory,
        cpu=config.cpu,
        concurrency=config.concurrency,
        timeout_seconds=config.timeout_seconds,
        min_instances=config.min_instances,
        max_instances=config.max_instances,
        ingress=config.ingress,
        service_account=config.service_account,
        env=dict(config.env),
        secrets=secrets,
        invoker_iam_check=config.invoker_iam_check is not False,
        settings=config.settings,
    )


def refuse_what_cloud_run_would(config: ServiceConfig, live: LiveService) -> None:
    """doki.toml's CPU and memory, where they differ from the live revision's, checked against the settings made
    outside doki.toml that a deploy keeps; DokiError (exit 78) when Cloud Run would refuse them."""
    problems = kept_setting_problems(
        cpu=config.cpu if _cpu(config.cpu) != _cpu(live.spec.cpu) else None,
        memory=config.memory if config.memory != live.spec.memory else None,
        # A setting doki.toml declares was checked with its CPU and memory when it was loaded: only kept ones here.
        cpu_always_allocated=live.cpu_always_allocated and config.settings.cpu_idle is None,
        gen2=live.gen2 and config.settings.execution_environment is None,
        sidecar_cpus=live.sidecar_cpus,
        service=config.name,
    )
    declared = config.settings
    taken = sorted({volume.name for volume in declared.volumes or ()} & set(live.sidecar_volumes))
    problems += [
        f"volume {name} is a sidecar's (the serving container does not mount it): name doki.toml's volume otherwise"
        for name in taken
    ]
    if (
        declared.execution_environment is None
        and live.spec.settings.execution_environment == "gen1"
        and any(volume.kind in GEN2_VOLUMES for volume in declared.volumes or ())
    ):
        problems.append(
            "nfs volumes need the second generation execution environment, and the service runs in the first "
            '(gen1): set execution_environment = "gen2" in doki.toml'
        )
    if problems:
        raise DokiError(
            Code.REFUSED_BY_CLOUD_RUN,
            f"Cloud Run would refuse the new revision of {config.name}: {'; '.join(problems)}; nothing was changed",
            f"change cpu or memory in {config.path}, or the setting named",
        )


def secret_version(secrets: SecretsPort, env_name: str, ref: SecretRef) -> int:
    """The number of the version `ref` names, which must exist and be enabled: a revision that cannot read a secret
    never starts, so a deploy stops here (exit 78) before it writes anything."""
    if not secrets.exists(ref.secret):
        raise DokiError(
            Code.SECRET_MISSING,
            f"{env_name} uses the secret {ref.secret}, which does not exist in project {secrets.project}",
            "create it with `doki secrets push` (values from .env), then deploy again",
        )
    resolved = secrets.resolve(ref.secret, ref.version)
    if resolved is not None and resolved[1] == "enabled":
        return resolved[0]
    latest = ref.version == "latest"
    pin = "pin an enabled version in doki.toml (or use latest)"
    if resolved is None:
        problem = "which has no versions yet" if latest else f"whose version {ref.version} does not exist"
        hint = "push a value with `doki secrets push`" if latest else pin
    else:
        number, state = resolved
        problem = f"whose {'latest ' if latest else ''}version {number} is {state}"
        enable = f"enable it (gcloud secrets versions enable {number} --secret {ref.secret})"
        fixes = {
            (True, "disabled"): f"{enable}, or push a new value with `doki secrets push`",
            (False, "disabled"): f"{enable}, or {pin}",
            (True, "destroyed"): "push a new value with `doki secrets push`",
        }
        hint = fixes.get((latest, state), pin)
    raise DokiError(
        Code.SECRET_VERSION_UNUSABLE,
        f"{env_name} uses the secret {ref.secret}, {problem}: the new revision could not read it, so nothing was "
        "changed",
        hint,
    )


def _cpu(value: str) -> str:
    # Cloud Run may answer "1000m" for "1": compare like with like.
    if value.endswith("m") and value[:-1].isdigit() and int(value[:-1]) % 1000 == 0:
        return str(int(value[:-1]) // 1000)
    return value


class Planner:
    def __init__(
        self, run: RunPort, secrets: SecretsPort, digest_of: Callable[[str], str | None] | None = None
    ) -> None:
        """`digest_of(image)`: the digest an Artifact Registry tag points at (None: unknown), to see a live image
        pinned by digest as the tag it came from."""
        self._run = run
        self._secrets = secrets
        self._digest_of = digest_of

    def _before_previews(self, live: LiveService | None) -> RevisionInfo | None:
        """The newest Ready revision not made for a preview, when a preview holds the template (None otherwise)."""
        from doki_cli.deploy.preview import holding_template, preview_revisions

        if live is None or holding_template(live) is None:
            return None
        previews = preview_revisions(live)
        return next((r for r in self._run.revisions(live.name) if r.name not in previews and r.ready), None)

    def plan(self, config: ServiceConfig, image: str, *, prune: bool = False, pushes_secrets: bool = False) -> Plan:
        """What deploying `image` as doki.toml describes would change. `pushes_secrets`: the secrets are pushed from
        a .env file first (`doki release --secrets-from`), so one that does not exist yet is planned as its first
        version, with its access still to grant, instead of refused."""
        new = self._missing_secrets(config) if pushes_secrets else set()
        versions = self._secret_versions(config, new)
        desired = desired_spec(config, image, versions)
        live = self._run.get(config.name)
        if live is not None and self._same_image(live.spec.image, image):
            # gcloud pins the image by digest on every update that does not name one (`gcloud run services update
            # --update-env-vars`, _EnsureImageDigest in lib/googlecloudsdk/command_lib/run/serverless_operations.py):
            # the tag that digest came from is no change, and the pin stays.
            desired = replace(desired, image=live.spec.image)
        if live is not None:
            refuse_what_cloud_run_would(config, live)
            if config.invoker_iam_check is None:  # doki.toml does not say: as it is live
                desired = replace(desired, invoker_iam_check=live.spec.invoker_iam_check)
        managed = set(config.env) | set(config.secrets)
        set_redirect = False
        if REDIRECT_ENV not in managed:
            # Derived from the service's own URL, never from request headers at run time.
            if live is not None:
                desired = replace(desired, env={**desired.env, REDIRECT_ENV: live.uri.rstrip("/") + REDIRECT_PATH})
            else:
                set_redirect = True
            managed.add(REDIRECT_ENV)
        unmanaged = [name for name in live.variables if name not in managed] if live is not None else []
        keep_env = () if prune else tuple(unmanaged)
        base = self._before_previews(live)
        if base is not None:
            # The template is a preview's (doki preview): what it set apart from doki.toml must not reach what serves.
            # The variables kept are those of the newest revision before the previews (what the template would be
            # without them), its plain values written as such (a preview allows its frontend in ALLOWED_ORIGINS).
            unmanaged = [name for name in (*base.env, *base.secrets) if name not in managed]
            if not prune:
                kept = {name: base.env[name] for name in unmanaged if name in base.env}
                desired = replace(desired, env={**kept, **desired.env})
            keep_env = () if prune else tuple(name for name in unmanaged if name in base.secrets)
        public_now = self._run.is_public(config.name) if live is not None else None
        changes = self._diff(desired, live, public_now, unmanaged, prune, config.allow_unauthenticated)
        member = f"serviceAccount:{config.service_account}" if config.service_account else None
        grants = []
        if member is not None:
            grants = sorted(
                {
                    ref.secret
                    for ref in config.secrets.values()
                    if ref.secret in new or not self._secrets.is_granted(ref.secret, member)
                }
            )
        warnings = [] if member is not None else self._default_account_warnings(config, new)
        owner = account_project(config.service_account)
        if owner is not None and owner != config.project:
            # Refused unless the organisation lets projects use each other's accounts, which new ones do not
            # (iam.disableCrossProjectServiceAccountUsage; https://cloud.google.com/run/docs/configuring/services/service-identity).
            warnings.append(
                f"service_account {config.service_account} belongs to project {owner}, not {config.project}: Cloud "
                "Run refuses it unless the organisation allows accounts of other projects"
            )
        repeats_failure = False
        failed = live.failed if live is not None else None
        if live is not None and failed is not None and desired.image == live.spec.image:
            warnings.append(f"{desired.image} is the image {failed[0]} failed with ({failed[1]})")
            # Nothing else differs from the template that failed: the new revision would fail the same way (or, for
            # a Ready revision that failed a release's checks, traffic would go to it).
            repeats_failure = bool(changes) and all(c.what in ("revision", "traffic", "invoker") for c in changes)
        return Plan(
            service=config.name,
            path=self._run.path(config.name),
            desired=desired,
            live=live,
            keep_env=keep_env,
            changes=changes,
            unmanaged=unmanaged,
            prune=prune,
            public=config.allow_unauthenticated,
            grants=grants,
            member=member,
            set_redirect=set_redirect,
            warnings=warnings,
            endpoint=self._run.endpoint,
            repeats_failure=repeats_failure,
        )

    def _same_image(self, live: str, image: str) -> bool:
        """Whether `live`, an image by digest, is what the tag `image` of the same image points at."""
        path, at, digest = live.partition("@")
        # gcloud's source deploys write IMAGE:TAG@DIGEST (_AddDigestToImageChange): the path is the image's either way.
        if ":" in path.rsplit("/", 1)[-1]:
            path = path.rpartition(":")[0]
        tagged, colon, tag = image.rpartition(":")
        if not at or not colon or "/" in tag or tagged != path or self._digest_of is None:
            return False
        return self._digest_of(image) == digest

    def _default_account_warnings(self, config: ServiceConfig, new: set[str]) -> list[str]:
        """Without service_account, revisions run as the Compute Engine default account, named after the project's
        number, which doki does not know: it cannot grant that account the secrets, and a revision that cannot read
        them never starts. A grant at the project level (which doki does not read) may let it: so a warning, unless
        each secret grants some project's default account access itself (as the guide's troubleshooting does)."""
        unreadable = sorted(
            {
                ref.secret
                for ref in config.secrets.values()
                if ref.secret in new
                or not any(
                    is_compute_default(member.removeprefix("serviceAccount:"))
                    for member in self._secrets.members(ref.secret)
                )
            }
        )
        if not unreadable:
            return []
        return [
            "service_account is not set, so the revisions run as the project's Compute Engine default account, and "
            f"no grant on {', '.join(unreadable)} lets it read them: unless the project grants it, the new revision "
            'will not start; set service_account = "NAME@PROJECT.iam.gserviceaccount.com" in doki.toml, and deploy '
            "grants it access"
        ]

    def _missing_secrets(self, config: ServiceConfig) -> set[str]:
        return {ref.secret for ref in config.secrets.values() if not self._secrets.exists(ref.secret)}

    def _secret_versions(self, config: ServiceConfig, new: set[str]) -> dict[SecretRef, int]:
        versions: dict[SecretRef, int] = {}
        for env_name, ref in config.secrets.items():
            if ref in versions:
                continue
            # A secret made by the push before the deploy starts at version 1 (Secret Manager numbers from 1): what
            # `latest` will mean then. A pin to another number fails then as it does now.
            first = ref.secret in new and ref.version in ("latest", "1")
            versions[ref] = 1 if first else secret_version(self._secrets, env_name, ref)
        return versions

    def _diff(
        self,
        desired: ServiceSpec,
        live: LiveService | None,
        public_now: bool | None,
        unmanaged: list[str],
        prune: bool,
        public: bool,
    ) -> list[Change]:
        before = live.spec if live is not None else None
        changes: list[Change] = []
        for attribute, label in FIELDS:
            new = getattr(desired, attribute)
            old = getattr(before, attribute) if before is not None else None
            if attribute == "cpu":
                new, old = _cpu(new), _cpu(old) if old is not None else None
            if attribute == "service_account" and new is None and is_compute_default(old):
                continue  # none named: the Compute Engine default, which Cloud Run wrote into the template
            if new != old:
                changes.append(Change(label, _show(old), _show(new)))
        declared = desired.settings.declared()
        for key, new in declared.items():
            old = getattr(before.settings, key) if before is not None else None
            if new != old:
                changes.append(Change(key, setting_text(key, old) if old is not None else None, setting_text(key, new)))
        old_env = before.env if before is not None else {}
        old_secrets = before.secrets if before is not None else {}
        for name, value in desired.env.items():
            if old_env.get(name) != value:
                changes.append(Change(f"env {name}", old_env.get(name) if name in old_env else None, value))
        foreign = live.foreign_secrets if live is not None else {}
        for name, ref in desired.secrets.items():
            old = old_secrets.get(name)
            if name in foreign and old is not None:
                # Another project's secret of the same id is another secret: doki.toml names its own project's.
                old = f"{foreign[name]}:{old.rpartition(':')[2]}"
            if old != ref:
                changes.append(Change(f"secret {name}", old, ref))
        if prune:
            for name in unmanaged:
                kind = "secret" if name in old_secrets else "env"
                changes.append(Change(f"{kind} {name}", old_secrets.get(name) or old_env.get(name), None))
        if live is not None and live.stuck is not None:
            # The live template is what the last deploy asked for, but its revision never became Ready: it matching
            # doki.toml proves nothing, and "No changes" would leave the previous revision serving for good.
            changes.append(Change("revision", f"{live.stuck} (not ready)", "a new revision"))
        if live is not None and not live.traffic_to_latest:
            changes.append(Change("traffic", live.traffic_text, "100% latest"))
        was = _invoker(public_now, before.invoker_iam_check) if public_now is not None and before is not None else None
        wanted = _invoker(public and desired.invoker_iam_check, desired.invoker_iam_check)
        if was != wanted:
            changes.append(Change("invoker", was, wanted))
        return changes


def _show(value: object) -> str | None:
    if value is None:
        return None
    return str(value) if value != "" else "(default)"


def _invoker(binding: bool, check: bool) -> str:
    """Who may invoke: the allUsers binding, or anyone because the invoker check is off, or callers with a role."""
    if not check:
        return "anyone (invoker IAM check off)"
    return "allUsers (public)" if binding else "authenticated callers only"


@dataclass(frozen=True)
class TrafficStep:
    """One of a release's traffic moves, as data: the write decides it on the service as it reads it then."""

    before: tuple[Target, ...]  # the traffic the release started from, "latest" resolved: what it shares out
    revision: str
    tag: str
    percent: int
    lock: Lock  # the release's: the move is made only while the service holds it
    renew_for: float  # seconds the lock holds from this step on (the last step drops it)

    @property
    def last(self) -> bool:
        return self.percent == 100


@dataclass(frozen=True)
class EditPlan:
    """One change to the live service, everything else kept as it is: what `cors`, `scale` and `rollback` write, and
    each traffic move of a release."""

    service: str
    path: str
    endpoint: str
    live: LiveService
    changes: list[Change] = field(default_factory=list)
    edit: Edit | None = None  # what the write changes; None when it only moves traffic (`pin`) or nothing changes
    # All traffic to this revision, tagged targets kept: decided on the service as the write reads it, so a tag
    # added by someone else since the plan is kept too.
    pin: str | None = None
    step: TrafficStep | None = None  # a release's traffic move
    cost: Cost | None = None  # what the change does to the bill, when it changes it

    @property
    def empty(self) -> bool:
        return not self.changes

    def decide(self, live: LiveService, now: float) -> Edit:
        """The edit to write onto `live`, the service as read right before the write at `now` (epoch seconds)."""
        if self.pin is not None:
            return Edit(traffic=pinned(live.traffic, self.pin))
        if self.step is not None:
            return _step_edit(self.step, live, now)
        assert self.edit is not None, "an empty plan writes nothing"
        return self.edit


def _step_edit(step: TrafficStep, live: LiveService, now: float) -> Edit:
    # Another release may have taken the lock since this one's last write: then the traffic is not this one's to move.
    ensure_ours(live, step.lock, now)
    if step.last:
        return Edit(
            traffic=traffic.final(step.before, step.revision, step.tag, live.latest_ready),
            annotations={LOCK: None, CHECKS_FAILED: None},
        )
    # A slow rollout keeps its lock: the expiry counts from the latest step.
    renewed = replace(step.lock, expires=now + step.renew_for)
    return Edit(
        traffic=traffic.split(step.before, step.revision, step.tag, step.percent),
        annotations={LOCK: renewed.render()},
    )


def _edit_plan(run: RunPort, live: LiveService, changes: list[Change], **how: object) -> EditPlan:
    return EditPlan(live.name, run.path(live.name), run.endpoint, live, changes, **how)  # type: ignore[arg-type]


def _retry_change(live: LiveService) -> Change:
    # As a deploy says it (Planner._diff): the template is what was asked, but its revision never became Ready.
    return Change("revision", f"{live.stuck} (not ready)", "a new revision")


def _refuse_preview_template(live: LiveService, change: str) -> None:
    from doki_cli.deploy.preview import preview_holds_template

    refused = preview_holds_template(live, change)
    if refused is not None:
        raise refused


def read_live(run: RunPort, name: str) -> LiveService:
    """The live service a change starts from; service_not_found when there is none."""
    live = run.get(name)
    if live is None:
        raise service_not_found(run.path(name))
    return live


def plan_env(run: RunPort, live: LiveService, variable: str, value: str) -> EditPlan:
    """One plain variable of the serving container set to `value`. Unchanged, yet the live template's revision never
    became Ready: a new revision with the same value, as a deploy would make."""
    _refuse_preview_template(live, f"setting {variable}")
    before = live.spec.env.get(variable) if variable in live.spec.env else None
    changes = [Change(f"env {variable}", before, value)] if before != value else []
    if live.stuck is not None and not changes:
        changes.append(_retry_change(live))
    edit = Edit(env={variable: value}, new_revision=before == value) if changes else None
    return _edit_plan(run, live, changes, edit=edit)


SCALING_FIELDS = ("min_instances", "max_instances", "memory", "cpu", "concurrency")
# The service-level scaling `doki scale --min`/`--max` sets, as `Scaling` and `LiveService` name it, and the plan's
# words for it.
SERVICE_SCALING_FIELDS = (
    ("service_min_instances", "service min instances"),
    ("service_max_instances", "service max instances"),
)


def plan_scaling(run: RunPort, live: LiveService, scaling: Scaling) -> EditPlan:
    """Scaling and resources as given (None keeps a value), validated as doki.toml is and against the settings made
    outside doki.toml that the revision keeps; DokiError `bad_scale` when Cloud Run would refuse them."""
    if scaling.changes_template:
        _refuse_preview_template(live, "scaling the revision")
    spec = live.spec
    problems = resource_problems(
        memory=scaling.memory or spec.memory,
        cpu=scaling.cpu or spec.cpu,
        concurrency=spec.concurrency if scaling.concurrency is None else scaling.concurrency,
        min_instances=spec.min_instances if scaling.min_instances is None else scaling.min_instances,
        max_instances=spec.max_instances if scaling.max_instances is None else scaling.max_instances,
    )
    problems += kept_setting_problems(
        cpu=scaling.cpu if scaling.cpu is not None and scaling.cpu != spec.cpu else None,
        memory=scaling.memory if scaling.memory is not None and scaling.memory != spec.memory else None,
        cpu_always_allocated=live.cpu_always_allocated,
        gen2=live.gen2,
        sidecar_cpus=live.sidecar_cpus,
        service=live.name,
    )
    problems += service_scaling_problems(
        live.service_min_instances if scaling.service_min_instances is None else scaling.service_min_instances,
        live.service_max_instances if scaling.service_max_instances is None else scaling.service_max_instances,
    )
    if problems:
        raise DokiError(Code.BAD_SCALE, "; ".join(problems) + "; nothing was changed", "pick values Cloud Run accepts")
    labels = dict(FIELDS)
    changes = [
        Change(labels[key], str(getattr(spec, key)), str(getattr(scaling, key)))
        for key in SCALING_FIELDS
        if getattr(scaling, key) is not None and getattr(scaling, key) != getattr(spec, key)
    ]
    changes += [
        Change(label, shown_value(key, getattr(live, key)), shown_value(key, getattr(scaling, key)))
        for key, label in SERVICE_SCALING_FIELDS
        if getattr(scaling, key) is not None and getattr(scaling, key) != getattr(live, key)
    ]
    retry = live.stuck is not None and not changes
    if retry:
        changes.append(_retry_change(live))
    return _edit_plan(run, live, changes, edit=Edit(scaling=scaling, new_revision=retry) if changes else None)


def service_scaling_problems(minimum: int, maximum: int) -> list[str]:
    """What is wrong with a service-level minimum and maximum (0: none). The proto says only "total min/max
    instances for the service" (ServiceScaling in google/cloud/run/v2/vendor_settings.proto): counts, so 0 or more,
    and a maximum below the minimum could not hold it. The upper bound is doki.toml's for the revision's."""
    problems = []
    for what, value in (("service min instances", minimum), ("service max instances", maximum)):
        high = RANGES["max_instances"][1]
        if not 0 <= value <= high:
            problems.append(f"{what} {value} is not valid: use a whole number from 0 to {high}")
    if maximum and minimum > maximum:
        problems.append(f"service max instances {maximum} is below service min instances {minimum}")
    return problems


def shown_value(key: str, value: object) -> str:
    """A scaling value as plans and `doki scale` show it: a service-level maximum of 0 is none (the revisions' own
    maximums apply)."""
    return "none" if key == "service_max_instances" and not value else str(value)


def plan_pin(run: RunPort, live: LiveService, revisions: list[RevisionInfo], target: str) -> EditPlan:
    """All traffic to `target`, tagged targets kept at 0%; nothing when it serves all of it already."""
    serving = max(revisions, key=lambda r: r.percent, default=None)
    if serving is not None and serving.name == target and serving.percent == 100:
        return _edit_plan(run, live, [])
    return _edit_plan(run, live, [Change("traffic", live.traffic_text, f"100% {target}")], pin=target)


def plan_traffic_step(run: RunPort, live: LiveService, step: TrafficStep) -> EditPlan:
    """A release's traffic move: `step.percent` of the traffic to its revision, the rest shared as before; all of it,
    and the lock dropped, on the last step."""
    if step.last:
        after = f"100% {step.revision}"
    else:
        moved = traffic.split(step.before, step.revision, step.tag, step.percent)
        after = ", ".join(f"{t.percent}% {t.revision}" for t in moved if t.percent)
    return _edit_plan(run, live, [Change("traffic", live.traffic_text, after)], step=step)


def earlier_ready(revisions: list[RevisionInfo]) -> list[RevisionInfo]:
    """The Ready revisions older than the one serving most, newest first: what a rollback can go back to."""
    serving = max(revisions, key=lambda r: r.percent, default=None)
    return [
        r
        for r in revisions
        if r.ready and (serving is None or (r.created and serving.created and r.created < serving.created))
    ]


def named_revision(live: LiveService, revisions: list[RevisionInfo], name: str) -> RevisionInfo:
    """The revision `name`, which must be Ready to take traffic; DokiError otherwise."""
    named = next((r for r in revisions if r.name == name), None)
    if named is None:
        ready = ", ".join(r.name for r in revisions if r.ready) or "none"
        raise DokiError(
            Code.UNKNOWN_REVISION,
            f"{live.name} has no revision {name!r}; nothing was changed",
            f"pick a Ready one: {ready}",
        )
    if not named.ready:
        raise DokiError(
            Code.REVISION_NOT_READY,
            f"{named.name} is not Ready ({named.message or 'no reason given'}); nothing was changed",
            "pick a Ready revision (see `doki status`)",
        )
    return named


def with_cost(plan: Plan, prices_of: Callable[[str], RunPrices], region: str) -> Plan:
    """`plan` with what it does to the bill, when it changes the size, the floor or the billing (or makes the
    service); prices are read only then."""
    live = plan.live
    before = (
        Sizing.of(live.spec, instance_based=live.cpu_always_allocated, service_min=live.service_min_instances)
        if live is not None
        else None
    )
    declared = plan.desired.settings.cpu_idle
    # Undeclared: kept as live; a new service bills by request, Cloud Run's default.
    kept = live.cpu_always_allocated if live is not None else False
    instance_based = not declared if declared is not None else kept
    service_min = live.service_min_instances if live is not None else 0
    after = Sizing.of(plan.desired, instance_based=instance_based, service_min=service_min)
    others = live is not None and _keeps_others(live)
    return replace(plan, cost=priced(region, before, after, prices_of, others_kept=others))


def _keeps_others(live: LiveService) -> bool:
    """Whether revisions besides the serving one keep instances up: a tag, or a traffic split."""
    return any(routed.tag for routed in live.routed) or len(live.shares) > 1


def edit_with_cost(plan: EditPlan, prices_of: Callable[[str], RunPrices], region: str) -> EditPlan:
    """A `doki scale` plan with what it does to the bill, as `with_cost`."""
    live = plan.live
    scaling = plan.edit.scaling if plan.edit is not None else None
    if scaling is None:
        return plan
    before = Sizing.of(live.spec, instance_based=live.cpu_always_allocated, service_min=live.service_min_instances)
    spec = replace(
        live.spec,
        cpu=scaling.cpu or live.spec.cpu,
        memory=scaling.memory or live.spec.memory,
        min_instances=live.spec.min_instances if scaling.min_instances is None else scaling.min_instances,
    )
    service_min = live.service_min_instances if scaling.service_min_instances is None else scaling.service_min_instances
    after = Sizing.of(spec, instance_based=live.cpu_always_allocated, service_min=service_min)
    return replace(plan, cost=priced(region, before, after, prices_of, others_kept=_keeps_others(live)))
