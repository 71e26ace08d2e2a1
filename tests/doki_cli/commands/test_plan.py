"""What every command that changes the service shares (commands/_plan.py): its plan shown first, `--dry-run` with
exit 0 or 2, and a question before the write where someone can answer it.

The service here is one whose only revision never became Ready (an emulator without an engine), so each command plans
a change without a container, and a write is seen in the service's etag."""

from __future__ import annotations

import json
import time

import pytest
import typer

from doki_cli.deploy.lock import LOCK, Lock
from doki_cli.errors import DokiError
from doki_cli.gcp.clients import ClientFactory
from doki_cli.gcp.google import Google
from doki_cli.main import app
from doki_cli.model import Edit
from tests.helpers import REPO, CliRunner
from tests.helpers.project import PATH, PROJECT
from tests.helpers.terminal import TerminalRunner

runner = CliRunner()
terminal = TerminalRunner()
# Commands that write to the service, with arguments that change it (`cors remove` would leave no origin here: its
# dry run is in test_cors.py, rollback's in test_ops_loop.py, deploy's and release's in theirs).
WRITES = {
    "cors add": ["cors", "add", "https://two.example"],
    "cors set": ["cors", "set", "https://two.example"],
    "scale": ["scale", "--max-instances", "3"],
}
ABORTED = "Error [aborted]: nothing was changed\n  Hint: run again and answer y, or pass --yes\n"


@pytest.fixture
def services(failed_service: ClientFactory) -> object:
    return failed_service.run_services()


def etag(services: object) -> str:
    return str(services.get_service(name=PATH).etag)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", WRITES)
def test_a_dry_run_shows_the_plan_writes_nothing_and_exits_2_when_it_would_change(name: str, services: object) -> None:
    before = etag(services)
    result = runner.invoke(app, [*WRITES[name], "--dry-run"])
    assert result.exit_code == 2, result.output
    assert result.stdout.startswith(f"Plan for doki-backend ({PATH}) on the emulator at ")
    assert result.stdout.endswith(" change.\n")
    assert result.stderr == ""
    assert etag(services) == before


@pytest.mark.parametrize("name", WRITES)
def test_at_a_terminal_a_no_changes_nothing_and_a_yes_writes(name: str, services: object) -> None:
    before = etag(services)
    refused = terminal.invoke(app, WRITES[name], input="n\n")
    assert refused.exit_code == 1
    assert refused.stdout.endswith(" change.\nApply these changes? [y/N]: n\n")
    assert refused.stderr == ABORTED
    assert etag(services) == before

    accepted = terminal.invoke(app, WRITES[name], input="y\n")
    # Written: its new revision fails like every revision of an emulator without an engine.
    assert "Apply these changes? [y/N]: y\n" in accepted.stdout
    assert accepted.stderr.startswith("Error [revision_not_ready]:"), accepted.output
    assert etag(services) != before


def test_yes_skips_the_question_at_a_terminal(services: object) -> None:
    before = etag(services)
    asked = terminal.invoke(app, ["scale", "--max-instances", "3", "--yes"])
    assert "Apply these changes?" not in asked.stdout
    assert asked.stderr.startswith("Error [revision_not_ready]:")
    assert etag(services) != before


@pytest.mark.parametrize("name", WRITES)
def test_without_a_terminal_or_yes_a_change_is_refused_after_its_plan_and_nothing_is_written(
    name: str, services: object
) -> None:
    before = etag(services)
    plan = runner.invoke(app, [*WRITES[name], "--dry-run"])
    refused = runner.invoke(app, WRITES[name])
    assert refused.exit_code == 1
    assert refused.stdout == plan.stdout  # the plan, and no question
    assert refused.stderr == (
        "Error [confirmation_required]: applying this plan to doki-backend needs a yes, and stdin is not a terminal "
        "to answer on; nothing was changed\n"
        "  Hint: pass --yes to apply it without asking (--dry-run shows the plan)\n"
    )
    assert etag(services) == before


def test_json_does_not_imply_yes_even_at_a_terminal_and_the_refusal_carries_the_plan(services: object) -> None:
    # A script asking for JSON output did not ask to skip the confirmation, and cannot answer a question: refused.
    before = etag(services)
    planned = json.loads(runner.invoke(app, ["--json", "scale", "--max-instances", "4", "--dry-run"]).stdout)["plan"]
    for run in (runner, terminal):
        refused = run.invoke(app, ["scale", "--max-instances", "4", "--json"], input="y\n")
        assert refused.exit_code == 1
        assert json.loads(refused.stdout) == {
            "error": {
                "code": "confirmation_required",
                "message": "applying this plan to doki-backend needs a yes, and --json asks no question; nothing was "
                "changed",
                "hint": "pass --yes to apply it without asking (--dry-run shows the plan)",
            },
            "plan": planned,
        }
        assert refused.stderr == ""
    assert etag(services) == before

    applied = runner.invoke(app, ["scale", "--max-instances", "4", "--json", "--yes"])
    assert json.loads(applied.stdout)["error"]["code"] == "revision_not_ready"  # written: its revision fails here
    assert etag(services) != before


def test_every_command_that_changes_the_service_has_dry_run_and_yes() -> None:
    # The commands that write to a service are those that review a plan first: a new one is caught here.
    reviewing = sorted(
        path.stem for path in (REPO / "doki_cli" / "commands").glob("[!_]*.py") if "review(app" in path.read_text()
    )
    assert reviewing == ["cors", "deploy", "release", "rollback", "scale"]
    root = typer.main.get_command(app)
    writers = [
        ("deploy",),
        ("release",),
        ("rollback",),
        ("scale",),
        ("cors", "add"),
        ("cors", "remove"),
        ("cors", "set"),
    ]
    for path in writers:
        command = root
        for name in path:
            command = command.commands[name]  # type: ignore[attr-defined]
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        assert {"--dry-run", "--yes"} <= options, path


def test_a_change_to_a_service_a_release_holds_is_refused_and_its_dry_run_still_shows(
    failed_service: ClientFactory,
) -> None:
    google = Google(failed_service, PROJECT, "us-central1")
    held = Lock("b" * 40, "another-release", "ci-runner", float(int(time.time())), float(int(time.time()) + 600))
    with pytest.raises(DokiError, match="did not become ready"):  # written; the service's revision still fails
        google.run.update("doki-backend", lambda _: Edit(annotations={LOCK: held.render()}), on_progress=print)
    assert Lock.parse(google.run.get("doki-backend").annotations[LOCK]) == held  # type: ignore[union-attr]
    services = failed_service.run_services()
    before = etag(services)
    for args in (WRITES["scale"], WRITES["cors add"]):
        refused = runner.invoke(app, [*args, "--yes"])
        assert refused.exit_code == 5, refused.output
        assert refused.stderr.startswith(
            "Error [release_locked]: a release of bbbbbbbbbbbb (on ci-runner) is in progress on doki-backend until "
        )
        assert "  Hint: wait for it to finish: this change now would move traffic under it" in refused.stderr
        assert runner.invoke(app, [*args, "--dry-run"]).exit_code == 2
    assert etag(services) == before
