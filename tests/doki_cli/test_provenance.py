"""Who runs doki and from where, as deploy and release record it: from the environment alone."""

from __future__ import annotations

import getpass
import json
import socket
from pathlib import Path

from doki_cli.model import Provenance
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
