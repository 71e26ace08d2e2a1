"""Messages to and from JSON the way Google's REST surfaces spell them (camelCase, enums by name).

Works for proto-plus classes (google-cloud-*) and plain protobuf classes (IAM, longrunning) alike. Parsing accepts
integer enums too, which the Python REST transport sends (`$alt=json;enum-encoding=int`).
"""

from __future__ import annotations

import math
from typing import Any

from google.protobuf import json_format


def _is_proto_plus(message_type: Any) -> bool:
    return hasattr(message_type, "pb") and hasattr(message_type, "wrap")


def descriptor(message_type: Any) -> Any:
    """The protobuf descriptor of a message class, proto-plus or plain."""
    return message_type.pb().DESCRIPTOR if _is_proto_plus(message_type) else message_type.DESCRIPTOR


# Google's frontends write a double as protobuf's C++ JSON writer does, with io::SimpleDtoa ("%.15g" while that
# round-trips; protobuf's src/google/protobuf/json/internal/writer.h says it matches "the ESF parser"): 5.0 is `5`,
# as the numbers of a jsonPayload come back from Cloud Logging. Python's json writes `5.0`, so whole numbers that
# "%.15g" writes without an exponent become ints.
_WHOLE_LIMIT = 1e15


def _as_google_writes(value: Any) -> Any:
    if isinstance(value, float):
        negative_zero = value == 0 and math.copysign(1.0, value) < 0  # written "-0": it stays a float
        if value.is_integer() and abs(value) < _WHOLE_LIMIT and not negative_zero:
            return int(value)
        return value
    if isinstance(value, dict):
        return {key: _as_google_writes(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_google_writes(item) for item in value]
    return value


def to_dict(message: Any) -> dict[str, Any]:
    pb = type(message).pb(message) if _is_proto_plus(type(message)) else message
    result: dict[str, Any] = _as_google_writes(json_format.MessageToDict(pb))
    return result


def from_dict(message_type: Any, data: dict[str, Any]) -> Any:
    if _is_proto_plus(message_type):
        pb = json_format.ParseDict(data, message_type.pb()(), ignore_unknown_fields=True)
        return message_type.wrap(pb)
    return json_format.ParseDict(data, message_type(), ignore_unknown_fields=True)


def copy(message: Any) -> Any:
    """A deep copy, so state never shares a message with a caller."""
    message_type = type(message)
    if _is_proto_plus(message_type):
        return message_type.deserialize(message_type.serialize(message))
    return message_type.FromString(message.SerializeToString())
