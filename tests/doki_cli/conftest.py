"""CLI test fixtures: the emulator in-process on free ports, and the official clients pointed at it through doki's
client factory (used by the emulator's own tests and by every adapter and command that talks to Google)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from doki_cli.emulator.server import Emulator, EmulatorConfig
from doki_cli.gcp.clients import ClientFactory
from tests.helpers import BACKEND_IMAGE, build_image, copy_checkout, record_stored_logs
from tests.helpers.logs import Follower


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    """An emulator without a Docker engine: every API answers, revisions cannot become Ready."""
    with Emulator(EmulatorConfig(state_dir=tmp_path / "emulator-state")) as running:
        yield running
    record_stored_logs(tmp_path / "emulator-state")


@pytest.fixture
def engine_emulator(tmp_path: Path, docker_client: Any) -> Iterator[Emulator]:
    """An emulator whose revisions and builds run on the real Docker engine."""
    from doki_cli.engine import DockerEngine

    config = EmulatorConfig(state_dir=tmp_path / "emulator-state")
    with Emulator(config, engine=DockerEngine(docker_client)) as running:
        yield running
    record_stored_logs(config.state_dir)


@pytest.fixture
def clients(emulator: Emulator) -> ClientFactory:
    return ClientFactory(emulator.grpc_address, emulator.rest_url, emulator.registry_address)


@pytest.fixture
def engine_clients(engine_emulator: Emulator) -> ClientFactory:
    return ClientFactory(engine_emulator.grpc_address, engine_emulator.rest_url, engine_emulator.registry_address)


@pytest.fixture(scope="session")
def backend_image(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    build_image(docker_client, copy_checkout(tmp_path_factory.mktemp("context")), BACKEND_IMAGE)
    yield BACKEND_IMAGE
    docker_client.images.remove(BACKEND_IMAGE)


@pytest.fixture
def follower(project: Path, emulator: Emulator) -> Iterator[Callable[..., Follower]]:
    """Starts `doki ARGS` processes (a `logs -f`) in the test's `project`, and stops them after the test."""
    started: list[Follower] = []

    def start(*args: str) -> Follower:
        started.append(Follower(emulator, project, *args))
        return started[-1]

    yield start
    for one in started:
        one.stop()
