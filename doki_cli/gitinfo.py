"""What git says about the project: the version tag of an image built from it, and the commit a release ships."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from doki_cli.errors import Code, DokiError

# Where CI systems put the commit they build, in the order doki looks: GitHub Actions, Cloud Build, GitLab, others.
CI_SHA_VARIABLES = ("GITHUB_SHA", "COMMIT_SHA", "CI_COMMIT_SHA", "BUILDKITE_COMMIT", "CIRCLE_SHA1", "GIT_COMMIT")
SHORT = 7  # image tags: the first 7 hex digits of the commit, whatever length `git --short` would pick
_SHA = re.compile(r"[0-9a-f]{7,40}")


def version_tag(root: Path, *, hint: str = "commit your work (git init && git commit)") -> str:
    """The short commit sha, with `-dirty` when a file that enters the image has uncommitted changes.

    Without a commit there is none: `no_git_version`, with `hint`, which a command gives, as it alone knows how its
    user names an image otherwise (`doki build --tag`, `doki deploy --image`)."""
    try:
        # Not `--short`, whose length grows with the repository: release must derive the same tag from a CI sha.
        sha = _git(root, "rev-parse", "HEAD")[:SHORT]
        dirty = bool(image_changes(root))
    except (OSError, subprocess.CalledProcessError):
        raise DokiError(
            Code.NO_GIT_VERSION,
            f"{root} is not a git checkout with a commit, so no commit names the image",
            hint,
        ) from None
    return f"{sha}-dirty" if dirty else sha


@dataclass(frozen=True)
class Commit:
    sha: str
    dirty: bool  # built from a tree with uncommitted changes (only with --allow-dirty)
    source: str  # where the sha came from: --sha, a CI variable, or git

    @property
    def short(self) -> str:
        return self.sha[:SHORT]

    @property
    def version(self) -> str:
        """The image tag, exactly as `doki build` tags a build of this tree."""
        return f"{self.short}-dirty" if self.dirty else self.short


def resolve_commit(root: Path, sha: str | None, environ: Mapping[str, str], *, allow_dirty: bool) -> Commit:
    """The commit to release: --sha, else the CI's variable, else git's HEAD; a dirty tree only when allowed.

    When git can see the tree, the commit named must be the one checked out: the image is built from the tree,
    and an image tagged with one commit but holding another would make every later reuse of that tag a lie."""
    source = "--sha"
    if sha is None:
        source, sha = next(((name, environ[name]) for name in CI_SHA_VARIABLES if environ.get(name)), ("git", None))
    head = _head(root)
    if sha is None:
        if head is None:
            raise DokiError(
                Code.NO_COMMIT,
                f"{root} is not a git checkout with a commit, and no --sha or CI variable names one",
                f"pass --sha COMMIT, set one of {', '.join(CI_SHA_VARIABLES[:2])}, or commit your work",
            )
        sha = head
    sha = sha.strip().lower()
    if not _SHA.fullmatch(sha):
        raise DokiError(
            Code.BAD_COMMIT,
            f"{sha!r} (from {source}) is not a commit sha",
            "pass the hex sha of the commit, at least 7 characters",
        )
    dirty = False
    if head is not None:
        if not head.startswith(sha) and not sha.startswith(head[: len(sha)]):
            raise DokiError(
                Code.COMMIT_MISMATCH,
                f"the release is for {sha[:12]} (from {source}) but {root} has {head[:12]} checked out",
                f"check out {sha[:12]} first, or release {head[:12]}",
            )
        sha = head if len(head) > len(sha) else sha
        changed = image_changes(root)
        dirty = bool(changed)
        if dirty and not allow_dirty:
            raise DokiError(
                Code.DIRTY_TREE,
                f"{root} has uncommitted changes to files the image holds ({_some(changed)}): "
                f"the image would not be what {sha[:SHORT]} holds",
                "commit or stash them, or pass --allow-dirty (the image is then tagged -dirty and never reused)",
            )
    return Commit(sha, dirty, source)


def image_changes(root: Path) -> list[str]:
    """Uncommitted changes (untracked files included) to what a build of `root` sends the engine, relative to it.

    A change the build never sees (doki.toml, tests, docs, what .dockerignore leaves out) does not make the image
    differ from the commit's, so it must not make its tag `-dirty`: that tag would name an image never built.
    """
    from doki_cli.engine import in_build_context

    # Porcelain paths are relative to the repository's top, whatever the directory: `root` may be below it. Without
    # rename detection a rename is a deletion and an addition, each entry one path ("XY PATH"), both under `root`.
    prefix = _git(root, "rev-parse", "--show-prefix")
    listing = _git_raw(root, "status", "--porcelain", "-z", "--no-renames", "--untracked-files=all", "--", ".")
    paths = [entry[3:] for entry in listing.split("\0") if entry]
    enters = in_build_context(root)
    return sorted({rel for path in paths if path.startswith(prefix) and enters(rel := path.removeprefix(prefix))})


def _some(paths: list[str]) -> str:
    return ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


def head_commit(root: Path) -> str | None:
    """The checkout's commit, in full; None outside a git checkout with one."""
    return _head(root)


def current_branch(root: Path) -> str | None:
    """The branch the checkout is on; None on a detached HEAD or outside a git checkout."""
    try:
        return _git(root, "symbolic-ref", "--quiet", "--short", "HEAD") or None
    except (OSError, subprocess.CalledProcessError):
        return None


def _head(root: Path) -> str | None:
    try:
        return _git(root, "rev-parse", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        return None


def _git(root: Path, *args: str) -> str:
    return _git_raw(root, *args).strip()


def _git_raw(root: Path, *args: str) -> str:
    # Fixed arguments, no shell: git from PATH, as the developer runs it.
    result = subprocess.run(
        ["git", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout
