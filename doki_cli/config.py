"""`doki.toml`: the deployment configuration, read once per command, with `--env`, `--project`, `--region` on top.

The file's directory is the project root: what `doki build` sends to the engine.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doki_cli.errors import DokiError

DEFAULT_CONFIG = Path("doki.toml")
REQUIRED = ("name", "project", "region", "repository")


@dataclass(frozen=True)
class ServiceConfig:
    name: str
    project: str
    region: str
    repository: str
    root: Path
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def image(self) -> str:
        """The Artifact Registry image name, without a tag."""
        return f"{self.region}-docker.pkg.dev/{self.project}/{self.repository}/{self.name}"


def load_config(
    path: Path | None, *, env: str | None = None, project: str | None = None, region: str | None = None
) -> ServiceConfig:
    config_path = path or DEFAULT_CONFIG
    try:
        data = tomllib.loads(config_path.read_text())
    except FileNotFoundError:
        raise DokiError(
            "config_not_found",
            f"no doki.toml at {config_path}",
            "run doki from your project's root, or pass --config PATH (DOKI_CONFIG)",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise DokiError("config_invalid", f"{config_path} is not valid TOML: {exc}", "fix the file") from None
    service = dict(data.get("service", {}))
    if env is not None:
        environments = data.get("env", {})
        if env not in environments:
            known = ", ".join(sorted(environments)) or "none"
            raise DokiError(
                "unknown_env",
                f"{config_path} has no environment {env!r} (known: {known})",
                f"add an [env.{env}] table, or pick one of the known environments",
            )
        for key, value in environments[env].items():
            if isinstance(value, dict) and isinstance(service.get(key), dict):
                service[key] = {**service[key], **value}
            else:
                service[key] = value
    if project:
        service["project"] = project
    if region:
        service["region"] = region
    missing = [key for key in REQUIRED if not isinstance(service.get(key), str) or not service[key]]
    if missing:
        raise DokiError(
            "config_invalid",
            f"{config_path} [service] lacks {', '.join(missing)}",
            "set them in doki.toml (project and region may also come from --project / --region)",
        )
    return ServiceConfig(
        name=service["name"],
        project=service["project"],
        region=service["region"],
        repository=service["repository"],
        root=config_path.resolve().parent,
        settings=service,
    )
