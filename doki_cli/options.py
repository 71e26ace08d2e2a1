"""Options shared across commands, each also readable from a DOKI_* environment variable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="DOKI_CONFIG",
        help="Path to doki.toml [default: the nearest one, here or in a parent directory].",
    ),
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
# `doki scale`'s values, in gcloud's words and with gcloud's meanings (`gcloud run services update --help`, gcloud
# 528): `--min` is the service's minimum, "divided among all Revisions receiving a percentage of traffic", changed
# "without deploying a new Revision" (Service.scaling.min_instance_count); `--max` likewise the service's maximum
# (gcloud beta and alpha; Service.scaling.max_instance_count); `--min-instances` and `--max-instances` are the
# revision's, "immutably set on each new Revision" (template.scaling), which doki.toml's min_instances and
# max_instances set. No environment variables: a value read from one would change every later scale unasked.
ServiceMinOption = Annotated[
    int | None,
    typer.Option(
        "--min",
        help="The service's minimum instances, shared by the revisions that take traffic; no new revision "
        "(gcloud's --min).",
    ),
]
ServiceMaxOption = Annotated[
    int | None,
    typer.Option(
        "--max",
        help="The service's maximum instances, shared by the revisions that take traffic; 0 removes it; no new "
        "revision (gcloud beta's --max).",
    ),
]
MinInstancesOption = Annotated[
    int | None,
    typer.Option(
        "--min-instances", help="Each new revision's minimum instances (doki.toml's min_instances; gcloud's)."
    ),
]
MaxInstancesOption = Annotated[
    int | None,
    typer.Option(
        "--max-instances", help="Each new revision's maximum instances (doki.toml's max_instances; gcloud's)."
    ),
]
MemoryOption = Annotated[str | None, typer.Option("--memory", help="Memory per instance, e.g. 1Gi (gcloud's).")]
CpuOption = Annotated[str | None, typer.Option("--cpu", help="CPUs per instance: 1, 2, 4, 6, 8 or below 1 (gcloud's).")]
ConcurrencyOption = Annotated[
    int | None, typer.Option("--concurrency", help="Requests at once per instance (gcloud's).")
]


def _duration(text: str) -> float:
    # Imported here: doki_cli.output pulls in the error catalog, and `doki --help` reads this module.
    from doki_cli.waiting import parse_duration

    return parse_duration(text)


# The waits of the commands that change the service (deploy, release, scale, cors, rollback): docs/cli.md, "Waits".
# --wait-timeout as fly names it, so gcloud's --timeout (a request timeout) may yet take the short name elsewhere.
TimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        "--wait-timeout",
        metavar="DURATION",
        parser=_duration,
        envvar="DOKI_TIMEOUT",
        help="How long to wait for Cloud Run to make each change, e.g. 90s, 15m, 1h [default: 15m]; past it, exit "
        "124 with the change still going on at Google.",
    ),
]
NoWaitOption = Annotated[
    bool,
    typer.Option(
        "--no-wait",
        "--async",
        help="Return once Cloud Run has accepted the change, without waiting for it (`doki status` follows it).",
    ),
]
ServiceOption = Annotated[
    str | None,
    typer.Option(
        "--service",
        envvar="DOKI_SERVICE",
        help="Act on this Cloud Run service, with or without a doki.toml [default: doki.toml's].",
    ),
]
# A commit built and deployed from CI or a checkout: `doki release` and `doki preview`.
ShaOption = Annotated[
    str | None,
    typer.Option("--sha", envvar="DOKI_SHA", help="The commit [default: $GITHUB_SHA, $COMMIT_SHA, git HEAD]."),
]
RemoteOption = Annotated[
    bool | None,
    typer.Option(
        "--remote/--local",
        help="Build on Cloud Build, or with the local engine [default: remote when $CI is set, else local].",
    ),
]
AllowDirtyOption = Annotated[
    bool, typer.Option("--allow-dirty", help="Build a tree with uncommitted changes (tagged -dirty, never reused).")
]
