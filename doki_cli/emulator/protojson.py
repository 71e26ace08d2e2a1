"""Messages to and from JSON the way Google's REST surfaces spell them (camelCase, enums by name).

Works for proto-plus classes (google-cloud-*) and plain protobuf classes (IAM, longrunning) alike. Parsing accepts
integer enums too, which the Python REST transport sends (`$alt=json;enum-encoding=int`).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format


def _is_proto_plus(message_type: Any) -> bool:
    return hasattr(message_type, "pb") and hasattr(message_type, "wrap")


def descriptor(message_type: Any) -> Any:
    """The protobuf descriptor of a message class, proto-plus or plain."""
    return message_type.pb().DESCRIPTOR if _is_proto_plus(message_type) else message_type.DESCRIPTOR


def to_dict(message: Any) -> dict[str, Any]:
    pb = type(message).pb(message) if _is_proto_plus(type(message)) else message
    result: dict[str, Any] = json_format.MessageToDict(pb)
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
