"""The emulator as a background process: start it detached, find it again, stop it.

A running emulator records itself in `<state_dir>/emulator.json` (pid and addresses); that file is the only way
`status`, `env` and `stop` find it, so several emulators can run side by side with different state directories.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from doki_cli.emulator.run import RUN_HOST

RUNNING_FILE = "emulator.json"
LOG_FILE = "emulator.log"
DEFAULT_GRPC_PORT = 8470
DEFAULT_REST_PORT = 8471


class EmulatorCode(StrEnum):
    """What can go wrong starting, finding or stopping the emulator; `doki emulator` reports each under the code of
    doki's catalog with the same name (a test keeps the two the same)."""

    STATE_CORRUPT = "emulator_state_corrupt"
    START_FAILED = "emulator_start_failed"
    START_TIMEOUT = "emulator_start_timeout"
    STOP_TIMEOUT = "emulator_stop_timeout"


class EmulatorError(Exception):
    """Starting, finding or stopping the emulator failed: a stable code, what happened, and what to do.

    The emulator knows nothing of doki's own errors; `doki emulator` reports these as its own, word for word."""

    def __init__(self, code: EmulatorCode, message: str, hint: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Running:
    pid: int
    grpc: str
    rest: str
    state_dir: str
    engine: bool
    registry: str = ""  # host:port of its Docker registry ("" in records of emulators from before it had one)

    def env(self) -> dict[str, str]:
        """What a shell needs so doki, the Google clients and gcloud talk to this emulator (ENV_NAMES).

        gcloud's `run` commands send each call to the region's host, REGION-<the run endpoint's host>
        (DeriveRegionalEndpoint in lib/googlecloudsdk/command_lib/run/connection_context.py), a name no resolver
        knows; so gcloud goes through the emulator as its HTTP proxy, which then sees every URL whole and reads the
        region from it. Every other API gcloud is pointed at is the same REST port."""
        host, _, port = self.rest.removeprefix("http://").rpartition(":")
        return {
            "DOKI_EMULATOR": self.grpc,
            "STORAGE_EMULATOR_HOST": self.rest,
            "DOKI_EMULATOR_REGISTRY": self.registry,
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER": self.rest + "/",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN": f"http://{RUN_HOST}:{port}/",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_LOGGING": self.rest + "/",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE": self.rest + "/",
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_MONITORING": self.rest + "/",
            "CLOUDSDK_PROXY_TYPE": "http",
            "CLOUDSDK_PROXY_ADDRESS": host,
            "CLOUDSDK_PROXY_PORT": port,
            "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
        }


# The variables Running.env sets, in its order: what leaving emulator mode unsets.
ENV_NAMES = (
    "DOKI_EMULATOR",
    "STORAGE_EMULATOR_HOST",
    "DOKI_EMULATOR_REGISTRY",
    "CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER",
    "CLOUDSDK_API_ENDPOINT_OVERRIDES_RUN",
    "CLOUDSDK_API_ENDPOINT_OVERRIDES_LOGGING",
    "CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE",
    "CLOUDSDK_API_ENDPOINT_OVERRIDES_MONITORING",
    "CLOUDSDK_PROXY_TYPE",
    "CLOUDSDK_PROXY_ADDRESS",
    "CLOUDSDK_PROXY_PORT",
    "CLOUDSDK_AUTH_DISABLE_CREDENTIALS",
)


def write_running(state_dir: Path, running: Running) -> None:
    path = state_dir / RUNNING_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(running), indent=2) + "\n")
    tmp.replace(path)


def clear_running(state_dir: Path, pid: int) -> None:
    """Forget the running record, unless another process has written its own since."""
    path = state_dir / RUNNING_FILE
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
        if json.loads(path.read_text())["pid"] == pid:
            path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _answers(rest: str) -> bool:
    try:
        with urllib.request.urlopen(rest + "/_doki/status", timeout=2) as response:  # noqa: S310 - our loopback URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def find_running(state_dir: Path) -> Running | None:
    """The emulator serving `state_dir`, or None (a record left by a dead process is removed)."""
    path = state_dir / RUNNING_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        running = Running(**data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        raise EmulatorError(
            EmulatorCode.STATE_CORRUPT,
            f"{path} is not an emulator record",
            f"stop any emulator using {state_dir} and delete {path}",
        ) from None
    if not _alive(running.pid):
        clear_running(state_dir, running.pid)
        return None
    return running


def spawn(
    state_dir: Path,
    args: list[str],
    *,
    timeout: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Running:
    """Start `doki emulator start --foreground ARGS` detached, and wait until it answers."""
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / LOG_FILE
    # The log is kept across starts: a failed start shows what it wrote, not what earlier runs did.
    start = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as log:
        # A new session: the emulator outlives this command and a Ctrl-C in the user's shell.
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "doki_cli", "emulator", "start", "--foreground", *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmulatorError(
                EmulatorCode.START_FAILED,
                f"the emulator exited with code {process.returncode} while starting; its log:\n"
                + _tail(log_path, start),
                "fix what the log says (often a port in use: pass --port/--rest-port/--registry-port)",
            )
        running = find_running(state_dir)
        if running is not None and running.pid == process.pid and _answers(running.rest):
            return running
        sleep(0.1)
    process.terminate()
    raise EmulatorError(
        EmulatorCode.START_TIMEOUT,
        f"the emulator did not answer within {timeout:.0f} s; its log:\n" + _tail(log_path, start),
        "run `doki emulator start --foreground` to watch it start",
    )


def stop(running: Running, *, timeout: float = 30.0, sleep: Callable[[float], None] = time.sleep) -> None:
    """SIGTERM the emulator (it stops its containers and saves its state), then wait for it to exit."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(running.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(running.pid) and time.monotonic() < deadline:
        sleep(0.1)
    if _alive(running.pid):
        raise EmulatorError(
            EmulatorCode.STOP_TIMEOUT,
            f"the emulator (pid {running.pid}) is still running {timeout:.0f} s after SIGTERM",
            f"kill it with `kill -9 {running.pid}`; its state was saved after every change",
        )


def _tail(path: Path, start: int, lines: int = 20) -> str:
    """The last `lines` of what `path` got from byte `start` on."""
    with contextlib.suppress(OSError), path.open("rb") as log:
        log.seek(start)
        return "\n".join(log.read().decode(errors="replace").splitlines()[-lines:]) or "(nothing)"
    return "(no log)"
