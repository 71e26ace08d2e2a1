"""The `doki` command's frame: help, version, global options, and how errors reach the user."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import typer

from doki_cli.context import app_of
from doki_cli.errors import Code, DokiError
from doki_cli.main import app
from tests.helpers import CliRunner, run

runner = CliRunner()


def test_help_lists_the_commands_and_global_options() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for text in (
        "dev",
        "keys",
        "--config",
        "--env",
        "--project",
        "--region",
        "--json",
        "--verbose",
        "--version",
    ):
        assert text in result.output
    for envvar in ("DOKI_CONFIG", "DOKI_ENV", "DOKI_PROJECT", "DOKI_REGION", "DOKI_JSON", "DOKI_VERBOSE"):
        assert envvar in result.output


def test_help_lists_the_commands_by_what_they_are_for() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    listed = result.output[result.output.index("Develop:") :]
    sections = [
        (lines[0], [line.split()[0] for line in lines[1:]])
        for lines in (block.splitlines() for block in listed.strip().split("\n\n"))
    ]
    assert sections == [
        ("Develop:", ["dev", "build", "keys"]),
        ("Deploy:", ["init", "secrets", "deploy", "release", "preview"]),
        ("Operate:", ["status", "history", "logs", "monitor", "scale", "cors", "domains", "rollback", "doctor"]),
        ("Emulator:", ["emulator"]),
    ]  # every command in one of them: none left under "Commands"
    # The descriptions line up across the sections, as in one list.
    assert "  dev       Run the backend locally" in listed and "  emulator  A local emulator" in listed


def test_a_group_lists_its_own_commands_as_before() -> None:
    result = runner.invoke(app, ["cors", "--help"])
    assert result.output.endswith(
        "Commands:\n"
        "  list    The origins the live service allows.\n"
        "  add     Allow more origins.\n"
        "  remove  Stop allowing origins.\n"
        "  set     Allow exactly these origins.\n"
    )


DOKI = str(Path(sys.executable).parent / "doki")


def test_show_completion_prints_the_script_for_the_shell_named() -> None:
    # typer's switch that makes the shell an argument instead of detected from the parent process.
    env = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    result = run([DOKI, "--show-completion", "bash"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("_doki_completion() {\n")
    assert "complete -o default -F _doki_completion doki" in result.stdout


def test_install_completion_writes_the_script_where_the_shell_reads_it(tmp_path: Path) -> None:
    env = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1", "HOME": str(tmp_path)}
    result = run([DOKI, "--install-completion", "bash"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    script = tmp_path / ".bash_completions" / "doki.sh"
    assert (
        result.stdout
        == f"bash completion installed in {script}\nCompletion will take effect once you restart the terminal\n"
    )
    assert "complete -o default -F _doki_completion doki" in script.read_text()
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()


def test_the_shell_completes_gclouds_option_names() -> None:
    env = {**os.environ, "_DOKI_COMPLETE": "complete_bash", "COMP_WORDS": "doki scale --min", "COMP_CWORD": "2"}
    result = run([DOKI], capture_output=True, text=True, env=env)
    assert (result.returncode, result.stdout) == (0, "--min\n--min-instances\n")


def test_version_prints_the_package_version() -> None:
    from doki import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"doki {__version__}\n"


def test_an_unknown_command_is_a_usage_error() -> None:
    result = runner.invoke(app, ["deploy-everything"])
    assert result.exit_code == 2
    assert "No such command 'deploy-everything'" in result.output


def test_help_imports_neither_google_nor_the_backend() -> None:
    # Each google client costs ~300 ms to import: `doki --help` must stay instant.
    probe = (
        "import sys\n"
        "from doki_cli.main import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'google', 'grpc', 'docker', 'fastapi', 'starlette', 'uvicorn', 'pydantic', 'pydantic_settings', "
        "'cryptography', 'httpx', 'doki'})\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    result = run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == "HEAVY="


# A command that fails on purpose, to watch the one renderer at work.
def _failing_app() -> typer.Typer:
    from doki_cli import main as main_module

    failing = typer.Typer(cls=main_module.DokiGroup)
    failing.callback()(main_module.main)

    @failing.command()
    def explode(ctx: typer.Context, kind: str = "doki") -> None:
        app_of(ctx).output.line("starting")
        if kind == "doki":
            raise DokiError(Code.NOT_FOUND, "the thing 'x' does not exist", "create it: doki thing create x")
        raise RuntimeError("kaboom")

    return failing


def test_a_doki_error_prints_code_message_and_hint_on_stderr() -> None:
    result = runner.invoke(_failing_app(), ["explode"])
    assert result.exit_code == 1
    assert result.stdout == "starting\n"
    assert result.stderr == (
        "Error [not_found]: the thing 'x' does not exist\n  Hint: create it: doki thing create x\n"
    )


def test_with_json_a_doki_error_is_one_json_document_on_stdout() -> None:
    result = runner.invoke(_failing_app(), ["--json", "explode"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "error": {
            "code": "not_found",
            "message": "the thing 'x' does not exist",
            "hint": "create it: doki thing create x",
        }
    }
    assert result.stderr == ""


def test_json_mode_is_also_read_from_doki_json() -> None:
    result = runner.invoke(_failing_app(), ["explode"], env={"DOKI_JSON": "1"})
    assert json.loads(result.stdout)["error"]["code"] == "not_found"


def test_an_unexpected_failure_is_rendered_as_an_internal_error_without_traceback() -> None:
    result = runner.invoke(_failing_app(), ["explode", "--kind", "bug"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error [internal_error]: RuntimeError: kaboom\n"
        "  Hint: this is a bug in doki: rerun with -v for the traceback and report it\n"
    )


def test_verbose_shows_the_traceback_of_an_unexpected_failure() -> None:
    result = runner.invoke(_failing_app(), ["-v", "explode", "--kind", "bug"])
    assert "Traceback (most recent call last)" in result.stderr
    assert 'raise RuntimeError("kaboom")' in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (
            ["--project", "p1", "--region", "europe-west1", "--env", "staging"],
            {},
            ("p1", "europe-west1", "staging"),
        ),
        (
            [],
            {"DOKI_PROJECT": "p2", "DOKI_REGION": "asia-east1", "DOKI_ENV": "prod"},
            ("p2", "asia-east1", "prod"),
        ),
        (["--project", "flag"], {"DOKI_PROJECT": "env"}, ("flag", None, None)),
    ],
)
def test_global_options_come_from_flags_or_doki_environment_variables(
    args: list[str], env: dict[str, str], expected: tuple[str | None, ...]
) -> None:
    from doki_cli import main as main_module

    probe = typer.Typer(cls=main_module.DokiGroup)
    probe.callback()(main_module.main)

    @probe.command()
    def show(ctx: typer.Context) -> None:
        options = app_of(ctx).options
        typer.echo(f"{options.project}|{options.region}|{options.env}")

    result = runner.invoke(probe, [*args, "show"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout == "|".join(str(v) for v in expected) + "\n"


def test_the_package_version_matches_pyproject() -> None:
    import tomllib

    from doki import __version__
    from tests.helpers import REPO

    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"] == __version__


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (["deploy", "--dry-rn"], "No such option: --dry-rn (Possible options: --dry-run)", "see `doki deploy --help`"),
        (["bogus"], "No such command 'bogus'. Did you mean 'logs'?", "see `doki --help`"),
    ],
)
def test_with_json_a_usage_error_is_a_json_error_with_typers_exit_code(
    args: list[str], message: str, hint: str
) -> None:
    result = runner.invoke(app, ["--json", *args])
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {"error": {"code": "usage_error", "message": message, "hint": hint}}


def test_without_json_a_usage_error_is_typers_own_text() -> None:
    result = runner.invoke(app, ["deploy", "--dry-rn"])
    assert result.exit_code == 2
    assert result.stderr.endswith("Error: No such option: --dry-rn (Possible options: --dry-run)\n")
