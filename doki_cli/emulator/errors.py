"""Google-style API errors, raised by state and handlers alike and rendered for gRPC or REST in one place each."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.protobuf import any_pb2, json_format
from google.protobuf.message import Message
from google.rpc import status_pb2

# Google's canonical codes as HTTP statuses, as the REST surfaces answer them.
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


class ApiError(Exception):
    """A failed call: the canonical status and the message Google would send, with the details (ErrorInfo, Help, …)
    Google's rich status carries, which clients read to tell one failure of a code from another."""

    def __init__(self, code: grpc.StatusCode, message: str, details: Sequence[Message] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = tuple(details)

    def status(self) -> status_pb2.Status:
        """The rich status, as gRPC sends it in the `grpc-status-details-bin` trailer."""
        packed = []
        for detail in self.details:
            item = any_pb2.Any()
            item.Pack(detail)
            packed.append(item)
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=packed)

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)

    @property
    def status_name(self) -> str:
        return str(self.code.name)

    def rest_body(self) -> dict[str, object]:
        """Google's JSON error (https://cloud.google.com/apis/design/errors#http_mapping): the rich status's details
        follow as JSON `Any`s, `{"@type": "type.googleapis.com/google.rpc.ErrorInfo", ...}`, where REST clients
        read them from (gcloud's api_lib/util/exceptions.py, google.api_core.exceptions.from_http_response)."""
        error: dict[str, object] = {"code": self.http_status, "message": self.message, "status": self.status_name}
        if self.details:
            error["details"] = [json_format.MessageToDict(detail) for detail in self.status().details]
        return {"error": error}


def status_code(name: str) -> grpc.StatusCode:
    """The status called `name` (e.g. "UNAVAILABLE"), or INVALID_ARGUMENT naming the allowed ones."""
    try:
        return grpc.StatusCode[name.upper()]
    except KeyError:
        allowed = ", ".join(code.name for code in grpc.StatusCode if code is not grpc.StatusCode.OK)
        raise invalid_argument(f"unknown status {name!r}; use one of {allowed}") from None


def not_found(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.NOT_FOUND, message)


def already_exists(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.ALREADY_EXISTS, message)


def invalid_argument(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, message)


def failed_precondition(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.FAILED_PRECONDITION, message)


def aborted(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.ABORTED, message)


def permission_denied(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.PERMISSION_DENIED, message)
