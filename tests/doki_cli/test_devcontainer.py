"""The dev container loop with fakes: a fake container and clock for the readiness wait, a bridgeless engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from doki_cli.config import load_config
from doki_cli.devcontainer import run_dev_container, wait_until_serving
from doki_cli.engine import DockerEngine
from doki_cli.errors import DokiError
from doki_cli.output import Output


class SilentContainer:
    """Runs forever and never answers: the case the timeout exists for."""

    def status(self) -> str:
        return "running"

    def tail(self, lines: int = 40) -> str:
        return "booting...\nstill booting...\n"


def test_a_container_that_never_answers_is_given_up_on_with_its_last_lines(reserve_port: Callable[[], int]) -> None:
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    container: Any = SilentContainer()
    with pytest.raises(DokiError) as caught:
        wait_until_serving(
            container, f"http://127.0.0.1:{reserve_port()}", timeout=5, clock=lambda: now[0], sleep=sleep
        )
    assert caught.value.code == "container_not_ready"
    assert caught.value.message.endswith("within 5 s; its last lines:\nbooting...\nstill booting...\n")
    assert 20 <= len(sleeps) <= 30  # polled every 0.2 s of the fake clock until the deadline


class BridgelessClient:
    """A docker client as `dockerd --bridge=none` answers: only host and none networks. Nothing else exists on it,
    so any build or container call would fail the test loudly."""

    class networks:  # the docker SDK's attribute name
        @staticmethod
        def list(names: list[str]) -> list[object]:
            return []


def test_publishing_on_an_engine_without_a_bridge_is_refused_before_building_or_replacing(
    tmp_path: Any, reserve_port: Callable[[], int]
) -> None:
    (tmp_path / "doki.toml").write_text(
        '[service]\nname = "svc"\nproject = "proj-1"\nregion = "us-central1"\nrepository = "r"\n'
    )
    config = load_config(tmp_path / "doki.toml")
    with pytest.raises(DokiError) as caught:
        run_dev_container(
            Output(),
            DockerEngine(BridgelessClient()),
            config,
            port=reserve_port(),
            host_network=False,
            detach=True,
            base_image=None,
        )
    assert (caught.value.code, caught.value.message, caught.value.hint) == (
        "no_port_publishing",
        "this Docker engine has no bridge network, so it cannot publish the container's port",
        "run with --network host",
    )
