"""A build's source: the (gzipped) tarball `gcloud builds submit` uploads, unpacked into the build's workspace.

The tarball comes from whoever can write to the bucket, so nothing in it may land outside the workspace: absolute
paths, ".." components, links pointing out, and device files refuse the whole source rather than being skipped,
so a build never runs on a silently different tree.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
from pathlib import Path


class UnsafeSource(Exception):
    """The source cannot be unpacked safely, or is not a tar archive at all."""


def _escapes(path: str) -> bool:
    normal = posixpath.normpath(path)
    return posixpath.isabs(path) or normal == ".." or normal.startswith("../")


def _check(member: tarfile.TarInfo) -> None:
    if posixpath.isabs(member.name) or ".." in member.name.split("/"):
        raise UnsafeSource(f'the source archive member "{member.name}" would be extracted outside the workspace')
    if member.issym():
        target = posixpath.join(posixpath.dirname(member.name), member.linkname)
        if posixpath.isabs(member.linkname) or _escapes(target):
            raise UnsafeSource(
                f'the source archive member "{member.name}" links to "{member.linkname}", outside the workspace'
            )
    elif member.islnk():
        if _escapes(member.linkname):
            raise UnsafeSource(
                f'the source archive member "{member.name}" links to "{member.linkname}", outside the workspace'
            )
    elif not (member.isfile() or member.isdir()):
        raise UnsafeSource(f'the source archive member "{member.name}" is a device or pipe, not a file')


def extract(tarball: bytes, workspace: Path) -> int:
    """Unpack `tarball` into `workspace`; the number of members, or UnsafeSource."""
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:*") as archive:
            members = archive.getmembers()
            for member in members:
                _check(member)
            # The "data" filter re-checks every path and also drops setuid bits and ownership.
            archive.extractall(workspace, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise UnsafeSource(f"the source is not a tar archive that can be unpacked: {exc}") from None
    return len(members)
