"""The release lock: what counts as held, and who may write while it is."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from doki_cli.deploy.lock import LOCK, Lock, active_lock, blocked_by_release, ensure_ours, take
from doki_cli.errors import DokiError
from doki_cli.model import LiveService, ServiceSpec

NOW = 1_800_000_000.0
MINE = Lock("a" * 40, "me", "laptop", NOW - 60, NOW + 600)
THEIRS = Lock("b" * 40, "them", "ci-runner", NOW - 60, NOW + 600)


def _service(lock: Lock | None) -> LiveService:
    spec = ServiceSpec("img:1", 8080, "512Mi", "1", 80, 300, 0, 10, "all", None)
    annotations = {LOCK: lock.render()} if lock is not None else {}
    return LiveService("api", spec, "https://api", "etag", 1, None, (), (), annotations, None, None, True, "")


def test_a_lock_written_by_something_else_does_not_count() -> None:
    assert Lock.parse("not json") is None
    assert Lock.parse(json.dumps({"commit": "x"})) is None
    lock = Lock("abc", "me", "host", 1_800_000_000.0, 1_800_000_600.0)
    assert Lock.parse(lock.render()) == lock


def test_an_expired_lock_or_none_is_not_held() -> None:
    assert active_lock(_service(None), NOW) is None
    assert active_lock(_service(MINE), MINE.expires) is None
    assert active_lock(_service(MINE), NOW) == MINE


def test_another_releases_lock_refuses_taking_it_and_names_that_release() -> None:
    take(_service(MINE), MINE, NOW)  # ours: taken again
    take(_service(None), MINE, NOW)
    with pytest.raises(DokiError) as refused:
        take(_service(THEIRS), MINE, NOW)
    assert refused.value.code == "release_locked"
    assert refused.value.exit_code == 5
    started = datetime.fromtimestamp(THEIRS.started, UTC).isoformat(timespec="seconds")
    assert (
        f"a release of bbbbbbbbbbbb (started {started} on ci-runner) holds api's release lock" in refused.value.message
    )


def test_a_write_stops_once_the_lock_is_lost_or_taken_over() -> None:
    ensure_ours(_service(MINE), MINE, NOW)
    with pytest.raises(DokiError, match="taken over by someone else"):
        ensure_ours(_service(None), MINE, NOW)
    with pytest.raises(DokiError, match="taken over by a release of bbbbbbbbbbbb"):
        ensure_ours(_service(THEIRS), MINE, NOW)


def test_a_deploy_is_blocked_only_while_a_release_holds_the_lock() -> None:
    assert blocked_by_release(_service(None), NOW, "a deploy") is None
    assert blocked_by_release(_service(THEIRS), THEIRS.expires + 1, "a deploy") is None
    blocked = blocked_by_release(_service(THEIRS), NOW, "a deploy")
    assert blocked is not None and blocked.code == "release_locked" and blocked.exit_code == 5
    assert "a deploy now would move traffic under it" in (blocked.hint or "")
