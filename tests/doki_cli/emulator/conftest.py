"""Fixtures every emulator suite may use: gcloud pointed at the in-process emulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from doki_cli.emulator.server import Emulator
from tests.helpers.gcloud import Gcloud


@pytest.fixture
def gcloud(gcloud_binary: str, emulator: Emulator, tmp_path: Path) -> Gcloud:
    """gcloud as `doki emulator env` points it at the emulator, acting on project `p` (see tests/helpers/gcloud.py)."""
    return Gcloud.for_emulator(gcloud_binary, emulator, tmp_path / "gcloud-config")
