"""`doki keys generate`: keys the backend accepts, printed so they paste into .env or Secret Manager."""

from __future__ import annotations

import json

from cryptography.fernet import Fernet

from doki.settings import MIN_SESSION_SECRET_LENGTH, Settings
from doki_cli.main import app
from tests.helpers import CliRunner

runner = CliRunner()


def test_keys_generate_prints_dotenv_lines_that_production_settings_accept() -> None:
    result = runner.invoke(app, ["keys", "generate"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [line.split("=", 1)[0] for line in lines] == ["ENCRYPTION_KEY", "SESSION_SECRET_KEY"]
    values = dict(line.split("=", 1) for line in lines)
    Fernet(values["ENCRYPTION_KEY"])  # a valid key, or this raises
    assert len(values["SESSION_SECRET_KEY"]) >= MIN_SESSION_SECRET_LENGTH
    settings = Settings(
        _env_file=None,
        environment="production",
        encryption_key=values["ENCRYPTION_KEY"],
        session_secret_key=values["SESSION_SECRET_KEY"],
    )
    assert not [p for p in settings.problems() if "ENCRYPTION_KEY" in p or "SESSION_SECRET_KEY" in p]
    assert "never commit" in result.stderr


def test_keys_generate_makes_new_keys_every_time() -> None:
    first = runner.invoke(app, ["keys", "generate"]).stdout
    second = runner.invoke(app, ["keys", "generate"]).stdout
    assert first != second


def test_keys_generate_with_json_prints_only_json() -> None:
    result = runner.invoke(app, ["--json", "keys", "generate"])
    assert result.exit_code == 0
    assert set(json.loads(result.stdout)) == {"ENCRYPTION_KEY", "SESSION_SECRET_KEY"}
    assert result.stderr == ""
