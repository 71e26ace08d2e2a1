"""Logs: JSON lines Cloud Logging understands in production, readable lines locally, and never a secret."""

from __future__ import annotations

import io
import json
import logging

import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from doki.app import create_app
from doki.log import Redactor, configure_logging, parse_trace_header
from tests.doki.conftest import development_settings, production_settings
from tests.fakes.postgrest import FakePostgrest
from tests.fakes.supabase_auth import FakeSupabaseAuth

TRACE_ID = "105445aa7843bc8bf206b12000100000"


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield None
    root.handlers[:] = handlers
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_production_logs_one_json_object_per_line_with_severity_and_message(fake_postgrest: FakePostgrest) -> None:
    stream = io.StringIO()
    configure_logging(production_settings(fake_postgrest.url), stream)
    logging.getLogger("doki.test").warning("disk %s is %d%% full", "/tmp", 91)
    (entry,) = _lines(stream)
    assert entry["severity"] == "WARNING"
    assert entry["message"] == "disk /tmp is 91% full"
    assert entry["logger"] == "doki.test"
    assert "logging.googleapis.com/trace" not in entry


def test_production_log_lines_carry_the_cloud_run_trace_of_their_request(fake_postgrest: FakePostgrest) -> None:
    settings = production_settings(fake_postgrest.url)
    app = create_app(settings)
    stream = io.StringIO()
    configure_logging(settings, stream)

    @app.get("/_log")
    async def log_something(request: Request) -> dict[str, bool]:
        logging.getLogger("doki.test").info("inside the request")
        return {"ok": True}

    with TestClient(app) as client:
        client.get("/_log", headers={"X-Cloud-Trace-Context": f"{TRACE_ID}/1;o=1"})
        client.get("/_log")
    inside = [e for e in _lines(stream) if e["message"] == "inside the request"]
    assert inside[0]["logging.googleapis.com/trace"] == f"projects/doki-prod/traces/{TRACE_ID}"
    assert "logging.googleapis.com/trace" not in inside[1]


def test_without_a_project_id_no_trace_field_is_written(fake_postgrest: FakePostgrest) -> None:
    settings = production_settings(fake_postgrest.url, gcp_project_id=None)
    app = create_app(settings)
    stream = io.StringIO()
    configure_logging(settings, stream)

    @app.get("/_log")
    async def log_something() -> dict[str, bool]:
        logging.getLogger("doki.test").info("inside")
        return {"ok": True}

    with TestClient(app) as client:
        client.get("/_log", headers={"X-Cloud-Trace-Context": f"{TRACE_ID}/1;o=1"})
    assert all("logging.googleapis.com/trace" not in e for e in _lines(stream))


@pytest.mark.parametrize(
    ("header", "trace"),
    [
        (f"{TRACE_ID}/123;o=1", TRACE_ID),
        (TRACE_ID.upper(), TRACE_ID),
        ("not-a-trace/1", None),
        ('"}, {"injected": 1', None),
        ("", None),
    ],
)
def test_only_well_formed_trace_headers_are_used(header: str, trace: str | None) -> None:
    assert parse_trace_header(header) == trace


def test_development_logs_are_readable_lines_not_json() -> None:
    stream = io.StringIO()
    configure_logging(development_settings(), stream)
    logging.getLogger("doki.test").info("hello there")
    line = stream.getvalue().strip()
    assert line.endswith("INFO    doki.test: hello there")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


@pytest.mark.parametrize(
    "leak",
    [
        "Authorization: Bearer abcdefghijklmnop.qrs",
        "token eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl",
        "key sb_secret_abcdefghijklmnop",
        "google ya29.a0AfH6SMBx-abc",
        "refresh 1//0gAbCdEfGhIjKlMnOp",
    ],
)
def test_credential_shaped_text_is_redacted(leak: str) -> None:
    redacted = Redactor()(f"before {leak} after")
    secret_part = leak.split(" ", 2)[-1] if leak.startswith("Authorization") else leak.split(" ", 1)[1]
    assert secret_part not in redacted
    assert redacted.startswith("before ") and redacted.endswith(" after")
    assert "[redacted]" in redacted


def test_secret_query_parameters_keep_their_name_and_lose_their_value() -> None:
    line = Redactor()('"GET /connectors/google/callback?state=abc123&code=4/0Adeu5BW&scope=email HTTP/1.1" 200')
    assert line == '"GET /connectors/google/callback?state=[redacted]&code=[redacted]&scope=email HTTP/1.1" 200'


@pytest.mark.prints_secrets  # logs them, to see the redactor mask them
def test_configured_secret_values_are_redacted_wherever_they_appear(fake_postgrest: FakePostgrest) -> None:
    settings = production_settings(fake_postgrest.url)
    stream = io.StringIO()
    configure_logging(settings, stream)
    assert settings.encryption_key is not None and settings.google_client_secret is not None
    key = settings.encryption_key.get_secret_value()
    logging.getLogger("doki.test").error("oops key=%s client=%s", key, settings.google_client_secret.get_secret_value())
    output = stream.getvalue()
    assert key not in output
    assert "GOCSPX-real-one" not in output
    assert output.count("[redacted]") == 2


def test_a_rejected_token_never_reaches_the_logs(
    supabase_auth: FakeSupabaseAuth, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = production_settings(supabase_auth.url, log_level="DEBUG")
    app = create_app(settings)
    stream = io.StringIO()
    configure_logging(settings, stream)
    expired = supabase_auth.mint({"exp": 1})
    forged = supabase_auth.mint(alg="HS256", key=b"guess")
    with TestClient(app) as client:
        for token in (expired, forged):
            assert client.get("/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    everything = stream.getvalue() + capsys.readouterr().out + capsys.readouterr().err
    for token in (expired, forged):
        assert token not in everything
        assert token.split(".")[2] not in everything
