"""A release's traffic arithmetic: pure, so tested on plain targets."""

from __future__ import annotations

from doki_cli.deploy.traffic import final, pinned_now, split, staged, steps_text
from doki_cli.model import Target


def test_a_split_keeps_todays_proportions_and_adds_up_to_100() -> None:
    before = [Target("a", 67), Target("b", 33), Target("c", 0, "stable")]
    assert split(before, "new", "sha-1", 10) == (
        Target("a", 60),
        Target("b", 30),
        Target("new", 10, "sha-1"),
        Target("c", 0, "stable"),
    )
    assert sum(t.percent for t in split(before, "new", "t", 33)) == 100


def test_the_final_traffic_follows_latest_and_keeps_only_recent_release_tags() -> None:
    before = [Target("old", 100), *(Target(f"r{i}", 0, f"sha-{i}") for i in range(6)), Target("x", 0, "stable")]
    after = final(before, "new", "sha-new", latest="new")
    assert after[0] == Target(None, 100)
    assert [t.tag for t in after[1:]] == ["sha-2", "sha-3", "sha-4", "sha-5", "stable", "sha-new"]
    # Someone else's revision became the latest meanwhile: the new one is pinned by name instead.
    assert final(before, "new", "sha-new", latest="other")[0] == Target("new", 100)


def test_latest_is_resolved_to_the_revision_it_means_and_a_stale_tag_of_this_release_goes() -> None:
    before = [Target(None, 100), Target("a", 0, "sha-1"), Target("b", 0, "stable")]
    assert pinned_now(before, "b", "sha-1") == [Target("b", 100), Target("b", 0, "stable")]


def test_a_staged_revision_is_tagged_and_serves_nothing() -> None:
    before = [Target("a", 100)]
    assert staged(before, "new", "sha-2") == (Target("a", 100), Target("new", 0, "sha-2"))


def test_steps_read_as_percentages_in_order() -> None:
    assert steps_text((10, 50, 100)) == "10% -> 50% -> 100%"
