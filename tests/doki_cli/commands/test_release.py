"""`doki release` as CI runs it, against the emulator with real builds, pushes and containers (the release issue's
"done when"): a good commit ends with traffic on its revision and a JSON summary; a commit whose image fails its
smoke test ends with traffic untouched and exit 3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.helpers import BASE_IMAGE, CliRunner
from tests.helpers.accounts import make_accounts
from tests.helpers.project import PATH, PROJECT
from tests.helpers.release import IMAGE, commit, git, release

runner = CliRunner()
# An image that starts and listens, but answers 503: Ready for Cloud Run, failing for the smoke test.
BROKEN_CMD = (
    'CMD ["python", "-c", "import http.server, os\\n'
    "class H(http.server.BaseHTTPRequestHandler):\\n"
    "    def do_GET(self):\\n"
    "        print('broken build answering 503', flush=True)\\n"
    "        self.send_response(503); self.end_headers(); self.wfile.write(b'down')\\n"
    "http.server.HTTPServer(('0.0.0.0', int(os.environ['PORT'])), H).serve_forever()\"]\n"
)


CI_RUN = {
    "GITHUB_ACTOR": "octocat",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/api",
    "GITHUB_RUN_ID": "7",
}


def serving(emulator: Emulator) -> dict[str, int]:
    service = ClientFactory(emulator.grpc_address).run_services().get_service(name=PATH)
    return {s.revision: s.percent for s in service.traffic_statuses if s.percent}


def test_a_good_commit_gets_the_traffic_and_a_broken_one_never_does(
    project: Path, engine_emulator: Emulator, docker_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in CI_RUN.items():  # a GitHub Actions run, which the revisions' history names
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    first_sha = git(project, "rev-parse", "HEAD")
    # A dry run builds, pushes and writes nothing: it plans against what is live and says what would follow.
    planned = runner.invoke(app, ["release", "--local", "--dry-run", "--secrets-from", ".env"])
    assert planned.exit_code == 2, planned.output
    assert "  + create the service\n" in planned.stdout
    assert planned.stdout.endswith(
        f"  then image {IMAGE}:{first_sha[:7]}: the one in Artifact Registry if there, else built with the local "
        "engine and pushed\n"
        "  then secrets: values from .env that changed pushed as new versions, then pinned\n"
        "  then deploy: nothing serves yet, so the first revision gets all traffic at once\n"
        "  then smoke: GET / -> the health contract; GET /docs -> 200 containing 'Swagger' on the service's URL\n"
    )
    assert "Releasing" not in planned.stderr
    assert (
        list(ClientFactory(engine_emulator.grpc_address).secret_manager().list_secrets(parent=f"projects/{PROJECT}"))
        == []
    )
    first = release("--secrets-from", ".env")
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert (summary["result"], summary["commit"], summary["image"]) == (
        "released",
        first_sha,
        f"{IMAGE}:{first_sha[:7]}",
    )
    assert [s["outcome"] for s in summary["secrets"]] == ["created"] * 4
    assert summary["checks"] == ["GET / -> 200", "GET /docs -> 200 containing 'Swagger'"]
    assert summary["digest"].startswith("sha256:")

    (project / "doki" / "release_marker.py").write_text('"""A code change: the second commit."""\n')
    second_sha = commit(project, "second")
    staged = json.loads(release("--dry-run").stdout)
    assert [change["what"] for change in staged["plan"]["changes"]] == ["image"]
    assert staged["then"][1:] == [
        f"deploy: doki-backend-{second_sha[:7]}-XXXX with no traffic, tagged sha-{second_sha[:7]}, under the "
        "release lock",
        "smoke: GET / -> the health contract; GET /docs -> 200 containing 'Swagger' on the tag's URL; a failure puts "
        "traffic back",
        "traffic: 100%; the last step drops the lock",
    ]
    assert serving(engine_emulator) == summary["traffic"]  # nothing moved
    second = release()
    assert second.exit_code == 0, second.output
    summary = json.loads(second.stdout)
    assert summary["result"] == "released"
    assert [step["step"] for step in summary["steps"]] == ["image", "plan", "deploy", "smoke", "traffic"]
    assert summary["steps"][0]["result"] == "built"
    assert summary["revision"].startswith(f"doki-backend-{second_sha[:7]}-")
    assert summary["tag"] == f"sha-{second_sha[:7]}"
    assert summary["traffic"] == {summary["revision"]: 100} == serving(engine_emulator)
    assert httpx.get(summary["service_url"] + "/", timeout=10).json() == {"message": "Doki Backend up"}
    good_revision = summary["revision"]

    assert release("--dry-run").exit_code == 0  # this commit is live: nothing to do
    again = release()  # a rerun of the same CI job
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["result"] == "unchanged"

    with (project / "Dockerfile").open("a") as dockerfile:
        dockerfile.write(BROKEN_CMD)
    broken_sha = commit(project, "broken")
    broken = runner.invoke(app, ["release", "--local", "--base-image", BASE_IMAGE])
    assert broken.exit_code == 3, broken.output
    assert serving(engine_emulator) == {good_revision: 100}
    assert f"Releasing {broken_sha[:12]} (from git) to {PATH}\n" in broken.stderr
    assert "failed the health contract after 3 tries; last: HTTP 503: down" in broken.stderr
    assert "Error [smoke_check_failed]: http://" in broken.stderr
    assert "broken build answering 503" in broken.stderr  # the revision's last log lines
    assert "  Hint: traffic was not moved;" in broken.stderr

    # The failed revision is Ready: only doki's note says it failed. Released again, the commit is refused, and a
    # deploy that would route traffic to it asks for a yes too.
    failed_revision = ClientFactory(engine_emulator.grpc_address).run_services().get_service(name=PATH)
    failed_revision_name = failed_revision.latest_created_revision.rsplit("/", 1)[1]
    rerun = release()
    assert rerun.exit_code == 1, rerun.output
    report = json.loads(rerun.stdout)
    assert report["error"]["code"] == "repeats_failed_revision"
    assert report["error"]["message"] == (
        f"{IMAGE}:{broken_sha[:7]} is the image {failed_revision_name} of doki-backend failed with, and nothing else "
        "changed: the new revision would fail the same way; nothing was changed"
    )
    assert f"is the image {failed_revision_name} failed with (http://" in " ".join(report["warnings"])
    status = runner.invoke(app, ["status"]).stdout  # the note shows where people look first
    assert f"  ready        serving normally; the newest revision, {failed_revision_name}, failed: http://" in status
    assert f"  newest       {failed_revision_name} (failed, deployed " in status
    assert [step["step"] for step in report["steps"]] == ["image", "plan"]  # nothing deployed
    assert serving(engine_emulator) == {good_revision: 100}
    deployed = runner.invoke(app, ["deploy", "--image", f"{IMAGE}:{broken_sha[:7]}"])
    assert deployed.exit_code == 1
    assert "Error [repeats_failed_revision]: doki-backend would serve the image that failed again" in deployed.stderr
    assert serving(engine_emulator) == {good_revision: 100}
    retried = release("--yes")  # asked for: it fails the checks again, and traffic stays
    assert retried.exit_code == 3, retried.output
    assert serving(engine_emulator) == {good_revision: 100}

    # The history says which commit each release made, and that the retried one failed its checks.
    history = runner.invoke(app, ["history", "--limit", "3", "--json"])
    assert history.exit_code == 0, history.output
    revisions = ClientFactory(engine_emulator.grpc_address).run_revisions().list_revisions(parent=PATH)
    made = {r.name.rsplit("/", 1)[1]: r.create_time.isoformat(timespec="seconds") for r in revisions}
    retried_name = next(iter(made))  # the newest
    listed = json.loads(history.stdout)
    why = listed[0]["message"]
    assert why.startswith("http://") and why.endswith(" failed the health contract after 3 tries; last: HTTP 503: down")
    ci = {"by_doki": True, "command": "release", "by": "octocat", "from": "https://github.com/acme/api/actions/runs/7"}
    assert listed == [
        {
            "revision": retried_name,
            "created": made[retried_name],
            "result": "failed",
            "reason": "CHECKS_FAILED",
            "message": why,
            "image": f"{IMAGE}:{broken_sha[:7]}",
            "traffic": 0,
            "tags": [],
            "commit": broken_sha,
            **ci,
        },
        {
            "revision": failed_revision_name,
            "created": made[failed_revision_name],
            # Its checks failed too, but the service's note names only the newest revision that failed them.
            "result": "retired",
            "reason": None,
            "message": None,
            "image": f"{IMAGE}:{broken_sha[:7]}",
            "traffic": 0,
            "tags": [],
            "commit": broken_sha,
            **ci,
        },
        {
            "revision": good_revision,
            "created": made[good_revision],
            "result": "serving",
            "reason": None,
            "message": None,
            "image": f"{IMAGE}:{second_sha[:7]}",
            "traffic": 100,
            "tags": [f"sha-{second_sha[:7]}"],
            "commit": second_sha,
            **ci,
        },
    ]


EXITING_CMD = 'CMD ["python", "-c", "import sys; print(\'cannot start: bad settings\', flush=True); sys.exit(3)"]\n'


def test_after_a_release_whose_container_exits_doki_tells_the_truth_and_shows_what_to_do_next(
    project: Path, engine_emulator: Emulator
) -> None:
    """Issue 16's bad day: the failed release shows Cloud Run's exit line, the logs hold it, status says what
    serves, rollback succeeds and says where traffic went, and deploying the failed image again needs a yes."""
    assert release("--secrets-from", ".env").exit_code == 0
    services = ClientFactory(engine_emulator.grpc_address).run_services()
    good = services.get_service(name=PATH).latest_ready_revision.rsplit("/", 1)[1]
    with (project / "Dockerfile").open("a") as dockerfile:
        dockerfile.write(EXITING_CMD)
    broken_sha = commit(project, "a container that exits")

    failed = runner.invoke(app, ["release", "--local", "--base-image", BASE_IMAGE])
    assert failed.exit_code == 3, failed.output
    newest = services.get_service(name=PATH).latest_created_revision.rsplit("/", 1)[1]
    assert newest != good
    last_lines = failed.stderr.split(f"Last log lines of {newest}:\n", 1)[1]
    assert "ERROR    Container called exit(3)." in last_lines
    assert "cannot start: bad settings" in last_lines
    assert serving(engine_emulator) == {good: 100}

    logs = runner.invoke(app, ["logs", "--revision", newest])
    assert logs.exit_code == 0, logs.output
    assert any(line.split()[1:4] == ["ERROR", newest, "Container"] for line in logs.stdout.splitlines()), logs.stdout

    status = runner.invoke(app, ["status"])
    assert f"  ready        serving normally; the newest revision, {newest}, failed: " in status.stdout
    assert f"  serving      {good} (100%, deployed " in status.stdout

    rolled = runner.invoke(app, ["rollback", "--yes"])
    assert rolled.exit_code == 0, rolled.output
    (now_serving,) = serving(engine_emulator)
    assert now_serving != good
    planned, done = rolled.stdout.split("1 change.\n")
    assert planned.endswith(f"  ~ traffic: 100% {good} -> 100% {now_serving}\n")
    assert done.startswith(f"All traffic now goes to {now_serving} (image {IMAGE}:")
    assert rolled.stdout.endswith(f"); before: 100% {good}.\n")
    assert f"The newest revision, {newest}, is not Ready (" in rolled.stderr
    assert "Last log lines: cannot start: bad settings): what serves is unaffected.\n" in rolled.stderr  # one line

    again = runner.invoke(app, ["deploy"])  # this commit's image: the one that failed
    assert again.exit_code == 1, again.output
    assert f"  ! {IMAGE}:{broken_sha[:7]} is the image {newest} failed with (" in again.stdout
    assert "Error [repeats_failed_revision]: doki-backend would serve the image that failed again" in again.stderr
    assert serving(engine_emulator) == {now_serving: 100}


def test_a_dirty_tree_is_refused_before_anything_is_built(project: Path, engine_emulator: Emulator) -> None:
    (project / "README.md").write_text("changed\n")
    result = release()
    assert result.exit_code == 78
    assert json.loads(result.stdout)["error"]["code"] == "dirty_tree"
    assert engine_emulator.run.list_services("projects/doki-e2e/locations/us-central1")[0] == []


def test_a_secrets_file_that_is_not_there_is_refused_with_releases_own_option(
    project: Path, engine_emulator: Emulator
) -> None:
    result = release("--secrets-from", "prod.env")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"] == {
        "code": "secrets_source_missing",
        "message": "no file at prod.env to read secret values from",
        "hint": "pass --secrets-from PATH to your .env file, or --secrets-from - to read NAME=value lines from stdin",
    }
    assert engine_emulator.run.list_services("projects/doki-e2e/locations/us-central1")[0] == []


def test_in_ci_the_image_is_built_on_cloud_build_and_reused_by_the_next_release_of_that_commit(
    project: Path, engine_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (project / "doki.toml").open("a") as toml:
        toml.write('[environments.staging]\nname = "doki-backend-staging"\n')
    sha = commit(project, "a staging environment")
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("GITHUB_SHA", sha)
    staging = runner.invoke(
        app, ["--json", "--env", "staging", "release", "--base-image", BASE_IMAGE, "--secrets-from", ".env"]
    )
    assert staging.exit_code == 0, staging.output
    summary = json.loads(staging.stdout)
    assert (summary["result"], summary["steps"][0]["result"]) == ("released", "built-remote")
    assert summary["service"].endswith("/services/doki-backend-staging")
    # Someone scaled the service by hand; releasing the same commit again puts doki.toml back, and Artifact Registry
    # has the commit's tag, so nothing is built again.
    assert runner.invoke(app, ["--env", "staging", "scale", "--max-instances", "3", "--yes"]).exit_code == 0
    again = runner.invoke(app, ["--json", "--env", "staging", "release"])
    assert again.exit_code == 0, again.output
    released = json.loads(again.stdout)
    assert (released["result"], released["steps"][0]["result"]) == ("released", "reused")
    assert (released["image"], released["digest"]) == (summary["image"], summary["digest"])
    assert released["revision"] != summary["revision"]


@pytest.mark.parametrize(
    ("edit", "code", "says"),
    [
        (  # 40 characters: no room for a release tag (Cloud Run's 46 for tag and name together)
            ('"doki-backend"', '"doki-backend-' + "x" * 27 + '"'),
            "service_name_too_long",
            "Cloud Run refuses a tag and service name of more than 46 characters together",
        ),
        (  # a setting the backend refuses at start
            ("https://abcdefghijklmnop.supabase.co", "https://your-project.supabase.co"),
            "would_not_start",
            "SUPABASE_URL holds a development placeholder",
        ),
    ],
    ids=["a service name too long for a release tag", "settings the backend would refuse"],
)
def test_a_release_that_could_not_succeed_is_refused_before_anything_is_built(
    edit: tuple[str, str], code: str, says: str, project: Path, engine_emulator: Emulator, docker_client: Any
) -> None:
    toml = project / "doki.toml"
    toml.write_text(toml.read_text().replace(*edit))
    sha = commit(project, "a change")

    result = release("--secrets-from", ".env")

    assert result.exit_code == 78, result.output
    error = json.loads(result.stdout)["error"]
    assert error["code"] == code
    assert says in error["message"]
    assert "Releasing" not in result.stderr
    assert not docker_client.images.list(name=f"{IMAGE}:{sha[:7]}")
    assert engine_emulator.run.list_services("projects/doki-e2e/locations/us-central1")[0] == []


def test_a_private_service_whose_checks_could_not_get_an_id_token_is_refused_before_anything_is_built(
    project: Path, engine_emulator: Emulator, docker_client: Any
) -> None:
    toml = project / "doki.toml"
    toml.write_text(toml.read_text().replace("[service.env]\n", "allow_unauthenticated = false\n[service.env]\n", 1))
    sha = commit(project, "private, with no account to check it as")

    result = release("--secrets-from", ".env")

    assert result.exit_code == 78, result.output
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "no_identity_token"
    assert error["message"] == (
        "doki-backend is private (allow_unauthenticated = false), and its release checks need an ID token that could "
        "not be minted (no ID token for https://doki-backend.preflight.invalid: the emulator's stand-in credentials "
        "are no service account's, and no account to mint one as is named); nothing was built or changed"
    )
    assert "invoker_account" in error["hint"]
    assert not docker_client.images.list(name=f"{IMAGE}:{sha[:7]}")
    assert engine_emulator.run.list_services("projects/doki-e2e/locations/us-central1")[0] == []


def test_a_private_service_is_checked_with_an_id_token_of_the_invoker_account_and_says_which_role_it_lacks(
    project: Path, engine_emulator: Emulator
) -> None:
    invoker = "release-checks@doki-e2e.iam.gserviceaccount.com"
    toml = (project / "doki.toml").read_text()
    toml = toml.replace("[service.env]\n", "allow_unauthenticated = false\n[service.env]\n", 1)
    toml = toml.replace("[release]\nattempts = 3\n", f'[release]\nattempts = 2\ninvoker_account = "{invoker}"\n')
    (project / "doki.toml").write_text(toml)
    commit(project, "private, checked as the release account")
    make_accounts(engine_emulator, toml)
    engine_emulator.accounts.add("doki-e2e", invoker)

    refused = release("--secrets-from", ".env")
    assert refused.exit_code == 3, refused.output
    error = json.loads(refused.stdout)["error"]
    assert error["code"] == "smoke_check_failed"
    assert "failed the health contract after 2 tries; last: HTTP 403: " in error["message"]
    assert error["hint"] == (
        f"{invoker} may not invoke doki-backend: grant it roles/run.invoker (gcloud run services "
        f"add-iam-policy-binding doki-backend --member=serviceAccount:{invoker} --role=roles/run.invoker "
        "--region us-central1 --project doki-e2e, or the same role on the whole project, which works before the "
        "service exists); the first revision serves already (there was nothing to fall back to); once fixed, the next "
        "commit's release checks again (this commit's finds it live and changes nothing)"
    )

    services = ClientFactory(engine_emulator.grpc_address).run_services()
    policy = services.get_iam_policy(request={"resource": PATH})
    policy.bindings.add(role="roles/run.invoker", members=[f"serviceAccount:{invoker}"])
    services.set_iam_policy(request={"resource": PATH, "policy": policy})
    (project / "doki" / "release_marker.py").write_text(
        '"""The next commit, released once the account may invoke."""\n'
    )
    commit(project, "second")
    released = release()
    assert released.exit_code == 0, released.output
    summary = json.loads(released.stdout)
    assert summary["result"] == "released"
    assert summary["checks"] == ["GET / -> 200", "GET /docs -> 200 containing 'Swagger'"]
    assert httpx.get(summary["service_url"] + "/", timeout=10).status_code == 403  # still private to everyone else
