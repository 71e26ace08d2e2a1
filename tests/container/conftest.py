"""The real Dockerfile, built once per session on a real engine from a copy of the repository.

Without a reachable engine (or the stand-in base image) these tests skip with the reason; with
DOKI_REQUIRE_DOCKER=1, as CI sets, they fail instead, so CI can never pass them by skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO

BASE_IMAGE = os.environ.get("DOKI_TEST_BASE_IMAGE", "doki-base:bookworm-py311")
# Planted in the build context: none of it may reach the image.
PLANTED_SECRET = "planted-secret-value-0123456789"


def _unavailable(reason: str) -> None:
    if os.environ.get("DOKI_REQUIRE_DOCKER") == "1":
        pytest.fail(f"DOKI_REQUIRE_DOCKER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_client() -> Any:
    import docker
    from docker.errors import DockerException, ImageNotFound

    try:
        client = docker.from_env()
        client.ping()
    except DockerException as exc:
        _unavailable(f"no Docker engine is reachable ({exc}); start one or run .ci/docker-setup")
    try:
        client.images.get(BASE_IMAGE)
    except ImageNotFound:
        _unavailable(f"the base image {BASE_IMAGE} is missing; .ci/docker-setup makes it")
    return client


@dataclass
class Build:
    image_id: str
    log: str
    context: Path


def build_image(client: Any, context: Path, tag: str) -> Build:
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


@pytest.fixture(scope="session")
def build_context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository as committed, plus what a developer's checkout holds and the image must not."""
    context = tmp_path_factory.mktemp("context")
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in files.splitlines():
        if (REPO / name).is_file():
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, context / name)
    (context / ".env").write_text(f"SUPABASE_SECRET_KEY={PLANTED_SECRET}\n")
    (context / ".env.production").write_text(f"ENCRYPTION_KEY={PLANTED_SECRET}\n")
    (context / ".git").mkdir(exist_ok=True)
    (context / ".git" / "config").write_text(f"[secret]\n\tvalue = {PLANTED_SECRET}\n")
    (context / ".doki").mkdir(exist_ok=True)
    (context / ".doki" / "dev-keys.json").write_text(f'{{"encryption_key": "{PLANTED_SECRET}"}}')
    return context


@pytest.fixture(scope="session")
def image(docker_client: Any, build_context: Path) -> Iterator[Build]:
    build = build_image(docker_client, build_context, "doki-backend:test")
    yield build
