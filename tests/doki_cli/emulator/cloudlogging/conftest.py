"""The official LoggingServiceV2Client, pointed at the in-process emulator through doki's client factory."""

from __future__ import annotations

from typing import Any

import pytest

from doki_cli.gcp.clients import ClientFactory


@pytest.fixture
def logging_client(clients: ClientFactory) -> Any:
    return clients.logging()
