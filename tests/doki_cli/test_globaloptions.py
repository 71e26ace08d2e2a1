"""The global options before or after the command name, at any depth: `doki status --json` is `doki --json status`,
with one rule for an option given twice, and every command's help listing them in a section of their own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import Result

from doki_cli import main as main_module
from doki_cli.context import app_of
from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.globaloptions import SECTION, DokiTyper
from doki_cli.main import app
from tests.helpers import CliRunner
from tests.helpers.project import PATH, setup_project

runner = CliRunner()
GLOBAL_FLAGS = {"--config", "--env", "--project", "--region", "--json", "--verbose", "-v"}


def _paths() -> Iterator[list[str]]:
    """The path of every command and group below the root, as arguments (`["cors", "add"]`)."""

    def walk(command: object, path: list[str]) -> Iterator[list[str]]:
        if path:
            yield path
        if isinstance(command, TyperGroup):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])

    yield from walk(typer.main.get_command(app), [])


PATHS = [" ".join(path) for path in _paths()]


def _section(help_text: str) -> str:
    """The global options' section of a help text, to the next section or the end."""
    assert f"\n{SECTION}:\n" in help_text
    return help_text.split(f"\n{SECTION}:\n", 1)[1].split("\n\n", 1)[0].rstrip("\n")


def test_the_walk_reaches_the_commands_and_the_groups() -> None:
    assert {"status", "cors", "cors add", "emulator start", "secrets push", "keys generate"} <= set(PATHS)


@pytest.mark.parametrize("path", PATHS)
def test_every_commands_help_lists_the_global_options_as_the_roots_does(path: str) -> None:
    root = runner.invoke(app, ["--help"])
    result = runner.invoke(app, [*path.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert _section(result.stdout) == _section(root.stdout)
    own = result.stdout.split(f"\n{SECTION}:\n", 1)[0]
    assert "--json" not in own.split("\nOptions:\n", 1)[-1]  # listed once, in their section


def test_no_command_declares_a_global_option_of_its_own() -> None:
    # Its own would shadow the global one after the command name, and mean something else before it.
    def declared(command: object, path: str) -> Iterator[str]:
        if path != "doki":
            for param in getattr(command, "params", []):
                for flag in {*param.opts, *param.secondary_opts} & GLOBAL_FLAGS:
                    yield f"{path} {flag}"
        if isinstance(command, TyperGroup):
            for name, sub in command.commands.items():
                yield from declared(sub, f"{path} {name}")

    assert list(declared(typer.main.get_command(app), "doki")) == []


# The rule, on a probe: a root with doki's callback, a command and a group with a command, each printing the options
# the call ends up with.


def _probe() -> typer.Typer:
    probe = DokiTyper(cls=main_module.DokiGroup, name="doki")
    probe.callback()(main_module.main)
    group = DokiTyper()
    probe.add_typer(group, name="group")

    def show(ctx: typer.Context) -> None:
        options = app_of(ctx).options
        typer.echo(
            f"config={options.config} env={options.env} project={options.project} region={options.region} "
            f"json={options.json} verbose={options.verbose}"
        )

    probe.command("show")(show)
    group.command("show")(show)
    return probe


def probe(*args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(_probe(), list(args), env=env)


DEFAULTS = {"config": "None", "env": "None", "project": "None", "region": "None", "json": "False", "verbose": "0"}


def shown(**values: str) -> str:
    return " ".join(f"{name}={values.get(name, default)}" for name, default in DEFAULTS.items()) + "\n"


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["show", "--json"], {}, shown(json="True")),
        (["--json", "show"], {}, shown(json="True")),
        (["--json", "show", "--json"], {}, shown(json="True")),
        (["show", "--config", "other.toml", "--env", "staging"], {}, shown(config="other.toml", env="staging")),
        (["--project", "p1", "show", "--region", "europe-west1"], {}, shown(project="p1", region="europe-west1")),
        (["--project", "p1", "show", "--project", "p1"], {}, shown(project="p1")),
        (["group", "--project", "p1", "show", "--region", "r1"], {}, shown(project="p1", region="r1")),
        (["group", "show", "--json", "-v"], {}, shown(json="True", verbose="1")),
        # -v counts wherever it is given.
        (["-v", "group", "-v", "show", "-v"], {}, shown(verbose="3")),
        # The command line wins over the environment, wherever it is given.
        (["show", "--project", "flag"], {"DOKI_PROJECT": "env"}, shown(project="flag")),
        (["show", "-v"], {"DOKI_VERBOSE": "2"}, shown(verbose="1")),
        (["show"], {"DOKI_PROJECT": "env", "DOKI_JSON": "1"}, shown(project="env", json="True")),
    ],
)
def test_a_global_option_says_the_same_before_or_after_the_command_name_at_any_depth(
    args: list[str], env: dict[str, str], expected: str
) -> None:
    result = probe(*args, env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout == expected


def test_one_given_twice_with_two_values_is_refused_before_the_command_runs() -> None:
    result = probe("--project", "p1", "group", "show", "--project", "p2")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error [bad_option]: --project is given twice with two values: p1 after `doki`, p2 after `doki group show`\n"
        "  Hint: give --project once, before or after the command name\n"
    )


def test_refused_as_json_when_json_follows_it() -> None:
    # --json is read first wherever it stands, so the refusal of an option before it is JSON too.
    result = probe("--region", "r1", "show", "--region", "r2", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "error": {
            "code": "bad_option",
            "message": "--region is given twice with two values: r1 after `doki`, r2 after `doki show`",
            "hint": "give --region once, before or after the command name",
        }
    }


# Through the real commands.


def test_an_unknown_option_before_json_after_the_command_is_a_json_usage_error() -> None:
    result = runner.invoke(app, ["deploy", "--dry-rn", "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {
        "error": {
            "code": "usage_error",
            "message": "No such option: --dry-rn (Possible options: --dry-run)",
            "hint": "see `doki deploy --help`",
        }
    }


def test_a_bad_value_with_json_after_the_command_is_a_json_usage_error() -> None:
    result = runner.invoke(app, ["logs", "--limit", "many", "--json"])
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert (error["code"], error["hint"]) == ("usage_error", "see `doki logs --help`")
    assert error["message"].startswith("Invalid value for '--limit': Input should be a valid integer")


def test_json_after_a_double_dash_is_an_argument_not_the_option() -> None:
    # After `--` everything is an argument: `--json` there asks for nothing (and the error is typer's text).
    result = runner.invoke(app, ["cors", "add", "--dry-rn", "--", "--json"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "No such option: --dry-rn" in result.stderr


def test_emulator_status_takes_json_after_its_name(tmp_path: Path) -> None:
    after = runner.invoke(app, ["emulator", "status", "--state-dir", str(tmp_path), "--json"])
    before = runner.invoke(app, ["--json", "emulator", "status", "--state-dir", str(tmp_path)])
    assert after.exit_code == before.exit_code == 1
    assert after.stdout == before.stdout
    assert json.loads(after.stdout)["error"]["code"] == "emulator_not_running"


@pytest.fixture
def service(tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> ClientFactory:
    """A service of the emulator's project whose only revision never became Ready (no engine): it exists."""
    setup_project(tmp_path, emulator, monkeypatch)
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["secrets", "push"]).exit_code == 0
    assert runner.invoke(app, ["deploy", "--image", "img:1", "--yes"]).exit_code == 1
    return ClientFactory(emulator.grpc_address)


def test_status_json_after_the_command_is_status_json_before_it(service: ClientFactory) -> None:
    after = runner.invoke(app, ["status", "--json"])
    assert after.exit_code == 0, after.output
    assert json.loads(after.stdout)["service"] == PATH
    before = runner.invoke(app, ["--json", "status"])
    assert after.stdout == before.stdout


def test_cors_add_takes_json_after_its_arguments(service: ClientFactory) -> None:
    after = runner.invoke(app, ["cors", "add", "https://two.example", "--dry-run", "--json"])
    assert after.exit_code == 2, after.output
    assert json.loads(after.stdout)["plan"]["changes"] == [
        {
            "what": "env ALLOWED_ORIGINS",
            "before": "https://one.example",
            "after": "https://one.example,https://two.example",
        }
    ]
    before = runner.invoke(app, ["--json", "cors", "add", "https://two.example", "--dry-run"])
    assert after.stdout == before.stdout


def test_secrets_push_takes_project_after_its_name(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_project(tmp_path, emulator, monkeypatch)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["secrets", "push", "session-secret-key", "--project", "other-project"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "session-secret-key  created    version 1\n"
    made = ClientFactory(emulator.grpc_address).secret_manager()
    assert made.get_secret(name="projects/other-project/secrets/session-secret-key").name.endswith("session-secret-key")
    listed = runner.invoke(app, ["--json", "secrets", "list"])  # doki.toml's own project: not pushed there
    assert {row["secret"]: row["exists"] for row in json.loads(listed.stdout)}["session-secret-key"] is False


def test_a_global_option_given_twice_with_two_values_changes_nothing(service: ClientFactory) -> None:
    before = service.run_services().get_service(name=PATH).etag
    result = runner.invoke(app, ["--project", "doki-e2e", "scale", "--max", "3", "--yes", "--project", "elsewhere"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error [bad_option]: --project is given twice with two values: doki-e2e after `doki`, elsewhere after "
        "`doki scale`\n  Hint: give --project once, before or after the command name\n"
    )
    assert service.run_services().get_service(name=PATH).etag == before
