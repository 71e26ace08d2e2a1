"""doki's plain model of a Cloud Run service: what the traffic spec means, read and edited without Google's types."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from doki_cli.model import (
    CHECKS_FAILED,
    Edit,
    LiveService,
    Routed,
    Scaling,
    ServiceSpec,
    Staged,
    Target,
    pinned,
    to_latest,
)

SPEC = ServiceSpec("img:1", 8080, "512Mi", "1", 80, 300, 0, 10, "all", None)


def live(
    traffic: tuple[Target, ...] = (Target(None, 100),),
    routed: tuple[Routed, ...] = (Routed("api-00002-b", 100),),
    *,
    ready: str | None = "api-00002-b",
    created: str | None = "api-00002-b",
) -> LiveService:
    return LiveService(
        name="api",
        spec=SPEC,
        uri="https://api.example",
        etag="e1",
        generation=2,
        updated=datetime(2026, 12, 6, tzinfo=UTC),
        traffic=traffic,
        routed=routed,
        annotations={},
        latest_ready=ready,
        latest_created=created,
        ready=True,
        message="",
    )


def test_traffic_follows_latest_only_when_one_latest_target_serves_all() -> None:
    assert live().traffic_to_latest
    assert live(traffic=(Target(None, 100), Target("api-00001-a", 0, "stable"))).traffic_to_latest
    assert not live(traffic=(Target("api-00002-b", 100),)).traffic_to_latest
    assert not live(traffic=(Target(None, 90), Target("api-00001-a", 10))).traffic_to_latest


def test_the_traffic_text_names_each_serving_target_in_order() -> None:
    split = live(traffic=(Target("api-00001-a", 90), Target(None, 10), Target("api-00001-a", 0, "old")))
    assert split.traffic_text == "90% api-00001-a, 10% latest"
    assert live(traffic=()).traffic_text == "none"


def test_shares_add_up_what_each_revision_serves_and_tags_name_their_revision() -> None:
    service = live(
        routed=(
            Routed("api-00001-a", 60),
            Routed("api-00002-b", 40),
            Routed("api-00001-a", 0, "stable", "https://stable---api.example"),
            Routed("api-00002-b", 0, "sha-1", "https://sha-1---api.example"),
        )
    )
    assert service.shares == {"api-00001-a": 60, "api-00002-b": 40}
    assert service.tags() == {"api-00001-a": ("stable",), "api-00002-b": ("sha-1",)}
    assert service.tag_url("sha-1") == "https://sha-1---api.example"
    assert service.tag_url("missing") is None


def test_a_newest_revision_that_never_became_ready_is_stuck() -> None:
    assert live().stuck is None
    assert live(created="api-00003-c").stuck == "api-00003-c"
    assert live(ready=None, created="api-00001-a").stuck == "api-00001-a"
    assert live(ready=None, created=None).stuck is None


def test_pinning_sends_all_traffic_to_one_revision_and_keeps_tags_at_zero() -> None:
    traffic = (Target(None, 90), Target("api-00001-a", 10, "old"), Target("api-00002-b", 0, "sha-2"))
    assert pinned(traffic, "api-00001-a") == (
        Target("api-00001-a", 100),
        Target("api-00001-a", 0, "old"),
        Target("api-00002-b", 0, "sha-2"),
    )
    assert to_latest(traffic) == (Target(None, 100), Target("api-00001-a", 0, "old"), Target("api-00002-b", 0, "sha-2"))


def test_only_an_edit_of_traffic_and_annotations_is_traffic_only() -> None:
    assert Edit(traffic=(Target(None, 100),), annotations={"doki.dev/release-lock": None}).traffic_only
    assert not Edit(env={"A": "1"}).traffic_only
    assert not Edit(scaling=Scaling(max_instances=3)).traffic_only
    assert not Edit(staged=Staged(SPEC, (), "api-abc")).traffic_only
    assert not Edit(new_revision=True).traffic_only


def test_the_newest_revision_failed_when_never_ready_or_when_a_release_noted_its_checks_failed() -> None:
    assert live().failed is None
    stuck = replace(live(ready="api-00001-a", created="api-00002-b"), message="Container called\nexit(3).")
    assert stuck.failed == ("api-00002-b", "Container called exit(3).")
    noted = replace(
        live(routed=(Routed("api-00001-a", 100),)),
        annotations={CHECKS_FAILED: "api-00002-b https://tag---api/ failed the health contract"},
    )
    assert noted.failed == ("api-00002-b", "https://tag---api/ failed the health contract")
    # A newer revision since: the note is about one that is no longer the newest.
    assert replace(noted, latest_created="api-00003-c", latest_ready="api-00003-c").failed is None
    # Traffic went to it anyway (a deploy or a rollback said yes): the note has been answered.
    assert replace(noted, routed=(Routed("api-00002-b", 100),)).failed is None
