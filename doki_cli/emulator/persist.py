"""State that survives a restart: one JSON file per service in the state directory, written atomically."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Protocol


class Persistent(Protocol):
    """A service's state as it is saved and restored: plain JSON data."""

    def snapshot(self) -> dict[str, Any]: ...

    def restore(self, data: dict[str, Any]) -> None: ...


class StateDir:
    """Where services keep their state. `None` keeps everything in memory (tests that need no restart)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        if path is not None:
            path.mkdir(parents=True, exist_ok=True)

    def load(self, name: str) -> dict[str, Any] | None:
        if self.path is None:
            return None
        file = self.path / f"{name}.json"
        if not file.exists():
            return None
        data: dict[str, Any] = json.loads(file.read_text())
        return data

    def save(self, name: str, data: dict[str, Any]) -> None:
        if self.path is None:
            return
        file = self.path / f"{name}.json"
        # Write then rename: a crash mid-write leaves the previous state, never half a file.
        with self._lock:
            tmp = file.with_suffix(f".json.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            tmp.replace(file)
