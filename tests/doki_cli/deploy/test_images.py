"""The image a release deploys, built on Cloud Build when Artifact Registry lacks it: as doki.toml's build account,
announced in the release's progress. Without a Docker engine: the emulator records the build doki started, which
then fails for want of one."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.cloud.devtools import cloudbuild_v1 as cb

from doki_cli.config import load_config
from doki_cli.deploy.images import Images
from doki_cli.emulator.server import Emulator
from doki_cli.errors import DokiError
from doki_cli.gcp.clients import ClientFactory
from doki_cli.gcp.google import Google

PROJECT = "proj-release"
BUILDER = f"builder@{PROJECT}.iam.gserviceaccount.com"
IMAGE = f"us-central1-docker.pkg.dev/{PROJECT}/apps/api:abc1234"


def _release_build(tmp_path: Path, clients: ClientFactory, build_table: str) -> tuple[list[str], cb.Build]:
    """Provide IMAGE remotely as a release does; the progress lines, and the build Cloud Build recorded."""
    (tmp_path / "doki.toml").write_text(
        f'[service]\nname = "api"\nproject = "{PROJECT}"\nrepository = "apps"\n' + build_table
    )
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    progress: list[str] = []
    images = Images(
        Google(clients, PROJECT),
        load_config(tmp_path / "doki.toml"),
        remote=True,
        base_image=None,
        on_line=lambda line: None,
        on_progress=progress.append,
    )
    with pytest.raises(DokiError) as failed:
        images.provide(IMAGE, reuse=True)
    assert failed.value.code == "build_failed"
    (listed,) = clients.cloud_build().list_builds(project_id=PROJECT)
    build: cb.Build = clients.cloud_build().get_build(project_id=PROJECT, id=listed.id)
    return progress, build


def test_a_release_builds_as_the_build_account_of_doki_toml_and_says_so(
    tmp_path: Path, emulator: Emulator, clients: ClientFactory
) -> None:
    emulator.accounts.add(PROJECT, BUILDER)
    progress, build = _release_build(tmp_path, clients, f'[build]\nservice_account = "{BUILDER}"\n')
    assert progress == [
        f"not in Artifact Registry: building it on Cloud Build, as {BUILDER}",
        "uploading the source (0.0 MB) to Cloud Storage",
    ]
    assert build.service_account == f"projects/{PROJECT}/serviceAccounts/{BUILDER}"
    assert build.options.logging.name == "CLOUD_LOGGING_ONLY"


def test_a_release_without_a_build_account_says_it_builds_as_the_projects_default(
    tmp_path: Path, emulator: Emulator, clients: ClientFactory
) -> None:
    progress, build = _release_build(tmp_path, clients, "")
    assert progress == [
        "not in Artifact Registry: building it on Cloud Build, as the project's default build account (the Compute "
        "Engine default account on projects made since 2024)",
        "uploading the source (0.0 MB) to Cloud Storage",
    ]
    assert build.options.logging.name == "LOGGING_UNSPECIFIED"
