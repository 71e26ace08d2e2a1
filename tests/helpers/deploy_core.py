"""The deploy core on the in-memory double of Cloud Run and Secret Manager (tests/fakes/deploy.py): doki.toml of a
service `api`, and that service deployed before a test begins (used by the planner and the release-step unit tests)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from doki_cli.config import SecretRef, ServiceConfig
from doki_cli.deploy.executor import Executor
from doki_cli.deploy.planner import Plan, Planner, read_live
from doki_cli.model import LiveService
from tests.fakes.deploy import FakeCloudRun, FakeSecretManager

ACCOUNT = "runtime@doki-test.iam.gserviceaccount.com"
MEMBER = f"serviceAccount:{ACCOUNT}"
IMAGE = "us-central1-docker.pkg.dev/doki-test/doki/api:1111111"


def doki_toml(**changes: Any) -> ServiceConfig:
    """doki.toml of a service `api` with one variable and one secret, run by its own account."""
    config = ServiceConfig(
        name="api",
        project="doki-test",
        region="us-central1",
        repository="doki",
        root=Path(),
        service_account=ACCOUNT,
        env={"LOG_LEVEL": "info"},
        secrets={"API_KEY": SecretRef("api-key")},
    )
    return replace(config, **changes)


def quiet(message: str) -> None:
    """Progress the tests do not look at."""


def plan(run: FakeCloudRun, secrets: FakeSecretManager, config: ServiceConfig, image: str = IMAGE) -> Plan:
    return Planner(run, secrets).plan(config, image)


def execute(run: FakeCloudRun, secrets: FakeSecretManager, planned: Plan) -> None:
    Executor(run, secrets, health=lambda url: None, on_progress=quiet).execute(planned)


def deployed(run: FakeCloudRun, secrets: FakeSecretManager, config: ServiceConfig, image: str = IMAGE) -> LiveService:
    """`config` deployed by the deploy core before the test began: its writes are not the test's."""
    with run.by_someone_else():
        execute(run, secrets, plan(run, secrets, config, image))
    return read_live(run, config.name)
