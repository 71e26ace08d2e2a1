"""The ops loop against the emulator with real containers: deploy, status, cors, scale, rollback, deploy again.

This is the deploy issue's "done when", as a user runs it; the error paths need no container."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from google.api import launch_stage_pb2

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.helpers import CliRunner, allowed, plan_text
from tests.helpers.project import PATH, setup_project

runner = CliRunner()


def doki(*args: str) -> object:
    return runner.invoke(app, list(args))


def test_the_ops_loop_from_secrets_to_rollback_and_back(
    tmp_path: Path, engine_emulator: Emulator, backend_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, engine_emulator, monkeypatch)
    assert doki("secrets", "push").exit_code == 0
    assert "unchanged" in doki("secrets", "push").stdout
    deployed = doki("--json", "deploy", "--image", backend_image, "--yes")
    assert deployed.exit_code == 0, deployed.output
    url = json.loads(deployed.stdout)["url"]
    first = json.loads(deployed.stdout)["revision"]
    assert httpx.get(url + "/", timeout=10).json() == {"message": "Doki Backend up"}
    assert doki("deploy", "--image", backend_image, "--dry-run").exit_code == 0

    status = json.loads(doki("--json", "status").stdout)
    assert (status["url"], status["ready"], status["latest_ready"]) == (url, True, first)
    assert [(t["revision"], t["percent"], t["tags"], t["image"]) for t in status["traffic"]] == [
        (first, 100, [], backend_image)
    ]
    assert status["traffic_follows_latest"] is True
    assert status["scaling"] == {"min": 0, "max": 10}
    assert status["public"] is True

    assert doki("cors", "list").stdout == "https://one.example\n"
    added = doki("cors", "add", "https://two.example", "--save", "--yes")
    assert added.exit_code == 0, added.output
    where = f"the emulator at {engine_emulator.grpc_address}"
    assert added.stdout == (
        plan_text(
            PATH, where, "  ~ env ALLOWED_ORIGINS: https://one.example -> https://one.example,https://two.example"
        )
        + "Allowed origins now: https://one.example, https://two.example\n"
    )
    assert allowed(url, "https://two.example") == "https://two.example"  # the running container sees it
    assert 'ALLOWED_ORIGINS = ["https://one.example", "https://two.example"]' in (tmp_path / "doki.toml").read_text()
    second = json.loads(doki("--json", "status").stdout)["latest_ready"]
    assert second != first

    logs = doki("logs", "--limit", "100")
    assert logs.exit_code == 0, logs.output
    ready_lines = [line for line in logs.stdout.splitlines() if "Doki backend ready (production" in line]
    assert any(line.split()[1:3] == ["INFO", second] for line in ready_lines), logs.stdout

    would = doki("scale", "--max-instances", "3", "--memory", "1Gi", "--dry-run")
    # The emulated catalog's list prices: a bigger instance costs more a request, and nothing at rest without a floor.
    scale_plan = plan_text(
        PATH,
        where,
        "  ~ max instances: 10 -> 3",
        "  ~ memory: 512Mi -> 1Gi",
        cost=(
            "always-on floor: $0.00 a month (0 min instances of 1 vCPU and 1 GiB, request-based billing)",
            "a million 1-second requests: $25.65 -> $26.90",
        ),
    )
    assert (would.exit_code, would.stdout) == (2, scale_plan)
    scaled = doki("scale", "--max-instances", "3", "--memory", "1Gi", "--yes")
    assert scaled.exit_code == 0, scaled.output
    assert scaled.stdout == scale_plan + "Scaled doki-backend: max instances 10 -> 3, memory 512Mi -> 1Gi\n"
    assert doki("scale", "--max-instances", "3", "--dry-run").exit_code == 0
    status = json.loads(doki("--json", "status").stdout)
    assert (status["scaling"], status["resources"]["memory"]) == ({"min": 0, "max": 3}, "1Gi")
    third = status["latest_ready"]
    # The service's own minimum, as gcloud's --min sets it: no new revision, the same one serves.
    warm = doki("scale", "--min", "1", "--max", "5", "--yes")
    assert warm.exit_code == 0, warm.output
    assert warm.stdout == plan_text(
        PATH,
        where,
        "  ~ service min instances: 0 -> 1",
        "  ~ service max instances: none -> 5",
        # 730 hours of an idle instance at $0.0000025 a vCPU-second and $0.0000025 a GiB-second.
        cost=(
            "always-on floor: $0.00 a month -> $13.14 a month (1 min instance of 1 vCPU and 1 GiB, request-based "
            "billing)",
            "a million 1-second requests: $26.90",
        ),
    ) + ("Scaled doki-backend: service min instances 0 -> 1, service max instances none -> 5\n")
    assert warm.stderr.endswith("the service's --min and --max are not in doki.toml: deploys keep them as they are\n")
    scaled = ClientFactory(engine_emulator.grpc_address).run_services().get_service(name=PATH)
    scaling = scaled.scaling
    assert (scaling.min_instance_count, scaling.max_instance_count) == (1, 5)
    # Cloud Run takes a service-level maximum only from a service declared BETA, as gcloud's beta --max declares it.
    assert scaled.launch_stage == launch_stage_pb2.LaunchStage.BETA
    status = json.loads(doki("--json", "status").stdout)
    assert (status["latest_ready"], status["service_scaling"]) == (third, {"min": 1, "max": 5})
    # The instance kept warm, a month of it, priced from the emulated catalog.
    assert status["floor_cost"] == {"per_month": 13.14, "currency": "USD", "min_instances": 1, "priced": True}
    assert (
        "  floor cost   $13.14 a month (1 min instance, request-based billing; list prices, before the free tier)\n"
    ) in doki("status").stdout
    assert "  scaling      the service's own: at least 1, at most 5 instances, shared by the revisions that take " in (
        doki("status").stdout
    )

    pin_plan = plan_text(PATH, where, f"  ~ traffic: 100% latest -> 100% {second}")
    assert doki("rollback", "--dry-run").stdout == pin_plan  # the previous Ready revision, picked without asking
    unconfirmed = doki("rollback")  # no terminal here to answer on, and no --yes: its plan, and nothing moved
    assert (unconfirmed.exit_code, unconfirmed.stdout) == (1, pin_plan)
    assert unconfirmed.stderr.startswith("Error [confirmation_required]: applying this plan to doki-backend")
    assert json.loads(doki("--json", "status").stdout)["traffic_follows_latest"] is True
    back = doki("rollback", "--yes")
    assert back.exit_code == 0, back.output
    assert back.stdout.startswith(pin_plan + f"All traffic now goes to {second} (image {backend_image}, deployed ")
    assert back.stdout.endswith(f"); before: 100% {third}.\n")
    status = json.loads(doki("--json", "status").stdout)
    assert [(t["revision"], t["percent"], t["image"], t["scaling"]) for t in status["traffic"]] == [
        (second, 100, backend_image, {"min": 0, "max": 10})  # the revision's own scaling, not the template's
    ]
    assert status["traffic_follows_latest"] is False
    assert doki("rollback", first, "--yes").stdout.endswith(f"); before: 100% {second}.\n")
    assert allowed(url, "https://two.example") is None  # the first revision's container answers: it predates the origin

    plan = doki("deploy", "--image", backend_image, "--dry-run")
    assert plan.exit_code == 2
    assert f"  ~ traffic: 100% {first} -> 100% latest\n" in plan.stdout
    # A deploy whose revision fails leaves the pin where it is: "latest" would be the revision rolled away from.
    never = backend_image.rpartition(":")[0] + ":never-built"
    refused = doki("deploy", "--image", never, "--yes")
    assert refused.exit_code == 78
    assert refused.stderr == (
        f"Error [image_not_pushed]: the image {never} is not in Artifact Registry, so Cloud Run could not pull it; "
        "nothing was changed\n  Hint: build and push it with `doki build --push`, or pass --image with one that is "
        "there; --skip-checks deploys anyway\n"
    )
    failed = doki("deploy", "--image", never, "--yes", "--skip-checks")
    assert failed.exit_code == 1
    assert f"Image '{never}' not found." in failed.stderr
    assert (
        "Hint: build and push the image first (`doki build --push`), or deploy one that is there "
        "(`doki deploy --image IMAGE`); traffic stays on" in failed.stderr
    )
    status = json.loads(doki("--json", "status").stdout)
    assert ([(t["revision"], t["image"]) for t in status["traffic"]], status["traffic_follows_latest"]) == (
        [(first, backend_image)],
        False,
    )
    # The newest revision holds the image that failed; what serves is told apart.
    human = doki("status").stdout
    assert f"  serving      {first} (100%, deployed " in human
    assert f"  newest       {status['latest_created']} (failed, deployed " in human
    assert f"    image      {backend_image}\n" in human
    assert f"    image      {never}\n" in human
    assert allowed(url, "https://two.example") is None  # still the first revision's container
    assert doki("deploy", "--image", backend_image, "--yes").exit_code == 0
    status = json.loads(doki("--json", "status").stdout)
    assert status["traffic_follows_latest"] is True
    assert doki("deploy", "--image", backend_image, "--dry-run").exit_code == 0


def test_status_of_a_service_that_does_not_exist_says_to_deploy(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, emulator, monkeypatch)
    result = doki("status")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error [service_not_found]: {PATH} does not exist\n"
        "  Hint: deploy it with `doki deploy` (or check --project/--region/--env)\n"
    )


def test_rolling_back_to_an_unknown_revision_changes_nothing(failed_service: ClientFactory) -> None:
    before = failed_service.run_services().get_service(name=PATH)
    result = doki("rollback", "doki-backend-99999-zzz")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error [unknown_revision]: doki-backend has no revision 'doki-backend-99999-zzz'; nothing was changed\n"
    )
    assert failed_service.run_services().get_service(name=PATH).etag == before.etag


def test_rollback_without_an_earlier_ready_revision_says_how_to_pick_one(failed_service: ClientFactory) -> None:
    result = doki("rollback", "--yes")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error [no_earlier_revision]: doki-backend has no Ready revision older than")


@pytest.mark.parametrize(
    ("origin", "problem"),
    [
        ("*", "'*' is refused: with credentials on, browsers need exact origins"),
        ("https://app.example.com/", "ALLOWED_ORIGINS entry 'https://app.example.com/' ends with '/'"),
        ("app.example.com", "ALLOWED_ORIGINS entry 'app.example.com' is not an origin"),
    ],
)
def test_a_bad_origin_is_refused_before_any_call(origin: str, problem: str, tmp_path: Path) -> None:
    (tmp_path / "doki.toml").write_text('[service]\nname = "api"\nproject = "proj-123"\n')
    result = doki("cors", "add", origin)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error [bad_origin]: {problem}")


def test_removing_an_origin_that_is_not_allowed_changes_nothing(failed_service: ClientFactory) -> None:
    before = failed_service.run_services().get_service(name=PATH)
    result = doki("cors", "remove", "https://nope.example")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error [unknown_origin]: https://nope.example is not allowed now; nothing was changed\n"
        "  Hint: allowed now: https://one.example\n"
    )
    assert failed_service.run_services().get_service(name=PATH).etag == before.etag
