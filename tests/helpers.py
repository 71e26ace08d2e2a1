"""Small helpers for tests that start real processes and servers on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import AliasChoices
from typer import testing

from doki.settings import Settings

REPO = Path(__file__).resolve().parent.parent
# The base the container tests build on: no registry is reachable here, `.ci/docker-setup` makes this stand-in.
BASE_IMAGE = os.environ.get("DOKI_TEST_BASE_IMAGE", "doki-base:bookworm-py311")
# The Doki backend image, tagged as `doki build` would tag it for the emulator tests' project.
# One tag per test session: parallel sessions on one engine would otherwise remove or rebuild each other's image.
BACKEND_IMAGE = f"us-central1-docker.pkg.dev/doki-e2e/doki/doki-backend:e2e-{os.getpid()}"
# Settings the backend reads (every name and alias, from Settings itself so none is forgotten): a test process
# starts from none of the developer's own.
BACKEND_ENV_NAMES = tuple(
    sorted(
        {
            str(choice).upper()
            for name, field in Settings.model_fields.items()
            for choice in (
                field.validation_alias.choices if isinstance(field.validation_alias, AliasChoices) else [name]
            )
        }
    )
)


class Secrets:
    """Every secret value the suite uses (keys, tokens, passwords), by label; the leak check (tests/leakcheck.py)
    fails a test whose output or logs hold one. Fixtures and fakes register what they make or are given."""

    # Shorter values would match ordinary text; the suite's secrets are all longer.
    MIN_LENGTH = 8

    def __init__(self) -> None:
        self._labels: dict[str, str] = {}  # value (or its URL-encoded form) -> label

    def register(self, label: str, value: str) -> str:
        """Remember `value` as a secret; returns it, so a fixture can register as it assigns."""
        if len(value) >= self.MIN_LENGTH:
            self._labels.setdefault(value, label)
            self._labels.setdefault(quote(value, safe=""), label)
        return value

    def found_in(self, text: str) -> list[str]:
        """The labels of the secrets `text` holds (never the values), each once."""
        return sorted({label for value, label in self._labels.items() if value in text})

    def mask(self, text: str) -> str:
        """`text` with each secret it holds replaced by its label."""
        for value, label in sorted(self._labels.items(), key=lambda item: -len(item[0])):
            text = text.replace(value, f"[{label}]")
        return text


SECRETS = Secrets()
# What the current test printed where pytest does not capture it (CliRunner results, the emulator's stored logs),
# as (where, text): the leak check reads it at the end of each phase of the test, and empties it.
OUTPUTS: list[tuple[str, str]] = []


def secret(label: str, value: str) -> str:
    """`value`, registered as a secret under `label`."""
    return SECRETS.register(label, value)


class CliRunner(testing.CliRunner):
    """typer's CliRunner whose every result (stdout, stderr, an uncaught exception) the leak check reads."""

    def invoke(self, *args: Any, **kwargs: Any) -> testing.Result:
        result = super().invoke(*args, **kwargs)
        OUTPUTS.append(("the output of a CLI run", result.output))
        if result.exception is not None:
            OUTPUTS.append(("the exception of a CLI run", repr(result.exception)))
        return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in BACKEND_ENV_NAMES and not k.startswith("DOKI_")}
    env.update(extra)
    return env


def wait_for_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[str] | None = None) -> httpx.Response:
    """GET `url` until it answers (any status), or fail saying why."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"server exited with {proc.returncode} before answering:\n{output}")
        try:
            return httpx.get(url, timeout=1.0)
        except httpx.TransportError as exc:
            last = exc
            time.sleep(0.05)
    raise AssertionError(f"{url} did not answer within {timeout}s: {last}")


@contextmanager
def running(args: list[str], cwd: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """Run a process in its own process group, and end the whole group (uvicorn's reloader has children)."""
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
        if proc.stdout:
            proc.stdout.close()


def copy_checkout(destination: Path) -> Path:
    """The repository's tracked files, as a fresh clone would have them."""
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in files.splitlines():
        if (REPO / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, destination / name)
    return destination


@dataclass
class Build:
    image_id: str
    log: str
    context: Path


def build_image(client: Any, context: Path, tag: str) -> Build:
    """Build `context`'s Dockerfile on the stand-in base (container tests, the emulator's end-to-end test)."""
    lines = []
    for chunk in client.api.build(
        path=str(context),
        tag=tag,
        buildargs={"BASE_IMAGE": BASE_IMAGE},
        network_mode="host",
        rm=True,
        decode=True,
    ):
        if "error" in chunk:
            raise AssertionError("docker build failed:\n" + "".join(lines) + chunk["error"])
        lines.append(chunk.get("stream", ""))
    return Build(client.images.get(tag).id, "".join(lines), context)
