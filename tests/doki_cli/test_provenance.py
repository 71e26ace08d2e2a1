"""Who runs doki and from where, as deploy and release record it: from the environment alone."""

from __future__ import annotations

import getpass
import json
import socket
from pathlib import Path

from google.cloud import run_v2

from doki_cli.gcp.run import stamp
from doki_cli.model import AFTER, BY, COMMAND, COMMIT, COMMIT_IMAGE, FROM, Provenance
from doki_cli.provenance import here, where, who

GITHUB = {"GITHUB_ACTOR": "octocat", "GITHUB_REPOSITORY": "acme/api", "GITHUB_RUN_ID": "42"}


def test_a_github_actions_run_is_its_actor_and_its_runs_url() -> None:
    assert here("release", "abc", GITHUB) == Provenance(
        "release", "abc", "octocat", "https://github.com/acme/api/actions/runs/42"
    )


def test_a_github_enterprise_run_is_on_its_own_server() -> None:
    assert where({**GITHUB, "GITHUB_SERVER_URL": "https://git.example.com"}) == (
        "https://git.example.com/acme/api/actions/runs/42"
    )


def test_a_service_account_key_names_the_account_whatever_the_ci(tmp_path: Path) -> None:
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"type": "service_account", "client_email": "ci@p.iam.gserviceaccount.com"}))
    assert who({**GITHUB, "GOOGLE_APPLICATION_CREDENTIALS": str(key)}) == "ci@p.iam.gserviceaccount.com"


def test_a_key_file_that_cannot_be_read_falls_back_to_the_ci_actor(tmp_path: Path) -> None:
    assert who({**GITHUB, "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "gone.json")}) == "octocat"


def test_gitlab_names_the_job_and_its_user() -> None:
    env = {"GITLAB_USER_LOGIN": "ann", "CI_JOB_URL": "https://gitlab.com/acme/api/-/jobs/9"}
    assert (who(env), where(env)) == ("ann", "https://gitlab.com/acme/api/-/jobs/9")


def test_outside_ci_it_is_the_local_user_on_this_host() -> None:
    assert (who({}), where({})) == (getpass.getuser(), socket.gethostname())


def template(image: str, **annotations: str) -> run_v2.RevisionTemplate:
    return run_v2.RevisionTemplate(containers=[run_v2.Container(image=image)], annotations=annotations)


def test_a_deploy_records_itself_and_the_commit_with_its_image_in_place_of_what_the_template_said() -> None:
    written = template("img:2", **{COMMAND: "release", BY: "ann", FROM: "laptop", COMMIT: "old", AFTER: "api-1"})
    stamp(
        written,
        Provenance("deploy", "abc", "octocat", "ci"),
        after="projects/p/locations/r/services/api/revisions/api-2",
    )
    assert dict(written.annotations) == {
        COMMAND: "deploy", BY: "octocat", FROM: "ci", COMMIT: "abc", COMMIT_IMAGE: "img:2", AFTER: "api-2"
    }  # fmt: skip


def test_a_deploy_of_another_image_records_no_commit() -> None:
    written = template("other:1", **{COMMIT: "abc", COMMIT_IMAGE: "img:2"})
    stamp(written, Provenance("deploy", "", "octocat", "ci"), after="api-2")
    assert dict(written.annotations) == {COMMAND: "deploy", BY: "octocat", FROM: "ci", AFTER: "api-2"}


def test_a_scale_keeps_the_commit_of_the_same_image_and_drops_that_of_another() -> None:
    same = template("img:2", **{COMMAND: "deploy", COMMIT: "abc", COMMIT_IMAGE: "img:2"})
    stamp(same, Provenance("", None, "ann", "laptop"), after="api-3")
    assert dict(same.annotations) == {BY: "ann", FROM: "laptop", COMMIT: "abc", COMMIT_IMAGE: "img:2", AFTER: "api-3"}
    # gcloud changed the image since doki recorded the commit: the commit is not this image's.
    changed = template("gcloud:9", **{COMMAND: "deploy", COMMIT: "abc", COMMIT_IMAGE: "img:2"})
    stamp(changed, Provenance("", None, "ann", "laptop"), after="api-4")
    assert dict(changed.annotations) == {BY: "ann", FROM: "laptop", AFTER: "api-4"}
