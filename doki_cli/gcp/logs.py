"""PLACEHOLDER: the Cloud Logging adapter (being written)."""

from __future__ import annotations

from typing import Any

from doki_cli.gcp.retry import Retrier


class Logs:
    def __init__(self, client: Any, project: str, retrier: Retrier) -> None:
        self._client = client
        self.project = project
        self._retrier = retrier
