"""`doki dev --from-service`: the backend on this machine with a deployed service's configuration, its secrets' values
read from (the emulated) Secret Manager at start and held in memory: never written to disk, never printed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import httpx
import pytest
from google.api_core import exceptions
from google.cloud import run_v2

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.gcp.google import Google
from doki_cli.main import app
from tests.helpers import BACKEND_IMAGE, CliRunner, clean_env, running, wait_for_http
from tests.helpers.logs import DOKI
from tests.helpers.project import ENV, PATH, PROJECT, SA, setup_project

runner = CliRunner()
SECRETS = dict(line.split("=", 1) for line in ENV.splitlines())


def deployed(tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """The project's service made by `doki deploy` (no engine: its revision is not Ready, but the service holds its
    variables and secret references), then .env removed: the secrets' values live in Secret Manager only."""
    setup_project(tmp_path, emulator, monkeypatch)
    assert runner.invoke(app, ["secrets", "push"]).exit_code == 0
    assert runner.invoke(app, ["deploy", "--image", BACKEND_IMAGE, "--yes"]).exit_code == 1
    (tmp_path / ".env").unlink()


def stopped(proc: subprocess.Popen[str]) -> str:
    """Everything `proc` printed (stdout and stderr), once its process group is stopped."""
    os.killpg(proc.pid, signal.SIGTERM)
    return proc.communicate(timeout=20)[0]


def files_holding(root: Path, values: list[str]) -> list[Path]:
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and any(value.encode() in path.read_bytes() for value in values)
    ]


def test_it_serves_with_the_services_variables_and_secrets_printing_and_writing_no_value(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, reserve_port: Callable[[], int]
) -> None:
    deployed(tmp_path, emulator, monkeypatch)
    # What a deploy that reached Ready sets: the OAuth callback at the service's URL.
    services = ClientFactory(emulator.grpc_address).run_services()
    service = services.get_service(name=PATH)
    redirect = service.uri + "/auth/google/callback"
    service.template.containers[0].env.append(run_v2.EnvVar(name="GOOGLE_REDIRECT_URI", value=redirect))
    with pytest.raises(exceptions.GoogleAPICallError):  # no engine: the revision cannot become Ready
        services.update_service(service=service).result(timeout=30)
    # A developer's .env, which would make production refuse to start (a frontend not among the allowed origins): the
    # service's configuration alone counts.
    (tmp_path / ".env").write_text("FRONTEND_URL=http://localhost:3000\n")
    port = reserve_port()
    # A variable the developer sets keeps their value.
    env = clean_env(DOKI_EMULATOR=emulator.grpc_address, GOOGLE_CLIENT_ID="mine.apps.googleusercontent.com")
    args = [DOKI, "dev", "--from-service", "--no-reload", "--port", str(port)]

    with running(args, cwd=tmp_path, env=env) as proc:
        url = f"http://127.0.0.1:{port}"
        assert wait_for_http(f"{url}/", proc=proc).json() == {"message": "Doki Backend up"}
        # The service's ENVIRONMENT (production): no development user without a token.
        assert httpx.get(f"{url}/auth/me", timeout=10).status_code == 401
        # The service's ALLOWED_ORIGINS.
        preflight = httpx.options(
            f"{url}/auth/me",
            headers={"Origin": "https://one.example", "Access-Control-Request-Method": "GET"},
            timeout=10,
        )
        assert preflight.headers.get("access-control-allow-origin") == "https://one.example"
        output = stopped(proc)

    assert f"Doki backend (production) at {url}\n" in output
    assert re.search(
        rf"with the configuration of {PATH}'s newest revision, doki-backend-\d{{5}}-\w+, held in memory:\n", output
    )
    # No engine: the newest revision never became ready, which the configuration may explain.
    assert re.search(
        r"  ! doki-backend-\d{5}-\w+, whose configuration this is, never became ready: it may be why", output
    )
    assert "  variables: ENVIRONMENT, SUPABASE_URL, GOOGLE_CLIENT_ID, ALLOWED_ORIGINS, GOOGLE_REDIRECT_URI\n" in output
    assert (
        "  from Secret Manager: SESSION_SECRET_KEY (session-secret-key:1), ENCRYPTION_KEY (encryption-key:1), "
        "SUPABASE_SECRET_KEY (supabase-secret-key:1), GOOGLE_CLIENT_SECRET (google-oauth-client-secret:1)\n"
    ) in output
    assert "  kept from your environment instead: GOOGLE_CLIENT_ID\n" in output
    assert (
        f"  GOOGLE_REDIRECT_URI is the service's ({redirect}): Google sends sign-ins back there, not here; to finish "
        f"them here, export GOOGLE_REDIRECT_URI=http://127.0.0.1:{port}/auth/google/callback (allowed in the OAuth "
        "client)\n"
    ) in output
    assert not [value for value in SECRETS.values() if value in output]
    assert files_holding(tmp_path, list(SECRETS.values())) == []
    assert (tmp_path / ".env").read_text() == "FRONTEND_URL=http://localhost:3000\n"


def test_with_json_it_names_what_it_took_and_never_a_value(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, reserve_port: Callable[[], int]
) -> None:
    deployed(tmp_path, emulator, monkeypatch)
    port = reserve_port()
    args = [DOKI, "--json", "dev", "--from-service", "--no-reload", "--port", str(port)]

    with running(args, cwd=tmp_path, env=clean_env(DOKI_EMULATOR=emulator.grpc_address)) as proc:
        assert wait_for_http(f"http://127.0.0.1:{port}/", proc=proc).status_code == 200
        assert proc.stdout is not None
        started = json.loads("".join(iter(proc.stdout.readline, "}\n")) + "}")

    revision = started["from_service"].pop("revision")
    assert re.fullmatch(r"doki-backend-\d{5}-\w+", revision)
    warnings = started["from_service"].pop("warnings")
    assert [w.split(",")[0] for w in warnings] == [revision]
    assert started["from_service"] == {
        "service": PATH,
        "variables": ["ENVIRONMENT", "SUPABASE_URL", "GOOGLE_CLIENT_ID", "ALLOWED_ORIGINS"],
        "secrets": {
            "SESSION_SECRET_KEY": "session-secret-key:1",
            "ENCRYPTION_KEY": "encryption-key:1",
            "SUPABASE_SECRET_KEY": "supabase-secret-key:1",
            "GOOGLE_CLIENT_SECRET": "google-oauth-client-secret:1",
        },
        "kept_from_environment": [],
    }


def test_a_service_never_deployed_is_named_with_how_to_deploy_it_and_nothing_starts(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, reserve_port: Callable[[], int]
) -> None:
    setup_project(tmp_path, emulator, monkeypatch)

    result = runner.invoke(app, ["dev", "--from-service", "--port", str(reserve_port())])

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"Error [service_not_found]: {PATH} does not exist\n"
        "  Hint: deploy it first (`doki deploy`), or name a deployed one with --env NAME or --service NAME\n"
    )


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (
            ["--from-service", "--docker"],
            "--from-service keeps the service's secrets in memory, and a container's environment is kept on the "
            "engine's disk",
            "run `doki dev --from-service` without --docker",
        ),
        (
            ["--service", "api"],
            "--service names the deployed service whose configuration --from-service runs with",
            "add --from-service, or drop --service",
        ),
    ],
    ids=["with --docker", "--service alone"],
)
def test_options_that_do_not_go_together_are_refused_before_anything(args: list[str], message: str, hint: str) -> None:
    result = runner.invoke(app, ["dev", *args])

    assert result.exit_code == 1
    assert result.stderr == f"Error [bad_option]: {message}\n  Hint: {hint}\n"


def test_a_secret_value_the_backend_refuses_is_named_by_its_secret_never_shown(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployed(tmp_path, emulator, monkeypatch)
    # The service's ALLOWED_ORIGINS and GOOGLE_REDIRECT_URI held as secrets, the first one a value the backend refuses.
    bad_origin, callback = "https://secret-origin.example/", "https://secret-callback.example/auth/google/callback"
    google = Google(ClientFactory(emulator.grpc_address), PROJECT).secrets
    for secret_id, value in (("origins", bad_origin), ("callback", callback)):
        google.create(secret_id)
        google.add_version(secret_id, value.encode())
        google.grant(secret_id, f"serviceAccount:{SA}")
    services = ClientFactory(emulator.grpc_address).run_services()
    service = services.get_service(name=PATH)
    container = service.template.containers[0]
    container.env = [e for e in container.env if e.name != "ALLOWED_ORIGINS"] + [
        run_v2.EnvVar(name=name, value_source={"secret_key_ref": {"secret": secret_id, "version": "1"}})
        for name, secret_id in (("ALLOWED_ORIGINS", "origins"), ("GOOGLE_REDIRECT_URI", "callback"))
    ]
    with pytest.raises(exceptions.GoogleAPICallError):  # no engine: the revision cannot become Ready
        services.update_service(service=service).result(timeout=30)
    monkeypatch.chdir(tmp_path)

    with mock.patch.dict(os.environ):  # the command sets the service's values in this process's environment
        result = runner.invoke(app, ["dev", "--from-service"])

    assert result.exit_code == 1
    assert "Error [config_invalid]: Doki cannot start: 1 configuration problem(s)\n" in result.stderr
    assert "<ALLOWED_ORIGINS from Secret Manager>" in result.stderr
    assert bad_origin not in result.output and callback not in result.output
    assert "GOOGLE_REDIRECT_URI (callback:1)" in result.stderr
    assert "GOOGLE_REDIRECT_URI is the service's" not in result.stderr
    assert result.stderr.endswith(
        "  Hint: the service runs with these values: fix them in doki.toml (or `doki secrets push`) and deploy, or "
        "export one to override it here\n"
    )


def test_doki_service_exported_for_the_operate_commands_does_not_stop_a_plain_doki_dev(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reserve_port: Callable[[], int]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("ENCRYPTION_KEY=not-a-key\n")  # stops it before it listens
    monkeypatch.setenv("DOKI_SERVICE", "api")

    result = runner.invoke(app, ["dev", "--port", str(reserve_port())])

    assert result.exit_code == 1
    assert result.stderr.startswith("Error [config_invalid]: Doki cannot start")
