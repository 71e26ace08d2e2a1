"""Helpers shared by the Secret Manager tests."""

from __future__ import annotations

from typing import Any

PROJECT = "projects/p"


def make_secret(client: Any, secret_id: str, *values: bytes, **fields: Any) -> str:
    """Create `secret_id` (automatic replication) with one version per value; its name."""
    secret = client.create_secret(
        parent=PROJECT, secret_id=secret_id, secret={"replication": {"automatic": {}}, **fields}
    )
    for value in values:
        client.add_secret_version(parent=secret.name, payload={"data": value})
    return str(secret.name)
