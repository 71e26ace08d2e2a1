"""The container engine as the emulator sees it: just what Cloud Run's revisions and Cloud Build's steps call on it.

The emulator owns this interface so it imports nothing of the rest of doki: whoever starts an emulator passes an
engine that has these methods (`doki emulator start` passes doki's Docker engine; tests may pass a fake).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol


class Image(Protocol):
    """An image the engine built."""

    @property
    def id(self) -> str: ...

    @property
    def size(self) -> int: ...


class Container(Protocol):
    """A container the engine started."""

    @property
    def id(self) -> str: ...

    def status_or_gone(self) -> str:
        """The engine's status ("running", "exited", "dead", ...), or "gone" once it was removed."""
        ...

    def exit_code(self) -> int: ...

    def tail(self, lines: int) -> str:
        """Its last `lines` lines of output."""
        ...

    def follow_lines(self, stream: str) -> Iterator[str]:
        """The lines of `stream` ("stdout" or "stderr") from the start, as they come, until the container ends."""
        ...

    def remove(self) -> None:
        """Stop it and remove it; gone already is fine."""
        ...


class ContainerEngine(Protocol):
    """A container engine. Its methods raise `failure` when the engine refuses or fails; `str()` of that exception
    says why, in words the emulator passes on (a build step's last line, a revision's condition)."""

    @property
    def failure(self) -> type[Exception]: ...

    def build(
        self,
        context: Path,
        tags: list[str],
        *,
        build_args: dict[str, str],
        no_cache: bool,
        on_line: Callable[[str], None],
    ) -> Image:
        """Build `context`'s Dockerfile with every tag; each output line goes to `on_line` as it arrives."""
        ...

    def has_image(self, image: str) -> bool: ...

    def pull(self, image: str) -> None: ...

    def tag(self, image: str, target: str) -> None:
        """Give the local image `image` the additional name `target`."""
        ...

    def push(self, reference: str, auth_config: dict[str, str], on_line: Callable[[str], None]) -> str:
        """Push the local image `reference` with `auth_config`; the manifest digest the registry gave it."""
        ...

    def start_detached(
        self,
        image: str,
        name: str,
        *,
        command: list[str] | None,
        args: list[str] | None,
        environment: dict[str, str],
        labels: dict[str, str],
        tmpfs: dict[str, str] | None = None,
    ) -> Container:
        """Replace any container called `name` with `image` on the host network; `command` replaces the image's
        entrypoint and `args` its CMD, as Kubernetes-style specs mean them; `tmpfs`: memory file systems to mount, by
        path, with their mount options."""
        ...

    def containers_labelled(self, label: str, value: str) -> Sequence[Container]:
        """Every container, running or not, whose `label` is `value`."""
        ...
