"""Secrets outlive the emulator process, and injected faults reach the client as Google's errors would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud.secretmanager_v1 import types
from google.iam.v1 import policy_pb2

from doki_cli.emulator.projects import compute_default_account
from doki_cli.emulator.secretmanager.state import SecretStore
from doki_cli.emulator.server import Emulator, EmulatorConfig
from doki_cli.gcp.clients import ClientFactory
from tests.doki_cli.emulator.secretmanager.support import PROJECT, make_secret

# An account that exists in every project (IAM policies name only accounts that exist).
P_DEFAULT_ACCOUNT = f"serviceAccount:{compute_default_account('p')}"

CREATE = "/google.cloud.secretmanager.v1.SecretManagerService/CreateSecret"
ACCESS = "/google.cloud.secretmanager.v1.SecretManagerService/AccessSecretVersion"
MEMBER = P_DEFAULT_ACCOUNT


def test_secrets_versions_states_and_policies_survive_a_restart(tmp_path: Path) -> None:
    config = EmulatorConfig(state_dir=tmp_path / "state")
    with Emulator(config) as first:
        sm = ClientFactory(first.grpc_address, first.rest_url).secret_manager()
        name = make_secret(sm, "token", b"one", b"two", b"three", labels={"env": "prod"})
        sm.disable_secret_version(name=f"{name}/versions/2")
        sm.destroy_secret_version(name=f"{name}/versions/3")
        policy = sm.get_iam_policy(request={"resource": name})
        policy.bindings.append(policy_pb2.Binding(role="roles/secretmanager.secretAccessor", members=[MEMBER]))
        sm.set_iam_policy(request={"resource": name, "policy": policy})
        before = sm.get_secret(name=name)
        policy_etag = sm.get_iam_policy(request={"resource": name}).etag

    with Emulator(config) as second:
        sm = ClientFactory(second.grpc_address, second.rest_url).secret_manager()
        assert sm.get_secret(name=name) == before
        assert [(v.name.rsplit("/", 1)[1], v.state.name) for v in sm.list_secret_versions(parent=name)] == [
            ("3", "DESTROYED"),
            ("2", "DISABLED"),
            ("1", "ENABLED"),
        ]
        assert sm.access_secret_version(name=f"{name}/versions/1").payload.data == b"one"
        assert second.secrets.can_access(name, MEMBER) is True
        assert sm.get_iam_policy(request={"resource": name}).etag == policy_etag
        # Numbering carries on after the restart.
        assert sm.add_secret_version(parent=name, payload={"data": b"four"}).name == f"{name}/versions/4"


def test_the_saved_state_keeps_no_data_of_a_destroyed_version() -> None:
    saved: list[dict[str, Any]] = []
    store = SecretStore(persist=lambda: saved.append(json.loads(json.dumps(store.snapshot()))))
    store.create_secret(PROJECT, "token", types.Secret(replication={"automatic": {}}))
    store.add_version(f"{PROJECT}/secrets/token", types.SecretPayload(data=b"secret-value"))
    store.destroy_version(f"{PROJECT}/secrets/token/versions/1")
    assert "c2VjcmV0LXZhbHVl" not in json.dumps(saved[-1])  # base64 of b"secret-value"
    restored = SecretStore(persist=lambda: None)
    restored.restore(saved[-1])
    assert restored.get_version(f"{PROJECT}/secrets/token/versions/1").state.name == "DESTROYED"


def test_a_create_failing_unavailable_raises_service_unavailable_without_a_retry(emulator: Emulator, sm: Any) -> None:
    emulator.faults.fail("CreateSecret", "UNAVAILABLE")
    with pytest.raises(exceptions.ServiceUnavailable, match="injected UNAVAILABLE for CreateSecret"):
        make_secret(sm, "token")
    # CreateSecret has no default retry in the GAPIC configuration: one call, and the error surfaces.
    assert emulator.faults.calls[CREATE] == 1
    assert make_secret(sm, "token") == f"{PROJECT}/secrets/token"
    assert emulator.faults.calls[CREATE] == 2


def test_access_retries_on_unavailable_by_default_and_then_succeeds(emulator: Emulator, sm: Any) -> None:
    name = make_secret(sm, "token", b"one")
    emulator.faults.fail("AccessSecretVersion", "UNAVAILABLE")
    # AccessSecretVersion's default retry covers UNAVAILABLE and RESOURCE_EXHAUSTED: the client calls again.
    assert sm.access_secret_version(name=f"{name}/versions/1").payload.data == b"one"
    assert emulator.faults.calls[ACCESS] == 2


def test_a_non_retryable_fault_on_access_surfaces_at_once(emulator: Emulator, sm: Any) -> None:
    name = make_secret(sm, "token", b"one")
    emulator.faults.fail("AccessSecretVersion", "PERMISSION_DENIED", message="Permission denied on secret")
    with pytest.raises(exceptions.PermissionDenied, match="Permission denied on secret"):
        sm.access_secret_version(name=f"{name}/versions/1")
    assert emulator.faults.calls[ACCESS] == 1
