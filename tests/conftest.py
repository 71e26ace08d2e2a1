"""Every test starts from a clean slate: none of the developer's backend settings, a fresh working directory
(so no `.env` or `.doki/` of theirs is read, and none is written into the repository)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import BACKEND_ENV_NAMES


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in BACKEND_ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name in ("DOKI_CONFIG", "DOKI_ENV", "DOKI_PROJECT", "DOKI_REGION", "DOKI_JSON", "DOKI_VERBOSE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
