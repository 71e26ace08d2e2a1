"""gcloud, Google's own client, pointed at an emulator exactly as `eval "$(doki emulator env)"` points a shell.

gcloud is an independent check on the emulator: it encodes Google's expectations (what it reads back, what it waits
on). Tests that need it take the `gcloud_binary` fixture (tests/conftest.py), which skips visibly where gcloud is not
installed and fails instead under DOKI_REQUIRE_GCLOUD=1, as CI sets.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from doki_cli.emulator.process import Running
from doki_cli.emulator.server import Emulator
from tests.helpers import run


class Gcloud:
    """`gcloud(*args)` runs gcloud against `emulator` for `project` and returns the finished process."""

    def __init__(self, binary: str, emulator: Emulator, config_dir: Path, project: str) -> None:
        running = Running(
            pid=os.getpid(),
            grpc=emulator.grpc_address,
            rest=emulator.rest_url,
            state_dir=str(config_dir),
            engine=emulator.engine is not None,
            registry=emulator.registry_address,
        )
        self.binary = binary
        self.env = {
            **os.environ,
            **running.env(),
            "CLOUDSDK_CONFIG": str(config_dir),
            "CLOUDSDK_CORE_PROJECT": project,
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
            "CLOUDSDK_CORE_DISABLE_COLOR": "1",  # no colours or bold: output tests can compare
            "TERM": "dumb",
        }

    def __call__(self, *args: str, stdin: bytes = b"", check: bool = True) -> subprocess.CompletedProcess[str]:
        done = run(
            [self.binary, *args],
            input=stdin.decode(),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check:
            assert done.returncode == 0, f"gcloud {' '.join(args)} failed:\n{done.stderr}"
        return done

    def json(self, *args: str) -> Any:
        """The command's --format=json output, parsed."""
        return json.loads(self(*args, "--format=json").stdout)
