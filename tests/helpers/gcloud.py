"""gcloud, Google's own client, pointed at an emulator exactly as `eval "$(doki emulator env)"` points a shell.

gcloud is an independent check on the emulator: it encodes Google's expectations (what it sends, what it reads back,
what it waits on). Tests that need it take the `gcloud_binary` fixture (tests/conftest.py), which skips visibly where
gcloud is not installed and fails instead under DOKI_REQUIRE_GCLOUD=1, as CI sets. Each call may set more variables
for itself (a project, prompts on, one endpoint more).
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
from pathlib import Path
from typing import Any

from doki_cli.emulator.process import Running
from doki_cli.emulator.server import Emulator
from tests.helpers import Process, record, run

TIMEOUT = 300.0
# How gcloud ends a yes/no question (console_io.PromptContinue), whichever answer is the default.
_QUESTION_ENDS = (b"(Y/n)?", b"(y/N)?")


def emulator_env(emulator: Emulator, config_dir: Path, project: str) -> dict[str, str]:
    """What `doki emulator env` exports for `emulator`, plus gcloud's own directory, project and no prompts."""
    running = Running(
        pid=os.getpid(),
        grpc=emulator.grpc_address,
        rest=emulator.rest_url,
        state_dir=str(config_dir),
        engine=emulator.engine is not None,
        registry=emulator.registry_address,
    )
    return {
        **os.environ,
        **running.env(),
        "CLOUDSDK_CONFIG": str(config_dir),
        "CLOUDSDK_CORE_PROJECT": project,
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
        "CLOUDSDK_CORE_DISABLE_COLOR": "1",  # no colours or bold: output tests can compare
        "TERM": "dumb",
    }


class Gcloud:
    """gcloud (`binary`) in `env`; keyword arguments of a call set more variables for that call only."""

    def __init__(self, binary: str, env: dict[str, str]) -> None:
        self.binary = binary
        self.env = env

    @classmethod
    def for_emulator(cls, binary: str, emulator: Emulator, config_dir: Path, project: str = "p") -> Gcloud:
        return cls(binary, emulator_env(emulator, config_dir, project))

    def run(self, *args: str, stdin: bytes = b"", **env: str) -> subprocess.CompletedProcess[bytes]:
        return run(
            [self.binary, *args],
            input=stdin,
            env={**self.env, **env},
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )

    def __call__(self, *args: str, stdin: bytes = b"", **env: str) -> bytes:
        """Run a command that must succeed; its stdout."""
        done = self.run(*args, stdin=stdin, **env)
        assert done.returncode == 0, f"gcloud {' '.join(args)} failed:\n{done.stderr.decode()}"
        return done.stdout

    def json(self, *args: str) -> Any:
        """The --format=json output of a command that must succeed, parsed."""
        return json.loads(self(*args, "--format=json"))

    def fails(self, *args: str, **env: str) -> str:
        """Run a command that must fail; its stderr."""
        done = self.run(*args, **env)
        assert done.returncode != 0, done.stdout.decode()
        return done.stderr.decode()

    def answering(self, answer: str, *args: str, **env: str) -> tuple[int, str]:
        """Run a command on a terminal with prompts on, answering `answer` to its first yes/no question, as a person
        would (gcloud asks only when its stdin is a terminal); its exit code and everything it printed."""
        controller, terminal = pty.openpty()
        environment = {**self.env, "CLOUDSDK_CORE_DISABLE_PROMPTS": "0", **env}
        process = Process(
            [self.binary, *args], stdin=terminal, stdout=terminal, stderr=terminal, env=environment, close_fds=True
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
