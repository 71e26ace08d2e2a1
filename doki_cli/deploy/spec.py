"""A Cloud Run service as plain data: what doki.toml asks for, and what the live service has, in one shape.

The planner compares two of these; only the Cloud Run adapter turns them into API objects and back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from doki_cli.config import ServiceConfig

# Cloud Run's default compute identity when a revision names none (shown in plans as such).
DEFAULT_ACCOUNT = None


@dataclass(frozen=True)
class ServiceSpec:
    image: str
    port: int
    memory: str
    cpu: str
    concurrency: int
    timeout_seconds: int
    min_instances: int
    max_instances: int
    ingress: str  # as doki.toml spells it: all, internal, internal-and-cloud-load-balancing
    service_account: str | None
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # ENV_NAME -> "secret-id:version-number"


@dataclass(frozen=True)
class LiveService:
    """What runs now, as far as a deploy cares."""

    spec: ServiceSpec
    uri: str
    public: bool
    traffic_to_latest: bool  # all traffic follows the latest ready revision
    traffic: str  # e.g. "100% api-00002-abc" or "100% latest"
    latest_ready: str | None
    ready: bool
    message: str
    # The newest revision, Ready or not. When it is not the latest ready one, its template (what `spec` shows) is not
    # what serves: a deploy that failed left it, and only a new revision can put doki.toml in service.
    latest_created: str | None = None
    # What the service has that doki.toml does not manage, which a deploy keeps (sidecars, probes, volumes, ...).
    kept: tuple[str, ...] = ()


def desired_spec(config: ServiceConfig, image: str, secret_versions: dict[str, int]) -> ServiceSpec:
    """doki.toml's service with `image` and each secret pinned to a version number (`latest` resolved)."""
    secrets = {}
    for env_name, ref in config.secrets.items():
        version = ref.version if ref.version != "latest" else str(secret_versions[ref.secret])
        secrets[env_name] = f"{ref.secret}:{version}"
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
    )


@dataclass(frozen=True)
class Target:
    """One traffic target as plain data: a revision (None: whichever is the latest ready), a share, a tag."""

    revision: str | None
    percent: int
    tag: str = ""
