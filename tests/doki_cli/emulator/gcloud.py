"""Real gcloud commands against the emulator, gcloud unchanged but for its documented settings, given as environment
variables: each API whose REST surface the emulator serves points at the emulator's REST port
(`api_endpoint_overrides/API`), no credentials are sent (`auth/disable_credentials`), prompts are off, and gcloud
keeps its configuration in the test's own directory.

`gcloud_env()` builds that environment and `Gcloud` runs commands in it, each call able to change any variable (a
project, prompts on, one more API), so other suites can start from the same settings. Modules of gcloud tests set
`pytestmark = REQUIRES_GCLOUD`: they skip, saying why, only where gcloud is not installed.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import record, run

GCLOUD = shutil.which("gcloud")
REQUIRES_GCLOUD = [
    pytest.mark.gcloud,
    pytest.mark.skipif(GCLOUD is None, reason="the gcloud SDK is not installed (no gcloud on PATH)"),
]
# The APIs whose REST surface the emulator serves, by the name of gcloud's api_endpoint_overrides property.
REST_APIS = ("logging", "secretmanager", "serviceusage")
TIMEOUT = 120.0
# How gcloud ends a yes/no question (console_io.PromptContinue), whichever answer is the default.
_QUESTION_ENDS = (b"(Y/n)?", b"(y/N)?")


def gcloud_env(
    rest_url: str, config_dir: Path, *, project: str = "p", apis: Iterable[str] = REST_APIS
) -> dict[str, str]:
    """The environment that points gcloud at the emulator at `rest_url` for `apis`, acting on `project`."""
    return {
        **os.environ,
        "CLOUDSDK_CONFIG": str(config_dir),
        **{f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{api.upper()}": rest_url + "/" for api in apis},
        "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
        "CLOUDSDK_CORE_PROJECT": project,
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
    }


@dataclass
class Gcloud:
    """gcloud in `env`; keyword arguments of a call set more variables for that call only."""

    env: dict[str, str]

    def run(self, *args: str, stdin: bytes = b"", **env: str) -> subprocess.CompletedProcess[bytes]:
        assert GCLOUD is not None
        return run(
            [GCLOUD, *args], input=stdin, env={**self.env, **env}, capture_output=True, timeout=TIMEOUT, check=False
        )

    def __call__(self, *args: str, stdin: bytes = b"", **env: str) -> bytes:
        """Run a command that must succeed; its stdout."""
        done = self.run(*args, stdin=stdin, **env)
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout

    def fails(self, *args: str, **env: str) -> str:
        """Run a command that must fail; its stderr."""
        done = self.run(*args, **env)
        assert done.returncode != 0, done.stdout.decode()
        return done.stderr.decode()

    def answering(self, answer: str, *args: str, **env: str) -> tuple[int, str]:
        """Run a command on a terminal with prompts on, answering `answer` to its first yes/no question, as a person
        would (gcloud asks only when its stdin is a terminal); its exit code and everything it printed."""
        assert GCLOUD is not None
        controller, terminal = pty.openpty()
        environment = {**self.env, "CLOUDSDK_CORE_DISABLE_PROMPTS": "0", **env}
        process = subprocess.Popen(
            [GCLOUD, *args], stdin=terminal, stdout=terminal, stderr=terminal, env=environment, close_fds=True
        )
        os.close(terminal)
        output = b""
        answered = False
        deadline = time.monotonic() + TIMEOUT
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([controller], [], [], 0.2)
                if not ready:
                    if process.poll() is not None:
                        break
                    continue
                try:
                    chunk = os.read(controller, 4096)
                except OSError:  # the terminal closed: every process on it has left
                    break
                output += chunk
                if not answered and output.rstrip().endswith(_QUESTION_ENDS):
                    os.write(controller, answer.encode() + b"\n")
                    answered = True
            code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            os.close(controller)
        text = record(f"the terminal of `gcloud {' '.join(args)}`", output)
        return code, text.replace("\r\n", "\n")
