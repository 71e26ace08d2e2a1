"""A Cloud Run service as doki sees it: plain, typed data below both the deploy core and the Cloud Run adapter.

doki.toml becomes a `ServiceSpec`; the adapter (`doki_cli.gcp.run`, the only CLI module that handles Cloud Run's
messages) reads a live service into a `LiveService` and writes an `Edit` back onto the service it read, every field
doki does not manage kept as it is. Revision names here are short (`api-00002-xyz`), never Google's resource names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Probe:
    """A startup or liveness probe of the serving container, as doki.toml declares one (`kind` "none": no probe)."""

    kind: str  # http, tcp, grpc; "none"
    path: str = ""  # http: the path requested
    port: int = 0  # 0: the container's port
    service: str = ""  # grpc: the service checked ("": the server's overall health)
    initial_delay_seconds: int = 0
    timeout_seconds: int = 1
    period_seconds: int = 10
    failure_threshold: int = 3
    # What the live probe has that doki.toml cannot say (HTTP headers): read, it makes the probe differ from any
    # declared one, so a plan shows that writing doki.toml's replaces it.
    extra: str = ""

    def __str__(self) -> str:
        if self.kind == "none":
            return "none"
        what = {"http": f"http GET {self.path}", "grpc": f"grpc {self.service or '(server)'}"}.get(self.kind, "tcp")
        port = f" on port {self.port}" if self.port else ""
        delay = f"after {self.initial_delay_seconds}s, " if self.initial_delay_seconds else ""
        return (
            f"{what}{port}, {delay}every {self.period_seconds}s, timeout {self.timeout_seconds}s, "
            f"{self.failure_threshold} failures" + (f" ({self.extra})" if self.extra else "")
        )


NO_PROBE = Probe("none")


@dataclass(frozen=True)
class Volume:
    """A volume of the revision mounted in the serving container: in-memory, cloud-storage, nfs or secret."""

    name: str
    kind: str
    mount_path: str
    size_limit: str = ""  # in-memory: "" up to the instance's memory
    bucket: str = ""  # cloud-storage
    location: str = ""  # nfs: SERVER:/PATH
    read_only: bool = False  # cloud-storage, nfs
    secret: str = ""  # secret: the Secret Manager secret, its version and the file's path in the volume
    version: str = ""
    path: str = ""
    # What the live volume has that doki.toml cannot say (mount options, a sub-path, more files or modes of a secret):
    # as Probe.extra, a plan shows that doki.toml's replaces it.
    extra: str = ""

    def __str__(self) -> str:
        source = {
            "in-memory": f"in-memory{' ' + self.size_limit if self.size_limit else ''}",
            "cloud-storage": f"gs://{self.bucket}",
            "nfs": f"nfs {self.location}",
            "secret": f"secret {self.secret}:{self.version} as {self.path}",
        }.get(self.kind, self.kind)
        mode = (", read-only" if self.read_only else "") + (f", {self.extra}" if self.extra else "")
        return f"{self.name} ({source}{mode}) at {self.mount_path or '(not mounted)'}"


@dataclass(frozen=True)
class Vpc:
    """Where the revision's outbound traffic goes: a Serverless VPC Access connector, or Direct VPC egress through a
    network and subnet; neither (all empty) is no VPC access."""

    connector: str = ""
    network: str = ""
    subnet: str = ""
    network_tags: tuple[str, ...] = ()
    egress: str = ""  # all-traffic, private-ranges-only ("": Cloud Run's default, private-ranges-only)

    def __str__(self) -> str:
        if not (self.connector or self.network or self.subnet):
            return "none"
        where = (
            f"connector {self.connector}"
            if self.connector
            else "network " + "/".join(part for part in (self.network, self.subnet) if part)
        )
        tags = f", tags {', '.join(self.network_tags)}" if self.network_tags else ""
        return f"{where}{tags}, egress {self.egress or 'private-ranges-only'}"


@dataclass(frozen=True)
class RunSettings:
    """The Cloud Run settings doki.toml may declare beyond the container's resources and scaling. None: doki.toml does
    not declare it, so a deploy keeps what the live service has; read from a live service, every field holds a value.
    Each field is a doki.toml key of the same name (docs/configuration.md names gcloud's flag for each)."""

    cpu_idle: bool | None = None  # CPU allocated only during requests (gcloud --cpu-throttling)
    startup_cpu_boost: bool | None = None
    execution_environment: str | None = None  # gen1, gen2; "default" read from a service that names none
    session_affinity: bool | None = None
    labels: Mapping[str, str] | None = None  # the service's, copied to each revision as gcloud --labels does
    vpc: Vpc | None = None
    cloudsql_instances: tuple[str, ...] | None = None
    volumes: tuple[Volume, ...] | None = None
    startup_probe: Probe | None = None
    liveness_probe: Probe | None = None

    def declared(self) -> dict[str, object]:
        """The fields that hold a value, by name."""
        return {key: value for key in RUN_SETTINGS if (value := getattr(self, key)) is not None}


RUN_SETTINGS = (
    "cpu_idle",
    "startup_cpu_boost",
    "execution_environment",
    "session_affinity",
    "labels",
    "vpc",
    "cloudsql_instances",
    "volumes",
    "startup_probe",
    "liveness_probe",
)


def setting_text(key: str, value: object) -> str:
    """A setting's value as a plan shows it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if key == "labels" and isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items())) or "none"
    if isinstance(value, tuple):
        return "; ".join(str(item) for item in value) or "none"
    return str(value)


@dataclass(frozen=True)
class Kept:
    """A setting of the live service that doki.toml does not manage and a deploy keeps; `key`: the doki.toml key that
    would manage it (None: none does)."""

    text: str
    key: str | None = None

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class ServiceSpec:
    """What doki manages of a service: the serving container, the template's scaling and identity, the ingress."""

    image: str
    port: int
    memory: str
    cpu: str
    concurrency: int
    timeout_seconds: int
    min_instances: int
    max_instances: int
    ingress: str  # as doki.toml spells it: all, internal, internal-and-cloud-load-balancing
    service_account: str | None  # None: Cloud Run's default, the project's Compute Engine default account
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # ENV_NAME -> "secret-id:version-number"
    invoker_iam_check: bool = True  # off: anyone may invoke, without an allUsers binding (a service-level field)
    settings: RunSettings = field(default_factory=RunSettings)


@dataclass(frozen=True)
class Target:
    """One traffic target of the service's spec: a revision (None: whichever is the latest ready), a share, a tag."""

    revision: str | None
    percent: int
    tag: str = ""


@dataclass(frozen=True)
class Routed:
    """Where traffic goes now, as Cloud Run reports it: "latest" resolved to a revision, a tag with its own URL."""

    revision: str
    percent: int
    tag: str = ""
    uri: str = ""


# doki's annotation on a service whose release put traffic back because its revision failed the release's checks:
# "REVISION WHAT-FAILED". A Ready revision keeps no trace of that at Google, and the next release or deploy of the same
# image must know it failed.
CHECKS_FAILED = "doki.dev/checks-failed"


@dataclass(frozen=True)
class LiveService:
    """The service as read from Cloud Run: what doki manages (`spec`), its traffic and its state."""

    name: str
    spec: ServiceSpec
    uri: str
    etag: str
    generation: int
    updated: datetime | None
    traffic: tuple[Target, ...]  # the spec, in its order; untagged 0% targets left out
    routed: tuple[Routed, ...]  # the status
    annotations: Mapping[str, str]
    latest_ready: str | None
    latest_created: str | None
    ready: bool
    message: str
    # The serving container's variables in their order (spec.env and spec.secrets hold their values).
    variables: tuple[str, ...] = ()
    # What the service has that doki.toml does not manage, which a deploy keeps (sidecars, probes, volumes, ...).
    kept: tuple[Kept, ...] = ()
    # Variables whose secret is another project's (Cloud Run takes projects/P/secrets/S, by id or number): their
    # `spec.secrets` entry holds the secret's id alone, so the full name is here.
    foreign_secrets: Mapping[str, str] = field(default_factory=dict)
    # Three of those, which limit the CPU and memory doki.toml may ask for: Cloud Run counts CPU per revision.
    cpu_always_allocated: bool = False
    gen2: bool = False
    sidecar_cpus: float = 0.0  # what the other containers request together (1 each that sets none)
    # The service-level scaling (`Service.scaling`), apart from the template's: shared among the revisions that take
    # traffic, changed without a new revision (gcloud run services update --min, and --max of gcloud beta). 0: none.
    service_min_instances: int = 0
    service_max_instances: int = 0
    # Volumes only other containers mount: theirs, so not a name doki.toml's volumes may take.
    sidecar_volumes: tuple[str, ...] = ()

    @property
    def traffic_to_latest(self) -> bool:
        """All traffic follows the latest ready revision."""
        serving = [t for t in self.traffic if t.percent]
        return len(serving) == 1 and serving[0].revision is None

    @property
    def traffic_text(self) -> str:
        """The traffic spec as people read it, e.g. "100% latest" or "90% api-00001-abc, 10% api-00002-xyz"."""
        serving = [t for t in self.traffic if t.percent]
        return ", ".join(f"{t.percent}% {t.revision or 'latest'}" for t in serving) or "none"

    @property
    def shares(self) -> dict[str, int]:
        """Percent of traffic per revision, as Cloud Run routes it."""
        shares: dict[str, int] = {}
        for routed in self.routed:
            if routed.percent and routed.revision:
                shares[routed.revision] = shares.get(routed.revision, 0) + routed.percent
        return shares

    @property
    def stuck(self) -> str | None:
        """The newest revision when it never became Ready: the template describes it, yet it serves nothing."""
        created = self.latest_created
        return created if created and created != self.latest_ready else None

    @property
    def failed(self) -> tuple[str, str] | None:
        """The newest revision and why, when it failed: it never became Ready (Cloud Run's message), or it failed a
        release's checks (doki's annotation, which a newer revision makes stale)."""
        if self.stuck:
            return self.stuck, " ".join(self.message.split())
        revision, _, reason = self.annotations.get(CHECKS_FAILED, "").partition(" ")
        # Once traffic goes to it anyway (a deploy or rollback said yes), the note has been answered.
        if revision and revision == self.latest_created and revision not in self.shares:
            return revision, reason
        return None

    def tag_url(self, tag: str) -> str | None:
        """The URL Cloud Run gives a tagged target: it reaches that revision alone."""
        return next((routed.uri for routed in self.routed if routed.tag == tag and routed.uri), None)

    def tags(self) -> dict[str, tuple[str, ...]]:
        """The tags routed to each revision."""
        tags: dict[str, list[str]] = {}
        for routed in self.routed:
            if routed.tag and routed.revision:
                tags.setdefault(routed.revision, []).append(routed.tag)
        return {revision: tuple(names) for revision, names in tags.items()}


@dataclass(frozen=True)
class RevisionSettings:
    """What a revision runs with: its serving container's limits and its own scaling (a revision never changes)."""

    cpu: str = ""
    memory: str = ""
    concurrency: int = 0
    timeout_seconds: int = 0
    min_instances: int = 0
    max_instances: int = 0

    @property
    def resources_text(self) -> str:
        return f"cpu {self.cpu}, memory {self.memory}, concurrency {self.concurrency}, timeout {self.timeout_seconds}s"

    @property
    def scaling_text(self) -> str:
        return f"{self.min_instances} to {self.max_instances} instances"


# What doki writes into each revision template it makes (Cloud Run keeps a template's annotations on its revision),
# so `doki history` can say who made a revision, how, from where and of which commit. Keys follow the Kubernetes
# annotation rules Cloud Run applies (a DNS-subdomain prefix, a name of at most 63 characters [-._a-zA-Z0-9]) under a
# prefix of doki's own: Cloud Run v2 refuses only the run.googleapis.com, cloud.googleapis.com, serving.knative.dev
# and autoscaling.knative.dev namespaces (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services#RevisionTemplate).
COMMAND = "doki.dev/command"
COMMIT = "doki.dev/commit"
# The image the commit above was recorded with: a revision that runs another one (gcloud changed it, then doki's scale
# copied the template) must not claim that commit.
COMMIT_IMAGE = "doki.dev/commit-image"
BY = "doki.dev/by"
FROM = "doki.dev/from"
# The newest revision when the template was written. A template's annotations go on to every later revision made
# from it (by gcloud, the console, Terraform), so provenance belongs to a revision only when the revision made just
# before it is the one named here: a later revision copied from it follows another one.
AFTER = "doki.dev/after"


@dataclass(frozen=True)
class Provenance:
    """Who made a revision, how and from where, as doki records it on the revisions it makes."""

    command: str  # deploy, release; "" when doki's command did not say (scale, cors)
    commit: str | None  # the commit the image was built from; "" unknown (an --image), None: the image is unchanged
    by: str  # the account or user
    source: str  # the CI run's URL, or the host


@dataclass(frozen=True)
class RevisionInfo:
    name: str
    created: datetime | None
    ready: bool
    message: str
    image: str  # what its serving container runs
    percent: int  # share of traffic it serves now
    tags: tuple[str, ...]
    settings: RevisionSettings = field(default_factory=RevisionSettings)
    failed: bool = False  # Cloud Run gave up on it (not Ready, and never will be), as opposed to still starting
    reason: str = ""  # why it failed, as Cloud Run's Ready condition names it (CONTAINER_MISSING, ...)
    provenance: Provenance | None = None  # what doki recorded when it made it; None: not made by doki, or unknown
    # The serving container's secret variables: ENV_NAME -> "secret:version", the version as the revision names it.
    secrets: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)  # and its plain variables

    @property
    def created_at(self) -> str | None:
        """When it was made, to the second (ISO 8601), as doki prints and reports it."""
        return self.created.isoformat(timespec="seconds") if self.created else None

    @property
    def deployed(self) -> str:
        """When it was made, as people read it next to a revision's name."""
        return self.created_at or "at an unknown time"


@dataclass(frozen=True)
class Scaling:
    """The scaling and resources `doki scale` sets; None leaves a value as it is. The first five are the template's
    (a new revision); the service-level minimum and maximum are the service's own (no new revision)."""

    min_instances: int | None = None
    max_instances: int | None = None
    memory: str | None = None
    cpu: str | None = None
    concurrency: int | None = None
    service_min_instances: int | None = None
    service_max_instances: int | None = None

    @property
    def changes_template(self) -> bool:
        """Whether a value of the template (so a new revision) is given."""
        values = (self.min_instances, self.max_instances, self.memory, self.cpu, self.concurrency)
        return any(value is not None for value in values)

    @property
    def changes_service(self) -> bool:
        """Whether a service-level value is given."""
        return self.service_min_instances is not None or self.service_max_instances is not None


@dataclass(frozen=True)
class Staged:
    """A release's revision: the template becomes `spec` (with the live variables named in `keep_env`), under a name
    of the release's choosing, so the same write can route to it and tag it before it serves anything."""

    spec: ServiceSpec
    keep_env: tuple[str, ...]
    revision: str


@dataclass(frozen=True)
class Edit:
    """What one read-modify-write of a service changes; every other field goes back as it was read.

    An edit of the traffic and the service's annotations alone is a traffic-only write: the template goes back
    untouched, under its revision name, and no revision is made. An edit of the service-level scaling keeps the
    template too (`keeps_template`), without being traffic-only."""

    traffic: tuple[Target, ...] | None = None  # exactly these targets
    annotations: Mapping[str, str | None] = field(default_factory=dict)  # set, or removed when None
    env: Mapping[str, str] = field(default_factory=dict)  # plain variables of the serving container
    # The version of the secret a variable of the serving container reads (its secret stays): a key rotation's.
    secret_versions: Mapping[str, str] = field(default_factory=dict)
    scaling: Scaling | None = None
    staged: Staged | None = None
    # A new revision even if the template does not change (the live one never became Ready). Not with `staged`:
    # a staged revision is new by its name.
    new_revision: bool = False

    def __post_init__(self) -> None:
        if self.staged is not None and self.new_revision:
            raise ValueError("a staged revision is new by its name: new_revision does not apply")

    @property
    def keeps_template(self) -> bool:
        """The template goes back as read: no new revision."""
        template = self.scaling is not None and self.scaling.changes_template
        changes = self.env or self.secret_versions
        return not changes and not template and self.staged is None and not self.new_revision

    @property
    def traffic_only(self) -> bool:
        return self.keeps_template and (self.scaling is None or not self.scaling.changes_service)


def pinned(traffic: tuple[Target, ...], revision: str) -> tuple[Target, ...]:
    """All traffic to `revision`; tagged targets keep their tags at 0%."""
    return (Target(revision, 100), *(Target(t.revision, 0, t.tag) for t in traffic if t.tag))


def to_latest(traffic: tuple[Target, ...]) -> tuple[Target, ...]:
    """All traffic to the latest ready revision (a pin ends here); tagged targets keep their tags at 0%."""
    return (Target(None, 100), *(Target(t.revision, 0, t.tag) for t in traffic if t.tag))


def serving_text(revisions: Sequence[RevisionInfo]) -> str:
    """What serves, as people read it: "100% api-00002-abc (image …)", each revision with traffic; or "nothing"."""
    shares = [r for r in revisions if r.percent]
    return ", ".join(f"{r.percent}% {r.name} (image {r.image})" for r in shares) or "nothing"


@dataclass(frozen=True)
class RunPrices:
    """Cloud Run's list prices in one region, in `currency`: per vCPU-second, per GiB-second, per request; None where
    the catalog prices no such thing there."""

    currency: str
    cpu: float | None = None  # request-based billing, while serving
    memory: float | None = None
    idle_cpu: float | None = None  # request-based billing, an idle minimum instance
    idle_memory: float | None = None
    instance_cpu: float | None = None  # instance-based billing (CPU always allocated), all the time
    instance_memory: float | None = None
    request: float | None = None


@dataclass(frozen=True)
class DnsRecord:
    """A record a domain mapping asks for: `name` relative to the domain ("" at its apex, "www"), its type and data."""

    name: str
    type: str  # A, AAAA or CNAME
    data: str


@dataclass(frozen=True)
class DomainMapping:
    """A custom domain of a service, as Cloud Run's domain mapping reports it."""

    domain: str
    service: str
    region: str
    ready: str  # Ready's status: True, False or Unknown
    reason: str  # why not ready: CertificatePending, RouteMissing, …
    message: str
    records: tuple[DnsRecord, ...] = ()

    @property
    def state(self) -> str:
        if self.ready == "True":
            return "ready"
        if self.ready == "False":
            return "failed"
        return "waiting for its certificate" if self.reason == "CertificatePending" else "pending"
