"""The dev container's readiness wait, with a fake container and a fake clock: no engine, no real waiting."""

from __future__ import annotations

from typing import Any

import pytest

from doki_cli.devcontainer import wait_until_serving
from doki_cli.errors import DokiError
from tests.helpers import free_port


class SilentContainer:
    """Runs forever and never answers: the case the timeout exists for."""

    def status(self) -> str:
        return "running"

    def tail(self, lines: int = 40) -> str:
        return "booting...\nstill booting...\n"


def test_a_container_that_never_answers_is_given_up_on_with_its_last_lines() -> None:
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    container: Any = SilentContainer()
    with pytest.raises(DokiError) as caught:
        wait_until_serving(container, f"http://127.0.0.1:{free_port()}", timeout=5, clock=lambda: now[0], sleep=sleep)
    assert caught.value.code == "container_not_ready"
    assert caught.value.message.endswith("within 5 s; its last lines:\nbooting...\nstill booting...\n")
    assert 20 <= len(sleeps) <= 30  # polled every 0.2 s of the fake clock until the deadline
