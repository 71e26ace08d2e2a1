"""Cloud Logging, through google-cloud-logging's LoggingServiceV2 client: the only module that uses it.

`doki logs` reads a Cloud Run service's entries in two ways: the newest ones with ListLogEntries, and new ones live
with TailLogEntries (a bidirectional gRPC stream, gRPC only). A follow lists first and tails after; where the two
overlap, and after a reconnection, entries are told apart by insertId so none prints twice. The stream reconnects
after transient failures with capped, jittered backoff and first fetches what arrived while it was away; that
catch-up waits for the tail's first batch and goes out merged with it in timestamp order, since the tail may still
hold entries stamped before some of those listed (late arrivals, which its buffer window puts back in order).

Late arrivals: writers stamp entries with their own clocks and Cloud Logging accepts entries stamped in the past, so
an entry may arrive after younger ones were shown. One that arrives while no tail is open (between the first listing
and the first tail, or while the stream is down) only a listing can find, so each catch-up reaches back
LATENESS_MARGIN before the newest entry shown, and insertIds drop what was shown already. The reach-back never goes
past what those insertIds still cover (the last SEEN_LIMIT), so nothing prints twice, nor before the oldest entry the
first listing's limit let through. A late entry found this way is printed after younger ones (in timestamp order
with the other late ones): a terminal cannot put it back in order, and losing it would be worse.

Entries become `LogLine`s: what a person reads (time, severity, revision, one message) and the payload for scripts.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Any

from doki_cli.errors import DokiError
from doki_cli.gcp.errors import google_error
from doki_cli.gcp.retry import Retrier, is_transient

if TYPE_CHECKING:
    from google.api_core.exceptions import GoogleAPICallError

VIEWER_ROLE = "roles/logging.viewer"
# LogSeverity's names and numbers (google.logging.type.LogSeverity).
SEVERITIES = {
    "DEFAULT": 0,
    "DEBUG": 100,
    "INFO": 200,
    "NOTICE": 300,
    "WARNING": 400,
    "ERROR": 500,
    "CRITICAL": 600,
    "ALERT": 700,
    "EMERGENCY": 800,
}
_SEVERITY_NAMES = {number: name for name, number in SEVERITIES.items()}
MAX_PAGE_SIZE = 1000  # ListLogEntries' largest page
# How long the tail holds entries to hand them over in timestamp order (Google's default is 2 s).
DEFAULT_BUFFER_WINDOW = 1.0
# How far before the newest entry shown (or the follow's start, before any) a catch-up listing reaches back for late
# arrivals: entries stamped by a writer whose clock lags ours, or that reach Cloud Logging after younger ones. A minute
# is as long as TailLogEntries itself can be asked to wait for stragglers (its buffer window is at most 60 s); an
# entry later than that which arrives while the stream is down is missed.
LATENESS_MARGIN = timedelta(minutes=1)
# insertIds remembered to drop entries seen twice (list and tail overlap, reconnections); the oldest are forgotten.
SEEN_LIMIT = 10_000
# How much longer than the buffer window the catch-up listing waits for the tail's first batch (its network trip).
HANDOVER_MARGIN = 0.5
# The longest a follow waits on the tail in one go: a lock wait is not interruptible everywhere (Windows), Ctrl-C is.
POLL_SECONDS = 0.25


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _quoted(value: str) -> str:
    """A filter string literal: backslashes and double quotes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _rfc3339(nanos: int) -> str:
    """Nanoseconds since the epoch as RFC 3339 in UTC, to the nanosecond (filters compare timestamps exactly)."""
    seconds, fraction = divmod(nanos, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{moment}.{fraction:09d}Z" if fraction else f"{moment}Z"


def _nanos(moment: datetime) -> int:
    whole = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (whole.days * 86_400 + whole.seconds) * 1_000_000_000 + whole.microseconds * 1_000


@dataclass(frozen=True)
class LogQuery:
    """Which entries of a Cloud Run service to read."""

    service: str
    region: str
    severity: str | None = None  # at least this LogSeverity name
    since: timedelta | None = None  # no older than this
    revision: str | None = None  # only this revision (its short name)

    def filter(self, now: datetime | None) -> str:
        """The Logging filter: with `now`, `since` becomes a timestamp bound; without, there is none (live tails)."""
        terms = [
            'resource.type="cloud_run_revision"',
            f"resource.labels.service_name={_quoted(self.service)}",
            f"resource.labels.location={_quoted(self.region)}",
        ]
        if self.severity is not None:
            terms.append(f"severity>={self.severity}")
        if self.since is not None and now is not None:
            terms.append(f'timestamp>="{_rfc3339(_nanos(now - self.since))}"')
        if self.revision is not None:
            terms.append(f"resource.labels.revision_name={_quoted(self.revision)}")
        return " AND ".join(terms)


@dataclass(frozen=True)
class LogLine:
    """One log entry as doki shows it."""

    timestamp: str  # RFC 3339, as Google renders it
    nanos: int  # the same, in nanoseconds since the epoch
    severity: str
    revision: str | None
    message: str  # the entry's one-line summary
    payload: Any  # the JSON payload (a dict), the text payload (a str), or None
    trace: str | None  # the trace ID, without projects/P/traces/
    insert_id: str

    @property
    def time(self) -> str:
        """The timestamp to the millisecond: 2026-11-27T03:10:05.123Z."""
        seconds, fraction = divmod(self.nanos, 1_000_000_000)
        moment = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{moment}.{fraction // 1_000_000:03d}Z"

    def as_dict(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp,
            "severity": self.severity,
            "revision": self.revision,
            "message": self.message,
            "payload": self.payload,
            "trace": self.trace,
            "insert_id": self.insert_id,
        }


def _plain(value: Any) -> Any:
    """A Struct's Python form as people wrote it: whole numbers without ".0" (Struct keeps every number as a
    double), keys sorted (a Struct's map has no order of its own)."""
    if isinstance(value, dict):
        return {key: _plain(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _payload(entry: Any) -> tuple[Any, str]:
    """The payload for scripts and the one-line message for people of a LogEntry protobuf message."""
    from google.protobuf import json_format

    kind = entry.WhichOneof("payload")
    if kind == "json_payload":
        payload = _plain(json_format.MessageToDict(entry.json_payload))
        # "message" is the field Cloud Logging itself shows as an entry's summary; "msg" is common in loggers.
        summary = payload.get("message", payload.get("msg"))
        if isinstance(summary, str):
            return payload, summary
        return payload, _compact(payload if summary is None else summary)
    if kind == "text_payload":
        return entry.text_payload, entry.text_payload
    if kind == "proto_payload":
        type_name = entry.proto_payload.type_url.rsplit("/", 1)[-1]
        try:
            payload = _plain(json_format.MessageToDict(entry.proto_payload))
        except (TypeError, KeyError):  # a payload type this process has no descriptor for
            payload = {"@type": entry.proto_payload.type_url}
        return payload, f"[{type_name}] {_compact(payload)}"
    if entry.HasField("http_request"):
        # Cloud Run's request log entries carry no payload, only the request.
        request = entry.http_request
        return None, f"{request.request_method} {request.status} {request.request_url}"
    return None, ""


def log_line(entry: Any) -> LogLine:
    """A LogEntry (proto-plus or protobuf message) as a LogLine."""
    pb = type(entry).pb(entry) if hasattr(type(entry), "pb") else entry
    payload, message = _payload(pb)
    trace = pb.trace.rsplit("/traces/", 1)[-1] if pb.trace else None
    return LogLine(
        timestamp=pb.timestamp.ToJsonString(),
        nanos=pb.timestamp.ToNanoseconds(),
        severity=_SEVERITY_NAMES.get(pb.severity, str(pb.severity)),
        revision=pb.resource.labels.get("revision_name") or None,
        message=message,
        payload=payload,
        trace=trace,
        insert_id=pb.insert_id,
    )


class _Seen:
    """The insertIds of the last SEEN_LIMIT entries handed out, and how far back in time that memory is whole."""

    def __init__(self) -> None:
        self._order: deque[tuple[str, int]] = deque()  # insertId and timestamp, in the order handed out
        self._ids: set[str] = set()
        # The newest timestamp of a forgotten entry: every entry handed out that is stamped later is remembered. (Not
        # the oldest remembered timestamp: a late entry is handed out after younger ones, and may outlive them here.)
        self.forgotten_until = -1

    def __contains__(self, insert_id: str) -> bool:
        return insert_id in self._ids

    def add(self, insert_id: str, nanos: int) -> bool:
        """Remember `insert_id`, stamped `nanos`; False when it was already there."""
        if insert_id in self._ids:
            return False
        self._ids.add(insert_id)
        self._order.append((insert_id, nanos))
        if len(self._order) > SEEN_LIMIT:
            forgotten, stamped = self._order.popleft()
            self._ids.discard(forgotten)
            self.forgotten_until = max(self.forgotten_until, stamped)
        return True


def _worth_reconnecting(exc: Exception) -> bool:
    """Transient failures, and a stream cut off for no reason given (CANCELLED, UNKNOWN), as proxies and load
    balancers do to long-lived streams; refusals (permissions, a bad filter) are final."""
    from google.api_core import exceptions

    return is_transient(exc) or isinstance(exc, (exceptions.Cancelled, exceptions.Unknown))


_END = object()


class _TailReader:
    """A tail's responses, read on a thread so the follow can stop waiting for them (a gRPC stream has no timeout
    per message); the stream's error, or its end, comes out of `next` in the follow's own thread."""

    def __init__(self, responses: Iterable[Any]) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        threading.Thread(target=self._read, args=(responses,), name="doki-log-tail", daemon=True).start()

    def _read(self, responses: Iterable[Any]) -> None:
        try:
            for response in responses:
                self._queue.put(response)
        except Exception as exc:  # raised again by `next`, in the thread that follows
            self._queue.put(exc)
        else:
            self._queue.put(_END)

    def next(self, timeout: float) -> Any:
        """The next response, _END when the stream ended, None after `timeout` seconds without either."""
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, Exception):
            raise item
        return item


def _open_requests(first: Any, stop: threading.Event) -> Iterator[Any]:
    """A tail's request stream: the one request, then held open until `stop`, as closing it ends the tail."""
    yield first
    stop.wait()


class Follow:
    """A service's newest entries, then its new ones as they arrive, oldest first (late arrivals found after a lost
    stream aside: see the module docstring), each once.

    Iterate it (from one thread); `close()` from any thread ends the iteration. Ctrl-C (KeyboardInterrupt) raised
    while iterating also leaves it closed.
    """

    def __init__(
        self,
        logs: Logs,
        query: LogQuery,
        limit: int,
        buffer_window: float,
        on_notice: Callable[[str], None] | None,
    ) -> None:
        self._logs = logs
        self._query = query
        self._limit = limit
        self._buffer_window = buffer_window
        self._notice = on_notice or (lambda _message: None)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._responses: Any = None  # the open stream, to cancel on close
        self._newest = 0  # nanoseconds: the newest timestamp handed out, or the follow's start when later
        self._floor = 0  # nanoseconds: entries stamped before this were left out on purpose (by the limit)

    def __enter__(self) -> Follow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop following: cancel the open stream, and end the iteration."""
        with self._lock:
            self._closed.set()
            responses = self._responses
        if responses is not None:
            responses.cancel()

    def __iter__(self) -> Iterator[LogLine]:
        seen = _Seen()
        yield from self._unseen(self._first_listing(), seen)
        stream = _StreamState(delay=self._logs.retrier.initial)
        while not self._closed.is_set():
            attempt = _Attempt()
            yield from self._follow_stream(attempt, stream, seen)
            if self._closed.is_set():
                return
            self._back_off(attempt, stream)

    def _first_listing(self) -> list[LogLine]:
        """The newest `limit` entries (within --since), which also set where catch-ups may reach back to."""
        started = self._logs.now()
        self._newest = _nanos(started)
        if self._query.since is not None:
            # --since counts back from the follow's start, once: a catch-up after a long outage lists all it missed.
            self._floor = _nanos(started - self._query.since)
        recent = self._logs.recent(self._query, self._limit)
        if len(recent) >= self._limit:
            # The limit cut the listing: what it left out stays out, late or not, ties with the oldest listed too.
            self._floor = recent[0].nanos + 1 if recent else self._newest
        return recent

    def _follow_stream(self, attempt: _Attempt, stream: _StreamState, seen: _Seen) -> Iterator[LogLine]:
        """One connection: open the tail, catch up on what it missed, hand out its entries until it ends. A failure
        worth reconnecting after is left in `attempt`; any other is raised as a DokiError."""
        from google.api_core import exceptions

        stop = threading.Event()
        try:
            responses = self._logs.open_tail(self._query, self._buffer_window, stop)
            attempt.connected_at = self._logs.retrier.clock()
            with self._lock:
                self._responses = responses
                if self._closed.is_set():
                    return
            self._connected(stream)
            yield from self._unseen(self._live(responses, self._catch_up(seen)), seen)
        except exceptions.GoogleAPICallError as exc:
            if self._closed.is_set():
                return  # our own cancel
            if not _worth_reconnecting(exc):
                raise self._logs.error(exc) from None
            attempt.failure = exc
        finally:
            stop.set()
            with self._lock:
                responses, self._responses = self._responses, None
            if responses is not None:
                responses.cancel()

    def _connected(self, stream: _StreamState) -> None:
        if stream.outage:
            self._notice(f"{'Reconnected' if stream.ever_connected else 'Connected'} to the log stream")
        stream.outage, stream.ever_connected, stream.failing_since = False, True, None

    def _catch_up(self, seen: _Seen) -> list[LogLine]:
        """What arrived before the stream was live: written while it was down, or after the listing."""
        listed = self._logs.entries_since(self._query, self._catch_up_from(seen))
        # Told apart now, while `seen` still holds every entry shown from where the listing starts: handing out new
        # ones makes it forget old ones, which may come later in the listing.
        return [line for line in listed if line.insert_id not in seen]

    def _back_off(self, attempt: _Attempt, stream: _StreamState) -> None:
        """Wait before reconnecting, telling the user once per outage; a connection that keeps failing past the
        Retrier's deadline is raised as a DokiError."""
        retrier = self._logs.retrier
        now = retrier.clock()
        if attempt.connected_at is not None and now - attempt.connected_at >= retrier.maximum:
            stream.delay = retrier.initial  # a stream that lived a while is not a failing one: back off from the start
        wait = stream.delay * (0.5 + retrier.jitter() / 2)
        if attempt.connected_at is None:
            # Only failed connection attempts count towards the deadline: a live stream may drop at any time.
            stream.failing_since = now if stream.failing_since is None else stream.failing_since
            if attempt.failure is not None and now + wait - stream.failing_since > retrier.deadline:
                raise self._logs.error(attempt.failure)
        if not stream.outage:
            stream.outage = True
            reason = attempt.failure.message if attempt.failure is not None else "the server ended it"
            if attempt.connected_at is None:
                self._notice(f"Could not open the log stream ({reason}); retrying")
            else:
                self._notice(f"Lost the log stream ({reason}); reconnecting")
        retrier.sleep(wait)
        stream.delay = min(stream.delay * 2, retrier.maximum)

    def _catch_up_from(self, seen: _Seen) -> int:
        """Where a catch-up listing starts: LATENESS_MARGIN before the newest entry shown, for late arrivals, but not
        before the limit's cut, nor at or before a forgotten entry's timestamp (it would print again)."""
        margin = LATENESS_MARGIN // timedelta(microseconds=1) * 1_000
        return max(self._newest - margin, self._floor, seen.forgotten_until + 1)

    def _unseen(self, lines: Iterable[LogLine], seen: _Seen) -> Iterator[LogLine]:
        """`lines` not handed out before; the newest timestamp handed out moves past each."""
        for line in lines:
            if seen.add(line.insert_id, line.nanos):
                # Never past our own clock: an entry from a writer whose clock runs ahead (Cloud Logging takes them
                # up to a day ahead) would move every later catch-up past the entries written meanwhile.
                self._newest = max(self._newest, min(line.nanos, _nanos(self._logs.now())))
                yield line

    def _live(self, responses: Iterable[Any], caught_up: list[LogLine]) -> Iterator[LogLine]:
        """The tail's entries as lines, `caught_up` merged into its first batch; what Cloud Logging left out is told
        as a notice.

        Entries that arrived after the tail went live are both listed and tailed, and the tail may still hold older
        ones that arrived late: handing the listing out first would put those after younger entries. So the listing
        waits for the tail's first batch, or a buffer window (and HANDOVER_MARGIN) when none comes, as then the tail
        held nothing.
        """
        tail = _TailReader(responses)
        held = caught_up
        monotonic = self._logs.monotonic
        deadline = monotonic() + self._buffer_window + HANDOVER_MARGIN
        while True:
            timeout = POLL_SECONDS if not held else min(POLL_SECONDS, max(0.0, deadline - monotonic()))
            response = tail.next(timeout)
            if response is _END:
                yield from held
                return
            if response is None:
                if held and monotonic() >= deadline:
                    yield from held
                    held = []
                continue
            for suppression in response.suppression_info:
                reason = suppression.reason.name.lower().replace("_", " ")
                self._notice(f"Cloud Logging left out {suppression.suppressed_count} entries ({reason})")
            lines = [log_line(entry) for entry in response.entries]
            if held and lines:
                lines = sorted([*held, *lines], key=lambda line: (line.nanos, line.insert_id))
                held = []
            yield from lines


@dataclass
class _StreamState:
    """How a follow's stream has fared across connections: the backoff, and what the user was told of it."""

    delay: float  # the next wait before reconnecting, before jitter
    failing_since: float | None = None  # when the current run of failed connection attempts began
    outage: bool = False  # told the user the stream is down, and not yet that it is back
    ever_connected: bool = False


@dataclass
class _Attempt:
    """One connection attempt: when it went live (None: it never did), and the failure that ended it, if any."""

    connected_at: float | None = None
    failure: GoogleAPICallError | None = None  # worth reconnecting after


class Logs:
    """Reads one project's log entries; every call retried by the Retrier, every Google error a DokiError."""

    def __init__(
        self,
        client: Any,
        project: str,
        retrier: Retrier,
        *,
        clock: Callable[[], datetime] = _utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.project = project
        self.retrier = retrier
        self._clock = clock
        # What a follow measures its handover wait with (the tail's first batch, or a buffer window without one).
        self.monotonic = monotonic

    def now(self) -> datetime:
        """The time on the clock the adapter was given (what --since counts back from)."""
        return self._clock()

    def error(self, exc: Exception) -> DokiError:
        """A Google error met while reading this project's logs, as the DokiError that says the fix."""
        return google_error(
            exc, action="reading the logs of", resource=f"projects/{self.project}", api="logging", role=VIEWER_ROLE
        )

    def _list(self, request: dict[str, Any], limit: int | None, *, raw: bool = False) -> list[LogLine]:
        """The entries `request` lists; a Google error that remains after the retries as its DokiError, or as it is
        with `raw` (a follow's catch-up, which reconnects after what a lost stream answers)."""
        from google.api_core import exceptions

        def fetch() -> list[LogLine]:
            # retry=None: the Retrier is the one retry policy; the pager fetches further pages only as needed.
            pages = self._client.list_log_entries(request=request, retry=None)
            return [log_line(entry) for entry in islice(pages, limit)]

        try:
            return self.retrier.call(fetch)
        except exceptions.GoogleAPICallError as exc:
            if raw:
                raise
            raise self.error(exc) from None

    def recent(self, query: LogQuery, limit: int) -> list[LogLine]:
        """The newest `limit` entries that match, oldest first."""
        request = {
            "resource_names": [f"projects/{self.project}"],
            "filter": query.filter(self._clock()),
            "order_by": "timestamp desc",
            "page_size": min(limit, MAX_PAGE_SIZE),
        }
        return self._list(request, limit)[::-1]

    def entries_since(self, query: LogQuery, since_nanos: int) -> list[LogLine]:
        """Every matching entry stamped `since_nanos` or later, oldest first (`query.since` is the caller's to fold
        into `since_nanos`: counted from now, it would drop what a follow missed during a long outage)."""
        request = {
            "resource_names": [f"projects/{self.project}"],
            "filter": f'{query.filter(None)} AND timestamp>="{_rfc3339(since_nanos)}"',
            "order_by": "timestamp asc",
            "page_size": MAX_PAGE_SIZE,
        }
        # Raw errors: the follow decides, as for its stream, whether to reconnect (a server gone mid-call answers
        # CANCELLED) or to stop.
        return self._list(request, None, raw=True)

    def build_lines(self, build_id: str, since_nanos: int) -> list[LogLine]:
        """A Cloud Build build's log lines stamped `since_nanos` or later, oldest first."""
        request = {
            "resource_names": [f"projects/{self.project}"],
            "filter": (
                f'logName="projects/{self.project}/logs/cloudbuild" AND resource.type="build" '
                f'AND resource.labels.build_id={_quoted(build_id)} AND timestamp>="{_rfc3339(since_nanos)}"'
            ),
            "order_by": "timestamp asc",
            "page_size": MAX_PAGE_SIZE,
        }
        return self._list(request, None)

    def open_tail(self, query: LogQuery, buffer_window: float, stop: threading.Event) -> Any:
        """Open a tail (held open until `stop`); returns once the stream is live (the client waits for the first
        response)."""
        from google.cloud.logging_v2.types import TailLogEntriesRequest

        request = TailLogEntriesRequest(
            resource_names=[f"projects/{self.project}"],
            filter=query.filter(None),
            buffer_window=timedelta(seconds=buffer_window),
        )
        # retry=None: the client's own retry would resend a request stream that was already read; Follow retries.
        return self._client.tail_log_entries(requests=_open_requests(request, stop), retry=None)

    def follow(
        self,
        query: LogQuery,
        limit: int,
        *,
        buffer_window: float = DEFAULT_BUFFER_WINDOW,
        on_notice: Callable[[str], None] | None = None,
    ) -> Follow:
        """The newest `limit` entries, then new ones live; `on_notice` hears of reconnections and dropped entries."""
        return Follow(self, query, limit, buffer_window, on_notice)
