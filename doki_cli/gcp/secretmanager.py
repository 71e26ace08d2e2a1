"""Secret Manager, through google-cloud-secret-manager: the only module that imports it.

Every call is retried on transient failures and every Google error becomes a DokiError with a hint. Values pass
through as bytes and are never logged or put in an error message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from doki_cli.gcp.errors import call_google, google_error
from doki_cli.gcp.iam import edit_policy, set_member
from doki_cli.gcp.retry import Retrier, knowing_retries, no_library_retry

ACCESSOR_ROLE = "roles/secretmanager.secretAccessor"


@dataclass(frozen=True)
class VersionInfo:
    number: int
    created: datetime | None
    state: str  # ENABLED, DISABLED or DESTROYED


class SecretManager:
    def __init__(self, client: Any, project: str, retrier: Retrier) -> None:
        self._client = client
        self.project = project
        self._retrier = retrier

    def _name(self, secret_id: str) -> str:
        # A full name (projects/P/secrets/S, as a service may name another project's secret) is taken as it is.
        return secret_id if secret_id.startswith("projects/") else f"projects/{self.project}/secrets/{secret_id}"

    def _call(self, fn: Any, *, action: str, resource: str, role: str | None = None) -> Any:
        # Missing credentials surface where the client is made (doki_cli.gcp.clients), not here.
        return call_google(self._retrier, fn, action=action, resource=resource, api="secretmanager", role=role)

    def exists(self, secret_id: str) -> bool:
        from google.api_core import exceptions

        try:
            self._retrier.call(lambda: self._client.get_secret(name=self._name(secret_id)))
        except exceptions.NotFound:
            return False
        except exceptions.GoogleAPICallError as exc:
            raise google_error(exc, action="reading", resource=self._name(secret_id), api="secretmanager") from None
        return True

    def latest(self, secret_id: str) -> VersionInfo | None:
        """The newest version of `secret_id`, or None when it has none (or does not exist)."""
        from google.api_core import exceptions

        name = self._name(secret_id)
        try:
            request = {"parent": name, "page_size": 1}  # newest first: one is enough
            pages = self._retrier.call(lambda: self._client.list_secret_versions(request=request))
            newest = next(iter(pages), None)
        except exceptions.NotFound:
            return None
        except exceptions.GoogleAPICallError as exc:
            raise google_error(exc, action="listing the versions of", resource=name, api="secretmanager") from None
        if newest is None:
            return None
        created = newest.create_time if newest.create_time else None
        return VersionInfo(int(newest.name.rsplit("/", 1)[1]), created, newest.state.name)

    def versions(self, secret_id: str) -> list[VersionInfo]:
        """Every version of `secret_id`, newest first, with its state (destroyed ones too: Google lists them)."""
        name = self._name(secret_id)
        listed = self._call(
            lambda: list(self._client.list_secret_versions(request={"parent": name})),
            action="listing the versions of",
            resource=name,
            role="roles/secretmanager.viewer",
        )
        found = [VersionInfo(int(v.name.rsplit("/", 1)[1]), v.create_time or None, v.state.name) for v in listed]
        # Google lists newest first (ListSecretVersions, "sorted in reverse by create_time"); sorted all the same,
        # as the rotation reads the order.
        return sorted(found, key=lambda v: v.number, reverse=True)

    def disable(self, secret_id: str, number: int) -> None:
        """Disable version `number`: nothing can read it until it is enabled again (`gcloud secrets versions enable`).
        Disabling a disabled version is no error (Google's answer too); a destroyed one is (FAILED_PRECONDITION)."""
        name = f"{self._name(secret_id)}/versions/{number}"
        self._call(
            lambda: self._client.disable_secret_version(request={"name": name}),
            action="disabling",
            resource=name,
            role="roles/secretmanager.secretVersionManager",
        )

    def access(self, secret_id: str, version: str = "latest") -> bytes:
        name = f"{self._name(secret_id)}/versions/{version}"
        response = self._call(
            lambda: self._client.access_secret_version(name=name, retry=no_library_retry()),
            action="reading",
            resource=name,
            role=ACCESSOR_ROLE,
        )
        data: bytes = response.payload.data
        return data

    def create(self, secret_id: str) -> bool:
        """Create `secret_id` with automatic replication; False when it already existed."""
        from google.api_core import exceptions

        def create(retried: bool) -> bool:
            try:
                self._client.create_secret(
                    parent=f"projects/{self.project}",
                    secret_id=secret_id,
                    secret={"replication": {"automatic": {}}},
                )
            except exceptions.Conflict:
                # On a retry, the secret is most likely the one the try before made, its answer lost on the way.
                return retried
            return True

        created: bool = self._call(
            knowing_retries(create), action="creating", resource=self._name(secret_id), role="roles/secretmanager.admin"
        )
        return created

    def add_version(self, secret_id: str, data: bytes) -> int:
        """Add `data` as the newest version; its number."""
        import google_crc32c

        name = self._name(secret_id)
        payload = {"data": data, "data_crc32c": int(google_crc32c.value(data))}

        def add(retried: bool) -> Any:
            # A retried add would make a second version of the value when the try before made one and only its
            # answer was lost: a retry first looks whether the newest version already holds `data`.
            if retried and (landed := self._latest_holding(name, data)) is not None:
                return landed
            return self._client.add_secret_version(parent=name, payload=payload)

        version = self._call(
            knowing_retries(add),
            action="adding a version to",
            resource=name,
            role="roles/secretmanager.secretVersionAdder",
        )
        return int(version.name.rsplit("/", 1)[1])

    def _latest_holding(self, name: str, data: bytes) -> Any | None:
        """The newest version of secret `name` if it holds `data`, else None (also when it has no usable version).

        Transient failures propagate to the caller's Retrier."""
        from google.api_core import exceptions

        try:
            response = self._client.access_secret_version(name=f"{name}/versions/latest", retry=no_library_retry())
        except (exceptions.NotFound, exceptions.FailedPrecondition):
            return None  # no version yet, or the newest is disabled or destroyed
        return response if response.payload.data == data else None

    def resolve(self, secret_id: str, version: str) -> tuple[int, str] | None:
        """The number and state (enabled, disabled, destroyed) of the version `version` ("latest" or a number)
        names; None when there is no such version."""
        from google.api_core import exceptions

        name = f"{self._name(secret_id)}/versions/{version}"
        try:
            info = self._retrier.call(lambda: self._client.get_secret_version(name=name))
        except exceptions.NotFound:
            return None
        except exceptions.GoogleAPICallError as exc:
            raise google_error(exc, action="reading", resource=name, api="secretmanager") from None
        return int(info.name.rsplit("/", 1)[1]), str(info.state.name).lower()

    def is_granted(self, secret_id: str, member: str, role: str = ACCESSOR_ROLE) -> bool:
        return member in self.members(secret_id, role)

    def members(self, secret_id: str, role: str = ACCESSOR_ROLE) -> list[str]:
        """Who holds `role` on the secret (`serviceAccount:…`, `user:…`, …), as its IAM policy binds them."""
        name = self._name(secret_id)
        policy = self._call(
            lambda: self._client.get_iam_policy(request={"resource": name}),
            action="reading the IAM policy of",
            resource=name,
            role="roles/secretmanager.admin",
        )
        return [member for binding in policy.bindings if binding.role == role for member in binding.members]

    def grant(self, secret_id: str, member: str, role: str = ACCESSOR_ROLE) -> bool:
        """Bind `member` to `role` on the secret (read-modify-write with the policy etag); False if already bound."""
        return edit_policy(
            self._client,
            self._name(secret_id),
            lambda policy: set_member(policy, role, member, present=True),
            retrier=self._retrier,
            api="secretmanager",
            admin_role="roles/secretmanager.admin",
        )
