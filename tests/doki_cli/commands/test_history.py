"""`doki history` against the emulator: every revision newest first, with what doki recorded when it made it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.helpers import CliRunner
from tests.helpers.gcloud import Gcloud
from tests.helpers.images import publish
from tests.helpers.project import PATH, PROJECT, setup_project
from tests.helpers.release import commit, git

runner = CliRunner()
IMAGE = "us-central1-docker.pkg.dev/doki-e2e/doki/doki-backend"
# A GitHub Actions run, as the runner's variables name it: who started it and its URL.
CI = {
    "GITHUB_ACTOR": "octocat",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/api",
    "GITHUB_RUN_ID": "42",
}
RUN_URL = "https://github.com/acme/api/actions/runs/42"


def doki(*args: str) -> Result:
    return runner.invoke(app, list(args))


def made(emulator: Emulator) -> list[tuple[str, str]]:
    """Each revision's short name and creation time as doki prints it, newest first, as Cloud Run lists them."""
    revisions = ClientFactory(emulator.grpc_address).run_revisions().list_revisions(parent=PATH)
    return [(r.name.rsplit("/", 1)[-1], r.create_time.isoformat(timespec="seconds")) for r in revisions]


@pytest.fixture
def in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CI.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)


def test_history_lists_a_deploy_of_the_commit_a_scale_and_a_failed_deploy_newest_first_with_who_and_from_where(
    tmp_path: Path,
    engine_emulator: Emulator,
    backend_image: str,
    docker_client: Any,
    in_ci: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "app"  # a checkout of its own: the emulator's files under tmp_path would make it dirty
    root.mkdir()
    setup_project(root, engine_emulator, monkeypatch)
    monkeypatch.chdir(root)
    git(root, "init", "-q")
    sha = commit(root, "first")
    # The commit's own image, as `doki build` would tag it: the backend image under the commit's tag.
    own = f"{IMAGE}:{sha[:7]}"
    docker_client.images.get(backend_image).tag(own)
    try:
        publish(engine_emulator, own)
        assert doki("secrets", "push").exit_code == 0
        deployed = doki("deploy", "--yes")
        assert deployed.exit_code == 0, deployed.output
        assert doki("scale", "--max-instances", "3", "--yes").exit_code == 0
        missing = f"{IMAGE}:never-pushed"
        assert doki("deploy", "--image", missing, "--yes", "--skip-checks").exit_code == 1
    finally:
        docker_client.images.remove(own)
    # The first deploy makes two revisions: the second carries the redirect URI made of the service's URL. The scale
    # made the third, of the same image: its commit is the one before, and doki knows no more of the command.
    (failed, failed_at), (scaled, scaled_at), (second, second_at), (first, first_at) = made(engine_emulator)
    tag = f"{IMAGE}:{sha[:7]}"

    result = doki("history")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "  REVISION                CREATED                    RESULT                      TRAFFIC  COMMAND  COMMIT    "
        "    BY       FROM                                         IMAGE",
        f"  {failed}  {failed_at}  failed (CONTAINER_MISSING)  0%       deploy   -             octocat  {RUN_URL}  "
        f"{IMAGE}:never-pushed",
        f"* {scaled}  {scaled_at}  serving                     100%     doki     {sha[:12]}  octocat  {RUN_URL}  {tag}",
        f"  {second}  {second_at}  retired                     0%       deploy   {sha[:12]}  octocat  {RUN_URL}  {tag}",
        f"  {first}  {first_at}  retired                     0%       deploy   {sha[:12]}  octocat  {RUN_URL}  {tag}",
        f"  {failed}: Revision '{failed}' is not ready and cannot serve traffic. Image '{IMAGE}:never-pushed' not "
        "found.",
    ]
    assert result.stderr == ""

    newest = doki("history", "--limit", "2", "--json")
    assert newest.exit_code == 0, newest.output
    by_ci = {"by_doki": True, "by": "octocat", "from": RUN_URL}
    assert json.loads(newest.stdout) == [
        {
            "revision": failed,
            "created": failed_at,
            "result": "failed",
            "reason": "CONTAINER_MISSING",
            "message": f"Revision '{failed}' is not ready and cannot serve traffic. Image '{IMAGE}:never-pushed' not "
            "found.",
            "image": f"{IMAGE}:never-pushed",
            "traffic": 0,
            "tags": [],
            "command": "deploy",
            "commit": None,
            **by_ci,
        },
        {
            "revision": scaled,
            "created": scaled_at,
            "result": "serving",
            "reason": None,
            "message": None,
            "image": tag,
            "traffic": 100,
            "tags": [],
            "command": None,
            "commit": sha,
            **by_ci,
        },
    ]


def test_history_of_a_service_never_deployed_says_so_and_how_to_deploy_it(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, emulator, monkeypatch)

    result = doki("history")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"Error [service_not_found]: {PATH} does not exist\n"
        "  Hint: deploy it with `doki deploy` (or check --project/--region/--env)\n"
    )


def test_a_revision_gcloud_made_from_dokis_template_is_listed_with_what_is_known_and_no_provenance(
    tmp_path: Path,
    engine_emulator: Emulator,
    backend_image: str,
    gcloud_binary: str,
    in_ci: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup_project(tmp_path, engine_emulator, monkeypatch)
    monkeypatch.chdir(tmp_path)
    assert doki("secrets", "push").exit_code == 0
    assert doki("deploy", "--image", backend_image, "--yes").exit_code == 0
    # gcloud copies the live template, doki's annotations with it, into the revision it makes. It also pins the
    # image by digest, which the emulator's registry does not hold for this image (pushed by name): the revision fails,
    # and doki's keeps serving.
    gcloud = Gcloud.for_emulator(gcloud_binary, engine_emulator, tmp_path / "gcloud-config", PROJECT)
    gcloud.run("run", "services", "update", "doki-backend", "--region", "us-central1", "--update-labels", "team=api")
    (by_gcloud, by_gcloud_at), (second, second_at), (first, first_at) = made(engine_emulator)
    revisions = ClientFactory(engine_emulator.grpc_address).run_revisions()
    pinned = revisions.get_revision(name=f"{PATH}/revisions/{by_gcloud}").containers[0].image
    assert "doki.dev/command" in revisions.get_revision(name=f"{PATH}/revisions/{by_gcloud}").annotations
    # Cloud Run's message names the image as pulled: from the emulator's registry.
    why = (
        f"Revision '{by_gcloud}' is not ready and cannot serve traffic. Image "
        f"'{engine_emulator.registry_address}/{pinned}' not found."
    )

    listed = doki("history", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)[0] == {
        "revision": by_gcloud,
        "created": by_gcloud_at,
        "result": "failed",
        "reason": "CONTAINER_MISSING",
        "message": why,
        "image": pinned,
        "traffic": 0,
        "tags": [],
        "by_doki": False,
        "command": None,
        "commit": None,
        "by": None,
        "from": None,
    }
    result = doki("history")
    assert result.stdout.splitlines()[1:] == [
        f"  {by_gcloud}  {by_gcloud_at}  failed (CONTAINER_MISSING)  0%       -        -       -        -"
        + " " * 42
        + f"  {pinned}",
        f"* {second}  {second_at}  serving                     100%     deploy   -       octocat  {RUN_URL}  "
        f"{backend_image}",
        f"  {first}  {first_at}  retired                     0%       deploy   -       octocat  {RUN_URL}  "
        f"{backend_image}",
        f"  {by_gcloud}: {why}",
    ]
