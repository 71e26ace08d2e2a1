"""Secret Manager clients on both transports, pointed at the in-process emulator."""

from __future__ import annotations

from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory


@pytest.fixture
def sm(clients: ClientFactory) -> Any:
    """The official client over gRPC, as doki builds it."""
    return clients.secret_manager()


@pytest.fixture
def rest_sm(emulator: Emulator) -> Any:
    """The official client over its REST transport, as it would talk to secretmanager.googleapis.com."""
    return secretmanager.SecretManagerServiceClient(
        transport="rest",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": emulator.rest_url},
    )
