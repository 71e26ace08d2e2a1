"""`doki dev --from-service`: the backend on this machine with a deployed service's configuration, its secrets' values
read from (the emulated) Secret Manager at start and held in memory: never written to disk, never printed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from google.api_core import exceptions
from google.cloud import run_v2

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.helpers import BACKEND_IMAGE, CliRunner, clean_env, running, wait_for_http
from tests.helpers.logs import DOKI
from tests.helpers.project import ENV, PATH, setup_project

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
    assert f"with the configuration of {PATH} (revision none ready), held in memory:\n" in output
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

    assert started["from_service"] == {
        "service": PATH,
        "revision": None,
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
