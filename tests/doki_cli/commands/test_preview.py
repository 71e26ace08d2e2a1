"""`doki preview` against the emulator with real containers: a pull request's revision reachable on its tag's URL,
allowing its own frontend's origin, while the service's URL still serves the release and allows no such origin;
`list`, and `delete` removing the tag and pruning the revisions nothing routes to."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from google.cloud import run_v2

from doki_cli.deploy.preview import preview_tag
from doki_cli.emulator.server import Emulator
from doki_cli.errors import DokiError
from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.helpers import CliRunner, allowed
from tests.helpers.project import PATH, setup_project

runner = CliRunner()
PREVIEW_TABLE = '[preview]\norigins = ["https://pr-{pr}--doki-web.example"]\n'


def doki(*args: str) -> object:
    return runner.invoke(app, list(args))


def serves(url: str) -> bool:
    """Whether `url` answers the health contract. A tag's URL whose tag is gone does not (the emulator closes its
    port; Google's front end answers 404)."""
    try:
        return httpx.get(url + "/", timeout=10).json() == {"message": "Doki Backend up"}
    except (httpx.HTTPError, ValueError):
        return False


def revision_names(emulator: Emulator) -> list[str]:
    revisions = ClientFactory(emulator.grpc_address).run_revisions().list_revisions(parent=PATH)
    return sorted(r.name.rsplit("/", 1)[1] for r in revisions)


def test_a_pull_requests_preview_serves_on_its_tag_while_traffic_stays_on_the_release_then_goes(
    tmp_path: Path, engine_emulator: Emulator, backend_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, engine_emulator, monkeypatch)
    (tmp_path / "doki.toml").write_text((tmp_path / "doki.toml").read_text() + PREVIEW_TABLE)
    assert doki("secrets", "push").exit_code == 0
    deployed = doki("--json", "deploy", "--image", backend_image, "--yes")
    assert deployed.exit_code == 0, deployed.output
    url, release = json.loads(deployed.stdout)["url"], json.loads(deployed.stdout)["revision"]

    planned = doki("preview", "--pr", "7", "--image", backend_image, "--dry-run")
    assert planned.exit_code == 2, planned.output
    assert planned.stdout == (
        f"Preview pr-7 of {PATH} (pull request 7)\n"
        f"  revision from {backend_image}, with no traffic, tagged pr-7\n"
        "  ALLOWED_ORIGINS on it: https://one.example, https://pr-7--doki-web.example\n"
        f"  traffic stays: {release} 100%\n"
        "  then on the tag's URL: GET / (the health contract)\n"
    )

    made = doki("--json", "preview", "--pr", "7", "--image", backend_image, "--yes")
    assert made.exit_code == 0, made.output
    first = json.loads(made.stdout)
    assert first["tag"] == "pr-7" and first["revision"].startswith("doki-backend-pr-7-image-")
    assert first["url"] != url and first["url"].startswith("http")
    assert serves(first["url"])
    # The preview's frontend may call the preview, and not the release; the release's origins stay as they were.
    assert allowed(first["url"], "https://pr-7--doki-web.example") == "https://pr-7--doki-web.example"
    assert allowed(url, "https://pr-7--doki-web.example") is None
    assert allowed(url, "https://one.example") == "https://one.example"
    status = json.loads(doki("--json", "status").stdout)
    assert [(t["revision"], t["percent"]) for t in status["traffic"] if t["percent"]] == [(release, 100)]

    # A preview whose revision does not become Ready (its image is not there) gets no tag, and leaves no record.
    missing = backend_image.rsplit(":", 1)[0] + ":not-pushed"
    failed = doki("preview", "--pr", "9", "--image", missing, "--yes")
    assert failed.exit_code == 1 and "\nError [revision_not_ready]: " in failed.stderr, failed.output
    assert "its tag pr-9 goes back" in failed.stderr
    services = ClientFactory(engine_emulator.grpc_address).run_services()
    assert "pr-9" not in [t.tag for t in services.get_service(name=PATH).traffic]
    assert [p["tag"] for p in json.loads(doki("--json", "preview", "list").stdout)] == ["pr-7"]

    # A change that would make a revision of the template, which is a preview's now, is refused.
    refused = doki("cors", "add", "https://two.example", "--yes")
    assert refused.exit_code == 1
    assert refused.stderr.startswith(
        "Error [preview_holds_template]: the service's template is a preview's (doki-backend-pr-9-image-"
    )

    second = json.loads(doki("--json", "preview", "--pr", "8", "--image", backend_image, "--yes").stdout)
    listed = doki("--json", "preview", "list")
    assert [(p["tag"], p["revision"], p["source"]) for p in json.loads(listed.stdout)] == [
        ("pr-8", second["revision"], "pull request 8"),
        ("pr-7", first["revision"], "pull request 7"),
    ]
    assert first["revision"] in revision_names(engine_emulator)

    gone = doki("preview", "delete", "--pr", "7", "--yes")
    assert gone.exit_code == 0, gone.output
    # The failed pr-9's revision, retired, goes too (keep = 0).
    assert f"Deleted preview pr-7 of doki-backend; deleted {first['revision']}, doki-backend-pr-9-image-" in gone.stdout
    assert first["revision"] not in revision_names(engine_emulator)
    assert not serves(first["url"])
    # Run again (a closed pull request's job, twice): nothing left to do.
    again = doki("preview", "delete", "--pr", "7", "--yes")
    assert (again.exit_code, again.stdout) == (0, "doki-backend has no preview tagged pr-7: nothing to delete\n")

    # A deploy makes the template doki.toml's again and sends traffic to it; pr-8 stays reachable.
    assert doki("deploy", "--image", backend_image, "--yes").exit_code == 0
    assert serves(second["url"])
    assert doki("preview", "delete", "pr-8", "--yes").exit_code == 0
    assert second["revision"] not in revision_names(engine_emulator)
    assert json.loads(doki("--json", "preview", "list").stdout) == []
    assert [t.tag for t in services.get_service(name=PATH).traffic if t.tag] == []
    assert services.get_service(name=PATH).traffic[0].type_ == run_v2.TrafficTargetAllocationType(1)


@pytest.mark.parametrize(
    ("service", "pr", "branch", "tag"),
    [
        ("api", 12, None, "pr-12"),
        ("api", None, "feature/Login_Page", "feature-login-page"),
        ("api", None, "pr-9-fix", "br-pr-9-fix"),
        ("api", None, "sha-cafe", "br-sha-cafe"),
        ("api", None, "2024-hotfix", "br-2024-hotfix"),
        # Shortened, with a hash of the whole name: two long branches alike at the start get two tags.
        ("a" * 30, None, "a-rather-long-branch-name", "a-rather-lo-4e95"),
    ],
)
def test_a_previews_tag_is_a_dns_label_that_fits_beside_the_service_name(
    service: str, pr: int | None, branch: str | None, tag: str
) -> None:
    made = preview_tag(service, pr=pr, branch=branch)
    assert made == tag
    assert len(made) + len(service) <= 46


def test_a_service_name_that_leaves_no_room_for_a_pull_requests_tag_is_refused() -> None:
    with pytest.raises(DokiError) as caught:
        preview_tag("s" * 44, pr=1234)
    assert caught.value.message.startswith("a preview tags its revision 'pr-1234', and Cloud Run refuses")


def test_options_read_from_the_environment_do_not_count_as_given_to_the_group(
    failed_service: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOKI_TIMEOUT", "5m")
    monkeypatch.setenv("DOKI_SHA", "a" * 40)
    listed = doki("preview", "list")
    assert (listed.exit_code, listed.stdout) == (0, "doki-backend has no previews (`doki preview` makes one)\n")
    typed = doki("preview", "--timeout", "5m", "list")
    assert typed.stderr.startswith("Error [bad_option]: --timeout belongs to `doki preview` itself")


def test_sha_and_image_name_the_preview_twice(failed_service: ClientFactory) -> None:
    both = doki("preview", "--pr", "1", "--sha", "a" * 40, "--image", "r.example/p/i:1")
    assert both.stderr == (
        "Error [bad_option]: --sha names a commit to build, and --image an image built already\n"
        "  Hint: give one of them\n"
    )
    # --sha alone is taken (the GitHub workflow passes it): here nothing serves, which is what stops it.
    alone = doki("preview", "--pr", "1", "--sha", "a" * 40)
    assert alone.stderr.startswith("Error [nothing_serves]: nothing serves on "), alone.output
