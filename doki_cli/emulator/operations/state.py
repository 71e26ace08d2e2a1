"""Long-running operations: work runs on a thread, the operation records its metadata, result or error.

A call that finishes quickly answers with the operation already done, so the client never polls (its first poll
waits a second); slower work (a container becoming Ready, a build) is polled through GetOperation as on Google.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
from google.longrunning import operations_pb2
from google.protobuf import any_pb2
from google.rpc import status_pb2

from doki_cli.emulator.errors import ApiError, not_found
from doki_cli.emulator.faults import Faults

log = logging.getLogger("doki.emulator")

# How long a call waits for its operation before answering "not done yet".
INLINE_WAIT_SECONDS = 0.5

SetMetadata = Callable[[Any], None]
Work = Callable[[SetMetadata], Any]


def pack(message: Any) -> any_pb2.Any:
    pb = type(message).pb(message) if hasattr(type(message), "pb") else message
    packed = any_pb2.Any()
    packed.Pack(pb)
    return packed


class Operations:
    def __init__(self, faults: Faults, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._faults = faults
        self._sleep = sleep
        self._lock = threading.Lock()
        self._operations: dict[str, operations_pb2.Operation] = {}
        self._finished: dict[str, threading.Event] = {}

    def start(self, name: str, metadata: Any | None, work: Work) -> operations_pb2.Operation:
        """Run `work(set_metadata)` as the operation `name`; its return value becomes the response."""
        operation = operations_pb2.Operation(name=name)
        if metadata is not None:
            operation.metadata.CopyFrom(pack(metadata))
        finished = threading.Event()
        with self._lock:
            self._operations[name] = operation
            self._finished[name] = finished
        delay = self._faults.lro_delay
        threading.Thread(target=self._run, args=(name, work, delay), name=f"lro-{name}", daemon=True).start()
        if delay <= 0:
            finished.wait(INLINE_WAIT_SECONDS)
        return self.get(name)

    def _run(self, name: str, work: Work, delay: float) -> None:
        def set_metadata(metadata: Any) -> None:
            with self._lock:
                self._operations[name].metadata.CopyFrom(pack(metadata))

        try:
            result = work(set_metadata)
            if delay > 0:
                self._sleep(delay)
            with self._lock:
                operation = self._operations[name]
                if result is not None:
                    operation.response.CopyFrom(pack(result))
                operation.done = True
        except ApiError as err:
            if delay > 0:
                self._sleep(delay)
            with self._lock:
                operation = self._operations[name]
                operation.error.CopyFrom(status_pb2.Status(code=err.code.value[0], message=err.message))
                operation.done = True
        except Exception as exc:  # an emulator bug must still end the operation, or clients poll forever
            log.exception("operation %s failed", name)
            with self._lock:
                operation = self._operations[name]
                operation.error.CopyFrom(
                    status_pb2.Status(code=grpc.StatusCode.INTERNAL.value[0], message=f"emulator error: {exc}")
                )
                operation.done = True
        finally:
            self._finished[name].set()

    def get(self, name: str) -> operations_pb2.Operation:
        with self._lock:
            operation = self._operations.get(name)
            if operation is None:
                raise not_found(f"Operation {name} not found.")
            copy = operations_pb2.Operation()
            copy.CopyFrom(operation)
            return copy

    def wait(self, name: str, timeout: float | None) -> operations_pb2.Operation:
        self.get(name)
        self._finished[name].wait(timeout)
        return self.get(name)

    def list(self, prefix: str) -> list[operations_pb2.Operation]:
        with self._lock:
            names = sorted(n for n in self._operations if n.startswith(prefix))
        return [self.get(n) for n in names]

    def delete(self, name: str) -> None:
        with self._lock:
            if self._operations.pop(name, None) is None:
                raise not_found(f"Operation {name} not found.")

    def wait_all(self, timeout: float) -> None:
        """Let running operations end (used when the emulator stops)."""
        deadline = time.monotonic() + timeout
        for event in list(self._finished.values()):
            event.wait(max(0.0, deadline - time.monotonic()))
