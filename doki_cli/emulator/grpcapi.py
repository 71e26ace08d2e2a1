"""gRPC plumbing: one generic handler per Google service, built from plain functions and the messages' own codecs.

Every call passes the fault plan first (so tests can make any method fail), and an `ApiError` raised anywhere below
becomes the status Google would send. Nothing else in the emulator touches grpc's server API.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import grpc

from doki_cli.emulator.errors import ApiError
from doki_cli.emulator.faults import Faults

log = logging.getLogger("doki.emulator")


@contextmanager
def _answering(context: grpc.ServicerContext, full_method: str) -> Iterator[None]:
    """An ApiError becomes its status; anything else is an emulator bug: logged, answered INTERNAL."""
    try:
        yield
    except ApiError as err:
        if err.details:
            # Where Google's clients read the ErrorInfo from (google.api_core.exceptions.from_grpc_error).
            context.set_trailing_metadata((("grpc-status-details-bin", err.status().SerializeToString()),))
        context.abort(err.code, err.message)
    except Exception:
        log.error("%s failed:\n%s", full_method, traceback.format_exc())
        method = full_method.rsplit("/", 1)[-1]
        context.abort(grpc.StatusCode.INTERNAL, f"emulator error in {method}; see the emulator log")


class Method(NamedTuple):
    """One unary method: its message types and the function serving it, which the REST surfaces transcode to."""

    request_type: Any
    response_type: Any
    serve: Callable[[Any], Any]


def codec(message_type: Any) -> tuple[Callable[[bytes], Any], Callable[[Any], bytes]]:
    """(deserialize, serialize) for a proto-plus class or a plain protobuf class."""
    if hasattr(message_type, "deserialize"):
        return message_type.deserialize, message_type.serialize
    return message_type.FromString, message_type.SerializeToString


class GrpcService:
    """The methods of one service (e.g. `google.cloud.run.v2.Services`), registered as plain functions."""

    def __init__(self, name: str, faults: Faults) -> None:
        self.name = name
        self._faults = faults
        self._methods: dict[str, grpc.RpcMethodHandler] = {}

    def unary(self, method: str, request_type: Any, response_type: Any, fn: Callable[[Any], Any]) -> None:
        """`fn(request) -> response` serves `method`."""
        full = f"/{self.name}/{method}"

        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            with _answering(context, full):
                self._faults.check(full)
                response = fn(request)
                self._faults.check_answer(full)
                return response

        deserialize, _ = codec(request_type)
        _, serialize = codec(response_type)
        self._methods[method] = grpc.unary_unary_rpc_method_handler(
            handle, request_deserializer=deserialize, response_serializer=serialize
        )

    def add(self, methods: dict[str, Method]) -> None:
        """Serve every method of `methods`, by gRPC method name."""
        for name, method in methods.items():
            self.unary(name, method.request_type, method.response_type, method.serve)

    def stream_stream(
        self,
        method: str,
        request_type: Any,
        response_type: Any,
        fn: Callable[[Iterator[Any], grpc.ServicerContext], Iterator[Any]],
    ) -> None:
        """`fn(requests, context)` yields the responses of a bidirectional stream."""
        full = f"/{self.name}/{method}"

        def handle(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
            with _answering(context, full):
                self._faults.check(full)
                yield from fn(requests, context)

        deserialize, _ = codec(request_type)
        _, serialize = codec(response_type)
        self._methods[method] = grpc.stream_stream_rpc_method_handler(
            handle, request_deserializer=deserialize, response_serializer=serialize
        )

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(self.name, self._methods)
