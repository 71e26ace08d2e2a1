"""The Docker engine, through the `docker` SDK: the only module that imports it.

Engine failures become DokiErrors that say where doki looked and what to do.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doki_cli.errors import Code, DokiError

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
# How much of a failing step's output to show: the end is where the error is.
FAILED_OUTPUT_LINES = 30
# How long a stopped container may take to exit on SIGTERM before it is killed.
STOP_GRACE_SECONDS = 5


@dataclass(frozen=True)
class BuiltImage:
    id: str
    tags: list[str]
    size: int


class DockerEngine:
    # What its methods raise when the engine refuses or fails, named for the emulator (which knows nothing of
    # DokiError; see doki_cli/emulator/engine.py).
    failure = DokiError

    def __init__(self, client: Any) -> None:
        self._client = client

    @classmethod
    def connect(cls) -> DockerEngine:
        import docker
        from docker.errors import DockerException

        source = "DOCKER_HOST" if os.environ.get("DOCKER_HOST") else "the default socket"
        where = os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET
        try:
            client = docker.from_env()
            client.ping()
        except DockerException as exc:
            raise DokiError(
                Code.DOCKER_UNREACHABLE,
                f"no Docker engine answers at {where} ({source}): {_short(exc)}",
                "start Docker (e.g. `sudo systemctl start docker`), or point DOCKER_HOST at a running engine",
            ) from None
        return cls(client)

    def build(
        self,
        context: Path,
        tags: list[str],
        *,
        build_args: dict[str, str] | None = None,
        no_cache: bool = False,
        on_line: Callable[[str], None] = lambda line: None,
    ) -> BuiltImage:
        """Build `context`'s Dockerfile with every tag; each output line goes to `on_line` as it arrives."""
        from docker.errors import APIError

        step_output: list[str] = []
        step = "(before the first step)"
        try:
            stream = self._client.api.build(
                path=str(context),
                tag=tags[0],
                buildargs=build_args or {},
                nocache=no_cache,
                network_mode="host",
                rm=True,
                forcerm=True,
                decode=True,
            )
            image_id = None
            for chunk in stream:
                if "error" in chunk:
                    output = "\n".join(step_output[-FAILED_OUTPUT_LINES:])
                    # A FROM that fails is a base image the engine cannot pull (no registry reachable, no login).
                    hint = (
                        "the base image could not be pulled: pass --base-image with one the engine has "
                        "(`docker images` lists them), or log the engine in to its registry"
                        if " : FROM " in step
                        else "fix the failing step (rerun with -v to see the whole build)"
                    )
                    raise DokiError(
                        Code.BUILD_FAILED,
                        f"the image build failed at {step}:\n{output}\n{chunk['error'].strip()}",
                        hint,
                    )
                text = chunk.get("stream", "")
                for line in text.splitlines():
                    if line.startswith("Step "):
                        step, step_output = line.strip(), []
                    elif line.strip():
                        step_output.append(line)
                    on_line(line)
                if "aux" in chunk and "ID" in chunk["aux"]:
                    image_id = chunk["aux"]["ID"]
        except APIError as exc:
            raise DokiError(Code.BUILD_FAILED, f"the Docker engine refused the build: {_short(exc)}", None) from None
        if image_id is None:
            raise DokiError(Code.BUILD_FAILED, "the engine finished without an image", "rerun with -v")
        image = self._client.images.get(image_id)
        for tag in tags[1:]:
            repository, _, name = tag.rpartition(":")
            image.tag(repository, name)
        return BuiltImage(id=image.id, tags=tags, size=int(image.attrs.get("Size", 0)))

    def ensure_port_publishing(self) -> None:
        """Refuse early on an engine that cannot publish ports.

        An engine without a bridge (dockerd --bridge=none) accepts published ports and silently runs the container
        with no network at all, which would otherwise only surface as a health-check timeout.
        """
        if not self._client.networks.list(names=["bridge"]):
            raise DokiError(
                Code.NO_PORT_PUBLISHING,
                "this Docker engine has no bridge network, so it cannot publish the container's port",
                "run with --network host",
            )

    def replace_container(
        self, image: str, name: str, *, environment: dict[str, str], port: int, host_network: bool
    ) -> RunningContainer:
        """Remove any container called `name`, then start `image` under that name."""
        from docker.errors import APIError, NotFound

        with contextlib.suppress(NotFound):
            self._client.containers.get(name).remove(force=True)
        try:
            if host_network:
                # Engines without port publishing (no bridge, as on our CI machines) still run host networking.
                container = self._client.containers.run(
                    image, name=name, detach=True, environment=environment, network_mode="host"
                )
            else:
                container = self._client.containers.run(
                    image, name=name, detach=True, environment=environment, ports={f"{port}/tcp": port}
                )
        except APIError as exc:
            raise DokiError(
                Code.CONTAINER_START_FAILED,
                f"the engine could not start {image}: {_short(exc)}",
                "if it cannot publish ports, use --network host",
            ) from None
        return RunningContainer(container)

    def has_image(self, image: str) -> bool:
        """Whether `image` is already in the engine's image store."""
        from docker.errors import ImageNotFound

        try:
            self._client.images.get(image)
        except ImageNotFound:
            return False
        return True

    def pull(self, image: str) -> None:
        """Pull `image` from its registry; a DokiError saying why when the engine cannot."""
        from docker.errors import APIError

        try:
            # The SDK splits the reference itself (tag or digest; no tag means "latest").
            self._client.images.pull(image)
        except APIError as exc:
            raise DokiError(Code.PULL_FAILED, f"the engine could not pull {image}: {_short(exc)}", None) from None

    def tag(self, image: str, target: str) -> None:
        """Give the local image `image` the additional name `target` (repository:tag)."""
        from docker.errors import ImageNotFound

        try:
            found = self._client.images.get(image)
        except ImageNotFound:
            raise _no_local_image(image) from None
        repository, tag = _split_reference(target)
        found.tag(repository, tag)

    def push(self, reference: str, auth_config: dict[str, str], on_line: Callable[[str], None]) -> str:
        """Push the local image `reference` (repository:tag) with `auth_config`; the digest the registry gave it.

        Failures become DokiErrors whose code says what went wrong (push_denied, registry_unreachable,
        repository_not_found, image_not_found, push_failed), so the caller can add the hint for its registry.
        """
        from docker.errors import APIError

        repository, tag = _split_reference(reference)
        digest = None
        try:
            for chunk in self._client.api.push(repository, tag=tag, auth_config=auth_config, stream=True, decode=True):
                if "error" in chunk:
                    raise _push_error(reference, chunk["error"])
                if "Digest" in chunk.get("aux", {}):
                    digest = str(chunk["aux"]["Digest"])
                # Byte-level progress ("Pushing" with a bar) would flood the output; each layer's outcome is enough.
                if chunk.get("status") and chunk["status"] != "Pushing":
                    layer = chunk.get("id")
                    on_line(f"{layer}: {chunk['status']}" if layer else chunk["status"])
        except APIError as exc:
            raise _push_error(reference, exc.explanation or str(exc)) from None
        if digest is None:
            raise DokiError(Code.PUSH_FAILED, f"the engine pushed {reference} but reported no digest", "rerun with -v")
        return digest

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
    ) -> RunningContainer:
        """Replace any container called `name` with `image` on the host network, with an init process.

        `command` replaces the image's entrypoint and `args` its CMD, as Kubernetes-style specs mean them. The init
        process forwards SIGTERM, so a program that installs no handler (PID 1 ignores it) still stops promptly.
        """
        from docker.errors import APIError, NotFound

        with contextlib.suppress(NotFound):
            self._client.containers.get(name).remove(force=True)
        try:
            container = self._client.containers.run(
                image,
                name=name,
                entrypoint=command or None,
                command=args or None,
                detach=True,
                environment=environment,
                labels=labels,
                network_mode="host",
                init=True,
                tmpfs=tmpfs or None,
            )
        except APIError as exc:
            raise DokiError(
                Code.CONTAINER_START_FAILED, f"the engine could not start {image}: {_short(exc)}", None
            ) from None
        return RunningContainer(container)

    def containers_labelled(self, label: str, value: str) -> list[RunningContainer]:
        """Every container, running or not, whose `label` is `value`."""
        found = self._client.containers.list(all=True, filters={"label": f"{label}={value}"})
        return [RunningContainer(container) for container in found]


def build_context(root: Path) -> bytes:
    """`root` as a gzipped tarball, without what its .dockerignore excludes: what `docker build` sends the engine.

    The pattern file is read and applied by the docker SDK's own code, the path every `engine.build` takes, so a
    remote build's upload holds exactly what a local build would see (and `.env` never leaves the machine).
    """
    from docker.utils.build import tar

    with tar(str(root), exclude=_ignore_patterns(root), gzip=True) as archive:
        data: bytes = archive.read()
    return data


def in_build_context(root: Path) -> Callable[[str], bool]:
    """Whether a path relative to `root` is sent to the engine by a build of `root`: what .dockerignore admits.

    The docker SDK's own matcher decides, with the Dockerfile always admitted as its `tar` admits it, so this
    agrees with `build_context` file by file without reading the tree.
    """
    from docker.utils.build import PatternMatcher

    matcher = PatternMatcher([*(_ignore_patterns(root) or []), "!Dockerfile"])
    return lambda path: not matcher.matches(path)


def _ignore_patterns(root: Path) -> list[str] | None:
    ignore = root / ".dockerignore"
    if not ignore.exists():
        return None
    # Parsed as docker-py's build() parses it: stripped lines, without blanks and comments.
    lines = (line.strip() for line in ignore.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _split_reference(reference: str) -> tuple[str, str]:
    """(repository, tag) of a name, "latest" when it has no tag (a registry's port is no tag)."""
    from docker.utils import parse_repository_tag

    repository, tag = parse_repository_tag(reference)
    return repository, tag or "latest"


def _no_local_image(image: str) -> DokiError:
    return DokiError(Code.IMAGE_NOT_FOUND, f"there is no local image {image}", "build it first: doki build")


# The engine's push errors by what they say (the first match decides), with a hint that fits any registry.
PUSH_ERRORS = (
    (("does not exist locally", "tag does not exist", "No such image"), Code.IMAGE_NOT_FOUND, ""),
    (
        ("unauthorized", "denied", "no basic auth credentials", "authentication required"),
        Code.PUSH_DENIED,
        "use credentials that may push to this registry",
    ),
    (("name unknown",), Code.REPOSITORY_NOT_FOUND, "create the repository in the registry first"),
    (
        ("connection refused", "no such host", "i/o timeout", "dial tcp", "server misbehaving"),
        Code.REGISTRY_UNREACHABLE,
        "check that the registry is up and reachable from the Docker engine",
    ),
)


def _push_error(reference: str, message: str) -> DokiError:
    for patterns, code, hint in PUSH_ERRORS:
        if any(pattern.lower() in message.lower() for pattern in patterns):
            if code == Code.IMAGE_NOT_FOUND:
                return _no_local_image(reference)
            return DokiError(code, f"pushing {reference} failed: {message.strip()}", hint)
    return DokiError(
        Code.PUSH_FAILED, f"pushing {reference} failed: {message.strip()}", "rerun with -v to see the push"
    )


def _short(exc: Exception) -> str:
    return re.sub(r"\s+", " ", str(exc)).strip()[:300]


@dataclass(frozen=True)
class RunningContainer:
    """A started container, with what the dev loop needs of it."""

    container: Any

    @property
    def id(self) -> str:
        return str(self.container.id)

    def status(self) -> str:
        self.container.reload()
        return str(self.container.status)

    def status_or_gone(self) -> str:
        """The engine's status of the container ("running", "exited", ...), or "gone" once it was removed."""
        from docker.errors import NotFound

        try:
            return self.status()
        except NotFound:
            return "gone"

    def exit_code(self) -> int:
        self.container.reload()
        return int(self.container.attrs["State"]["ExitCode"])

    def tail(self, lines: int = 40) -> str:
        return bytes(self.container.logs(tail=lines)).decode(errors="replace")

    def follow(self) -> Iterator[str]:
        for chunk in self.container.logs(stream=True, follow=True):
            yield bytes(chunk).decode(errors="replace")

    def follow_lines(self, stream: str) -> Iterator[str]:
        """The lines of `stream` ("stdout" or "stderr") from the start, as they come, until the container ends."""
        chunks = self.container.logs(stream=True, follow=True, stdout=stream == "stdout", stderr=stream == "stderr")
        pending = ""
        for chunk in chunks:
            pending += bytes(chunk).decode(errors="replace")
            *lines, pending = pending.split("\n")
            yield from lines
        if pending:
            yield pending

    def remove(self) -> None:
        """Stop the container (SIGTERM, then SIGKILL after a grace period) and remove it; gone already is fine."""
        from docker.errors import APIError, NotFound

        try:
            self.container.stop(timeout=STOP_GRACE_SECONDS)
            self.container.remove(force=True)
        except NotFound:
            pass
        except APIError as exc:
            # Removal already in progress (e.g. two stops racing) is the outcome wanted; anything else is not.
            if "already in progress" not in str(exc):
                raise

    def stop_and_remove(self) -> None:
        from docker.errors import NotFound

        try:
            self.container.stop(timeout=10)
            self.container.remove(force=True)
        except NotFound:
            pass
