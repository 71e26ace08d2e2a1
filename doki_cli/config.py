"""`doki.toml`: the deployment configuration, validated on load, with `--env`, `--project`, `--region` on top.

One file describes a deployment; its directory is the project root (what `doki build` sends to the engine, where
the Dockerfile and .env are read), wherever in the project doki runs: without --config, doki.toml is looked for in the
current directory, then in each parent up to the filesystem root, as cargo looks for Cargo.toml and poetry for
pyproject.toml (no stop at a git repository's root: a doki.toml above one is still the one the user is inside).
Precedence: command-line option > DOKI_* variable (both arrive here as the same arguments) > the chosen
`[environments.NAME]` section > `[service]` > gcloud's configured project and region (`doki_cli.gcloudconfig`) > the
defaults below, which equal the deployment guide's `gcloud run deploy` flags. Every problem is reported at once, each
naming the file, the key and what is allowed.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from doki_cli.errors import Code, DokiError
from doki_cli.model import NO_PROBE, RUN_SETTINGS, Probe, RunSettings, Volume, Vpc

DEFAULT_CONFIG = Path("doki.toml")
# gcloud's own repository for source deploys: the name users already have when they have deployed before.
DEFAULT_REPOSITORY = "cloud-run-source-deploy"
DEFAULT_REGION = "us-central1"
# The [service] keys with a default: ServiceConfig's fields of the same names hold them.
SETTINGS = (
    "port",
    "memory",
    "cpu",
    "concurrency",
    "timeout_seconds",
    "min_instances",
    "max_instances",
    "ingress",
    "service_account",
    "allow_unauthenticated",
    "invoker_iam_check",
)
# The whole-number settings and what Cloud Run accepts of each, for doki.toml and `doki scale` alike
# (https://cloud.google.com/run/docs/configuring/services/cpu and the pages beside it on concurrency, request timeout
# and instances).
RANGES = {
    "port": (1, 65535),
    "concurrency": (1, 1000),
    "timeout_seconds": (1, 3600),
    "min_instances": (0, 1000),
    "max_instances": (1, 1000),
}
KNOWN_KEYS = {"name", "project", "region", "repository", "env", "secrets", *SETTINGS, *RUN_SETTINGS}
# The keys of the tables and lists under the Cloud Run settings (RUN_SETTINGS), each as gcloud names it beside it in
# docs/configuration.md.
PROBE_KEYS = (
    "type",
    "path",
    "port",
    "service",
    "initial_delay_seconds",
    "timeout_seconds",
    "period_seconds",
    "failure_threshold",
)
PROBE_TYPES = ("http", "tcp", "grpc")
VPC_KEYS = ("connector", "network", "subnet", "network_tags", "egress")
VPC_EGRESS = ("all-traffic", "private-ranges-only")
VOLUME_KEYS = (
    "name",
    "type",
    "mount_path",
    "size_limit",
    "bucket",
    "location",
    "read_only",
    "secret",
    "version",
    "path",
)
# Each volume type and the keys it takes besides name, type and mount_path (required ones first, then optional), as
# gcloud's --add-volume takes them (lib/googlecloudsdk/command_lib/run/volumes.py).
VOLUME_TYPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "in-memory": ((), ("size_limit",)),
    "cloud-storage": (("bucket",), ("read_only",)),
    "nfs": (("location",), ("read_only",)),
    "secret": (("secret", "path"), ("version",)),
}
EXECUTION_ENVIRONMENTS = ("gen1", "gen2")
RELEASE_KEYS = ("checks", "steps", "step_wait_seconds", "attempts", "lock_timeout_minutes", "invoker_account")
BUILD_KEYS = ("service_account",)
MONITORING_KEYS = ("emails", "uptime_period", "uptime_timeout", "max_5xx_ratio", "max_p95_latency_ms", "alert_after")
# Cloud Monitoring's choices (UptimeCheckConfig.period: "60s, 300s, 600s, and 900s"; timeout: "between 1 and 60
# seconds"; MetricThreshold.duration: "a multiple of a minute").
UPTIME_PERIODS = (60, 300, 600, 900)
UPTIME_TIMEOUT_RANGE = (1, 60)
# doki's own bound on a retest window (Google's is not on record): a day, beyond which an alert is no alert.
MAX_ALERT_AFTER_SECONDS = 24 * 3600
# The tables at the top of a doki.toml; an [environments.NAME] section may override [release] and [build] too.
TABLES = ("service", "release", "build", "monitoring", "preview", "environments")
PREVIEW_KEYS = ("origins", "keep")
# What a [preview] origin may name of the preview it is for: `doki preview --pr N` gives {pr}, and each preview has a
# {tag} (pr-N, or its branch's slug) and a {branch} slug (the branch's name, or pr-N).
PREVIEW_FIELDS = ("pr", "branch", "tag")
CHECK_KEYS = ("path", "status", "contains")
INGRESS = ("all", "internal", "internal-and-cloud-load-balancing")
# Cloud Run sets these itself and refuses them in a revision's environment.
RESERVED_ENV = ("PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION")
# Cloud Run keeps these names for itself too ("Keys that start with X_GOOGLE_ are reserved", gcloud's
# env_vars_util.EnvVarKeyType): refused at load, as Cloud Run would refuse the revision.
GOOGLE_ENV_PREFIX = "X_GOOGLE_"

_SERVICE_NAME = re.compile(r"[a-z]([-a-z0-9]{0,47}[a-z0-9])?")
_PROJECT = re.compile(r"[a-z][-a-z0-9]{4,28}[a-z0-9]")
_REGION = re.compile(r"[a-z]+-[a-z]+[0-9]+")
_REPOSITORY = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
_SERVICE_ACCOUNT = re.compile(r"[a-z][-a-z0-9]{4,28}[a-z0-9]@[-a-z0-9.]+\.gserviceaccount\.com")
# The Compute Engine default account, named after the project's number: what Cloud Run runs a revision as when the
# template names none (https://cloud.google.com/run/docs/configuring/services/service-identity).
_COMPUTE_DEFAULT = re.compile(r"[0-9]+-compute@developer\.gserviceaccount\.com")
_MEMORY = re.compile(r"([0-9]+)(Mi|Gi|M|G)")
_MEMORY_BYTES = {"Mi": 2**20, "Gi": 2**30, "M": 10**6, "G": 10**9}
WHOLE_CPUS = ("1", "2", "4", "6", "8")


@dataclass(frozen=True)
class SecretRef:
    """An environment variable's value from Secret Manager: a secret id and a version ("latest" or a number)."""

    secret: str
    version: str = "latest"

    def __str__(self) -> str:
        return f"{self.secret}:{self.version}"


@dataclass(frozen=True)
class SmokeCheck:
    """One request `doki release` makes to a new revision before it gets traffic."""

    path: str
    status: int = 200
    contains: str | None = None  # a substring the body must hold

    def __str__(self) -> str:
        return f"GET {self.path} -> {self.status}" + (f" containing {self.contains!r}" if self.contains else "")


@dataclass(frozen=True)
class ReleaseConfig:
    """How `doki release` proves a revision and moves traffic to it ([release] in doki.toml)."""

    checks: tuple[SmokeCheck, ...] = ()  # besides the health contract on `/`, which is always checked
    steps: tuple[int, ...] = (100,)  # traffic percentages, in order, ending at 100
    step_wait_seconds: int = 60  # between two steps: time for problems to show before the checks run again
    attempts: int = 10  # tries per check while a cold revision starts
    lock_timeout_minutes: int = 30  # a release lock older than this is stale (its release died)
    # The service account whose ID token the checks of a private service carry, minted through IAM Credentials (the
    # credentials' own, or the account they impersonate, when unset).
    invoker_account: str | None = None


@dataclass(frozen=True)
class BuildConfig:
    """How remote builds run on Cloud Build ([build] in doki.toml)."""

    # The account the build runs as. None: the project's default build account, which on projects made since 2024
    # is the Compute Engine default account (https://cloud.google.com/build/docs/cloud-build-service-account-updates).
    service_account: str | None = None


@dataclass(frozen=True)
class MonitoringSettings:
    """The uptime check and alerts `doki monitor` keeps for the service ([monitoring] in doki.toml)."""

    declared: bool = False  # doki.toml has a [monitoring] table
    emails: tuple[str, ...] = ()  # where alerts go: an email notification channel each
    uptime_period_seconds: int = 60  # how often the health contract on `/` is checked, from each location
    uptime_timeout_seconds: int = 10
    max_5xx_ratio: float | None = 0.05  # alert above this share of 5xx answers (None: no such alert)
    max_p95_latency_ms: int | None = 2000  # alert above this 95th percentile of latency (None: no such alert)
    alert_after_seconds: int = 300  # how long the ratio or the latency stays above before an alert opens


@dataclass(frozen=True)
class PreviewSettings:
    """How `doki preview` deploys a branch or pull request ([preview] in doki.toml)."""

    # Origins of the preview's frontend, allowed on the preview's revision only (never on what serves): templates
    # such as "https://pr-{pr}--my-site.netlify.app", filled in per preview.
    origins: tuple[str, ...] = ()
    keep: int = 0  # revisions of deleted previews kept (the newest), beyond which `doki preview delete` deletes them


@dataclass(frozen=True)
class ServiceConfig:
    name: str
    project: str
    region: str
    repository: str
    root: Path
    port: int = 8080
    memory: str = "512Mi"
    cpu: str = "1"
    concurrency: int = 80
    timeout_seconds: int = 300
    min_instances: int = 0
    max_instances: int = 10
    ingress: str = "all"
    service_account: str | None = None
    allow_unauthenticated: bool = True
    # Off: anyone may invoke the service without the allUsers binding that domain restricted sharing refuses
    # (https://cloud.google.com/run/docs/securing/managing-access#invoker_check). None: as the live service has it (on
    # for a new one; gcloud's --no-invoker-iam-check is the usual way around that policy, which a deploy must not undo).
    invoker_iam_check: bool | None = None
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, SecretRef] = field(default_factory=dict)
    environment: str | None = None  # the [environments.NAME] section applied, if any
    path: Path = DEFAULT_CONFIG
    release: ReleaseConfig = field(default_factory=ReleaseConfig)
    build: BuildConfig = field(default_factory=BuildConfig)
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    preview: PreviewSettings = field(default_factory=PreviewSettings)
    settings: RunSettings = field(default_factory=RunSettings)  # the Cloud Run settings doki.toml declares

    @property
    def image(self) -> str:
        """The Artifact Registry image name, without a tag."""
        return f"{self.region}-docker.pkg.dev/{self.project}/{self.repository}/{self.name}"

    @property
    def location(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    @property
    def service_path(self) -> str:
        """The Cloud Run service's resource name."""
        return f"{self.location}/services/{self.name}"


def is_compute_default(account: str | None) -> bool:
    """Whether `account` is a project's Compute Engine default account, which Cloud Run fills in when none is named."""
    return account is not None and _COMPUTE_DEFAULT.fullmatch(account) is not None


# A user-managed account's email names the project it lives in (https://cloud.google.com/iam/docs/service-account-overview
# "User-managed service accounts": NAME@PROJECT_ID.iam.gserviceaccount.com).
_ACCOUNT_PROJECT = re.compile(r"[^@]+@([-a-z0-9]+)\.iam\.gserviceaccount\.com")


def account_project(account: str | None) -> str | None:
    """The project a user-managed service account belongs to, from its email; None for other kinds of accounts."""
    match = _ACCOUNT_PROJECT.fullmatch(account or "")
    return match.group(1) if match else None


def find_config(start: Path | None = None) -> Path | None:
    """The doki.toml in `start` (the current directory) or the nearest parent holding one; None when none does.
    One in the current directory is named as `doki.toml`, as before the search; one above it by its full path, so
    messages say which file was used."""
    here = (start or Path.cwd()).absolute()
    for directory in (here, *here.parents):
        candidate = directory / DEFAULT_CONFIG
        try:
            found = candidate.is_file()
        except PermissionError:  # a directory above that the user may not read holds nothing of theirs
            found = False
        if found:
            return DEFAULT_CONFIG if start is None and directory == here else candidate
    return None


def not_found(start: Path | None = None) -> DokiError:
    here = (start or Path.cwd()).absolute()
    return DokiError(
        Code.CONFIG_NOT_FOUND,
        f"no doki.toml in {here} or any directory above it",
        "make one with `doki init` in your project's root, or pass --config PATH (DOKI_CONFIG)",
    )


def load_config(
    path: Path | None, *, env: str | None = None, project: str | None = None, region: str | None = None
) -> ServiceConfig:
    """Read and validate doki.toml (`path`, else the one `find_config` finds); `env` picks an
    `[environments.NAME]` section, `project`/`region` override, gcloud's configuration fills in what none names."""
    from doki_cli import gcloudconfig

    config_path = path or find_config()
    if config_path is None:
        raise not_found()
    try:
        data = tomllib.loads(config_path.read_text())
    except FileNotFoundError:
        raise DokiError(
            Code.CONFIG_NOT_FOUND,
            f"no doki.toml at {config_path.absolute()}",
            "pass --config PATH (DOKI_CONFIG) naming a doki.toml, or make one with `doki init`",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise DokiError(Code.CONFIG_INVALID, f"{config_path} is not valid TOML: {exc}", "fix the file") from None
    service = data.get("service")
    if not isinstance(service, dict):
        raise DokiError(
            Code.CONFIG_INVALID, f"{config_path} has no [service] table", 'start it with [service] and name = "my-api"'
        )
    unknown_top = sorted(set(data) - set(TABLES))
    problems = [
        f"unknown table [{key}] (allowed: [service], [release], [build], [monitoring], [preview], [environments.NAME])"
        for key in unknown_top
    ]
    merged = dict(service)
    release = data.get("release", {})
    build = data.get("build", {})
    monitoring = data.get("monitoring")
    preview = data.get("preview")
    if env is not None:
        environments = data.get("environments", {})
        if not isinstance(environments, dict) or not isinstance(environments.get(env), dict):
            known = ", ".join(sorted(environments)) if isinstance(environments, dict) else ""
            raise DokiError(
                Code.UNKNOWN_ENV,
                f"{config_path} has no environment {env!r} (known: {known or 'none'})",
                f"add an [environments.{env}] table, or pick one of the known environments",
            )
        for key, value in environments[env].items():
            if key == "release" and isinstance(value, dict) and isinstance(release, dict):
                release = {**release, **value}
            elif key == "build" and isinstance(value, dict) and isinstance(build, dict):
                build = {**build, **value}
            elif key == "monitoring" and isinstance(value, dict) and isinstance(monitoring, dict | None):
                monitoring = {**(monitoring or {}), **value}
            elif key == "preview" and isinstance(value, dict) and isinstance(preview, dict | None):
                preview = {**(preview or {}), **value}
            elif key in ("env", "secrets", "labels") and isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    # An override is the user's typing, not the file's: its problem names the option (or its variable).
    if project and not _PROJECT.fullmatch(project):
        raise DokiError(
            Code.BAD_OPTION,
            f"--project (DOKI_PROJECT) {project!r} is not a Google Cloud project id",
            "use the project's id, such as my-project-123: `gcloud projects list` shows them",
        )
    if region and not _REGION.fullmatch(region):
        raise DokiError(
            Code.BAD_OPTION,
            f"--region (DOKI_REGION) {region!r} is not a Cloud Run region",
            "use a region such as us-central1 or europe-west1: `gcloud run regions list` shows them",
        )
    if project:
        merged["project"] = project
    if region:
        merged["region"] = region
    # The last fallback for the project, below everything the user wrote for doki: what gcloud itself would use. Not
    # for the region: a doki.toml without one means us-central1 wherever it is read, as a project in CI with no gcloud
    # configuration reads it; a laptop's gcloud region would make the same file deploy a second service elsewhere,
    # silently. A missing project has no such twin: without one the command stops and says so.
    from_gcloud = {}
    if "project" not in merged and (setting := gcloudconfig.project()) is not None:
        merged["project"] = setting.value
        from_gcloud["project = "] = setting.source
    where = f"[environments.{env}] over [service]" if env else "[service]"
    config, found = _validate(merged, config_path, env)
    problems += [_blamed(problem, from_gcloud, config_path) for problem in found]
    release_config = _release(release, problems)
    build_config = _build(build, problems)
    monitoring_config = _monitoring(monitoring, problems)
    preview_config = _preview(preview, problems)
    if problems:
        raise DokiError(
            Code.CONFIG_INVALID,
            f"{config_path} {where} has {_count(problems)}:\n" + "\n".join(f"  - {p}" for p in problems),
            "fix doki.toml (its keys are described in docs/configuration.md)",
        )
    assert config is not None
    return replace(
        config, release=release_config, build=build_config, monitoring=monitoring_config, preview=preview_config
    )


def _blamed(problem: str, from_gcloud: dict[str, str], path: Path) -> str:
    """A value gcloud gave is not the file's: its problem says where it came from, so the user fixes that."""
    source = next((source for start, source in from_gcloud.items() if problem.startswith(start)), None)
    return f"{problem} (from {source}, as {path} names none)" if source else problem


def check_service_name(name: str) -> None:
    """`--service NAME` as Cloud Run names services; a DokiError naming the rule otherwise."""
    if not _SERVICE_NAME.fullmatch(name):
        raise DokiError(
            Code.BAD_OPTION,
            f"--service {name!r} is not a Cloud Run service name",
            "use lowercase letters, digits and hyphens, starting with a letter, at most 49 "
            "(`gcloud run services list` shows yours)",
        )


def service_only(name: str, *, project: str | None, region: str | None) -> ServiceConfig:
    """The service `--service NAME` names when no doki.toml is in reach: its project and region from the options
    (or DOKI_PROJECT, DOKI_REGION), else gcloud's configuration, else the default region; nothing else is known."""
    from doki_cli import gcloudconfig

    found_project = gcloudconfig.Setting(project, "--project (DOKI_PROJECT)") if project else gcloudconfig.project()
    if found_project is None:
        raise DokiError(
            Code.PROJECT_REQUIRED,
            f"no doki.toml, option or gcloud configuration names the Google Cloud project {name} runs in",
            "pass --project YOUR_PROJECT_ID (or set DOKI_PROJECT, or `gcloud config set project`)",
        )
    found_region = (
        gcloudconfig.Setting(region, "--region (DOKI_REGION)")
        if region
        else gcloudconfig.region() or gcloudconfig.Setting(DEFAULT_REGION, "the default")
    )
    for flag, found, pattern, what in (
        ("--project", found_project, _PROJECT, "Google Cloud project id"),
        ("--region", found_region, _REGION, "Cloud Run region"),
    ):
        if not pattern.fullmatch(found.value):
            raise DokiError(
                Code.BAD_OPTION,
                f"{found.value!r} (from {found.source}) is not a {what}",
                f"pass {flag} with a valid one (`gcloud config list` shows what gcloud has)",
            )
    return ServiceConfig(
        name=name,
        project=found_project.value,
        region=found_region.value,
        repository=DEFAULT_REPOSITORY,
        root=Path.cwd(),
        path=Path("(no doki.toml: --service)"),
    )


def _count(problems: list[str]) -> str:
    return "1 problem" if len(problems) == 1 else f"{len(problems)} problems"


def _unknown_key(key: str) -> str:
    """An unknown [service] key, with the key it was likely meant to be, else every key allowed."""
    import difflib

    close = difflib.get_close_matches(key, sorted(KNOWN_KEYS), n=1)
    if close:
        return f"unknown key {key!r}: did you mean {close[0]!r}?"
    return f"unknown key {key!r} (allowed: {', '.join(sorted(KNOWN_KEYS))})"


def _validate(raw: dict[str, Any], path: Path, env: str | None) -> tuple[ServiceConfig | None, list[str]]:
    problems = [_unknown_key(key) for key in sorted(set(raw) - KNOWN_KEYS)]
    defaults = {setting.name: setting.default for setting in fields(ServiceConfig) if setting.name in SETTINGS}
    defaults |= {"region": DEFAULT_REGION, "repository": DEFAULT_REPOSITORY}
    values = {**defaults, **{k: v for k, v in raw.items() if k in KNOWN_KEYS}}

    def text(key: str, pattern: re.Pattern[str], allowed: str) -> str:
        value = values.get(key)
        if value is None:
            problems.append(f"{key} is missing: {allowed}")
            return ""
        if not isinstance(value, str) or not pattern.fullmatch(value):
            problems.append(f"{key} = {value!r} is not valid: {allowed}")
            return ""
        return value

    def number(key: str) -> int:
        value = values[key]
        low, high = RANGES[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            problems.append(f"{key} = {value!r} is not valid: use a whole number from {low} to {high}")
            return low
        return value

    name = text("name", _SERVICE_NAME, "lowercase letters, digits and hyphens, starting with a letter, at most 49")
    project = text("project", _PROJECT, "a Google Cloud project id such as my-project-123 (or pass --project)")
    region = text("region", _REGION, "a Cloud Run region such as us-central1 or europe-west1")
    repository = text("repository", _REPOSITORY, "an Artifact Registry repository id: lowercase letters, digits, -")
    port = number("port")
    concurrency = number("concurrency")
    timeout = number("timeout_seconds")
    min_instances = number("min_instances")
    max_instances = number("max_instances")
    if min_instances > max_instances:
        problems.append(
            f"max_instances = {max_instances} is below min_instances = {min_instances}: raise max_instances"
        )
    memory = _memory(values["memory"], problems)
    cpu = _cpu(values["cpu"], memory, concurrency, problems)
    settings = _run_settings(raw, project=project, region=region, port=port, problems=problems)
    _settings_with_resources(settings, cpu=cpu, memory=memory, problems=problems)
    ingress = values["ingress"]
    if ingress not in INGRESS:
        problems.append(f"ingress = {ingress!r} is not valid: use one of {', '.join(INGRESS)}")
    account = _account("service_account", values["service_account"], problems)
    allow = values["allow_unauthenticated"]
    if not isinstance(allow, bool):
        problems.append(f"allow_unauthenticated = {allow!r} is not valid: use true or false")
    check = values["invoker_iam_check"]
    if check is not None and not isinstance(check, bool):
        problems.append(f"invoker_iam_check = {check!r} is not valid: use true or false")
    elif check is False and allow is False:
        problems.append(
            "invoker_iam_check = false lets anyone invoke the service, but allow_unauthenticated = false asks for "
            "authenticated callers only: set invoker_iam_check = true (or drop it)"
        )
    env_vars = _env(values.get("env", {}), problems)
    secrets = _secrets(values.get("secrets", {}), problems)
    for both in sorted(set(env_vars) & set(secrets)):
        problems.append(f"{both} is in both [env] and [secrets]: keep it in one (secret values belong in [secrets])")
    if problems:
        return None, problems
    config = ServiceConfig(
        name=name,
        project=project,
        region=region,
        repository=repository,
        root=path.resolve().parent,
        port=port,
        memory=str(values["memory"]),
        cpu=cpu,
        concurrency=concurrency,
        timeout_seconds=timeout,
        min_instances=min_instances,
        max_instances=max_instances,
        ingress=ingress,
        service_account=account,
        allow_unauthenticated=allow,
        invoker_iam_check=check,
        env=env_vars,
        secrets=secrets,
        environment=env,
        path=path,
        settings=settings,
    )
    return config, []


def _run_settings(raw: dict[str, Any], *, project: str, region: str, port: int, problems: list[str]) -> RunSettings:
    """The Cloud Run settings doki.toml declares (None for each it leaves out: kept as the live service has it),
    checked by the rules Cloud Run applies, which the emulator holds with their references
    (doki_cli/emulator/run/validation.py)."""

    def flag(key: str) -> bool | None:
        value = raw.get(key)
        if value is not None and not isinstance(value, bool):
            problems.append(f"{key} = {value!r} is not valid: use true or false")
            return None
        return value

    environment = raw.get("execution_environment")
    if environment is not None and environment not in EXECUTION_ENVIRONMENTS:
        problems.append(f"execution_environment = {environment!r} is not valid: use gen1 or gen2")
        environment = None
    cloudsql = _cloudsql(raw.get("cloudsql_instances"), project, region, problems)
    volumes = _volumes(raw.get("volumes"), problems)
    return RunSettings(
        cpu_idle=flag("cpu_idle"),
        startup_cpu_boost=flag("startup_cpu_boost"),
        execution_environment=environment,
        session_affinity=flag("session_affinity"),
        labels=_labels(raw.get("labels"), problems),
        vpc=_vpc(raw.get("vpc"), project, region, problems),
        cloudsql_instances=cloudsql,
        volumes=volumes,
        startup_probe=_probe("startup_probe", raw.get("startup_probe"), port, problems),
        liveness_probe=_probe("liveness_probe", raw.get("liveness_probe"), port, problems),
    )


def _settings_with_resources(settings: RunSettings, *, cpu: str, memory: int, problems: list[str]) -> None:
    """The rules that tie the declared settings to the CPU and memory (https://cloud.google.com/run/docs/configuring/
    services/cpu, "If you use less than 1 CPU"; memory-limits: the second generation needs 512Mi)."""
    cpus = cpu_count(cpu)
    if cpus is not None and cpus < 1:
        if settings.cpu_idle is False:
            problems.append(f"cpu_idle = false (CPU always allocated) needs cpu 1 or more (cpu is {cpu})")
        if settings.execution_environment == "gen2":
            problems.append(f'execution_environment = "gen2" needs cpu 1 or more (cpu is {cpu})')
    if settings.execution_environment == "gen2" and memory < 512 * 2**20:
        problems.append('execution_environment = "gen2" needs memory 512Mi or more')
    if settings.execution_environment == "gen1" and any(v.kind in GEN2_VOLUMES for v in settings.volumes or ()):
        kinds = sorted({v.kind for v in settings.volumes or () if v.kind in GEN2_VOLUMES})
        problems.append(
            f"{' and '.join(kinds)} volumes need the second generation execution environment: set "
            'execution_environment = "gen2" (or leave it out)'
        )


# Google Cloud's label rules (https://cloud.google.com/resource-manager/docs/creating-managing-labels#requirements).
MAX_LABELS = 64


def _label_text(text: str, *, key: bool) -> bool:
    """Lowercase letters (international ones too), digits, _ and -, at most 63; a key starts with a letter."""
    fits = all(c.islower() or c.isdigit() or c in "_-" for c in text) and len(text) <= MAX_LABEL_LENGTH
    return fits and (not key or (bool(text) and text[0].islower()))


MAX_LABEL_LENGTH = 63


def _labels(table: Any, problems: list[str]) -> dict[str, str] | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        problems.append('labels must be a table of key = "value"')
        return None
    if len(table) > MAX_LABELS:
        problems.append(f"labels has {len(table)} labels: Google Cloud allows at most {MAX_LABELS}")
    labels = {}
    for key, value in table.items():
        if not _label_text(key, key=True):
            problems.append(
                f"labels key {key!r} is not valid: start with a lowercase letter; lowercase letters, digits, _ and -, "
                "at most 63"
            )
        elif not isinstance(value, str) or not _label_text(value, key=False):
            problems.append(
                f"labels {key} = {value!r} is not valid: use a string of lowercase letters, digits, _ and -, at most 63"
            )
        else:
            labels[key] = value
    return labels


def _vpc(table: Any, project: str, region: str, problems: list[str]) -> Vpc | None:
    """A connector, or Direct VPC egress through one network interface: Cloud Run refuses both, or egress with
    neither ("one and only one of connector and network_interfaces must be set", see the emulator's VpcAccess rules).
    A connector's name alone is the service's project and region's, written as Cloud Run v2 names a connector
    (projects/P/locations/L/connectors/C, the proto's comment on VpcAccess.connector)."""
    if table is None:
        return None
    if not isinstance(table, dict):
        problems.append('vpc must be a table: [service.vpc] with connector = "NAME", or network and subnet')
        return None
    problems += [
        f"unknown key vpc.{key} (allowed: {', '.join(VPC_KEYS)})" for key in sorted(set(table) - set(VPC_KEYS))
    ]
    texts = {}
    for key in ("connector", "network", "subnet", "egress"):
        value = table.get(key, "")
        if not isinstance(value, str):
            problems.append(f"vpc.{key} = {value!r} is not valid: use a string")
            value = ""
        texts[key] = value
    tags = table.get("network_tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) and _NETWORK_TAG.fullmatch(tag) for tag in tags):
        problems.append(
            f"vpc.network_tags = {tags!r} is not valid: use a list of tags of lowercase letters, digits and -, "
            "starting with a letter, at most 63"
        )
        tags = []
    connector, direct = texts["connector"], texts["network"] or texts["subnet"]
    if connector and not _CONNECTOR.fullmatch(connector):
        problems.append(
            f"vpc.connector = {connector!r} is not valid: use the connector's name (lowercase letters, digits and -, "
            "starting with a letter, at most 25) or projects/PROJECT/locations/REGION/connectors/NAME"
        )
    for key in ("network", "subnet"):
        if texts[key] and not _VPC_NAME[key].fullmatch(texts[key]):
            problems.append(
                f"vpc.{key} = {texts[key]!r} is not valid: use its name (lowercase letters, digits and -, starting "
                "with a letter, at most 63) or its resource name"
            )
    if connector and direct:
        problems.append(
            "vpc names a connector and a network or subnet: use one, a connector or Direct VPC egress, not both"
        )
    if texts["egress"] == "all":
        texts["egress"] = "all-traffic"  # gcloud's --vpc-egress still takes the old name for it
    if texts["egress"] and texts["egress"] not in VPC_EGRESS:
        problems.append(f"vpc.egress = {texts['egress']!r} is not valid: use {' or '.join(VPC_EGRESS)}")
    if (texts["egress"] or tags) and not (connector or direct):
        problems.append("vpc.egress and vpc.network_tags need vpc.connector, or vpc.network or vpc.subnet")
    if tags and connector:
        problems.append("vpc.network_tags apply to Direct VPC egress: use them with network or subnet, not a connector")
    if connector and "/" not in connector and project:
        connector = f"projects/{project}/locations/{region}/connectors/{connector}"
    # Cloud Run's default egress, written out, so the service reads back as declared.
    egress = texts["egress"] or ("private-ranges-only" if connector or direct else "")
    return Vpc(connector, texts["network"], texts["subnet"], tuple(tags), egress)


_CONNECTOR = re.compile(
    r"([a-z][-a-z0-9]{0,23}[a-z0-9]|projects/[^/]+/locations/[^/]+/connectors/[a-z][-a-z0-9]{0,23}[a-z0-9])"
)
# A name, or the resource name of a network (global) or a subnet (regional).
_VPC_NAME = {
    "network": re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?|projects/[^/]+/global/networks/[^/]+"),
    "subnet": re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?|projects/[^/]+/regions/[^/]+/subnetworks/[^/]+"),
}
_NETWORK_TAG = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
# PROJECT:REGION:INSTANCE ("{project}:{location}:{instance}", the proto's comment on CloudSqlInstance.instances), a
# domain-scoped project's id holding a colon of its own (example.com:project).
_CLOUDSQL = re.compile(r"[a-z][-a-z0-9.]*(:[a-z][-a-z0-9]*)?:[a-z0-9-]+:[a-z][-a-z0-9]*")
_INSTANCE = re.compile(r"[a-z][-a-z0-9]{0,97}[a-z0-9]?")
# How gcloud names a Cloud SQL volume and where it mounts it, in the v2 shape Google's own examples use
# (https://cloud.google.com/sql/docs/postgres/connect-run, the YAML and Terraform tabs: a volume "cloudsql" with
# cloudSqlInstance.instances, mounted at /cloudsql; the proto's comment on VolumeMount.mount_path: "For Cloud SQL
# volumes, it can be left empty, or must otherwise be /cloudsql"). doki.toml's own volumes take neither.
CLOUD_SQL_VOLUME = "cloudsql"
CLOUD_SQL_MOUNT = "/cloudsql"


def _cloudsql(items: Any, project: str, region: str, problems: list[str]) -> tuple[str, ...] | None:
    """Connection names PROJECT:REGION:INSTANCE; a bare instance name is the service's project and region's, as gcloud's
    --add-cloudsql-instances reads one."""
    if items is None:
        return None
    if not isinstance(items, list):
        problems.append('cloudsql_instances must be a list such as ["my-project:us-central1:my-db"]')
        return None
    names: list[str] = []
    for item in items:
        if isinstance(item, str) and _INSTANCE.fullmatch(item) and project:
            item = f"{project}:{region}:{item}"
        if not isinstance(item, str) or not _CLOUDSQL.fullmatch(item):
            problems.append(
                f"cloudsql_instances: {item!r} is not a Cloud SQL connection name: use PROJECT:REGION:INSTANCE "
                "(`gcloud sql instances describe NAME` shows it as connectionName)"
            )
        elif item in names:
            problems.append(f"cloudsql_instances names {item} twice")
        else:
            names.append(item)
    return tuple(names)


_VOLUME_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
# The volume types Cloud Run mounts only in the second generation execution environment: "Network file system
# support" is among its features (https://cloud.google.com/run/docs/about-execution-environments).
GEN2_VOLUMES = ("nfs",)
# "Cloud Run does not allow you to mount a volume at /dev, /proc and /sys, or on their subdirectories"
# (https://cloud.google.com/run/docs/tutorials/network-filesystems-filestore, "Disallowed paths").
DISALLOWED_MOUNTS = ("/dev", "/proc", "/sys")


def _volumes(items: Any, problems: list[str]) -> tuple[Volume, ...] | None:
    if items is None:
        return None
    example = '[[service.volumes]] with name = "cache", type = "in-memory", mount_path = "/cache"'
    if not isinstance(items, list):
        problems.append(f"volumes must be a list of tables: {example}")
        return None
    volumes: list[Volume] = []
    for number, item in enumerate(items, 1):
        where = f"volumes #{number}"
        if not isinstance(item, dict):
            problems.append(f"{where} is not a table: {example}")
            continue
        kind = item.get("type")
        if kind not in VOLUME_TYPES:
            problems.append(f"{where}: type = {kind!r} is not valid: use one of {', '.join(VOLUME_TYPES)}")
            continue
        required, optional = VOLUME_TYPES[kind]
        allowed = ("name", "type", "mount_path", *required, *optional)
        unknown = sorted(set(item) - set(allowed))
        if unknown:
            problems.append(f"{where} ({kind}) has unknown keys {', '.join(unknown)} (allowed: {', '.join(allowed)})")
        missing = [key for key in ("name", "mount_path", *required) if key not in item]
        if missing:
            problems.append(f"{where} ({kind}) needs {', '.join(missing)}")
            continue
        found = len(problems)
        name, mount = item["name"], item["mount_path"]
        if not isinstance(name, str) or not _VOLUME_NAME.fullmatch(name):
            problems.append(f"{where}: name = {name!r} is not valid: lowercase letters, digits and -, at most 63")
        elif name == CLOUD_SQL_VOLUME:
            problems.append(
                f"{where}: name {name!r} is Cloud Run's for Cloud SQL: use cloudsql_instances for that, or another name"
            )
        elif any(v.name == name for v in volumes):
            problems.append(f"{where}: name {name!r} is taken by another volume")
        if not isinstance(mount, str) or not mount.startswith("/") or ":" in mount:
            problems.append(f"{where}: mount_path = {mount!r} is not valid: use an absolute path without ':'")
        elif any(mount == path or mount.startswith(path + "/") for path in DISALLOWED_MOUNTS):
            problems.append(
                f"{where}: mount_path {mount} is not allowed: Cloud Run mounts nothing at or under /dev, /proc or /sys"
            )
        elif mount.rstrip("/") == CLOUD_SQL_MOUNT:
            problems.append(
                f"{where}: mount_path {CLOUD_SQL_MOUNT} is where Cloud Run mounts Cloud SQL: use another path"
            )
        elif any(v.mount_path.rstrip("/") == mount.rstrip("/") for v in volumes):
            problems.append(f"{where}: mount_path {mount} is taken by another volume")
        texts = {}
        for key in ("size_limit", "bucket", "location", "secret", "version", "path"):
            value = item.get(key, "")
            if not isinstance(value, str):
                problems.append(f"{where}: {key} = {value!r} is not valid: use a string")
            texts[key] = str(value)
        read_only = item.get("read_only", False)
        if not isinstance(read_only, bool):
            problems.append(f"{where}: read_only = {read_only!r} is not valid: use true or false")
        if texts["size_limit"] and not _MEMORY.fullmatch(texts["size_limit"]):
            problems.append(f"{where}: size_limit = {texts['size_limit']!r} is not valid: use a size such as 512Mi")
        if kind == "cloud-storage" and not _BUCKET.fullmatch(texts["bucket"]):
            problems.append(
                f"{where}: bucket = {texts['bucket']!r} is not a bucket name: 3 to 63 lowercase letters, digits, -, _ "
                "and ., starting and ending with a letter or digit"
            )
        if kind == "nfs" and not re.fullmatch(r"[^:/\s]+:/\S*", texts["location"]):
            problems.append(f"{where}: location = {texts['location']!r} is not valid: use SERVER:/PATH")
        if kind == "secret":
            # An id, or another project's projects/P/secrets/S (the proto's comment on SecretVolumeSource.secret).
            secret_id = re.sub(r"^projects/[^/]+/secrets/", "", texts["secret"])
            if not _SECRET_ID.fullmatch(secret_id):
                problems.append(
                    f"{where}: secret = {texts['secret']!r} is not a Secret Manager secret: its id, or "
                    "projects/PROJECT/secrets/ID"
                )
            version = texts["version"] or "latest"
            # "'latest' ..., or an integer or a secret alias" (the proto's comment on VersionToPath.version).
            if not (version.isdigit() and int(version) > 0) and not _VERSION_ALIAS.fullmatch(version):
                problems.append(
                    f"{where}: version = {version!r} is not valid: use latest, a number from 1 or a version alias"
                )
            texts["version"] = version
            if not texts["path"] or texts["path"].startswith("/") or ".." in texts["path"].split("/"):
                problems.append(f"{where}: path = {texts['path']!r} is not valid: a file's path inside the volume")
        if len(problems) == found:
            volumes.append(Volume(name, kind, mount, read_only=read_only is True, **texts))
    # By name, as the adapter reads them: their order in doki.toml is no setting of Cloud Run's.
    return tuple(sorted(volumes, key=lambda volume: volume.name))


_BUCKET = re.compile(r"[a-z0-9][-_.a-z0-9]{1,61}[a-z0-9]")
# Secret Manager's version aliases: letters, digits, - and _, starting with a letter, up to 63.
_VERSION_ALIAS = re.compile(r"[A-Za-z][-_A-Za-z0-9]{0,62}")


def _probe(key: str, value: Any, container_port: int, problems: list[str]) -> Probe | None:
    """A probe table, or false for none. The limits are Cloud Run's (the proto's comments on Probe, see the emulator's
    PROBE_MAX_DELAY): a startup probe waits and repeats for at most 240 seconds, a liveness probe is not TCP."""
    if value is None:
        return None
    if value is False and key == "liveness_probe":
        return NO_PROBE
    example = f'[service.{key}] with type = "http", path = "/"'
    if not isinstance(value, dict):
        # Cloud Run gives a serving container without one a TCP startup probe: only a liveness probe can be none.
        none = ", or false for none" if key == "liveness_probe" else ""
        problems.append(f"{key} must be a table ({example}){none}")
        return None
    problems += [
        f"unknown key {key}.{name} (allowed: {', '.join(PROBE_KEYS)})" for name in sorted(set(value) - set(PROBE_KEYS))
    ]
    startup = key == "startup_probe"
    kinds = PROBE_TYPES if startup else ("http", "grpc")
    kind = value.get("type")
    if not isinstance(kind, str) or kind not in kinds:
        why = "" if startup else " (Cloud Run's liveness probes are not TCP)"
        problems.append(f"{key}.type = {kind!r} is not valid: use {' or '.join(kinds)}{why}")
        return None
    found = len(problems)
    path = value.get("path", "/" if kind == "http" else "")
    if kind == "http" and (not isinstance(path, str) or not path or any(c.isspace() for c in path)):
        problems.append(f"{key}.path = {path!r} is not valid: use a path such as /healthz")
    elif kind != "http" and "path" in value:
        problems.append(f"{key}.path applies to http probes only")
    service = value.get("service", "")
    if kind != "grpc" and "service" in value:
        problems.append(f"{key}.service applies to grpc probes only")
    elif not isinstance(service, str):
        problems.append(f"{key}.service = {service!r} is not valid: use a gRPC service name")
    longest = 240 if startup else 3600
    defaults = Probe(kind)
    numbers = {}
    for name, low, high in (
        ("port", 1, 65535),
        ("initial_delay_seconds", 0, longest),
        ("timeout_seconds", 1, 3600),
        ("period_seconds", 1, longest),
        ("failure_threshold", 1, 1000),
    ):
        number = value.get(name, getattr(defaults, name))
        if name == "port" and "port" not in value:
            numbers[name] = 0
            continue
        if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
            problems.append(f"{key}.{name} = {number!r} is not valid: use a whole number from {low} to {high}")
            number = getattr(defaults, name)
        numbers[name] = number
    if numbers["timeout_seconds"] > numbers["period_seconds"]:
        problems.append(
            f"{key}.timeout_seconds ({numbers['timeout_seconds']}) is above period_seconds "
            f"({numbers['period_seconds']}): a probe times out before the next one starts"
        )
    if startup and numbers["failure_threshold"] * numbers["period_seconds"] > 240:
        problems.append(
            f"{key}: failure_threshold * period_seconds is {numbers['failure_threshold'] * numbers['period_seconds']}"
            " seconds, above the 240 Cloud Run allows a startup probe"
        )
    if len(problems) != found:
        return None
    return Probe(
        kind,
        path=path if kind == "http" else "",
        # The container's port, named or left out, is one probe (as the adapter reads it back).
        port=0 if numbers["port"] == container_port else numbers["port"],
        service=service,
        initial_delay_seconds=numbers["initial_delay_seconds"],
        timeout_seconds=numbers["timeout_seconds"],
        period_seconds=numbers["period_seconds"],
        failure_threshold=numbers["failure_threshold"],
    )


def _account(key: str, account: Any, problems: list[str]) -> str | None:
    """`account` when it is unset or a service account's email; else None, its problem listed under `key`."""
    if account is None or (
        isinstance(account, str) and (_SERVICE_ACCOUNT.fullmatch(account) or _COMPUTE_DEFAULT.fullmatch(account))
    ):
        return account
    problems.append(
        f"{key} = {account!r} is not a service account email (NAME@PROJECT.iam.gserviceaccount.com, "
        "or PROJECT_NUMBER-compute@developer.gserviceaccount.com)"
    )
    return None


def resource_problems(*, memory: str, cpu: str, concurrency: int, min_instances: int, max_instances: int) -> list[str]:
    """What is wrong with this combination of resources, by the same rules as doki.toml (for `doki scale`)."""
    problems: list[str] = []
    for key, value in (
        ("concurrency", concurrency),
        ("min_instances", min_instances),
        ("max_instances", max_instances),
    ):
        low, high = RANGES[key]
        if not low <= value <= high:
            problems.append(f"{key.replace('_', ' ')} {value} is not valid: use a whole number from {low} to {high}")
    if min_instances > max_instances:
        problems.append(f"max instances {max_instances} is below min instances {min_instances}")
    _cpu(cpu, _memory(memory, problems), concurrency, problems)
    return problems


def kept_setting_problems(
    *,
    cpu: str | None,
    memory: str | None,
    cpu_always_allocated: bool,
    gen2: bool,
    sidecar_cpus: float,
    service: str,
) -> list[str]:
    """What Cloud Run would refuse in a new `cpu` or `memory` (None: unchanged, which the live revision runs with)
    given settings made outside doki.toml, which a deploy keeps: below 1 CPU in all (`sidecar_cpus`: what the other
    containers add) a revision needs CPU allocated only during requests and the first generation execution
    environment (https://cloud.google.com/run/docs/configuring/services/cpu, "If you use less than 1 CPU"), and the
    second generation needs at least 512Mi (https://cloud.google.com/run/docs/configuring/services/memory-limits)."""
    problems = []
    cpus = cpu_count(cpu) if cpu is not None else None
    if cpus is not None and cpus + sidecar_cpus < 1:
        what = f"cpu {cpu}" + (f" ({cpus + sidecar_cpus:g} with the other containers)" if sidecar_cpus else "")
        if cpu_always_allocated:
            problems.append(
                f"{what} is below 1, which Cloud Run refuses while the service has CPU always allocated: use cpu 1 "
                f"or more, or allocate CPU only during requests (gcloud run services update {service} "
                "--cpu-throttling)"
            )
        if gen2:
            problems.append(
                f"{what} is below 1, which Cloud Run refuses in the second generation execution environment the "
                f"service runs in: use cpu 1 or more, or the first generation (gcloud run services update {service} "
                "--execution-environment gen1)"
            )
    match = _MEMORY.fullmatch(memory) if memory is not None else None
    if gen2 and match is not None and int(match.group(1)) * _MEMORY_BYTES[match.group(2)] < 512 * 2**20:
        problems.append(
            f"memory {memory} is below 512Mi, the least the second generation execution environment the service "
            f"runs in allows: use 512Mi or more, or the first generation (gcloud run services update {service} "
            "--execution-environment gen1)"
        )
    return problems


def cpu_count(text: str) -> float | None:
    """CPUs as Cloud Run reads them: "1", "0.5", "500m", "1000m"; None when `text` is none of those."""
    if re.fullmatch(r"[0-9]+m", text):
        return int(text[:-1]) / 1000
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
        return float(text)
    return None


def memory_bytes(text: str) -> int | None:
    """A memory quantity as doki.toml and Cloud Run write it ("512Mi", "1Gi", "2G") in bytes; None for anything else."""
    match = _MEMORY.fullmatch(text)
    return int(match.group(1)) * _MEMORY_BYTES[match.group(2)] if match else None


def _memory(value: Any, problems: list[str]) -> int:
    match = _MEMORY.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        problems.append(f"memory = {value!r} is not valid: use Kubernetes quantities like 512Mi or 1Gi")
        return 512 * 2**20
    size = int(match.group(1)) * _MEMORY_BYTES[match.group(2)]
    if not 128 * 2**20 <= size <= 32 * 2**30:
        problems.append(f"memory = {value!r} is outside what Cloud Run allows: use 128Mi to 32Gi")
    return size


def _cpu(value: Any, memory: int, concurrency: int, problems: list[str]) -> str:
    text = str(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else ""
    cpus: float | None = None
    if text in WHOLE_CPUS:
        cpus = float(text)
    elif re.fullmatch(r"[0-9]{2,3}m", text) and 80 <= int(text[:-1]) < 1000:
        cpus = int(text[:-1]) / 1000
    elif re.fullmatch(r"0\.[0-9]+", text) and 0.08 <= float(text) < 1:
        cpus = float(text)
    if cpus is None:
        problems.append(f"cpu = {value!r} is not valid: use 1, 2, 4, 6 or 8, or a fraction below 1 such as 0.5 or 500m")
        return "1"
    gib = memory / 2**30
    needs = [(24, 8), (16, 6), (8, 4), (4, 2)]
    for limit, minimum in needs:
        if gib > limit and cpus < minimum:
            problems.append(f"memory above {limit}Gi needs cpu {minimum} or more (cpu is {text})")
            break
    if (cpus >= 6 and gib < 4) or (cpus >= 4 and gib < 2):
        problems.append(f"cpu {text} needs more memory: at least {'4Gi' if cpus >= 6 else '2Gi'}")
    # Below one CPU, up to 512Mi, or 1Gi from half a CPU (https://cloud.google.com/run/docs/configuring/services/memory-limits).
    if cpus < 1 and memory > (2**30 if cpus >= 0.5 else 512 * 2**20):
        problems.append(f"cpu {text} allows at most {'1Gi' if cpus >= 0.5 else '512Mi'} of memory")
    if cpus < 1 and concurrency != 1:
        problems.append(f"cpu {text} (below 1) needs concurrency = 1")
    return text


def env_name_problem(name: str) -> str | None:
    """Why doki.toml cannot name the variable `name`, or None when it can."""
    if name in RESERVED_ENV:
        return "Cloud Run sets it itself"
    if name.startswith(GOOGLE_ENV_PREFIX):
        return f"Cloud Run keeps names starting with {GOOGLE_ENV_PREFIX} for itself"
    if not _ENV_NAME.fullmatch(name):
        return "use letters, digits and _"
    return None


def _env(table: Any, problems: list[str]) -> dict[str, str]:
    if not isinstance(table, dict):
        problems.append("env must be a table of NAME = value")
        return {}
    env: dict[str, str] = {}
    for key, value in table.items():
        reason = env_name_problem(key)
        if reason is not None:
            problems.append(f"env name {key!r} is not allowed: {reason}")
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            env[key] = ",".join(value)  # e.g. ALLOWED_ORIGINS as a list
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            env[key] = str(value)
        elif isinstance(value, bool):
            env[key] = "true" if value else "false"
        else:
            problems.append(
                f"env {key} = {value!r} is not valid: use a string, a number, a boolean or a list of strings"
            )
    return env


def _secrets(table: Any, problems: list[str]) -> dict[str, SecretRef]:
    if not isinstance(table, dict):
        problems.append('secrets must be a table of ENV_NAME = "secret-name" or "secret-name:version"')
        return {}
    secrets: dict[str, SecretRef] = {}
    for key, value in table.items():
        if not _ENV_NAME.fullmatch(key) or key in RESERVED_ENV or key.startswith(GOOGLE_ENV_PREFIX):
            problems.append(
                f"secrets name {key!r} is not allowed: use letters, digits and _, not {', '.join(RESERVED_ENV)} "
                f"or {GOOGLE_ENV_PREFIX}*"
            )
            continue
        secret, _, version = value.partition(":") if isinstance(value, str) else ("", "", "")
        if not _SECRET_ID.fullmatch(secret):
            problems.append(
                f"secrets {key} = {value!r} is not valid: name a Secret Manager secret "
                '(letters, digits, - and _, up to 255) as "name" or "name:version"'
            )
        elif version and version != "latest" and not (version.isdigit() and int(version) > 0):
            problems.append(f"secrets {key} = {value!r} has version {version!r}: use latest or a number from 1")
        else:
            secrets[key] = SecretRef(secret, version or "latest")
    return secrets


def _release(table: Any, problems: list[str]) -> ReleaseConfig:
    if not isinstance(table, dict):
        problems.append("release must be a table: [release] with checks, steps, step_wait_seconds, attempts")
        return ReleaseConfig()
    problems += [
        f"unknown key release.{key} (allowed: {', '.join(RELEASE_KEYS)})"
        for key in sorted(set(table) - set(RELEASE_KEYS))
    ]
    defaults = ReleaseConfig()

    def number(key: str, low: int, high: int) -> int:
        value = table.get(key, getattr(defaults, key))
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            problems.append(f"release.{key} = {value!r} is not valid: use a whole number from {low} to {high}")
            return int(getattr(defaults, key))
        return value

    steps = table.get("steps", list(defaults.steps))
    if (
        not isinstance(steps, list)
        or not steps
        or any(isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= 100 for p in steps)
        or any(a >= b for a, b in itertools.pairwise(steps))
        or steps[-1] != 100
    ):
        problems.append(
            f"release.steps = {steps!r} is not valid: use rising percentages from 1 to 100 that end at 100, "
            "such as [10, 50, 100]"
        )
        steps = list(defaults.steps)
    return ReleaseConfig(
        checks=_checks(table.get("checks", []), problems),
        steps=tuple(steps),
        step_wait_seconds=number("step_wait_seconds", 0, 3600),
        attempts=number("attempts", 1, 60),
        lock_timeout_minutes=number("lock_timeout_minutes", 1, 24 * 60),
        invoker_account=_account("release.invoker_account", table.get("invoker_account"), problems),
    )


def _build(table: Any, problems: list[str]) -> BuildConfig:
    if not isinstance(table, dict):
        problems.append("build must be a table: [build] with service_account")
        return BuildConfig()
    problems += [
        f"unknown key build.{key} (allowed: {', '.join(BUILD_KEYS)})" for key in sorted(set(table) - set(BUILD_KEYS))
    ]
    return BuildConfig(service_account=_account("build.service_account", table.get("service_account"), problems))


_EMAIL = re.compile(r"[^@\s,]+@[^@\s,]+\.[^@\s,]+")


def _monitoring(table: Any, problems: list[str]) -> MonitoringSettings:
    if table is None:
        return MonitoringSettings()
    if not isinstance(table, dict):
        problems.append('monitoring must be a table: [monitoring] with emails = ["ops@example.com"]')
        return MonitoringSettings()
    problems += [
        f"unknown key monitoring.{key} (allowed: {', '.join(MONITORING_KEYS)})"
        for key in sorted(set(table) - set(MONITORING_KEYS))
    ]
    defaults = MonitoringSettings()
    emails = table.get("emails", [])
    if not isinstance(emails, list) or any(not isinstance(e, str) or not _EMAIL.fullmatch(e) for e in emails):
        problems.append(f'monitoring.emails = {emails!r} is not valid: use a list of addresses, ["ops@example.com"]')
        emails = []
    elif len(set(emails)) != len(emails):
        problems.append(f"monitoring.emails = {emails!r} names an address twice: name each once")

    def duration(key: str, default: int, allowed: str, valid: Callable[[int], bool]) -> int:
        value = table.get(key)
        if value is None:
            return default
        seconds = _duration_seconds(value)
        if seconds is None or not valid(seconds):
            problems.append(f"monitoring.{key} = {value!r} is not valid: {allowed}")
            return default
        return seconds

    period = duration(
        "uptime_period", defaults.uptime_period_seconds, 'use "1m", "5m", "10m" or "15m"', lambda s: s in UPTIME_PERIODS
    )
    low, high = UPTIME_TIMEOUT_RANGE
    timeout = duration(
        "uptime_timeout", defaults.uptime_timeout_seconds, 'use from "1s" to "60s"', lambda s: low <= s <= high
    )
    after = duration(
        "alert_after",
        defaults.alert_after_seconds,
        'use whole minutes from "0s" to "24h", such as "5m" (Cloud Monitoring takes multiples of a minute)',
        lambda s: s % 60 == 0 and s <= MAX_ALERT_AFTER_SECONDS,
    )
    ratio: Any = table.get("max_5xx_ratio", defaults.max_5xx_ratio)
    if ratio is False:
        ratio = None
    elif isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio < 1:
        problems.append(
            f"monitoring.max_5xx_ratio = {ratio!r} is not valid: use a share between 0 and 1, such as 0.05 for 5%, "
            "or false for no such alert"
        )
        ratio = defaults.max_5xx_ratio
    latency: Any = table.get("max_p95_latency_ms", defaults.max_p95_latency_ms)
    if latency is False:
        latency = None
    elif isinstance(latency, bool) or not isinstance(latency, int) or not 1 <= latency <= 3_600_000:
        problems.append(
            f"monitoring.max_p95_latency_ms = {latency!r} is not valid: use whole milliseconds from 1 to 3600000 (the "
            "longest request Cloud Run serves), or false for no such alert"
        )
        latency = defaults.max_p95_latency_ms
    return MonitoringSettings(
        declared=True,
        emails=tuple(emails),
        uptime_period_seconds=period,
        uptime_timeout_seconds=timeout,
        max_5xx_ratio=None if ratio is None else float(ratio),
        max_p95_latency_ms=latency,
        alert_after_seconds=after,
    )


def _preview(table: Any, problems: list[str]) -> PreviewSettings:
    from doki.origins import origin_problem

    if table is None:
        return PreviewSettings()
    if not isinstance(table, dict):
        problems.append('preview must be a table: [preview] with origins = ["https://pr-{pr}--my-site.example"]')
        return PreviewSettings()
    unknown = sorted(set(table) - set(PREVIEW_KEYS))
    problems += [f"unknown key preview.{key} (allowed: {', '.join(PREVIEW_KEYS)})" for key in unknown]
    origins = table.get("origins", [])
    if not isinstance(origins, list) or any(not isinstance(o, str) for o in origins):
        problems.append(f'preview.origins = {origins!r} is not valid: use a list, ["https://pr-{{pr}}--site.example"]')
        origins = []
    for origin in origins:
        try:
            # Checked as the origin of a preview would be: each field filled in with a value it may take.
            filled = preview_origin(origin, {"pr": "12", "branch": "feature-x", "tag": "pr-12"})
        except (KeyError, ValueError, IndexError, AttributeError):
            fields = ", ".join(f"{{{name}}}" for name in PREVIEW_FIELDS)
            problems.append(f"preview.origins: {origin!r} names a field other than {fields}")
            continue
        problem = "'*' opens the API to every site" if "*" in origin else origin_problem(filled)
        if problem is not None:
            problems.append(f"preview.origins: {origin!r} is not an origin: {problem}")
    keep = table.get("keep", 0)
    if isinstance(keep, bool) or not isinstance(keep, int) or not 0 <= keep <= 100:
        problems.append(f"preview.keep = {keep!r} is not valid: use a whole number of revisions from 0 to 100")
        keep = 0
    return PreviewSettings(tuple(origins), keep)


def preview_origin(template: str, fields: Mapping[str, str]) -> str:
    """A [preview] origin filled in for one preview; KeyError names a field it does not know."""
    return template.format_map({name: fields[name] for name in PREVIEW_FIELDS if name in fields})


_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def _duration_seconds(value: Any) -> int | None:
    """Seconds in a duration written as gcloud writes them ("90s", "5m", "1h30m", "0s"); None when it is not one."""
    if not isinstance(value, str) or not value.strip():
        return None
    if (match := _DURATION.fullmatch(value.strip().lower())) is None:
        return None
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _checks(items: Any, problems: list[str]) -> tuple[SmokeCheck, ...]:
    example = '[[release.checks]] with path = "/docs", status = 200, contains = "Swagger"'
    if not isinstance(items, list):
        problems.append(f"release.checks must be a list of tables: {example}")
        return ()
    checks = []
    for number, item in enumerate(items, 1):
        where = f"release.checks #{number}"
        if not isinstance(item, dict):
            problems.append(f"{where} is not a table: {example}")
            continue
        unknown = sorted(set(item) - set(CHECK_KEYS))
        if unknown:
            problems.append(f"{where} has unknown keys {', '.join(unknown)} (allowed: {', '.join(CHECK_KEYS)})")
        path, status, contains = item.get("path"), item.get("status", 200), item.get("contains")
        if not isinstance(path, str) or not path.startswith("/") or any(c.isspace() for c in path):
            problems.append(f"{where}: path = {path!r} is not valid: use a path from the root such as /docs")
        elif isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            problems.append(f"{where}: status = {status!r} is not valid: use an HTTP status such as 200")
        elif contains is not None and (not isinstance(contains, str) or not contains):
            problems.append(f"{where}: contains = {contains!r} is not valid: use a non-empty string")
        else:
            checks.append(SmokeCheck(path, status, contains))
    return tuple(checks)
