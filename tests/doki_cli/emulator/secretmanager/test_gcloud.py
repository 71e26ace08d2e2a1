"""`gcloud secrets` against the emulator, unchanged but for its documented endpoint override, sharing state with
the Python client both ways."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from doki_cli.emulator.server import Emulator
from tests.doki_cli.emulator.secretmanager.support import PROJECT, make_secret
from tests.helpers import run

GCLOUD = shutil.which("gcloud")

pytestmark = [
    pytest.mark.gcloud,
    pytest.mark.skipif(GCLOUD is None, reason="the gcloud SDK is not installed (no gcloud on PATH)"),
]


@pytest.fixture
def gcloud(emulator: Emulator, tmp_path: Path) -> Any:
    """Run gcloud against the emulator's REST port: `gcloud(*args, stdin=b"")` -> stdout bytes."""
    env = {
        **os.environ,
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud-config"),
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER": emulator.rest_url + "/",
        "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
        "CLOUDSDK_CORE_PROJECT": "p",
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
    }

    def call(*args: str, stdin: bytes = b"") -> bytes:
        assert GCLOUD is not None
        done = run([GCLOUD, *args], input=stdin, env=env, capture_output=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout

    return call


def test_gcloud_creates_adds_and_reads_secrets_that_the_python_client_shares(gcloud: Any, sm: Any) -> None:
    gcloud("secrets", "create", "db-password", "--data-file=-", stdin=b"first")
    gcloud("secrets", "versions", "add", "db-password", "--data-file=-", stdin=b"second")
    assert gcloud("secrets", "versions", "access", "latest", "--secret", "db-password") == b"second"

    name = f"{PROJECT}/secrets/db-password"
    assert [v.name for v in sm.list_secret_versions(parent=name)] == [f"{name}/versions/2", f"{name}/versions/1"]
    assert sm.access_secret_version(name=f"{name}/versions/1").payload.data == b"first"

    make_secret(sm, "api-key", b"from-python")
    listed = json.loads(gcloud("secrets", "list", "--format=json"))
    assert [s["name"] for s in listed] == ["projects/p/secrets/api-key", "projects/p/secrets/db-password"]
    assert listed[0]["replication"] == {"automatic": {}}
    assert gcloud("secrets", "versions", "access", "1", "--secret", "api-key") == b"from-python"
