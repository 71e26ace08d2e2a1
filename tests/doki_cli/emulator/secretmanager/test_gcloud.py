"""`gcloud secrets` against the emulator, unchanged but for its documented endpoint override, sharing state with
the Python client both ways."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.doki_cli.emulator.secretmanager.support import PROJECT, make_secret
from tests.helpers.gcloud import Gcloud

pytestmark = pytest.mark.gcloud


def test_gcloud_creates_adds_and_reads_secrets_that_the_python_client_shares(gcloud: Gcloud, sm: Any) -> None:
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
