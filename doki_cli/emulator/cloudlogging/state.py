"""Cloud Logging state: every project's log entries in timestamp order, searched with filters and tailed live.

Each entry is kept as a LogEntry protobuf message (never changed once stored) with its JSON form, which filters
read and which is what gets saved. Order is Google's: timestamp, then insertId (then arrival, to make it total).

Bounds: the newest MAX_ENTRIES (20 000) entries by timestamp are kept, in memory and on disk; older ones are dropped
first, as Google drops entries past their retention period. A live tail queues at most TAIL_QUEUE_LIMIT entries for a
client that does not read, then counts what it drops, as Google's NOT_CONSUMED suppression does.

Saving is coalesced to at most one save every PERSIST_DELAY_SECONDS: a chatty container writes many lines a second
and every save writes the whole log. The emulator saves once more when it stops, so only a crash loses that last
second.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any
from urllib.parse import quote, unquote

from google.cloud.logging_v2.types import log_entry
from google.protobuf import json_format

from doki_cli.emulator.cloudlogging.filter import SEVERITY_LEVELS, LogFilter, parse
from doki_cli.emulator.errors import ApiError, invalid_argument, not_found, status_code

MAX_ENTRIES = 20_000
DEFAULT_PAGE_SIZE = 50  # ListLogEntries, as documented by Google
MAX_PAGE_SIZE = 1000
MAX_RESOURCE_NAMES = 100
MAX_ENTRY_BYTES = 256 * 1024
MAX_LOG_ID_LENGTH = 511  # Google: "[LOG_ID] must be less than 512 characters long"
TAIL_QUEUE_LIMIT = 100_000
TAIL_BATCH_SIZE = 500  # entries per TailLogEntriesResponse at most
# Bytes of entries per response at most, under the 4 MB a gRPC client accepts by default (an entry may be 256 KiB).
MAX_RESPONSE_BYTES = 3 * 1024 * 1024
DEFAULT_BUFFER_WINDOW = 2.0  # seconds, TailLogEntriesRequest.buffer_window's documented default
MAX_BUFFER_WINDOW = 60.0
TAIL_POLL_SECONDS = 0.1  # how soon a tail notices that its client left
PERSIST_DELAY_SECONDS = 1.0

# The protobuf class behind the proto-plus LogEntry: entries are kept and served as plain protobuf messages.
LogEntryPb: Any = log_entry.LogEntry.pb()

_LOG_NAME = re.compile(r"projects/([^/]+)/logs/(.+)")
_LOG_ID_CHARACTER = re.compile(r"[A-Za-z0-9/_.\-]")
_PARENT = re.compile(r"projects/([^/]+)(?:/locations/[^/]+/buckets/[^/]+/views/[^/]+)?")

# Severity spellings the logging agents accept in a JSON line beyond LogSeverity's names.
_SEVERITY_ALIASES = {
    "WARN": "WARNING",
    "ERR": "ERROR",
    "SEVERE": "ERROR",
    "FATAL": "CRITICAL",
    "CRIT": "CRITICAL",
    "EMERG": "EMERGENCY",
    "TRACE": "DEBUG",
}
_SEVERITY_FLOORS = sorted(SEVERITY_LEVELS.values())


def log_name(project: str, log_id: str) -> str:
    """The resource name of a log: its ID URL-encoded ("run.googleapis.com/stdout" → "run.googleapis.com%2Fstdout")."""
    return f"projects/{project}/logs/{quote(log_id, safe='')}"


def parse_log_name(name: str) -> tuple[str, str]:
    """(project, canonical resource name) of a log name, or INVALID_ARGUMENT saying what is wrong with it."""
    # Google ingests "/projects/..." as usual and drops the leading slash.
    name = name.removeprefix("/")
    match = _LOG_NAME.fullmatch(name)
    if match is None:
        raise invalid_argument(
            f'Invalid log name "{name}": expected "projects/[PROJECT_ID]/logs/[LOG_ID]" with [LOG_ID] URL-encoded'
        )
    project, encoded = match.groups()
    log_id = unquote(encoded)
    illegal = next((char for char in log_id if not _LOG_ID_CHARACTER.fullmatch(char)), None)
    if illegal is not None:
        raise invalid_argument(f'Log name contains illegal character "{illegal}"')
    canonical = log_name(project, log_id)
    length = len(canonical) - len(f"projects/{project}/logs/")
    if length > MAX_LOG_ID_LENGTH:
        raise invalid_argument(f"Log name is too long: [LOG_ID] must be less than 512 characters, not {length}")
    return project, canonical


def _projects(resource_names: Sequence[str]) -> frozenset[str]:
    """The projects named by ListLogEntries/TailLogEntries/ListLogs resource names (projects or their log views)."""
    if not resource_names:
        raise invalid_argument("resourceNames is required: name at least one parent, e.g. projects/my-project")
    if len(resource_names) > MAX_RESOURCE_NAMES:
        raise invalid_argument(
            f"At most {MAX_RESOURCE_NAMES} resource names may be given in one request, not {len(resource_names)}"
        )
    projects = set()
    for name in resource_names:
        match = _PARENT.fullmatch(name)
        if match is None:
            raise invalid_argument(
                f'Invalid resource name "{name}": the doki emulator holds projects/[PROJECT_ID] and its log views'
            )
        projects.add(match.group(1))
    return frozenset(projects)


def agent_severity(value: Any) -> int | None:
    """The LogSeverity a logging agent reads from a JSON line's severity (name, alias or number), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return max((level for level in _SEVERITY_FLOORS if level <= value), default=None)
    if isinstance(value, str):
        name = value.strip().upper()
        level = SEVERITY_LEVELS.get(_SEVERITY_ALIASES.get(name, name))
        if level is None and name.isdigit():
            return agent_severity(int(name))
        return level
    return None


def _json_object(line: str) -> dict[str, Any] | None:
    if not line.lstrip().startswith("{"):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _take(payload: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    """Remove and return payload[key] when it has the expected type (special fields leave the payload)."""
    value = payload.get(key)
    if not isinstance(value, kind):
        return None
    del payload[key]
    return value


def _agent_entry(entry: Any, payload: dict[str, Any], severity: int) -> None:
    """Fill `entry` from a JSON line the way Cloud Run's logging agent does with its special fields."""
    keys = {key.lower(): key for key in payload}
    for source in ("severity", "level"):
        key = keys.get(source)
        level = agent_severity(payload[key]) if key is not None else None
        if key is not None and level is not None:
            severity = level
            # "severity" is a special field and leaves the payload; "level" is the program's own and stays.
            if source == "severity":
                del payload[key]
            break
    trace = _take(payload, "logging.googleapis.com/trace", str)
    span = _take(payload, "logging.googleapis.com/spanId", str)
    sampled = _take(payload, "logging.googleapis.com/trace_sampled", bool)
    labels = _take(payload, "logging.googleapis.com/labels", dict)
    entry.severity = severity
    if trace is not None:
        entry.trace = trace
    if span is not None:
        entry.span_id = span
    if sampled is not None:
        entry.trace_sampled = sampled
    if labels is not None:
        entry.labels.update({str(key): str(value) for key, value in labels.items()})
    entry.json_payload.update(payload)


def _descending(order_by: str) -> bool:
    normalized = " ".join(order_by.split()).lower()
    if normalized in ("", "timestamp asc"):
        return False
    if normalized == "timestamp desc":
        return True
    raise invalid_argument(f'Invalid orderBy "{order_by}": use "timestamp asc" or "timestamp desc"')


def _page_size(page_size: int) -> int:
    if page_size < 0 or page_size > MAX_PAGE_SIZE:
        raise invalid_argument(f"pageSize must be between 0 and {MAX_PAGE_SIZE}, not {page_size}")
    return page_size or DEFAULT_PAGE_SIZE


def _encode_token(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()


def _decode_token(token: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError):
        raise invalid_argument(f'Invalid page token "{token}": pass nextPageToken from the previous page') from None


@dataclass(frozen=True, slots=True)
class _Stored:
    key: tuple[int, str, int]  # timestamp in nanoseconds, insertId, arrival number
    project: str
    entry: Any  # LogEntry protobuf message
    doc: dict[str, Any]  # its JSON form

    @property
    def identity(self) -> tuple[str, int, str]:
        # Google treats entries of one project with the same timestamp and insertId as one.
        return self.project, self.key[0], self.key[1]


_by_key = attrgetter("key")


@dataclass(frozen=True, slots=True)
class _Prepared:
    project: str
    entry: Any
    auto_timestamp: bool
    auto_insert_id: bool


@dataclass(frozen=True)
class TailBatch:
    """Entries for one TailLogEntriesResponse (protobuf messages, not to be modified) and entries dropped since."""

    entries: list[Any]
    suppressed: int = 0


class _Subscription:
    """One live tail's queue; the store offers it every new entry in commit order."""

    def __init__(self, projects: frozenset[str], log_filter: LogFilter) -> None:
        self._projects = projects
        self._filter = log_filter
        self._condition = threading.Condition()
        self._queue: deque[tuple[float, _Stored]] = deque()
        self._suppressed = 0
        self._dropped: ApiError | None = None

    def offer(self, stored: _Stored, arrival: float) -> None:
        if stored.project not in self._projects or not self._filter.matches(stored.doc):
            return
        with self._condition:
            if len(self._queue) >= TAIL_QUEUE_LIMIT:
                self._suppressed += 1
            else:
                self._queue.append((arrival, stored))
            self._condition.notify()

    def drop(self, error: ApiError) -> None:
        """End the tail with `error`: the next `take` raises it, and what was queued is lost with the connection."""
        with self._condition:
            self._dropped = error
            self._condition.notify()

    def take(self, timeout: float) -> tuple[list[tuple[float, _Stored]], int]:
        """Everything queued (waiting up to `timeout` for something) and the count dropped since the last take."""
        with self._condition:
            if not self._queue and not self._suppressed and self._dropped is None and timeout > 0:
                self._condition.wait(timeout)
            if self._dropped is not None:
                raise self._dropped
            items = list(self._queue)
            self._queue.clear()
            suppressed, self._suppressed = self._suppressed, 0
        return items, suppressed


class Tail:
    """A live tail: new matching entries, held for the buffer window, then released in timestamp order.

    Subscribed from creation; close it (or use it as a context manager) when the client goes.
    """

    def __init__(self, store: LogStore, subscription: _Subscription, window: float) -> None:
        self._store = store
        self._subscription = subscription
        self._window = window

    def __enter__(self) -> Tail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop receiving entries (idempotent)."""
        self._store._unsubscribe(self._subscription)

    def batches(self, is_active: Callable[[], bool]) -> Iterator[TailBatch]:
        """Yield batches while `is_active()` (the client is still connected).

        Once the oldest held entry has waited the buffer window, everything held goes out sorted by timestamp, so
        entries that arrive within one window of each other reach the client in timestamp order. A tail dropped by
        `LogStore.drop_tails` raises its ApiError, and the entries it held are gone.
        """
        pending: list[tuple[float, _Stored]] = []  # in arrival order
        while is_active():
            wait = TAIL_POLL_SECONDS
            if pending:
                wait = min(wait, max(0.0, pending[0][0] + self._window - time.monotonic()))
            items, suppressed = self._subscription.take(wait)
            pending.extend(items)
            due: list[_Stored] = []
            if pending and time.monotonic() >= pending[0][0] + self._window:
                due = sorted((stored for _, stored in pending), key=_by_key)
                pending.clear()
            for chunk in _chunks(due):
                yield TailBatch(chunk, suppressed)
                suppressed = 0
            if suppressed:
                yield TailBatch([], suppressed)


def _chunks(due: list[_Stored]) -> Iterator[list[Any]]:
    """`due`'s entries in chunks that each fit one response."""
    chunk: list[Any] = []
    size = 0
    for stored in due:
        entry_size = stored.entry.ByteSize()
        if chunk and (len(chunk) == TAIL_BATCH_SIZE or size + entry_size > MAX_RESPONSE_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(stored.entry)
        size += entry_size
    if chunk:
        yield chunk


class LogStore:
    """Log entries of every project; see the module docstring for order and bounds. Thread-safe."""

    def __init__(self, *, persist: Callable[[], None]) -> None:
        self._persist = persist
        self._lock = threading.Lock()
        self._entries: list[_Stored] = []  # sorted by key
        self._identities: set[tuple[str, int, str]] = set()
        self._subscriptions: list[_Subscription] = []
        self._next_number = 1
        self._last_auto_nanos = 0
        self._save_scheduled = False
        # Mutations so far, and how many the last snapshot held: a save with nothing new is skipped, so a save
        # scheduled before the emulator stopped (and took its final snapshot) writes nothing afterwards.
        self._version = 0
        self._saved_version = 0

    # Writing

    def emit(
        self,
        *,
        project: str,
        log_id: str,
        resource_type: str,
        labels: dict[str, str],
        line: str,
        severity: str | None = None,
    ) -> None:
        """One line of a program's output as one entry, read the way Cloud Run's logging agent reads it."""
        entry = LogEntryPb(log_name=log_name(project, log_id))
        entry.resource.type = resource_type
        entry.resource.labels.update(labels)
        text = line.rstrip("\r\n")
        level = (agent_severity(severity) if severity is not None else None) or 0
        payload = _json_object(text)
        if payload is None:
            entry.text_payload = text
            entry.severity = level
        else:
            _agent_entry(entry, payload, level)
        self._commit([_Prepared(project, entry, auto_timestamp=True, auto_insert_id=True)])

    def write(
        self,
        *,
        entries: Sequence[Any],
        log_name: str = "",
        resource: Any | None = None,
        labels: Mapping[str, str] | None = None,
        partial_success: bool = False,
        dry_run: bool = False,
    ) -> None:
        """WriteLogEntries: `log_name`, `resource` and `labels` are defaults for the entries that lack them."""
        if not entries:
            raise invalid_argument("entries is required: send at least one log entry")
        prepared: list[_Prepared] = []
        failures: dict[int, str] = {}
        for index, source in enumerate(entries):
            try:
                prepared.append(self._prepare(source, log_name, resource, labels or {}))
            except ApiError as err:
                failures[index] = err.message
        if failures and not partial_success:
            # Google answers with the status of one failed entry and writes nothing.
            raise invalid_argument(next(iter(failures.values())))
        if prepared and not dry_run:
            self._commit(prepared)
        if failures:
            # Google would attach WriteLogEntriesPartialErrors; the emulator's errors carry a message only.
            indices = ", ".join(str(index) for index in failures)
            first = next(iter(failures.values()))
            raise invalid_argument(f"{first} (partial success: the entries at index {indices} were not written)")

    def _prepare(
        self, source: Any, default_name: str, default_resource: Any | None, labels: Mapping[str, str]
    ) -> _Prepared:
        entry = LogEntryPb()
        entry.CopyFrom(source)
        name = entry.log_name or default_name
        if not name:
            raise invalid_argument("logName is required: set it on the request or on every entry")
        project, entry.log_name = parse_log_name(name)
        if not entry.HasField("resource") and default_resource is not None:
            entry.resource.CopyFrom(default_resource)
        if not entry.resource.type:
            raise invalid_argument('resource is required: set it on the request or on every entry, e.g. type "global"')
        for key, value in labels.items():
            if key not in entry.labels:
                entry.labels[key] = value
        entry.ClearField("receive_timestamp")
        size = entry.ByteSize()
        if size > MAX_ENTRY_BYTES:
            raise invalid_argument(f"Log entry with size {size / 1024:.1f}K exceeds maximum size of 256.0K")
        return _Prepared(project, entry, not entry.HasField("timestamp"), not entry.insert_id)

    def _commit(self, prepared: list[_Prepared]) -> None:
        with self._lock:
            now = time.time_ns()
            arrival = time.monotonic()
            for item in prepared:
                entry = item.entry
                if item.auto_timestamp:
                    # Strictly increasing, so entries written together keep their order (as Google promises).
                    nanos = max(now, self._last_auto_nanos + 1)
                    self._last_auto_nanos = nanos
                    entry.timestamp.FromNanoseconds(nanos)
                number = self._next_number
                self._next_number += 1
                if item.auto_insert_id:
                    entry.insert_id = f"{number:016x}"
                entry.receive_timestamp.FromNanoseconds(now)
                key = (entry.timestamp.ToNanoseconds(), entry.insert_id, number)
                stored = _Stored(key, item.project, entry, json_format.MessageToDict(entry))
                if stored.identity in self._identities:
                    continue
                self._identities.add(stored.identity)
                bisect.insort(self._entries, stored, key=_by_key)
                for subscription in self._subscriptions:
                    subscription.offer(stored, arrival)
            self._evict()
            self._version += 1
        self._schedule_save()

    def _evict(self) -> None:
        excess = len(self._entries) - MAX_ENTRIES
        if excess > 0:
            for stored in self._entries[:excess]:
                self._identities.discard(stored.identity)
            del self._entries[:excess]

    # Reading

    def list_entries(
        self,
        *,
        resource_names: Sequence[str],
        filter_text: str = "",
        order_by: str = "",
        page_size: int = 0,
        page_token: str = "",
    ) -> tuple[list[Any], str]:
        """ListLogEntries: one page of matching entries (protobuf messages) and the next page's token, or ""."""
        projects = _projects(resource_names)
        log_filter = parse(filter_text)
        descending = _descending(order_by)
        size = _page_size(page_size)
        with self._lock:
            entries = list(self._entries)
        candidates: Iterator[_Stored]
        if page_token:
            cursor = self._cursor(page_token, descending)
            if descending:
                start = bisect.bisect_left(entries, cursor, key=_by_key)
                candidates = reversed(entries[:start])
            else:
                candidates = iter(entries[bisect.bisect_right(entries, cursor, key=_by_key) :])
        else:
            candidates = reversed(entries) if descending else iter(entries)
        page: list[_Stored] = []
        page_bytes = 0
        for stored in candidates:
            if stored.project in projects and log_filter.matches(stored.doc):
                entry_bytes = stored.entry.ByteSize()
                # A page ends at pageSize entries, or earlier when it would outgrow one response.
                if len(page) == size or (page and page_bytes + entry_bytes > MAX_RESPONSE_BYTES):
                    order = "desc" if descending else "asc"
                    return [item.entry for item in page], _encode_token([order, *page[-1].key])
                page.append(stored)
                page_bytes += entry_bytes
        return [item.entry for item in page], ""

    @staticmethod
    def _cursor(token: str, descending: bool) -> tuple[int, str, int]:
        value = _decode_token(token)
        order = "desc" if descending else "asc"
        valid = isinstance(value, list) and len(value) == 4 and value[0] in ("asc", "desc")
        if not valid or not (isinstance(value[1], int) and isinstance(value[2], str) and isinstance(value[3], int)):
            raise invalid_argument(f'Invalid page token "{token}": pass nextPageToken from the previous page')
        if value[0] != order:
            raise invalid_argument(f'The page token was issued for orderBy "timestamp {value[0]}", not "{order}"')
        return value[1], value[2], value[3]

    def list_logs(
        self, *, parent: str, resource_names: Sequence[str] = (), page_size: int = 0, page_token: str = ""
    ) -> tuple[list[str], str]:
        """ListLogs: the names of the logs that hold entries, sorted, one page at a time."""
        projects = _projects([parent, *resource_names] if parent else list(resource_names))
        size = page_size if 0 < page_size <= MAX_PAGE_SIZE else MAX_PAGE_SIZE
        with self._lock:
            names = sorted({stored.entry.log_name for stored in self._entries if stored.project in projects})
        if page_token:
            after = _decode_token(page_token)
            if not isinstance(after, str):
                raise invalid_argument(f'Invalid page token "{page_token}": pass nextPageToken from the previous page')
            names = names[bisect.bisect_right(names, after) :]
        if len(names) > size:
            return names[:size], _encode_token(names[size - 1])
        return names, ""

    # Deleting

    def delete_log(self, name: str) -> None:
        """DeleteLog: every entry of the log goes; the log reappears when it receives new entries."""
        _, canonical = parse_log_name(name)
        with self._lock:
            kept = [stored for stored in self._entries if stored.entry.log_name != canonical]
            if len(kept) == len(self._entries):
                raise not_found("Requested entity was not found.")
            for stored in self._entries:
                if stored.entry.log_name == canonical:
                    self._identities.discard(stored.identity)
            self._entries = kept
            self._version += 1
        self._schedule_save()

    # Tailing

    def tail(self, *, resource_names: Sequence[str], filter_text: str = "", buffer_window: float | None = None) -> Tail:
        """TailLogEntries: subscribe now; `buffer_window` in seconds, None for Google's default of 2 s."""
        projects = _projects(resource_names)
        log_filter = parse(filter_text)
        window = DEFAULT_BUFFER_WINDOW if buffer_window is None else buffer_window
        if not 0 <= window <= MAX_BUFFER_WINDOW:
            raise invalid_argument(f"bufferWindow must be between 0 and 60000 milliseconds, not {window * 1000:g}")
        subscription = _Subscription(projects, log_filter)
        with self._lock:
            self._subscriptions.append(subscription)
        return Tail(self, subscription, window)

    def _unsubscribe(self, subscription: _Subscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

    def drop_tails(self, code: str = "UNAVAILABLE", message: str = "connection reset") -> int:
        """End every live tail as a lost connection does: each fails with `code` and `message`, and the entries it
        held or queued go with it (a client that reconnects finds them only by listing). How many were dropped."""
        status = status_code(code)
        with self._lock:
            dropped, self._subscriptions = self._subscriptions, []
        for subscription in dropped:
            subscription.drop(ApiError(status, message))
        return len(dropped)

    @property
    def tail_count(self) -> int:
        """How many live tails are open."""
        with self._lock:
            return len(self._subscriptions)

    # Persistence

    def _schedule_save(self) -> None:
        with self._lock:
            if self._save_scheduled:
                return
            self._save_scheduled = True
        timer = threading.Timer(PERSIST_DELAY_SECONDS, self._save)
        timer.daemon = True
        timer.start()

    def _save(self) -> None:
        with self._lock:
            self._save_scheduled = False
            if self._saved_version == self._version:
                return
        self._persist()

    def snapshot(self) -> dict[str, Any]:
        """The entries in their JSON form, oldest first, and the next arrival number (insertIds stay unique)."""
        with self._lock:
            self._saved_version = self._version
            return {"entries": [stored.doc for stored in self._entries], "next_number": self._next_number}

    def restore(self, data: dict[str, Any]) -> None:
        """Take back what `snapshot()` gave, keeping the newest MAX_ENTRIES entries."""
        restored: list[_Stored] = []
        number = int(data.get("next_number", 1))
        for doc in data.get("entries", []):
            entry = json_format.ParseDict(doc, LogEntryPb(), ignore_unknown_fields=True)
            project, _ = parse_log_name(entry.log_name)
            restored.append(_Stored((entry.timestamp.ToNanoseconds(), entry.insert_id, number), project, entry, doc))
            number += 1
        restored.sort(key=_by_key)
        with self._lock:
            self._entries = restored[-MAX_ENTRIES:]
            self._identities = {stored.identity for stored in self._entries}
            self._next_number = number
            self._last_auto_nanos = max((stored.key[0] for stored in self._entries), default=0)
