"""Options shared across commands, each also readable from a DOKI_* environment variable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", envvar="DOKI_CONFIG", help="Path to doki.toml [default: ./doki.toml]."),
]
EnvOption = Annotated[
    str | None,
    typer.Option("--env", envvar="DOKI_ENV", help="Environment from doki.toml to act on (e.g. staging)."),
]
ProjectOption = Annotated[
    str | None,
    typer.Option("--project", envvar="DOKI_PROJECT", help="Google Cloud project (overrides doki.toml)."),
]
RegionOption = Annotated[
    str | None, typer.Option("--region", envvar="DOKI_REGION", help="Cloud Run region (overrides doki.toml).")
]
JsonOption = Annotated[
    bool, typer.Option("--json", envvar="DOKI_JSON", help="Machine-readable JSON output, errors included.")
]
VerboseOption = Annotated[
    int,
    typer.Option("--verbose", "-v", count=True, envvar="DOKI_VERBOSE", help="More detail; repeat for more."),
]
BaseImageOption = Annotated[
    str | None,
    typer.Option(
        "--base-image", envvar="DOKI_BASE_IMAGE", help="Build on this base image instead of the Dockerfile's."
    ),
]
SkipChecksOption = Annotated[
    bool,
    typer.Option(
        "--skip-checks",
        help="Write even when the new revision would not start (settings the backend refuses); the plan says so.",
    ),
]
DryRunOption = Annotated[
    bool,
    typer.Option("--dry-run", help="Only show the plan; exit 0 when up to date, 2 when it would change."),
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")]
ServiceOption = Annotated[
    str | None,
    typer.Option(
        "--service",
        envvar="DOKI_SERVICE",
        help="Act on this Cloud Run service, with or without a doki.toml [default: doki.toml's].",
    ),
]
