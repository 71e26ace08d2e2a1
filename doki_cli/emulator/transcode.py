"""HTTP/JSON to gRPC transcoding: the request message a REST call stands for, by the API's HTTP rules.

google/api/http.proto defines the mapping: path variables set the fields they name, the body fills the field its
rule names (`body: "*"`: the whole message), and query parameters set the fields left, dotted names nesting
(`options.requestedPolicyVersion`) and repeated fields repeating the parameter (`?names=a&names=b`). Unknown query
parameters, such as the system parameters `alt` and `$alt` every client sends, are ignored; integer enums parse too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format

from doki_cli.emulator import protojson
from doki_cli.emulator.errors import invalid_argument
from doki_cli.emulator.rest import Request


def put(data: dict[str, Any], path: str, value: Any) -> None:
    """Set the dotted `path` of the JSON object `data`: `a.b` sets data["a"]["b"]."""
    *outer, last = path.split(".")
    for part in outer:
        nested = data.get(part)
        if not isinstance(nested, dict):
            nested = data[part] = {}
        data = nested
    data[last] = value


def _is_repeated(message: Any, path: str) -> bool:
    """Whether the field at the dotted `path` (proto or JSON names) of the message `message` describes is repeated."""
    field = None
    for part in path.split("."):
        if message is None:
            return False
        field = message.fields_by_name.get(part) or message.fields_by_camelcase_name.get(part)
        if field is None:
            return False
        message = field.message_type
    return field is not None and bool(field.is_repeated)


def _query(message_type: Any, request: Request) -> dict[str, Any]:
    """The query as a JSON object (json_format parses numbers and enums from the strings)."""
    described = protojson.descriptor(message_type)
    data: dict[str, Any] = {}
    for key, values in request.query.items():
        put(data, key, values if _is_repeated(described, key) else values[0])
    return data


def parse(message_type: Any, data: dict[str, Any]) -> Any:
    """`data` as a `message_type`, or INVALID_ARGUMENT as Google answers a payload that does not fit."""
    try:
        return protojson.from_dict(message_type, data)
    except json_format.ParseError as exc:
        raise invalid_argument(f"Invalid JSON payload received. {exc}") from None


def message(message_type: Any, request: Request, fields: Mapping[str, str], body: str | None) -> Any:
    """The `message_type` `request` stands for: `fields` are the values the path binds (dotted names nest), `body`
    the field the rule maps the body to ("*": the whole message, None: no body)."""
    data = _query(message_type, request)
    if body == "*":
        data.update(request.json())
    elif body is not None:
        data[body] = request.json()
    for path, value in fields.items():
        put(data, path, value)
    return parse(message_type, data)
