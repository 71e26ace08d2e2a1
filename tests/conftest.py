"""Every test starts from a clean slate: none of the developer's backend settings, a fresh working directory
(so no `.env` or `.doki/` of theirs is read, and none is written into the repository).

Tests that need Docker skip, saying why, where no engine (or stand-in base image) is reachable; with
DOKI_REQUIRE_DOCKER=1, as CI sets, they fail instead, so CI can never pass them by skipping. Tests that need gcloud
do the same where it is not installed, failing under DOKI_REQUIRE_GCLOUD=1.

No test may print or log a secret it uses: tests/leakcheck.py fails the one that does."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests import docker_together
from tests.helpers import BACKEND_ENV_NAMES, BASE_IMAGE, reserved_port, unavailable
from tests.leakcheck import LeakCheck

# A suite started in the background of a shell without job control inherits SIGINT ignored, and so would every
# process it starts: the Ctrl-C tests could then interrupt nothing. A handler, unlike "ignored", is not inherited
# across exec, so the processes the tests start get SIGINT's default again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_configure(config: pytest.Config) -> None:
    # Every test's output and logs are checked for the secrets the suite uses (see tests/leakcheck.py).
    config.pluginmanager.register(LeakCheck(), "doki-leak-check")
    docker_together.prepare(config)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    docker_together.record(items)


@pytest.hookimpl(optionalhook=True, tryfirst=True)  # xdist's hook (unknown under `-p no:xdist`), before its own
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    return docker_together.scheduler(config, log)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in BACKEND_ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name in (
        *("DOKI_CONFIG", "DOKI_ENV", "DOKI_PROJECT", "DOKI_REGION", "DOKI_JSON", "DOKI_VERBOSE"),
        *("DOKI_EMULATOR", "STORAGE_EMULATOR_HOST", "DOKI_EMULATOR_REGISTRY"),
    ):
        monkeypatch.delenv(name, raising=False)
    # gcloud's configuration is doki's last fallback for the project and region: none here unless a test writes one
    # (a developer's own gcloud project must not leak into what a test expects).
    for name in ("CLOUDSDK_CORE_PROJECT", "CLOUDSDK_RUN_REGION", "CLOUDSDK_ACTIVE_CONFIG_NAME", "DOKI_SERVICE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud-config"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def reserve_port() -> Iterator[Callable[[], int]]:
    """Gives ports held for the test until it ends (see tests.helpers.reserved_port), one a call."""
    with ExitStack() as held:
        yield lambda: held.enter_context(reserved_port())


@pytest.fixture(scope="session")
def gcloud_binary() -> str:
    """The gcloud SDK's command (see tests/helpers/gcloud.py)."""
    found = shutil.which("gcloud")
    if found is None:
        unavailable("the gcloud SDK is not installed (no gcloud on PATH)", "DOKI_REQUIRE_GCLOUD")
    assert found is not None
    return found


@pytest.fixture(scope="session")
def docker_client() -> Any:
    import docker
    from docker.errors import DockerException, ImageNotFound

    try:
        client = docker.from_env()
        client.ping()
    except DockerException as exc:
        unavailable(f"no Docker engine is reachable ({exc}); start one or run .ci/docker-setup")
    try:
        client.images.get(BASE_IMAGE)
    except ImageNotFound:
        unavailable(f"the base image {BASE_IMAGE} is missing; .ci/docker-setup makes it")
    return client
