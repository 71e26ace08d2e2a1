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
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from doki_cli.errors import Code, DokiError

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
KNOWN_KEYS = {"name", "project", "region", "repository", "env", "secrets", *SETTINGS}
RELEASE_KEYS = ("checks", "steps", "step_wait_seconds", "attempts", "lock_timeout_minutes", "invoker_account")
BUILD_KEYS = ("service_account",)
# The tables at the top of a doki.toml; an [environments.NAME] section may override [release] and [build] too.
TABLES = ("service", "release", "build", "environments")
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
        f"unknown table [{key}] (allowed: [service], [release], [build], [environments.NAME])" for key in unknown_top
    ]
    merged = dict(service)
    release = data.get("release", {})
    build = data.get("build", {})
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
            elif key in ("env", "secrets") and isinstance(value, dict) and isinstance(merged.get(key), dict):
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
    if problems:
        raise DokiError(
            Code.CONFIG_INVALID,
            f"{config_path} {where} has {_count(problems)}:\n" + "\n".join(f"  - {p}" for p in problems),
            "fix doki.toml (its keys are described in docs/configuration.md)",
        )
    assert config is not None
    return replace(config, release=release_config, build=build_config)


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


def _validate(raw: dict[str, Any], path: Path, env: str | None) -> tuple[ServiceConfig | None, list[str]]:
    problems = [
        f"unknown key {key!r} (allowed: {', '.join(sorted(KNOWN_KEYS))})" for key in sorted(set(raw) - KNOWN_KEYS)
    ]
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
    )
    return config, []


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
