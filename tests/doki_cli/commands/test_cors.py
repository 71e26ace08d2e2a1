"""`doki cors` on a live service: each change is one new revision with only ALLOWED_ORIGINS changed; `--save`
writes the list back to doki.toml, comments kept; bad input changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.helpers import CliRunner, allowed, plan_text
from tests.helpers.project import PATH, TOML, setup_project

runner = CliRunner()
A, B, C = "https://a.example", "https://b.example", "https://c.example"
STALE = "doki.toml still lists the old origins: the next `doki deploy` restores them (use --save)\n"
COMMENTED_TOML = (
    "# Who may call the API from a browser.\n"
    + TOML
    + ('\n[environments.staging.env]\nALLOWED_ORIGINS = ["https://one.example"]  # staging frontends\n')
)


def doki(*args: str) -> Result:
    return runner.invoke(app, list(args))


def plan(emulator: Emulator, *changes: str) -> str:
    return plan_text(PATH, f"the emulator at {emulator.grpc_address}", *changes)


def revision_template(service: Any) -> tuple[dict[str, str], dict[str, str], str]:
    """Everything but ALLOWED_ORIGINS that `cors` must leave as it was: env, secret refs, image."""
    container = service.template.containers[0]
    env = {e.name: e.value for e in container.env if e.name != "ALLOWED_ORIGINS" and not e.value_source}
    secrets = {e.name: str(e.value_source.secret_key_ref) for e in container.env if e.value_source}
    return env, secrets, container.image


def origins(service: Any) -> str:
    return str(next(e.value for e in service.template.containers[0].env if e.name == "ALLOWED_ORIGINS"))


def test_cors_set_add_and_remove_change_only_the_origins_and_save_writes_doki_toml(
    tmp_path: Path, engine_emulator: Emulator, backend_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, engine_emulator, monkeypatch)
    (tmp_path / "doki.toml").write_text(COMMENTED_TOML)
    assert doki("secrets", "push").exit_code == 0
    deployed = doki("--json", "deploy", "--image", backend_image, "--yes")
    assert deployed.exit_code == 0, deployed.output
    url = json.loads(deployed.stdout)["url"]
    services = ClientFactory(engine_emulator.grpc_address).run_services()
    before = services.get_service(name=PATH)
    assert len(revision_template(before)[1]) == 4  # the comparison below covers the secret refs too

    replaced = doki("cors", "set", A, B, A, "--yes")
    assert replaced.exit_code == 0, replaced.output
    assert replaced.stdout == (
        plan(engine_emulator, f"  ~ env ALLOWED_ORIGINS: https://one.example -> {A},{B}")
        + f"Allowed origins now: {A}, {B}\n"  # a repeated origin counts once
    )
    assert replaced.stderr.endswith(STALE)
    live = services.get_service(name=PATH)
    assert origins(live) == f"{A},{B}"
    assert revision_template(live) == revision_template(before)
    assert live.latest_ready_revision != before.latest_ready_revision
    assert (allowed(url, B), allowed(url, "https://one.example")) == (B, None)  # the new revision serves
    assert (tmp_path / "doki.toml").read_text() == COMMENTED_TOML

    same = doki("cors", "set", A, B, "--save")
    assert same.exit_code == 0, same.output
    assert same.stdout == plan(engine_emulator) + f"Allowed origins unchanged: {A}, {B}\n"
    assert same.stderr == "written to [service.env] in doki.toml\n"
    assert services.get_service(name=PATH).etag == live.etag  # no call that changes anything
    saved = (tmp_path / "doki.toml").read_text()
    assert saved == COMMENTED_TOML.replace(
        'ALLOWED_ORIGINS = ["https://one.example"]\n', f'ALLOWED_ORIGINS = ["{A}", "{B}"]\n', 1
    )

    added = doki("--json", "cors", "add", C, A, "--yes")
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout) == {
        "origins": [A, B, C],
        "changed": True,
        "saved_to": None,
        "plan": {
            "service": PATH,
            "endpoint": f"the emulator at {engine_emulator.grpc_address}",
            "changes": [{"what": "env ALLOWED_ORIGINS", "before": f"{A},{B}", "after": f"{A},{B},{C}"}],
            "cost": None,  # the origins do not touch the bill
            "empty": False,
        },
    }

    # A dry run shows the plan and says by its exit code whether it would change anything; it writes nothing.
    etag = services.get_service(name=PATH).etag
    would = doki("cors", "remove", A, C, "--save", "--dry-run")
    assert (would.exit_code, would.stderr) == (2, "")
    assert would.stdout == plan(engine_emulator, f"  ~ env ALLOWED_ORIGINS: {A},{B},{C} -> {B}")
    unchanged = doki("cors", "add", A, "--dry-run")
    assert (unchanged.exit_code, unchanged.stdout) == (0, plan(engine_emulator))
    assert services.get_service(name=PATH).etag == etag
    assert f'ALLOWED_ORIGINS = ["{A}", "{B}"]\n' in (tmp_path / "doki.toml").read_text()

    removed = doki("cors", "remove", A, C, "--save", "--yes")
    assert removed.exit_code == 0, removed.output
    assert removed.stdout == (
        plan(engine_emulator, f"  ~ env ALLOWED_ORIGINS: {A},{B},{C} -> {B}") + f"Allowed origins now: {B}\n"
    )
    assert removed.stderr.endswith("written to [service.env] in doki.toml\n")
    assert origins(services.get_service(name=PATH)) == B
    assert f'ALLOWED_ORIGINS = ["{B}"]\n' in (tmp_path / "doki.toml").read_text()
    assert doki("cors", "list").stdout == f"{B}\n"
    assert json.loads(doki("--json", "cors", "list").stdout) == {"origins": [B]}

    # An environment that overrides the origins gets them written in its own table; [service] keeps its own.
    staged = doki("--env", "staging", "cors", "set", C, "--save", "--yes")
    assert staged.exit_code == 0, staged.output
    assert staged.stderr.endswith("written to [environments.staging.env] in doki.toml\n")
    text = (tmp_path / "doki.toml").read_text()
    assert f'[environments.staging.env]\nALLOWED_ORIGINS = ["{C}"]  # staging frontends\n' in text
    assert f'ALLOWED_ORIGINS = ["{B}"]\n' in text
    assert text.startswith("# Who may call the API from a browser.\n")


def test_removing_the_last_origin_is_refused_before_any_call(
    tmp_path: Path, engine_emulator: Emulator, backend_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, engine_emulator, monkeypatch)
    assert doki("secrets", "push").exit_code == 0
    assert doki("deploy", "--image", backend_image, "--yes").exit_code == 0
    services = ClientFactory(engine_emulator.grpc_address).run_services()
    before = services.get_service(name=PATH)

    result = doki("cors", "remove", "https://one.example", "--save")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error [no_origins_left]: that would leave ALLOWED_ORIGINS empty, which the backend refuses in production; "
        "nothing was changed\n"
        "  Hint: keep at least one origin, or replace them all with `doki cors set ORIGIN...`\n"
    )
    after = services.get_service(name=PATH)
    assert (after.etag, after.latest_created_revision) == (before.etag, before.latest_created_revision)
    assert (tmp_path / "doki.toml").read_text() == TOML


def test_cors_set_lists_every_bad_origin_with_the_fix_and_calls_nothing(tmp_path: Path) -> None:
    # No emulator and no credentials: a call to Google would fail differently.
    (tmp_path / "doki.toml").write_text('[service]\nname = "api"\nproject = "proj-123"\n')
    result = doki("cors", "set", "*", A, "https://b.example/app", "--save")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error [bad_origin]: '*' is refused: with credentials on, browsers need exact origins; "
        "ALLOWED_ORIGINS entry 'https://b.example/app' has a path, query or credentials: "
        "write it as scheme://host[:port], e.g. https://app.example.com\n"
        "  Hint: write each origin as scheme://host[:port], e.g. https://app.example.com\n"
    )
    assert (tmp_path / "doki.toml").read_text() == '[service]\nname = "api"\nproject = "proj-123"\n'


def test_cors_set_without_origins_is_a_usage_error_not_an_empty_list(tmp_path: Path) -> None:
    (tmp_path / "doki.toml").write_text('[service]\nname = "api"\nproject = "proj-123"\n')
    result = doki("cors", "set")
    assert result.exit_code == 2
    assert result.stderr.endswith("Error: Missing argument 'ORIGIN'.\n")


def test_cors_of_a_service_that_does_not_exist_says_to_deploy_it_first(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, emulator, monkeypatch)
    for args in (("list",), ("set", A), ("add", A), ("remove", A)):
        result = doki("cors", *args)
        assert result.exit_code == 1, args
        assert result.stderr == (
            f"Error [service_not_found]: {PATH} does not exist\n"
            "  Hint: deploy it with `doki deploy` (or check --project/--region/--env)\n"
        ), args
