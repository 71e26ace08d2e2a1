"""What git says about the project: the version tag of an image built from it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from doki_cli.errors import DokiError


def version_tag(root: Path) -> str:
    """The short commit sha, with `-dirty` when the tree has uncommitted changes."""
    try:
        sha = _git(root, "rev-parse", "--short", "HEAD")
        dirty = bool(_git(root, "status", "--porcelain"))
    except (OSError, subprocess.CalledProcessError):
        raise DokiError(
            "no_git_version",
            f"{root} is not a git checkout with a commit, so the image has no version to be tagged with",
            "commit your work (git init && git commit), or pass --tag VERSION",
        ) from None
    return f"{sha}-dirty" if dirty else sha


def _git(root: Path, *args: str) -> str:
    # Fixed arguments, no shell: git from PATH, as the developer runs it.
    result = subprocess.run(
        ["git", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()
