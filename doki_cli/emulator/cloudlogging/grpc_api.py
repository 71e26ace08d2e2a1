"""google.logging.v2.LoggingServiceV2 over gRPC: write, list, tail and delete log entries, list logs. `methods()` is
also what the REST surface (rest_api.py) transcodes to, so both transports answer alike by construction.

TailLogEntries is gRPC-only on Google too (a bidirectional stream): the first request says what to tail; the stream
answers at once with an empty response, then stays open until the client closes its request stream or cancels, the
server stops, or a test drops it (`LogStore.drop_tails`, as a connection reset would).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import grpc
from google.cloud.logging_v2.types import logging as logging_types
from google.protobuf import empty_pb2

from doki_cli.emulator.cloudlogging.quota import ReadQuota
from doki_cli.emulator.cloudlogging.state import LogStore
from doki_cli.emulator.faults import Faults
from doki_cli.emulator.grpcapi import GrpcService, Method

SERVICE = "google.logging.v2.LoggingServiceV2"
# Plain protobuf classes: entries are stored as protobuf messages, so nothing is wrapped and unwrapped per entry.
WriteLogEntriesRequest: Any = logging_types.WriteLogEntriesRequest.pb()
WriteLogEntriesResponse: Any = logging_types.WriteLogEntriesResponse.pb()
ListLogEntriesRequest: Any = logging_types.ListLogEntriesRequest.pb()
ListLogEntriesResponse: Any = logging_types.ListLogEntriesResponse.pb()
TailLogEntriesRequest: Any = logging_types.TailLogEntriesRequest.pb()
TailLogEntriesResponse: Any = logging_types.TailLogEntriesResponse.pb()
ListLogsRequest: Any = logging_types.ListLogsRequest.pb()
ListLogsResponse: Any = logging_types.ListLogsResponse.pb()
DeleteLogRequest: Any = logging_types.DeleteLogRequest.pb()
NOT_CONSUMED = logging_types.TailLogEntriesResponse.SuppressionInfo.Reason.NOT_CONSUMED
_PROJECT = re.compile(r"projects/([^/]+)")


def _drain(requests: Iterator[Any], closed: threading.Event) -> None:
    """Read a tail's later requests (they change nothing) to learn when the client closes its side of the stream."""
    try:
        for _ in requests:
            pass
    except grpc.RpcError:  # cancelled, or the server is stopping
        pass
    finally:
        closed.set()


def methods(logs: LogStore, reads: ReadQuota) -> dict[str, Method]:
    """LoggingServiceV2's unary methods over `logs`, by gRPC method name; the REST surface transcodes to them too.
    ListLogEntries counts against the project's read quota (`reads`), charged to the first project it reads."""

    def write_log_entries(request: Any) -> Any:
        logs.write(
            entries=list(request.entries),
            log_name=request.log_name,
            resource=request.resource if request.HasField("resource") else None,
            labels=dict(request.labels),
            partial_success=request.partial_success,
            dry_run=request.dry_run,
        )
        return WriteLogEntriesResponse()

    def list_log_entries(request: Any) -> Any:
        projects = [m.group(1) for name in request.resource_names if (m := _PROJECT.match(name))]
        if projects:
            reads.charge(projects[0])
        entries, token = logs.list_entries(
            resource_names=list(request.resource_names),
            filter_text=request.filter,
            order_by=request.order_by,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        response = ListLogEntriesResponse(next_page_token=token)
        response.entries.extend(entries)
        return response

    def list_logs(request: Any) -> Any:
        names, token = logs.list_logs(
            parent=request.parent,
            resource_names=list(request.resource_names),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return ListLogsResponse(log_names=names, next_page_token=token)

    def delete_log(request: Any) -> empty_pb2.Empty:
        logs.delete_log(request.log_name)
        return empty_pb2.Empty()

    return {
        "WriteLogEntries": Method(WriteLogEntriesRequest, WriteLogEntriesResponse, write_log_entries),
        "ListLogEntries": Method(ListLogEntriesRequest, ListLogEntriesResponse, list_log_entries),
        "ListLogs": Method(ListLogsRequest, ListLogsResponse, list_logs),
        "DeleteLog": Method(DeleteLogRequest, empty_pb2.Empty, delete_log),
    }


def service(logs: LogStore, reads: ReadQuota, faults: Faults) -> GrpcService:
    """LoggingServiceV2 over gRPC: `methods()` and the live tail; the others (monitored resource descriptors) answer
    UNIMPLEMENTED."""
    api = GrpcService(SERVICE, faults)
    api.add(methods(logs, reads))

    def tail_log_entries(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            first = next(requests, None)
        except grpc.RpcError:  # the client left before saying what to tail
            return
        if first is None:
            return
        window = first.buffer_window.ToTimedelta().total_seconds() if first.HasField("buffer_window") else None
        tail = logs.tail(resource_names=list(first.resource_names), filter_text=first.filter, buffer_window=window)
        closed = threading.Event()
        threading.Thread(target=_drain, args=(requests, closed), name="doki-tail-requests", daemon=True).start()
        with tail:
            # An empty first response says the tail is live: the official client waits for a first response before
            # `tail_log_entries()` returns (api_core prefetches it), so from then on no new entry can be missed.
            yield TailLogEntriesResponse()
            for batch in tail.batches(lambda: context.is_active() and not closed.is_set()):
                response = TailLogEntriesResponse()
                response.entries.extend(batch.entries)
                if batch.suppressed:
                    response.suppression_info.add(reason=NOT_CONSUMED, suppressed_count=batch.suppressed)
                yield response

    api.stream_stream("TailLogEntries", TailLogEntriesRequest, TailLogEntriesResponse, tail_log_entries)
    return api
