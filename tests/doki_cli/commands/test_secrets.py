"""`doki secrets push/list/grant` against the emulator's Secret Manager, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.helpers import CliRunner, run

runner = CliRunner()
SA = "doki-runtime@proj-1.iam.gserviceaccount.com"
TOML = f"""[service]
name = "api"
project = "proj-1"
service_account = "{SA}"
[service.secrets]
ENCRYPTION_KEY = "encryption-key"
SESSION_SECRET_KEY = "session-secret-key"
SUPABASE_JWT_SECRET = "supabase-jwt-secret:2"
"""


@pytest.fixture(autouse=True)
def project(tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOKI_EMULATOR", emulator.grpc_address)
    (tmp_path / "doki.toml").write_text(TOML)
    (tmp_path / ".env").write_text("ENCRYPTION_KEY=key-one\nSESSION_SECRET_KEY=session-one\nOTHER=x\n")
    return tmp_path


def versions(clients: ClientFactory, secret: str) -> list[str]:
    listed = clients.secret_manager().list_secret_versions(parent=f"projects/proj-1/secrets/{secret}")
    return sorted(v.name.rsplit("/", 1)[1] for v in listed)


def test_push_creates_the_secrets_and_a_second_push_changes_nothing(clients: ClientFactory) -> None:
    first = runner.invoke(app, ["secrets", "push"])
    assert first.exit_code == 0, first.output
    assert first.stdout == (
        "encryption-key       created    version 1\n"
        "session-secret-key   created    version 1\n"
        "supabase-jwt-secret  skipped\n"
    )
    assert first.stderr == "  supabase-jwt-secret: no SUPABASE_JWT_SECRET in .env\n"
    again = runner.invoke(app, ["secrets", "push"])
    assert again.stdout == (
        "encryption-key       unchanged  version 1\n"
        "session-secret-key   unchanged  version 1\n"
        "supabase-jwt-secret  skipped\n"
    )
    assert versions(clients, "encryption-key") == ["1"]
    value = clients.secret_manager().access_secret_version(name="projects/proj-1/secrets/encryption-key/versions/1")
    assert value.payload.data == b"key-one"
    assert "key-one" not in first.output + again.output


def test_a_changed_value_adds_exactly_one_version(project: Path, clients: ClientFactory) -> None:
    runner.invoke(app, ["secrets", "push"])
    (project / ".env").write_text("ENCRYPTION_KEY=key-two\nSESSION_SECRET_KEY=session-one\n")
    result = runner.invoke(app, ["--json", "secrets", "push", "ENCRYPTION_KEY", "session-secret-key"])
    assert json.loads(result.stdout) == [
        {"secret": "encryption-key", "env": ["ENCRYPTION_KEY"], "outcome": "updated", "version": 2, "note": None},
        {
            "secret": "session-secret-key",
            "env": ["SESSION_SECRET_KEY"],
            "outcome": "unchanged",
            "version": 1,
            "note": None,
        },
    ]
    assert versions(clients, "encryption-key") == ["1", "2"]


def test_push_reads_values_from_stdin_as_keys_generate_prints_them(clients: ClientFactory) -> None:
    result = runner.invoke(
        app, ["secrets", "push", "--from", "-", "ENCRYPTION_KEY"], input="ENCRYPTION_KEY=from-stdin\n"
    )
    assert result.stdout == "encryption-key  created    version 1\n"
    value = clients.secret_manager().access_secret_version(name="projects/proj-1/secrets/encryption-key/versions/1")
    assert value.payload.data == b"from-stdin"


def test_a_pinned_version_is_pointed_out_when_a_new_one_is_pushed(project: Path) -> None:
    (project / ".env").write_text("SUPABASE_JWT_SECRET=" + "j" * 40 + "\n")
    result = runner.invoke(app, ["secrets", "push", "SUPABASE_JWT_SECRET"])
    assert result.stdout == "supabase-jwt-secret  created    version 1\n"
    assert "supabase-jwt-secret: doki.toml pins version 2: deploys use that, not this one" in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "error"),
    [
        (
            ["NOPE"],
            "ENCRYPTION_KEY=a\n",
            "Error [unknown_secret]: NOPE is not a secret declared in doki.toml\n"
            "  Hint: name one of: encryption-key, session-secret-key, supabase-jwt-secret (or their variables)\n",
        ),
        (
            ["ENCRYPTION_KEY", "SUPABASE_JWT_SECRET"],
            "ENCRYPTION_KEY=a\n",
            "Error [secret_value_missing]: no value for SUPABASE_JWT_SECRET in .env\n"
            "  Hint: add SUPABASE_JWT_SECRET=... to .env; nothing was pushed\n",
        ),
        (
            [],
            "ENCRYPTION_KEY=\n",
            "Error [empty_secret]: ENCRYPTION_KEY is empty\n"
            "  Hint: set a value (Secret Manager refuses empty secrets)\n",
        ),
    ],
)
def test_bad_input_stops_the_push_before_anything_is_written(
    project: Path, clients: ClientFactory, args: list[str], env: str, error: str
) -> None:
    (project / ".env").write_text(env)
    result = runner.invoke(app, ["secrets", "push", *args])
    assert result.exit_code == 1
    assert result.stderr == error
    assert list(clients.secret_manager().list_secrets(parent="projects/proj-1")) == []


def test_a_missing_env_file_names_the_options() -> None:
    result = runner.invoke(app, ["secrets", "push", "--from", "prod.env"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error [secrets_source_missing]: no file at prod.env to read secret values from\n"
        "  Hint: pass --from PATH to your .env file, or --from - to read NAME=value lines from stdin\n"
    )


def test_list_shows_each_declared_secret_without_its_value() -> None:
    runner.invoke(app, ["secrets", "push"])
    result = runner.invoke(app, ["--json", "secrets", "list"])
    rows = {row["secret"]: row for row in json.loads(result.stdout)}
    assert rows["encryption-key"]["exists"] is True
    assert rows["encryption-key"]["latest"] == 1
    assert rows["encryption-key"]["state"] == "ENABLED"
    assert rows["encryption-key"]["env"] == ["ENCRYPTION_KEY"]
    assert rows["supabase-jwt-secret"] == {
        "secret": "supabase-jwt-secret",
        "env": ["SUPABASE_JWT_SECRET"],
        "exists": False,
        "latest": None,
        "created": None,
        "state": None,
    }
    human = runner.invoke(app, ["secrets", "list"]).stdout
    assert "supabase-jwt-secret  SUPABASE_JWT_SECRET       missing (doki secrets push creates it)\n" in human
    assert "key-one" not in human + result.stdout


def test_grant_binds_the_runtime_account_once(project: Path, emulator: Emulator) -> None:
    emulator.accounts.add("proj-1", SA)
    (project / ".env").write_text("ENCRYPTION_KEY=a\nSESSION_SECRET_KEY=b\nSUPABASE_JWT_SECRET=c\n")
    runner.invoke(app, ["secrets", "push"])
    first = runner.invoke(app, ["secrets", "grant"])
    assert first.stdout.splitlines()[0] == f"encryption-key: granted to serviceAccount:{SA}"
    assert emulator.secrets.can_access("projects/proj-1/secrets/encryption-key", f"serviceAccount:{SA}")
    again = runner.invoke(app, ["secrets", "grant"])
    assert again.stdout.splitlines()[0] == f"encryption-key: already granted to serviceAccount:{SA}"


def test_grant_rereads_and_retries_when_the_policy_changes_underneath(project: Path, emulator: Emulator) -> None:
    emulator.accounts.add("proj-1", SA)
    (project / ".env").write_text("ENCRYPTION_KEY=a\nSESSION_SECRET_KEY=b\nSUPABASE_JWT_SECRET=c\n")
    runner.invoke(app, ["secrets", "push"])
    emulator.faults.fail("SetIamPolicy", "ABORTED", times=2, message="There were concurrent policy changes.")
    result = runner.invoke(app, ["secrets", "grant"])
    assert result.exit_code == 0, result.output
    assert emulator.secrets.can_access("projects/proj-1/secrets/encryption-key", f"serviceAccount:{SA}")


def test_grant_to_a_runtime_account_that_does_not_exist_says_how_to_create_it(project: Path) -> None:
    (project / ".env").write_text("ENCRYPTION_KEY=a\nSESSION_SECRET_KEY=b\nSUPABASE_JWT_SECRET=c\n")
    runner.invoke(app, ["secrets", "push"])
    result = runner.invoke(app, ["secrets", "grant"])
    assert result.exit_code == 78
    assert result.stderr == (
        "Error [service_account_missing]: changing the IAM policy of projects/proj-1/secrets/encryption-key: the "
        f"service account {SA} does not exist\n"
        "  Hint: create it: gcloud iam service-accounts create doki-runtime --project proj-1 (`doki doctor "
        "--create-account` creates the runtime account doki.toml names); or name an account that exists in doki.toml\n"
    )


def test_grant_before_push_says_to_push_first() -> None:
    result = runner.invoke(app, ["secrets", "grant"])
    assert result.exit_code == 78  # as a deploy that names a missing secret: the project lacks what doki.toml says
    assert result.stderr.startswith("Error [secret_missing]: these secrets do not exist yet: encryption-key")


def test_a_transient_failure_is_retried_and_the_push_completes(emulator: Emulator, clients: ClientFactory) -> None:
    emulator.faults.fail("AddSecretVersion", "UNAVAILABLE", times=2)
    result = runner.invoke(app, ["secrets", "push", "ENCRYPTION_KEY"])
    assert result.exit_code == 0, result.output
    assert versions(clients, "encryption-key") == ["1"]


def test_permission_denied_is_not_retried_and_names_the_role(emulator: Emulator) -> None:
    emulator.faults.fail(
        "CreateSecret", "PERMISSION_DENIED", times=5, message="caller lacks secretmanager.secrets.create"
    )
    result = runner.invoke(app, ["secrets", "push", "ENCRYPTION_KEY"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error [permission_denied]: creating projects/proj-1/secrets/encryption-key: permission denied "
        "(caller lacks secretmanager.secrets.create)\n"
        "  Hint: grant your account the roles/secretmanager.admin role on projects/proj-1/secrets/encryption-key "
        "or its project, or run as an identity that has it\n"
    )
    assert emulator.faults.calls["/google.cloud.secretmanager.v1.SecretManagerService/CreateSecret"] == 1


def test_without_the_emulator_or_credentials_the_error_says_how_to_log_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from tests.helpers import clean_env

    env = clean_env(HOME=str(tmp_path), CLOUDSDK_CONFIG=str(tmp_path / "gcloud"), NO_GCE_CHECK="True")
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    doki = str(Path(sys.executable).with_name("doki"))
    result = run([doki, "secrets", "list"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("Error [no_credentials]: no Google credentials found")
    assert result.stderr.endswith(
        "  Hint: run `gcloud auth application-default login`, set GOOGLE_APPLICATION_CREDENTIALS, "
        'or use the local emulator: eval "$(doki emulator env)"\n'
    )
