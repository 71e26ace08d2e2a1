"""A service's release lock: one annotation, written with the etag read, so two releases never move traffic at once.

The lock is taken by the write that stages a release's revision, renewed by each traffic step, and dropped by the
last step or the put-back. A lock left by a release that died expires by itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from doki_cli.errors import Code, DokiError
from doki_cli.model import LiveService

LOCK = "doki.dev/release-lock"


@dataclass(frozen=True)
class Lock:
    commit: str
    owner: str
    host: str
    started: float
    expires: float

    def render(self) -> str:
        return json.dumps(
            {
                "commit": self.commit,
                "owner": self.owner,
                "host": self.host,
                "started": iso(self.started),
                "expires": iso(self.expires),
            },
            separators=(",", ":"),
        )

    @classmethod
    def parse(cls, text: str) -> Lock | None:
        """The lock an annotation holds; None when it is not one doki wrote (then it does not count as held)."""
        try:
            data = json.loads(text)
            return cls(
                str(data["commit"]),
                str(data["owner"]),
                str(data.get("host", "")),
                datetime.fromisoformat(data["started"]).timestamp(),
                datetime.fromisoformat(data["expires"]).timestamp(),
            )
        except (ValueError, KeyError, TypeError):
            return None


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def active_lock(service: LiveService, now: float) -> Lock | None:
    """The release lock `service` carries, unless it has expired or is not one doki wrote."""
    text = service.annotations.get(LOCK)
    lock = Lock.parse(text) if text else None
    return lock if lock is not None and lock.expires > now else None


def take(service: LiveService, lock: Lock, now: float) -> None:
    """Refuse to go on while another release holds `service`'s lock (DokiError, exit 5)."""
    held = active_lock(service, now)
    if held is not None and held.owner != lock.owner:
        raise DokiError(
            Code.RELEASE_LOCKED,
            f"a release of {held.commit[:12]} (started {iso(held.started)} on {held.host or 'an unknown host'}) "
            f"holds {service.name}'s release lock until {iso(held.expires)}; this release of {lock.commit[:12]} "
            "changed nothing",
            "wait for that release to finish, then run this one again (a lock left by a release that died "
            "expires by itself)",
        )


def ensure_ours(service: LiveService, lock: Lock, now: float) -> None:
    """Refuse a write once `lock` is no longer what `service` holds: another release took over (DokiError, exit 5)."""
    held = active_lock(service, now)
    if held is None or held.owner != lock.owner:
        by = f"a release of {held.commit[:12]}" if held is not None else "someone else"
        raise DokiError(
            Code.RELEASE_LOCK_LOST,
            f"{service.name}'s release lock was taken over by {by} while this release of {lock.commit[:12]} ran",
            "traffic was left to the release holding the lock; check `doki status`, then release again",
        )


def blocked_by_release(service: LiveService, now: float, change: str) -> DokiError | None:
    """The error a change made outside a release (`change`: "a deploy", "this rollback", ...) stops with while a
    release holds the lock: made now, it would move traffic under the release, or be undone by its next step."""
    lock = active_lock(service, now)
    if lock is None:
        return None
    return DokiError(
        Code.RELEASE_LOCKED,
        f"a release of {lock.commit[:12]} (on {lock.host or 'an unknown host'}) is in progress on {service.name} "
        f"until {iso(lock.expires)}; nothing was changed",
        f"wait for it to finish: {change} now would move traffic under it, or be undone by its next step (a lock "
        "left by a release that died expires by itself)",
    )
