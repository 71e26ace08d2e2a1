"""Registry errors as the distribution spec sends them: an HTTP status and `{"errors": [{code, message, detail}]}`.

The `code` values are the spec's (NAME_UNKNOWN, BLOB_UNKNOWN, DIGEST_INVALID, ...): the docker engine prints them
to the user ("name unknown: ..."), so they are part of what the emulator must get right.
"""

from __future__ import annotations

import json
from typing import Any


class RegistryError(Exception):
    def __init__(self, status: int, code: str, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail

    def body(self) -> bytes:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            error["detail"] = self.detail
        return json.dumps({"errors": [error]}).encode()


def unauthorized(message: str) -> RegistryError:
    return RegistryError(401, "UNAUTHORIZED", message)


def name_invalid(name: str, why: str) -> RegistryError:
    return RegistryError(400, "NAME_INVALID", f"invalid repository name {name!r}: {why}", {"name": name})


def name_unknown(message: str, name: str) -> RegistryError:
    return RegistryError(404, "NAME_UNKNOWN", message, {"name": name})


def blob_unknown(digest: str) -> RegistryError:
    return RegistryError(404, "BLOB_UNKNOWN", "blob unknown to registry", {"digest": digest})


def blob_upload_unknown(upload: str) -> RegistryError:
    return RegistryError(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", {"upload": upload})


def blob_upload_invalid(message: str) -> RegistryError:
    return RegistryError(400, "BLOB_UPLOAD_INVALID", message)


def range_invalid(message: str) -> RegistryError:
    return RegistryError(416, "BLOB_UPLOAD_INVALID", message)


def digest_invalid(message: str, digest: str) -> RegistryError:
    return RegistryError(400, "DIGEST_INVALID", message, {"digest": digest})


def manifest_invalid(message: str) -> RegistryError:
    return RegistryError(400, "MANIFEST_INVALID", message)


def manifest_unknown(reference: str) -> RegistryError:
    return RegistryError(404, "MANIFEST_UNKNOWN", "manifest unknown", {"reference": reference})


def manifest_blob_unknown(digest: str) -> RegistryError:
    return RegistryError(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry", {"digest": digest})


def tag_invalid(tag: str) -> RegistryError:
    return RegistryError(400, "TAG_INVALID", f"invalid tag {tag!r}", {"tag": tag})


def unsupported(message: str) -> RegistryError:
    return RegistryError(405, "UNSUPPORTED", message)
