"""`gcloud secrets` against the emulator, configured as `doki emulator env` configures it, sharing state with the
Python client both ways."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from doki_cli.emulator.server import Emulator
from tests.doki_cli.emulator.secretmanager.support import PROJECT, make_secret
from tests.gcloud import Gcloud

pytestmark = pytest.mark.gcloud


@pytest.fixture
def gcloud(gcloud_binary: str, emulator: Emulator, tmp_path: Path) -> Any:
    """Run gcloud against the emulator: `gcloud(*args, stdin=b"")` -> stdout bytes."""
    runner = Gcloud(gcloud_binary, emulator, tmp_path / "gcloud-config", "p")

    def call(*args: str, stdin: bytes = b"") -> bytes:
        return runner(*args, stdin=stdin).stdout.encode()

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
