"""Cloud Monitoring's configuration: notification channels, uptime checks and alert policies of every project, their
rules (`validation`), and what the alerting does with them (the incidents it opens and the notifications it sends,
which Google shows in its console and mail and the emulator on its control API).

Independent of any transport. Messages are the client library's own types, copied in and out so no caller ever
shares an object with the store.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

from google.cloud.monitoring_v3 import types
from google.protobuf import timestamp_pb2

from doki_cli.emulator import protojson
from doki_cli.emulator.errors import invalid_argument, not_found
from doki_cli.emulator.monitoring import validation
from doki_cli.emulator.paging import Paging

_T = TypeVar("_T")

# Monitoring's list methods: an unset page size lists everything; the emulator pages by name.
PAGING = Paging(
    default_size=1000,
    max_size=1000,
    bad_size="Field page_size had an invalid value of {size}: must not be negative.",
    bad_page='Field page_token had an invalid value of "{token}".',
)
# The emulator's alerting keeps the last incidents and notifications, newest last.
KEPT_EVENTS = 500

KINDS = {
    "uptimeCheckConfigs": types.UptimeCheckConfig,
    "alertPolicies": types.AlertPolicy,
    "notificationChannels": types.NotificationChannel,
}
_WHAT = {
    "uptimeCheckConfigs": "Uptime check config",
    "alertPolicies": "Alert policy",
    "notificationChannels": "Notification channel",
}


def _copy(message: _T) -> _T:
    return cast(_T, protojson.copy(message))


def _merged(current: _T, given: _T, paths: list[str], immutable: tuple[str, ...]) -> _T:
    return cast(_T, validation.merge(current, given, paths, immutable=immutable))


def _now(clock: Callable[[], float]) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(clock() * 1e9))
    return stamp


def _numeric_id() -> str:
    # Alert policies, their conditions and channels get numeric ids (projects/P/alertPolicies/1234567890123456789).
    return str(secrets.randbelow(9 * 10**18) + 10**18)


class MonitoringConfig:
    """The three kinds of resource, by full name; see the module docstring. Thread-safe."""

    def __init__(
        self,
        *,
        persist: Callable[[], None],
        clock: Callable[[], float],
        resource_exists: Callable[[Any], bool] = lambda resource: True,
    ) -> None:
        """`resource_exists(monitored resource)`: whether a check's Cloud Run service exists, as Google confirms
        before it makes a check of one."""
        self._persist = persist
        self._clock = clock
        self._resource_exists = resource_exists
        self._lock = threading.Lock()
        self._items: dict[str, Any] = {}  # full name -> message
        self.incidents: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []

    # -- reads --------------------------------------------------------------------------------------------------

    def get(self, name: str) -> Any:  # the message of the kind `name` names
        kind = validation.kind_of(name)
        with self._lock:
            item = self._items.get(name)
            if item is None:
                raise not_found(f"Could not find {_WHAT[kind].lower()} {name}.")
            return _copy(item)

    def list_items(
        self, parent: str, kind: str, page_size: int, page_token: str, list_filter: str = ""
    ) -> tuple[list[Any], str, int]:
        validation.check_project(parent)
        if list_filter:
            raise invalid_argument(
                "The doki emulator does not implement list filters; list without one and choose among the answers."
            )
        prefix = f"{parent}/{kind}/"
        with self._lock:
            chosen = [_copy(item) for name, item in self._items.items() if name.startswith(prefix)]
        page, next_token = PAGING.page(chosen, lambda item: item.name, page_size, page_token)
        return page, next_token, len(chosen)

    def all_of(self, kind: str) -> list[Any]:
        """Every resource of `kind` in every project (what the uptime runner and the alerting go through)."""
        with self._lock:
            return [_copy(item) for name, item in self._items.items() if f"/{kind}/" in name]

    def channel_exists(self, name: str) -> bool:
        with self._lock:
            return name in self._items

    def find(self, name: str) -> Any:
        """The resource called `name`, or None."""
        with self._lock:
            item = self._items.get(name)
            return None if item is None else _copy(item)

    # -- writes -------------------------------------------------------------------------------------------------

    def create_channel(self, parent: str, channel: types.NotificationChannel) -> types.NotificationChannel:
        validation.check_project(parent)
        channel = _copy(channel)
        validation.check_channel(channel)
        channel.name = f"{parent}/notificationChannels/{_numeric_id()}"
        # An email channel made through the API reads UNVERIFIED until it is verified (nomadkaraoke/karaoke-gen#785);
        # Google sends it notifications all the same.
        channel.verification_status = types.NotificationChannel.VerificationStatus.UNVERIFIED  # type: ignore[assignment]
        if "enabled" not in channel:
            channel.enabled = True
        channel.creation_record = types.MutationRecord(mutate_time=_now(self._clock), mutated_by="doki-emulator")
        return self._put(channel)

    def update_channel(self, channel: types.NotificationChannel, paths: list[str]) -> types.NotificationChannel:
        current: types.NotificationChannel = self.get(channel.name)
        # NotificationChannel.type is immutable (proto-plus names the field type_).
        updated = _merged(current, channel, paths, ("type_", "name", "creation_record", "verification_status"))
        validation.check_channel(updated)
        updated.mutation_records.append(types.MutationRecord(mutate_time=_now(self._clock), mutated_by="doki-emulator"))
        return self._put(updated)

    def create_uptime_check(self, parent: str, config: types.UptimeCheckConfig) -> types.UptimeCheckConfig:
        validation.check_project(parent)
        config = _copy(config)
        validation.fill_uptime_defaults(config)
        validation.check_uptime(config)
        if not self._resource_exists(config.monitored_resource):
            raise validation.unconfirmed_resource(config.monitored_resource)
        with self._lock:
            taken = sum(1 for name in self._items if name.startswith(f"{parent}/uptimeCheckConfigs/"))
        validation.check_uptime_quota(taken)
        config.name = f"{parent}/uptimeCheckConfigs/{validation.uptime_check_id(config.display_name)}"
        return self._put(config)

    def update_uptime_check(self, config: types.UptimeCheckConfig, paths: list[str]) -> types.UptimeCheckConfig:
        current: types.UptimeCheckConfig = self.get(config.name)
        validation.check_uptime_mask(paths)
        updated = _merged(current, config, paths, ("name",))
        validation.fill_uptime_defaults(updated)
        if (
            types.UptimeCheckConfig.pb(updated).monitored_resource
            != types.UptimeCheckConfig.pb(current).monitored_resource
        ):
            raise invalid_argument(validation.RESOURCE_IMMUTABLE)
        validation.check_uptime(updated)
        return self._put(updated)

    def create_policy(self, parent: str, policy: types.AlertPolicy) -> types.AlertPolicy:
        validation.check_project(parent)
        policy = _copy(policy)
        validation.check_policy(policy, self.channel_exists)
        policy.name = f"{parent}/alertPolicies/{_numeric_id()}"
        self._name_conditions(policy, {})
        if "enabled" not in policy:
            policy.enabled = True
        record = types.MutationRecord(mutate_time=_now(self._clock), mutated_by="doki-emulator")
        policy.creation_record = record
        policy.mutation_record = record
        return self._put(policy)

    def update_policy(self, policy: types.AlertPolicy, paths: list[str]) -> types.AlertPolicy:
        current: types.AlertPolicy = self.get(policy.name)
        updated = _merged(current, policy, paths, ("name", "creation_record", "mutation_record"))
        if not paths and "enabled" not in policy:
            updated.enabled = True  # a replace is a new policy with the old id (UpdateAlertPolicyRequest)
        validation.check_policy(updated, self.channel_exists)
        self._name_conditions(updated, {c.name: c for c in current.conditions})
        updated.mutation_record = types.MutationRecord(mutate_time=_now(self._clock), mutated_by="doki-emulator")
        return self._put(updated)

    def delete(self, name: str) -> None:
        kind = validation.kind_of(name)
        with self._lock:
            if name not in self._items:
                raise not_found(f"Could not find {_WHAT[kind].lower()} {name}.")
            if kind == "uptimeCheckConfigs":
                check_id = name.rsplit("/", 1)[-1]
                if any(
                    isinstance(item, types.AlertPolicy) and validation.reads_check(item, check_id)
                    for item in self._items.values()
                ):
                    raise validation.check_in_use()
            del self._items[name]
        self._persist()

    def delete_channel(self, name: str, force: bool) -> None:
        """A channel that policies still name goes only with `force`, which takes it off them too
        (DeleteNotificationChannelRequest.force)."""
        with self._lock:
            users = [
                item.name
                for item in self._items.values()
                if isinstance(item, types.AlertPolicy) and name in item.notification_channels
            ]
        if users and not force:
            raise validation.channel_in_use(name, users)
        self.delete(name)
        if users:
            with self._lock:
                for policy_name in users:
                    policy = self._items.get(policy_name)
                    if policy is not None:
                        kept = [c for c in policy.notification_channels if c != name]
                        policy.notification_channels = kept
            self._persist()

    def _name_conditions(self, policy: types.AlertPolicy, former: dict[str, Any]) -> None:
        """Each condition keeps a former name it carries (UpdateAlertPolicyRequest); the others get new ones."""
        for condition in policy.conditions:
            if condition.name not in former:
                condition.name = f"{policy.name}/conditions/{_numeric_id()}"

    def _put(self, item: _T) -> _T:
        with self._lock:
            self._items[item.name] = _copy(item)  # type: ignore[attr-defined]
        self._persist()
        return _copy(item)

    # -- what the alerting did ---------------------------------------------------------------------------------

    def record(self, *, incident: dict[str, Any] | None = None, notification: dict[str, Any] | None = None) -> None:
        with self._lock:
            if incident is not None:
                self.incidents.append(incident)
                del self.incidents[:-KEPT_EVENTS]
            if notification is not None:
                self.notifications.append(notification)
                del self.notifications[:-KEPT_EVENTS]
        self._persist()

    def events(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            return {
                "incidents": [dict(i) for i in self.incidents],
                "notifications": [dict(n) for n in self.notifications],
            }

    # -- persistence --------------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            items = {
                name: {"kind": validation.kind_of(name), "message": protojson.to_dict(item)}
                for name, item in self._items.items()
            }
            return {"items": items, "incidents": list(self.incidents), "notifications": list(self.notifications)}

    def restore(self, data: dict[str, Any]) -> None:
        items = {
            name: protojson.from_dict(KINDS[entry["kind"]], entry["message"])
            for name, entry in data.get("items", {}).items()
        }
        with self._lock:
            self._items = items
            self.incidents = list(data.get("incidents", []))
            self.notifications = list(data.get("notifications", []))
