"""A release's traffic arithmetic, pure: where traffic goes before, during and after a release's steps."""

from __future__ import annotations

from collections.abc import Sequence

from doki_cli.model import Target

# Release tags (sha-…) kept on earlier revisions, so recent releases stay reachable at their own URLs.
KEEP_RELEASE_TAGS = 5
TAG_PREFIX = "sha-"


def pinned_now(targets: Sequence[Target], latest: str | None, tag: str) -> list[Target]:
    """`targets` with "latest" replaced by the revision it means now, and without a stale tag of this release."""
    return [Target(t.revision or latest, t.percent, t.tag) for t in targets if t.tag != tag]


def staged(before: Sequence[Target], revision: str, tag: str) -> tuple[Target, ...]:
    """Today's traffic, and the new revision under its tag at 0%: reachable on its own URL, serving nothing."""
    return (*before, Target(revision, 0, tag))


def split(before: Sequence[Target], revision: str, tag: str, percent: int) -> tuple[Target, ...]:
    """`percent` to the new revision, the rest shared among today's revisions in today's proportions."""
    serving = [t for t in before if t.percent]
    total = sum(t.percent for t in serving)
    rest = 100 - percent
    shares = [t.percent * rest // total for t in serving]
    # Largest remainders first, so the shares add up to exactly 100.
    order = sorted(range(len(serving)), key=lambda i: -(serving[i].percent * rest % total))
    for i in order[: rest - sum(shares)]:
        shares[i] += 1
    moved = [Target(t.revision, share, t.tag) for t, share in zip(serving, shares, strict=True)]
    tagged = [t for t in before if not t.percent]
    return (*moved, Target(revision, percent, tag), *tagged)


def final(before: Sequence[Target], revision: str, tag: str, latest: str | None) -> tuple[Target, ...]:
    """All traffic to the new revision; earlier tags stay at 0%, the oldest release tags beyond a few dropped."""
    # "latest" when the new revision is the latest ready one, as `doki deploy` leaves it: a dry run then sees no change.
    main = Target(None if latest == revision else revision, 100)
    tagged = [Target(t.revision, 0, t.tag) for t in before if t.tag]
    releases = [t for t in tagged if t.tag.startswith(TAG_PREFIX)]
    dropped = {t.tag for t in releases[: max(0, len(releases) - (KEEP_RELEASE_TAGS - 1))]}
    return (main, *(t for t in tagged if t.tag not in dropped), Target(revision, 0, tag))


def steps_text(steps: Sequence[int]) -> str:
    """A rollout's steps as people read them: "10% -> 50% -> 100%"."""
    return " -> ".join(f"{p}%" for p in steps)
