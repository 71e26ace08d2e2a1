"""The suite on every core (pytest-xdist), with the tests that drive the Docker engine on one worker, one at a time.

Those tests share the engine: fixed image tags, the session's images, container names a test removes before it
starts its own. Run on two workers at once they remove each other's containers and tags. Every other test runs on
whichever worker is free.

Not xdist's own `--dist loadgroup`: it groups a test by rewriting `item._nodeid`, which pytest 9.2 no longer reads
(a node's id is now the structured `_id`), so its groups are silently ignored. Here each worker writes the ids of its
Docker tests to a folder the controller made, whose path workers inherit in their environment, and the controller's
scheduler reads them when it splits the collection into units of work: the Docker tests are one unit, every other
test a unit of its own. The biggest unit is handed out first (xdist's default order), so the Docker tests start at
once and the other workers fill around them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

FOLDER = "DOKI_TEST_DOCKER_TOGETHER"
DOCKER = "docker"


def uses_docker(item: pytest.Item) -> bool:
    """Whether `item` drives the engine: it asks for `docker_client`, itself or through a fixture, or is marked."""
    return "docker_client" in getattr(item, "fixturenames", ()) or item.get_closest_marker("docker") is not None


def prepare(config: pytest.Config) -> None:
    """On the controller, before any worker starts: the folder workers write to."""
    if os.environ.get("PYTEST_XDIST_WORKER") or FOLDER in os.environ:
        return
    os.environ[FOLDER] = tempfile.mkdtemp(prefix="doki-docker-together-")
    config.add_cleanup(lambda: shutil.rmtree(os.environ.pop(FOLDER), ignore_errors=True))


def record(items: list[pytest.Item]) -> None:
    """On a worker: the ids of its Docker tests, for the controller's scheduler."""
    worker, folder = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get(FOLDER)
    if worker and folder:
        ids = "".join(f"{item.nodeid}\n" for item in items if uses_docker(item))
        (Path(folder) / f"{worker}.txt").write_text(ids)


def scheduler(config: pytest.Config, log: Any) -> Any:
    """The controller's scheduler for `--dist load` (what `-n` means alone); None leaves any other mode to xdist."""
    if config.getvalue("dist") != "load" or FOLDER not in os.environ:
        return None
    from xdist.scheduler import LoadScopeScheduling

    folder = Path(os.environ[FOLDER])

    class DockerTogether(LoadScopeScheduling):  # type: ignore[misc]
        _docker: frozenset[str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            # First called once every worker has reported its collection, and so has written its file.
            if self._docker is None:
                self._docker = frozenset(
                    line for path in folder.glob("*.txt") for line in path.read_text().splitlines() if line
                )
            return DOCKER if nodeid in self._docker else nodeid

    return DockerTogether(config, log)
