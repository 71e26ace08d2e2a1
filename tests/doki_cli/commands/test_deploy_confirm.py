"""`doki deploy` at a terminal: it shows the plan and asks; only "y" applies, anything else changes nothing.
Where nobody can answer (no terminal, or --json) it needs --yes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import Result

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.helpers import CliRunner
from tests.helpers.project import PATH, PROJECT, TOML, setup_project
from tests.helpers.terminal import TerminalRunner

terminal = TerminalRunner()
QUESTION = "Apply these changes? [y/N]: "
ABORTED = "Error [aborted]: nothing was changed\n  Hint: run again and answer y, or pass --yes\n"
SECRETS = ("session-secret-key", "encryption-key", "supabase-secret-key", "google-oauth-client-secret")


def doki(*args: str, input: str | None = None) -> Result:
    return terminal.invoke(app, list(args), input=input)


@pytest.mark.parametrize(
    ("answer", "echoed"),
    [("n\n", "n\n"), ("\n", "\n"), ("maybe\nno\n", "maybe\nError: invalid input\n" + QUESTION + "no\n")],
    ids=["no", "enter-takes-the-default-no", "asked-again-until-it-understands"],
)
def test_answering_anything_but_yes_creates_nothing_and_grants_nothing(
    answer: str, echoed: str, tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, emulator, monkeypatch)
    assert doki("secrets", "push").exit_code == 0
    plan = doki("deploy", "--image", "img:1", "--dry-run")
    assert plan.exit_code == 2

    result = doki("deploy", "--image", "img:1", input=answer)
    assert result.exit_code == 1
    assert result.stdout == plan.stdout + QUESTION + echoed
    assert result.stderr == ABORTED
    factory = ClientFactory(emulator.grpc_address)
    assert list(factory.run_services().list_services(parent=PATH.rsplit("/", 2)[0])) == []
    for secret in SECRETS:  # the grants come first when applying: none may have happened
        policy = factory.secret_manager().get_iam_policy(request={"resource": f"projects/{PROJECT}/secrets/{secret}"})
        assert list(policy.bindings) == []


def test_a_closed_stdin_at_the_question_aborts_without_changing_anything(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, emulator, monkeypatch)
    doki("secrets", "push")
    result = doki("deploy", "--image", "img:1", input="")
    assert result.exit_code == 1
    assert result.stdout.endswith("23 changes.\n" + QUESTION)
    assert result.stderr == (
        "Error [aborted]: no answer to the question; nothing was changed\n  Hint: answer it, or pass --yes\n"
    )
    assert list(ClientFactory(emulator.grpc_address).run_services().list_services(parent=PATH.rsplit("/", 2)[0])) == []


def test_without_a_terminal_or_yes_it_shows_the_plan_and_creates_nothing(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What CI sees when its workflow forgets --yes: the plan in its log, the refusal, and the service untouched.
    setup_project(tmp_path, emulator, monkeypatch)
    piped = CliRunner()
    assert piped.invoke(app, ["secrets", "push"]).exit_code == 0
    plan = piped.invoke(app, ["deploy", "--image", "img:1", "--dry-run"])
    result = piped.invoke(app, ["deploy", "--image", "img:1"])
    assert result.exit_code == 1
    assert result.stdout == plan.stdout
    assert result.stderr == (
        "Error [confirmation_required]: applying this plan to doki-backend needs a yes, and stdin is not a terminal "
        "to answer on; nothing was changed\n"
        "  Hint: pass --yes to apply it without asking (--dry-run shows the plan)\n"
    )
    _assert_nothing_made(emulator)


def test_json_at_a_terminal_asks_nothing_and_without_yes_creates_nothing(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --json does not imply --yes: a script asking for JSON did not ask to skip the confirmation, and cannot answer.
    setup_project(tmp_path, emulator, monkeypatch)
    doki("secrets", "push")
    result = doki("deploy", "--image", "img:1", "--json", input="y\n")
    assert result.exit_code == 1
    assert QUESTION not in result.stdout
    refused = json.loads(result.stdout)
    assert refused["error"] == {
        "code": "confirmation_required",
        "message": "applying this plan to doki-backend needs a yes, and --json asks no question; nothing was changed",
        "hint": "pass --yes to apply it without asking (--dry-run shows the plan)",
    }
    assert (refused["plan"]["service"], refused["plan"]["create"]) == (PATH, True)
    _assert_nothing_made(emulator)

    # With --yes it applies (this revision cannot become Ready without an engine: the deploy fails after applying).
    applied = doki("deploy", "--image", "img:1", "--json", "--yes")
    assert json.loads(applied.stdout)["error"]["code"] == "revision_not_ready"
    assert ClientFactory(emulator.grpc_address).run_services().get_service(name=PATH).name == PATH


def _assert_nothing_made(emulator: Emulator) -> None:
    factory = ClientFactory(emulator.grpc_address)
    assert list(factory.run_services().list_services(parent=PATH.rsplit("/", 2)[0])) == []
    for secret in SECRETS:
        policy = factory.secret_manager().get_iam_policy(request={"resource": f"projects/{PROJECT}/secrets/{secret}"})
        assert list(policy.bindings) == []


def test_answering_yes_applies_the_plan_and_no_keeps_the_live_service(
    tmp_path: Path, engine_emulator: Emulator, backend_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, engine_emulator, monkeypatch)
    assert doki("secrets", "push").exit_code == 0
    first = doki("--json", "deploy", "--image", backend_image, "--yes")
    assert first.exit_code == 0, first.output
    url = json.loads(first.stdout)["url"]
    services = ClientFactory(engine_emulator.grpc_address).run_services()
    before = services.get_service(name=PATH)
    (tmp_path / "doki.toml").write_text(TOML.replace("https://one.example", "https://two.example"))
    plan = doki("deploy", "--image", backend_image, "--dry-run")
    assert plan.exit_code == 2
    assert plan.stdout.endswith(
        "  ~ env ALLOWED_ORIGINS: https://one.example -> https://two.example\n"
        f"  = image: {backend_image} (unchanged)\n"  # the new revision runs it: said, though it does not change
        "1 change.\n"
    )

    declined = doki("deploy", "--image", backend_image, input="n\n")
    assert declined.exit_code == 1
    assert declined.stdout == plan.stdout + QUESTION + "n\n"
    assert declined.stderr == ABORTED
    after = services.get_service(name=PATH)
    assert (after.etag, after.latest_created_revision) == (before.etag, before.latest_created_revision)

    applied = doki("deploy", "--image", backend_image, input="y\n")
    assert applied.exit_code == 0, applied.output
    live = services.get_service(name=PATH)
    revision = live.latest_ready_revision.rsplit("/", 1)[-1]
    assert live.latest_ready_revision != before.latest_ready_revision
    assert applied.stdout == plan.stdout + QUESTION + "y\n" + f"Deployed doki-backend ({revision}): {url}\n"
    env = {e.name: e.value for e in live.template.containers[0].env}
    assert env["ALLOWED_ORIGINS"] == "https://two.example"

    # Up to date: nothing to confirm, so no question.
    again = doki("deploy", "--image", backend_image, input="")
    assert again.exit_code == 0, again.output
    header = f"Plan for doki-backend ({PATH}) on the emulator at {engine_emulator.grpc_address}:"
    assert again.stdout == f"{header}\nNo changes.\ndoki-backend is up to date: {url}\n"
