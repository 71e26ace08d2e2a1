"""The real Dockerfile, built once per session on a real engine from a copy of the repository."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Build, build_image, copy_checkout, secret

# Planted in the build context: none of it may reach the image, nor the build's log or a container's.
PLANTED_SECRET = secret("the secret planted in the build context", "planted-secret-value-0123456789")


@pytest.fixture(scope="session")
def build_context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository as committed, plus what a developer's checkout holds and the image must not."""
    context = copy_checkout(tmp_path_factory.mktemp("context"))
    (context / ".env").write_text(f"SUPABASE_SECRET_KEY={PLANTED_SECRET}\n")
    (context / ".env.production").write_text(f"ENCRYPTION_KEY={PLANTED_SECRET}\n")
    (context / ".git").mkdir(exist_ok=True)
    (context / ".git" / "config").write_text(f"[secret]\n\tvalue = {PLANTED_SECRET}\n")
    (context / ".doki").mkdir(exist_ok=True)
    (context / ".doki" / "dev-keys.json").write_text(f'{{"encryption_key": "{PLANTED_SECRET}"}}')
    return context


@pytest.fixture(scope="session")
def image(docker_client: Any, build_context: Path) -> Iterator[Build]:
    build = build_image(docker_client, build_context, "doki-backend:test")
    yield build
