"""Fixtures every emulator suite may use: gcloud pointed at the in-process emulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from doki_cli.emulator.server import Emulator
from tests.doki_cli.emulator.gcloud import Gcloud, gcloud_env


@pytest.fixture
def gcloud(emulator: Emulator, tmp_path: Path) -> Gcloud:
    """gcloud against the emulator's REST surfaces, acting on project `p` (see tests/doki_cli/emulator/gcloud.py)."""
    return Gcloud(gcloud_env(emulator.rest_url, tmp_path / "gcloud-config"))
