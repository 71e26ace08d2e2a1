"""`doki release` as CI runs it (`--json`, stderr not a terminal), through the real command against the emulator
with a real build, push and container: stdout holds the JSON summary alone, and stderr shows every step as a
timestamped line, so a CI log shows what the release is doing while it waits (issue 21's "done when")."""

from __future__ import annotations

import json
from pathlib import Path

from doki_cli.context import Factory
from doki_cli.emulator.server import Emulator
from doki_cli.main import app
from tests.helpers import BASE_IMAGE, CliRunner
from tests.helpers.release import IMAGE, git
from tests.helpers.waits import AT, STAMP

runner = CliRunner()


def test_a_ci_shaped_release_shows_each_step_on_stderr_as_a_timestamped_line(
    project: Path, engine_emulator: Emulator
) -> None:
    sha = git(project, "rev-parse", "HEAD")
    result = runner.invoke(
        app,
        ["--json", "release", "--local", "--base-image", BASE_IMAGE, "--secrets-from", ".env"],
        obj=Factory(now=lambda: AT),
    )

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # the data alone: one JSON document
    assert summary["result"] == "released"
    lines = result.stderr.splitlines()
    assert [line for line in lines if not line.startswith(STAMP)] == []
    said = [line.removeprefix(STAMP) for line in lines]
    # The steps, in order, as a CI log shows them (Dockerfile steps, plan lines and heartbeats between them).
    expected = [
        f"image {IMAGE}:{sha[:7]}",
        "not in Artifact Registry: building it with the local Docker engine",
        "pushing it to Artifact Registry",
        f"Plan for doki-backend (projects/doki-e2e/locations/us-central1/services/doki-backend) on the emulator at "
        f"{engine_emulator.grpc_address}:",
        "nothing serves yet: deploying the first revision",
        "creating the service",
        f"checking {summary['service_url']}",
    ]
    positions = [said.index(line) for line in expected]
    assert positions == sorted(positions), said
    assert any(line.startswith("  Step 1/") for line in said)  # the build's own steps
    # The wait for the first revision: named, with the seconds waited.
    waits = [line for line in said[positions[5] : positions[6]] if line.startswith("waiting for ")]
    assert waits and all(line.endswith(" s)") for line in waits), said
