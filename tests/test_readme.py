"""The README stays true: its two opening commands are what CI runs, and it documents every setting and command."""

from __future__ import annotations

import re

from doki.settings import Settings
from doki_cli.main import app
from tests.helpers import REPO, CliRunner

README = (REPO / "README.md").read_text()


def _opening_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", README, flags=re.S)[:2]


def test_the_readme_opens_with_a_dev_command_and_a_test_command() -> None:
    dev, test = _opening_commands()
    assert "\n" not in dev and dev.endswith("doki dev")
    assert "\n" not in test and test.endswith("pytest")


def test_ci_runs_the_readmes_test_command_verbatim() -> None:
    _, test = _opening_commands()
    assert test in (REPO / ".ci" / "run").read_text().splitlines()


def test_every_setting_is_documented() -> None:
    for name, field in Settings.model_fields.items():
        env_name = field.validation_alias.choices[0] if field.validation_alias else name.upper()  # type: ignore[union-attr]
        assert f"`{env_name}`" in README, env_name


def test_every_command_is_documented() -> None:
    help_text = CliRunner().invoke(app, ["--help"]).output
    commands = re.findall(r"^  (\w[\w-]*)  ", help_text.split("Commands:")[1], flags=re.M)
    assert commands
    for command in commands:
        assert f"`doki {command}" in README, command
