"""The project the deploy tests deploy: doki.toml and .env of a backend service in the emulator's project `doki-e2e`,
its runtime account made and the backend image pushed (used by the deploy, cors, rollback, status, release and
hardening tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from doki_cli.emulator.server import Emulator
from tests.helpers import BACKEND_IMAGE
from tests.helpers.accounts import make_accounts
from tests.helpers.images import publish

PROJECT = "doki-e2e"
SA = f"doki-runtime@{PROJECT}.iam.gserviceaccount.com"
PATH = f"projects/{PROJECT}/locations/us-central1/services/doki-backend"
TOML = f"""[service]
name = "doki-backend"
project = "{PROJECT}"
repository = "doki"
service_account = "{SA}"
[service.env]
ENVIRONMENT = "production"
SUPABASE_URL = "https://abcdefghijklmnop.supabase.co"
GOOGLE_CLIENT_ID = "client-id.apps.googleusercontent.com"
ALLOWED_ORIGINS = ["https://one.example"]
[service.secrets]
SESSION_SECRET_KEY = "session-secret-key"
ENCRYPTION_KEY = "encryption-key"
SUPABASE_SECRET_KEY = "supabase-secret-key"
GOOGLE_CLIENT_SECRET = "google-oauth-client-secret"
"""
ENV = (
    f"SESSION_SECRET_KEY={'s' * 48}\nENCRYPTION_KEY={Fernet.generate_key().decode()}\n"
    "SUPABASE_SECRET_KEY=service-role-key-for-tests\nGOOGLE_CLIENT_SECRET=google-client-secret-for-tests\n"
)


def setup_project(tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """doki.toml and .env of the emulator's project, with its runtime account made and the backend image pushed (by
    name: the engine has it)."""
    monkeypatch.setenv("DOKI_EMULATOR", emulator.grpc_address)
    make_accounts(emulator, TOML)
    publish(emulator, BACKEND_IMAGE)
    (tmp_path / "doki.toml").write_text(TOML)
    (tmp_path / ".env").write_text(ENV)
