"""Secret Manager's data and rules: secrets, their numbered versions, version states, etags and IAM policies.

Independent of any transport: the gRPC and REST surfaces translate requests into these calls, and Cloud Run reads
secrets through `resolve` and `can_access`. Messages are the client library's own types, copied in and out so no
caller ever shares an object with the store.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from secrets import token_hex
from typing import Any, TypeVar, cast

import google_crc32c
from google.cloud.secretmanager_v1 import types
from google.protobuf import timestamp_pb2

from doki_cli.emulator import protojson
from doki_cli.emulator.errors import already_exists, failed_precondition, invalid_argument, not_found
from doki_cli.emulator.iam import OrgPolicy, Policies, Propagation
from doki_cli.emulator.iamadmin.state import ServiceAccounts
from doki_cli.emulator.paging import Paging

SecretVersionState = types.SecretVersion.State

MAX_PAYLOAD_BYTES = 64 * 1024
# An unset page size is the largest.
PAGING = Paging(
    default_size=25000,
    max_size=25000,
    bad_size="page_size must not be negative.",
    bad_page="Invalid page token [{token}].",
)
ACCESS_ROLES = frozenset({"roles/secretmanager.secretAccessor", "roles/secretmanager.admin", "roles/owner"})

_SECRET_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
_PARENT = re.compile(r"projects/[^/]+")
_SECRET_NAME = re.compile(r"projects/[^/]+/secrets/[^/]+")
_VERSION_NAME = re.compile(r"(?P<secret>projects/[^/]+/secrets/[^/]+)/versions/(?P<version>[^/]+)")
# Fields UpdateSecret may change; the others are immutable (replication) or output only.
_UPDATABLE = frozenset(
    {"labels", "annotations", "topics", "expire_time", "ttl", "rotation", "version_aliases", "version_destroy_ttl"}
)

_T = TypeVar("_T")


@dataclass
class _Version:
    message: types.SecretVersion
    data: bytes | None  # None once destroyed


@dataclass
class _Secret:
    message: types.Secret
    versions: list[_Version]  # versions[n - 1] is version n; versions are never removed, only destroyed


def _copy(message: _T) -> _T:
    return cast(_T, protojson.copy(message))


def new_etag() -> str:
    """An etag as Secret Manager spells it: a quoted opaque string."""
    return f'"{token_hex(7)}"'


def crc32c(data: bytes) -> int:
    """The CRC32C (Castagnoli) checksum Secret Manager reports in `data_crc32c`."""
    return int(google_crc32c.value(data))


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


def _version_key(version: types.SecretVersion) -> str:
    """A version's number, fixed-width so that the string order is the number order."""
    return f"{int(version.name.rsplit('/', 1)[1]):012d}"


class SecretStore:
    """All secrets of all projects. Thread-safe; `persist` is called after every change."""

    def __init__(
        self,
        *,
        persist: Callable[[], None],
        propagation: Propagation | None = None,
        org: OrgPolicy | None = None,
        accounts: ServiceAccounts | None = None,
    ) -> None:
        self._persist = persist
        self._lock = threading.RLock()
        self._secrets: dict[str, _Secret] = {}
        self.policies = Policies(on_change=persist, propagation=propagation, org=org, accounts=accounts)

    # -- lookups ------------------------------------------------------------------------------------------------

    def _secret(self, name: str) -> _Secret:
        if not _SECRET_NAME.fullmatch(name):
            raise invalid_argument(
                f"The provided Secret ID [{name}] does not match the expected format [projects/*/secrets/*]"
            )
        secret = self._secrets.get(name)
        if secret is None:
            raise not_found(f"Secret [{name}] not found.")
        return secret

    def _version(self, name: str, *, for_access: bool = False) -> tuple[_Secret, _Version]:
        """The version `name` names: a number, "latest" (the newest version, whatever its state) or an alias."""
        match = _VERSION_NAME.fullmatch(name)
        if match is None:
            raise invalid_argument(
                f"The provided Secret Version ID [{name}] does not match the expected format "
                "[projects/*/secrets/*/versions/*]"
            )
        secret_name, version_id = match["secret"], match["version"]
        secret = self._secrets.get(secret_name)
        if version_id == "latest":
            if secret is None or not secret.versions:
                raise not_found(f"Secret [{secret_name}] not found or has no versions.")
            return secret, secret.versions[-1]
        if version_id.isdigit():
            number = int(version_id)
        elif secret is not None and version_id in secret.message.version_aliases:
            number = secret.message.version_aliases[version_id]
        elif _SECRET_ID.fullmatch(version_id):
            raise not_found(f"Secret Version [{name}] not found.")
        else:
            raise invalid_argument(f"The provided Secret Version ID [{name}] is not in a valid format.")
        if secret is None:
            if for_access:
                raise not_found(f"Secret [{secret_name}] not found or has no versions.")
            raise not_found(f"Secret [{secret_name}] not found.")
        if not 1 <= number <= len(secret.versions):
            raise not_found(f"Secret Version [{secret_name}/versions/{version_id}] not found.")
        return secret, secret.versions[number - 1]

    # -- secrets ------------------------------------------------------------------------------------------------

    def create_secret(self, parent: str, secret_id: str, secret: types.Secret) -> types.Secret:
        """A new secret named `parent`/secrets/`secret_id`, without versions; ALREADY_EXISTS if taken."""
        if not _PARENT.fullmatch(parent):
            raise invalid_argument(f"The provided parent [{parent}] does not match the expected format [projects/*]")
        if not _SECRET_ID.fullmatch(secret_id):
            raise invalid_argument(
                f"The provided Secret ID [{secret_id}] does not match the expected format [[a-zA-Z_0-9-]{{1,255}}]"
            )
        _check_replication(secret.replication)
        if secret.version_aliases:
            alias = next(iter(secret.version_aliases))
            raise invalid_argument(f"Version alias [{alias}] refers to a version that does not exist.")
        name = f"{parent}/secrets/{secret_id}"
        stored = _copy(secret)
        stored.name = name
        stored.create_time = _now()
        stored.etag = new_etag()
        _apply_ttl(stored)
        with self._lock:
            if name in self._secrets:
                raise already_exists(f"Secret [{name}] already exists.")
            self._secrets[name] = _Secret(stored, [])
            result = _copy(stored)
        self._persist()
        return result

    def get_secret(self, name: str) -> types.Secret:
        """The secret `name` (projects/P/secrets/S)."""
        with self._lock:
            return _copy(self._secret(name).message)

    def exists(self, secret: str) -> bool:
        """Whether the secret `secret` (projects/P/secrets/S) exists."""
        with self._lock:
            return secret in self._secrets

    def list_secrets(
        self, parent: str, page_size: int = 0, page_token: str = "", filter: str = ""
    ) -> tuple[list[types.Secret], str, int]:
        """(secrets of the page, next page token, total matching) in name order."""
        if not _PARENT.fullmatch(parent):
            raise invalid_argument(f"The provided parent [{parent}] does not match the expected format [projects/*]")
        match = _matcher(filter, _secret_field)
        with self._lock:
            found = [
                _copy(s.message)
                for name, s in self._secrets.items()
                if name.startswith(parent + "/") and match(s.message)
            ]
        page, next_token = PAGING.page(found, lambda secret: secret.name, page_size, page_token)
        return page, next_token, len(found)

    def update_secret(self, secret: types.Secret, paths: Iterable[str]) -> types.Secret:
        """Replace the fields named by `paths` with those of `secret`; a stale `secret.etag` fails."""
        paths = list(paths)
        if not paths:
            raise invalid_argument("update_mask is required and must name at least one field.")
        for path in paths:
            if path not in _UPDATABLE:
                allowed = ", ".join(sorted(_UPDATABLE))
                raise invalid_argument(f"The field [{path}] cannot be updated; update_mask may name: {allowed}.")
        source = types.Secret.pb(secret)
        with self._lock:
            current = self._secret(secret.name)
            if secret.etag and secret.etag != current.message.etag:
                raise _stale_etag(secret.name)
            updated = _copy(current.message)
            target = types.Secret.pb(updated)
            for path in paths:
                _copy_field(source, target, path)
            _apply_ttl(updated)
            if any(not 1 <= n <= len(current.versions) for n in updated.version_aliases.values()):
                raise invalid_argument("Version aliases must refer to existing versions.")
            updated.etag = new_etag()
            current.message = updated
            result = _copy(updated)
        self._persist()
        return result

    def delete_secret(self, name: str, etag: str = "") -> None:
        """Delete the secret, its versions and its policy; a stale `etag` fails."""
        with self._lock:
            current = self._secret(name)
            if etag and etag != current.message.etag:
                raise _stale_etag(name)
            del self._secrets[name]
        self.policies.forget(name)
        self._persist()

    def touch(self, resource: str) -> bool:
        """Change the secret `resource` as a concurrent writer would: new secret etag and new IAM policy etag."""
        with self._lock:
            secret = self._secrets.get(resource)
            if secret is None:
                return False
            secret.message.etag = new_etag()
        self.policies.touch(resource)
        self._persist()
        return True

    def check_exists(self, resource: str) -> None:
        """Raise NOT_FOUND unless `resource` is an existing secret (what the IAM methods need)."""
        with self._lock:
            self._secret(resource)

    def can_access(self, secret: str, member: str) -> bool:
        """Whether `member` may read the versions of `secret` through the secret's own IAM policy, as the services
        see it: a grant counts once it has propagated."""
        with self._lock:
            if secret not in self._secrets:
                return False
        granted: set[str] = set()
        for role in ACCESS_ROLES:
            granted |= self.policies.members_in_effect(secret, role)
        return bool(granted & {member, "allUsers", "allAuthenticatedUsers"})

    # -- versions -----------------------------------------------------------------------------------------------

    def add_version(self, parent: str, payload: types.SecretPayload) -> types.SecretVersion:
        """A new ENABLED version numbered after the last, holding `payload.data`."""
        data = payload.data
        if not data:
            raise invalid_argument("Secret Payload cannot be empty.")
        if len(data) > MAX_PAYLOAD_BYTES:
            raise invalid_argument(f"Secret Payload cannot be larger than {MAX_PAYLOAD_BYTES} bytes.")
        client_checksum = "data_crc32c" in payload
        if client_checksum and payload.data_crc32c != crc32c(data):
            raise invalid_argument("Checksum mismatch: the data_crc32c provided does not match the payload data.")
        with self._lock:
            secret = self._secret(parent)
            version = types.SecretVersion(
                name=f"{parent}/versions/{len(secret.versions) + 1}",
                create_time=_now(),
                state=SecretVersionState.ENABLED,
                replication_status=_replication_status(secret.message.replication),
                etag=new_etag(),
                client_specified_payload_checksum=client_checksum,
            )
            secret.versions.append(_Version(version, bytes(data)))
            result = _copy(version)
        self._persist()
        return result

    def get_version(self, name: str) -> types.SecretVersion:
        """The version `name` (a number, an alias or "latest"), without its data."""
        with self._lock:
            _, version = self._version(name)
            return _copy(version.message)

    def list_versions(
        self, parent: str, page_size: int = 0, page_token: str = "", filter: str = ""
    ) -> tuple[list[types.SecretVersion], str, int]:
        """(versions of the page, next page token, total matching), newest first."""
        match = _matcher(filter, _version_field)
        with self._lock:
            secret = self._secret(parent)
            found = [_copy(v.message) for v in secret.versions if match(v.message)]
        # Newest first.
        page, next_token = PAGING.page(found, _version_key, page_size, page_token, descending=True)
        return page, next_token, len(found)

    def access(self, name: str) -> types.AccessSecretVersionResponse:
        """The payload of an ENABLED version, with its checksum; the response names the version resolved."""
        with self._lock:
            _, version = self._version(name, for_access=True)
            state = version.message.state
            if state != SecretVersionState.ENABLED or version.data is None:
                raise failed_precondition(f"Secret Version [{version.message.name}] is in {state.name} state.")
            data = version.data
            resolved = version.message.name
        return types.AccessSecretVersionResponse(
            name=resolved, payload=types.SecretPayload(data=data, data_crc32c=crc32c(data))
        )

    def resolve(self, name: str) -> bytes:
        """The payload of `projects/P/secrets/S/versions/V` (V a number, an alias or "latest")."""
        return bytes(self.access(name).payload.data)

    def disable_version(self, name: str, etag: str = "") -> types.SecretVersion:
        """Make the version unreadable until it is enabled again."""
        return self._change_state(name, etag, SecretVersionState.DISABLED)

    def enable_version(self, name: str, etag: str = "") -> types.SecretVersion:
        """Make a disabled version readable again (a destroyed one cannot be)."""
        return self._change_state(name, etag, SecretVersionState.ENABLED)

    def destroy_version(self, name: str, etag: str = "") -> types.SecretVersion:
        """Destroy the data of a version for good; the version stays listed as DESTROYED."""
        return self._change_state(name, etag, SecretVersionState.DESTROYED)

    def _change_state(self, name: str, etag: str, state: int) -> types.SecretVersion:
        with self._lock:
            _, version = self._version(name)
            message = version.message
            if etag and etag != message.etag:
                raise _stale_etag(message.name)
            if message.state == SecretVersionState.DESTROYED:
                raise failed_precondition(f"Secret Version [{message.name}] is in DESTROYED state.")
            message.state = SecretVersionState(state)
            # Even a change to the state it already has is a write: it gets a new etag, as Google documents.
            message.etag = new_etag()
            if state == SecretVersionState.DESTROYED:
                message.destroy_time = _now()
                version.data = None
            result = _copy(message)
        self._persist()
        return result

    # -- persistence --------------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-able data (payloads in base64; destroyed ones are gone)."""
        with self._lock:
            secrets = {
                name: {
                    "secret": protojson.to_dict(s.message),
                    "versions": [
                        {
                            "version": protojson.to_dict(v.message),
                            "data": None if v.data is None else base64.b64encode(v.data).decode(),
                        }
                        for v in s.versions
                    ],
                }
                for name, s in self._secrets.items()
            }
        return {"secrets": secrets, "policies": self.policies.snapshot()}

    def restore(self, data: dict[str, Any]) -> None:
        """Replace the whole state with a `snapshot()`."""
        restored = {
            name: _Secret(
                protojson.from_dict(types.Secret, s["secret"]),
                [
                    _Version(
                        protojson.from_dict(types.SecretVersion, v["version"]),
                        None if v["data"] is None else base64.b64decode(v["data"]),
                    )
                    for v in s["versions"]
                ],
            )
            for name, s in data.get("secrets", {}).items()
        }
        with self._lock:
            self._secrets = restored
        self.policies.restore(data.get("policies", {}))


def _stale_etag(name: str) -> Exception:
    # Secret Manager answers a stale etag with FAILED_PRECONDITION (HTTP 400), unlike IAM's ABORTED.
    return failed_precondition(f"The etag provided does not match the current etag of [{name}].")


def _check_replication(replication: types.Replication) -> None:
    kind = types.Replication.pb(replication).WhichOneof("replication")
    if kind is None:
        raise invalid_argument("Secret.replication is required: set replication.automatic or replication.user_managed.")
    if kind == "user_managed":
        replicas = replication.user_managed.replicas
        if not replicas:
            raise invalid_argument("Secret.replication.user_managed.replicas must name at least one location.")
        if any(not r.location for r in replicas):
            raise invalid_argument("Every replica in Secret.replication.user_managed.replicas needs a location.")


def _replication_status(replication: types.Replication) -> types.ReplicationStatus:
    if "user_managed" in replication:
        replicas = [
            types.ReplicationStatus.UserManagedStatus.ReplicaStatus(location=r.location)
            for r in replication.user_managed.replicas
        ]
        return types.ReplicationStatus(user_managed=types.ReplicationStatus.UserManagedStatus(replicas=replicas))
    return types.ReplicationStatus(automatic=types.ReplicationStatus.AutomaticStatus())


def _apply_ttl(secret: types.Secret) -> None:
    """`ttl` is input only: it becomes `expire_time`, counted from now."""
    pb = types.Secret.pb(secret)
    if pb.HasField("ttl"):
        expire = _now()
        expire.seconds += pb.ttl.seconds
        expire.nanos += pb.ttl.nanos
        if expire.nanos >= 1_000_000_000:
            expire.seconds += 1
            expire.nanos -= 1_000_000_000
        pb.expire_time.CopyFrom(expire)


def _copy_field(source: Any, target: Any, field: str) -> None:
    """Replace `field` of the protobuf message `target` with the one of `source` (absent in source: cleared)."""
    if field in ("expire_time", "ttl"):
        # The two are a oneof: setting either replaces the other.
        target.ClearField("expire_time")
        target.ClearField("ttl")
    else:
        target.ClearField(field)
    descriptor = source.DESCRIPTOR.fields_by_name[field]
    value = getattr(source, field)
    if descriptor.message_type is not None and descriptor.message_type.GetOptions().map_entry:
        getattr(target, field).update(value)
    elif descriptor.label == descriptor.LABEL_REPEATED:
        getattr(target, field).extend(value)
    elif source.HasField(field):
        getattr(target, field).CopyFrom(value)


def _secret_field(field: str) -> Callable[[types.Secret], str | None]:
    if field == "name":
        return lambda secret: str(secret.name)
    mapping, _, key = field.partition(".")
    if mapping in ("labels", "annotations") and key:
        return lambda secret: getattr(secret, mapping).get(key)
    raise invalid_argument(f"Invalid filter: cannot filter on [{field}]; use name, labels.KEY or annotations.KEY.")


def _version_field(field: str) -> Callable[[types.SecretVersion], str | None]:
    if field == "name":
        return lambda version: str(version.name)
    if field == "state":
        return lambda version: str(version.state.name)
    raise invalid_argument(f"Invalid filter: cannot filter on [{field}]; use name or state.")


def _matcher(expression: str, field: Callable[[str], Callable[[Any], str | None]]) -> Callable[[Any], bool]:
    """A predicate for the subset of List filters the emulator understands.

    Terms are ANDed (by `AND` or a space); each is `field:value` (contains, ignoring case; `field:*` means "is
    set") or `field=value` (equals). Anything else is INVALID_ARGUMENT rather than silently ignored.
    """
    terms: list[tuple[Callable[[Any], str | None], str, str]] = []
    for term in re.split(r"\s+(?:AND\s+)?", expression.strip()):
        if not term:
            continue
        match = re.fullmatch(r"(?P<field>[A-Za-z_][\w.-]*)(?P<op>[:=])(?P<value>.+)", term)
        if match is None:
            raise invalid_argument(f"Invalid filter [{expression}]: use terms like name:x or labels.k=v.")
        terms.append((field(match["field"]), match["op"], match["value"].strip('"')))

    def check(item: Any) -> bool:
        for get, op, value in terms:
            actual = get(item)
            if actual is None:
                return False
            if op == "=" and actual != value:
                return False
            if op == ":" and value != "*" and value.lower() not in actual.lower():
                return False
        return True

    return check
