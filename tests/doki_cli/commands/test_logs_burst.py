"""`doki logs --follow` under a burst: thousands of entries written while it follows, by several writers at once,
across the moment the follow starts and across a lost stream, all arrive, once each, in timestamp order."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from google.cloud.logging_v2.types import LogEntry

from doki_cli.emulator.cloudlogging import state as log_store
from doki_cli.emulator.server import Emulator, EmulatorConfig
from doki_cli.gcp.clients import ClientFactory
from doki_cli.gcp.logs import LogLine, LogQuery, Logs
from doki_cli.gcp.retry import Retrier
from tests.helpers import restarted
from tests.helpers.logs import TOML, Follower, labels, wait_for_tail

WRITERS = 4
PER_WRITER = 1000


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "doki.toml").write_text(TOML)
    return tmp_path


def run_writers(write: Callable[[int, int], None], writers: int = WRITERS, per_writer: int = PER_WRITER) -> None:
    """`write(writer, number)` for each writer's numbers in order, the writers on threads at once."""
    failures: list[BaseException] = []

    def one(writer: int) -> None:
        try:
            for number in range(per_writer):
                write(writer, number)
        except BaseException as exc:  # handed to the test
            failures.append(exc)

    threads = [threading.Thread(target=one, args=(writer,)) for writer in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    assert not any(thread.is_alive() for thread in threads)


def emit(emulator: Emulator, writer: int, number: int) -> None:
    emulator.logs.emit(
        project="proj-1",
        log_id="run.googleapis.com/stdout",
        resource_type="cloud_run_revision",
        labels=labels(),
        line=f"w{writer} {number}",
    )


def assert_complete_and_ordered(messages: list[str], timestamps: list[int], *, writers: int, per_writer: int) -> None:
    """Every writer's every line exactly once, each writer's in its own order, all in timestamp order."""
    assert len(messages) == writers * per_writer
    assert sorted(messages) == sorted(f"w{w} {n}" for w in range(writers) for n in range(per_writer))
    for writer in range(writers):
        own = [int(m.split()[1]) for m in messages if m.startswith(f"w{writer} ")]
        assert own == list(range(per_writer)), f"writer {writer}'s lines arrived out of order"
    out_of_order = [i for i in range(1, len(timestamps)) if timestamps[i] < timestamps[i - 1]]
    assert not out_of_order, f"{len(out_of_order)} entries arrived before older ones, first at {out_of_order[0]}"


def nanos(timestamp: str) -> int:
    """An RFC 3339 timestamp (to the nanosecond) as nanoseconds since the epoch, exactly."""
    whole, _, rest = timestamp.rstrip("Z").partition(".")
    seconds = int(datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp())
    return seconds * 1_000_000_000 + int((rest or "0").ljust(9, "0"))


def test_a_burst_from_several_writers_written_as_the_follow_starts_arrives_complete_and_in_timestamp_order(
    emulator: Emulator, follower: Callable[..., Follower]
) -> None:
    # The burst starts with the follow, so it spans the listing, the tail opening and the catch-up between them.
    proc = follower("--json", "logs", "-f", "--limit", str(WRITERS * PER_WRITER))
    run_writers(lambda writer, number: emit(emulator, writer, number))
    entries = [json.loads(line) for line in proc.lines(WRITERS * PER_WRITER)]
    assert_complete_and_ordered(
        [entry["message"] for entry in entries],
        [nanos(entry["timestamp"]) for entry in entries],
        writers=WRITERS,
        per_writer=PER_WRITER,
    )
    wait_for_tail(emulator)
    assert proc.interrupt() == (0, "", "")


class HeldClock:
    """The emulator's clock for its tails' buffer windows: time.monotonic, or held still while a test says so."""

    def __init__(self) -> None:
        self._held: float | None = None

    def monotonic(self) -> float:
        return self._held if self._held is not None else time.monotonic()

    def hold(self) -> None:
        self._held = time.monotonic()

    def let_go(self) -> None:
        self._held = None


@pytest.fixture
def tail_clock(monkeypatch: pytest.MonkeyPatch) -> HeldClock:
    """The emulator's tails measure their buffer window on this clock (its log store reads `time` for nothing else
    but the wall-clock stamps it gives entries, which stay real)."""
    clock = HeldClock()
    monkeypatch.setattr(log_store, "time", SimpleNamespace(monotonic=clock.monotonic, time_ns=time.time_ns))
    return clock


def test_writers_that_stamp_their_own_entries_reach_a_follow_in_timestamp_order(
    emulator: Emulator, clients: ClientFactory, follower: Callable[..., Follower], tail_clock: HeldClock
) -> None:
    # As logging agents do: each writer stamps an entry when its program printed it and sends it a moment later,
    # so entries reach Cloud Logging a little out of timestamp order; the tail's buffer window puts them back. How
    # long that moment lasts is up to the scheduler, so the window's clock is held while the writers write: every
    # entry arrives within one window, however long a writer waits between stamping and sending.
    proc = follower("--json", "logs", "-f")
    wait_for_tail(emulator)
    # Once the follow prints this, it has made its catch-up listing: the burst reaches it through the tail alone.
    emit(emulator, -1, 0)
    assert [json.loads(line)["message"] for line in proc.lines(1)] == ["w-1 0"]
    client = clients.logging()
    per_writer = 250

    def write(writer: int, number: int) -> None:
        entry = LogEntry(
            log_name="projects/proj-1/logs/run.googleapis.com%2Fstdout",
            resource={"type": "cloud_run_revision", "labels": labels()},
            timestamp=datetime.now(UTC),
            text_payload=f"w{writer} {number}",
        )
        client.write_log_entries(entries=[entry])

    tail_clock.hold()
    run_writers(write, per_writer=per_writer)
    tail_clock.let_go()
    entries = [json.loads(line) for line in proc.lines(WRITERS * per_writer)]
    assert_complete_and_ordered(
        [entry["message"] for entry in entries],
        [nanos(entry["timestamp"]) for entry in entries],
        writers=WRITERS,
        per_writer=per_writer,
    )
    assert proc.interrupt() == (0, "", "")


def test_a_burst_across_a_lost_stream_arrives_complete_and_in_order(tmp_path: Path) -> None:
    # The emulator stops halfway through the burst and comes back with its state: the follow reconnects and fetches
    # what it had not yet been handed (held in the tail's buffer window when the stream went, or written after).
    lines: list[LogLine] = []
    done = threading.Event()
    total = WRITERS * PER_WRITER
    first = Emulator(EmulatorConfig(state_dir=tmp_path / "state")).start()
    follow = Logs(ClientFactory(first.grpc_address).logging(), "proj-1", Retrier(initial=0.05, maximum=0.2)).follow(
        LogQuery("api", "us-central1"), 10, buffer_window=0.5
    )

    def collect() -> None:
        for line in follow:
            lines.append(line)
            if len(lines) == total:
                done.set()

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    try:
        wait_until_tailing(first)
        run_writers(lambda writer, number: emit(first, writer, number), per_writer=PER_WRITER // 2)
    finally:
        first.stop()
    with restarted(first) as second:
        run_writers(lambda writer, number: emit(second, writer, number + PER_WRITER // 2), per_writer=PER_WRITER // 2)
        assert done.wait(timeout=30), f"{len(lines)} of {total} entries arrived"
        follow.close()
        reader.join(timeout=10)
    assert_complete_and_ordered(
        [line.message for line in lines], [line.nanos for line in lines], writers=WRITERS, per_writer=PER_WRITER
    )


class WritesAroundTheCatchUp(Logs):
    """The adapter, with writers racing the follow: entries arrive after its first listing but before its tail is
    live (so only the catch-up listing has them), just before that catch-up listing (so the tail has them too), and
    just after it (stamped earlier, as a logging agent's batch is: only the tail has them)."""

    def __init__(
        self,
        clients: ClientFactory,
        *,
        before_tail: dict[str, datetime] | None = None,
        before: dict[str, datetime] | None = None,
        after: dict[str, datetime] | None = None,
        monotonic: Callable[[], float],
    ) -> None:
        super().__init__(clients.logging(), "proj-1", Retrier(), monotonic=monotonic)
        self._writer = clients.logging()
        self._before_tail, self._before, self._after = before_tail or {}, before or {}, after or {}

    def recent(self, query: LogQuery, limit: int) -> list[LogLine]:
        lines = super().recent(query, limit)
        self._write(self._before_tail)
        return lines

    def entries_since(self, query: LogQuery, since_nanos: int) -> list[LogLine]:
        self._write(self._before)
        lines = super().entries_since(query, since_nanos)
        self._write(self._after)
        return lines

    def _write(self, texts: dict[str, datetime]) -> None:
        for text, at in texts.items():
            entry = LogEntry(
                log_name="projects/proj-1/logs/run.googleapis.com%2Fstdout",
                resource={"type": "cloud_run_revision", "labels": labels()},
                timestamp=at,
                text_payload=text,
            )
            self._writer.write_log_entries(entries=[entry])


def test_entries_listed_when_the_tail_opens_wait_for_older_ones_the_tail_still_holds(clients: ClientFactory) -> None:
    now = datetime.now(UTC)
    logs = WritesAroundTheCatchUp(
        clients,
        before={"stamped second, arrived first": now + timedelta(milliseconds=2)},
        after={"stamped first, arrived late": now + timedelta(milliseconds=1)},
        # The follow's handover wait never runs out: the listed entry goes out only with the tail's first batch,
        # however long the tail takes to send it.
        monotonic=lambda: 0.0,
    )
    with logs.follow(LogQuery("api", "us-central1"), 10, buffer_window=0.2) as follow:
        lines = iter(follow)
        assert [next(lines).message, next(lines).message] == [
            "stamped first, arrived late",
            "stamped second, arrived first",
        ]


def test_entries_listed_when_the_tail_opens_still_go_out_when_the_tail_has_nothing(clients: ClientFactory) -> None:
    # Each reading an hour after the last: the follow's handover wait has run out by the time it looks again, so the
    # listed entry goes out although the tail sends nothing, without waiting a buffer window.
    hours = itertools.count(step=3600.0)
    logs = WritesAroundTheCatchUp(
        clients, before_tail={"before the tail": datetime.now(UTC)}, monotonic=lambda: next(hours)
    )
    with logs.follow(LogQuery("api", "us-central1"), 10, buffer_window=0.2) as follow:
        assert next(iter(follow)).message == "before the tail"


def wait_until_tailing(emulator: Emulator) -> None:
    deadline = datetime.now(UTC) + timedelta(seconds=20)
    while emulator.logs.tail_count != 1:
        assert datetime.now(UTC) < deadline, "the follow never opened its tail"
        threading.Event().wait(0.01)
