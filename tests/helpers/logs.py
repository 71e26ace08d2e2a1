"""What the `doki logs` tests share: the project's doki.toml (service `api` in `proj-1`), its entries' labels, the
filter the adapter builds for it, and `doki logs --follow` run as a real process."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from doki_cli.emulator.server import Emulator
from tests.helpers import Process, clean_env

DOKI = str(Path(sys.executable).with_name("doki"))
TOML = '[service]\nname = "api"\nproject = "proj-1"\nregion = "us-central1"\n'
NOW = datetime(2026, 11, 27, 3, 10, 5, 123000, tzinfo=UTC)
BASE_FILTER = (
    'resource.type="cloud_run_revision" AND resource.labels.service_name="api" '
    'AND resource.labels.location="us-central1"'
)


def labels(revision: str = "api-00001-abc", service: str = "api", location: str = "us-central1") -> dict[str, str]:
    return {
        "service_name": service,
        "revision_name": revision,
        "location": location,
        "configuration_name": service,
        "project_id": "proj-1",
    }


class Follower:
    """`doki logs --follow` in its own process, its stdout read line by line on a thread (reads cannot hang)."""

    def __init__(self, emulator: Emulator, cwd: Path, *args: str) -> None:
        self.proc = Process(
            [DOKI, *args],
            cwd=cwd,
            env=clean_env(DOKI_EMULATOR=emulator.grpc_address),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)

    def lines(self, count: int) -> list[str]:
        try:
            return [self._lines.get(timeout=20).rstrip("\n") for _ in range(count)]
        except queue.Empty:
            raise AssertionError(f"doki logs --follow printed fewer than {count} lines") from None

    def interrupt(self) -> tuple[int, str, str]:
        """Ctrl-C: its exit code, what it printed after the lines read, and its stderr."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=20)
        self._reader.join(timeout=10)
        rest = []
        while not self._lines.empty():
            rest.append(self._lines.get())
        assert self.proc.stderr is not None
        return code, "".join(rest), self.proc.stderr.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def wait_for_tail(emulator: Emulator, count: int = 1) -> None:
    """Until the emulator has `count` live tails open."""
    deadline = time.monotonic() + 20
    while emulator.logs.tail_count != count:
        assert time.monotonic() < deadline, f"the emulator has {emulator.logs.tail_count} tails open, not {count}"
        time.sleep(0.01)
