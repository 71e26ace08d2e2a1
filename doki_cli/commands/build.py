"""`doki build`: the production image from the project's Dockerfile, tagged by commit, and pushed on request."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

import typer

from doki_cli.context import App, app_of
from doki_cli.errors import Code, DokiError
from doki_cli.options import BaseImageOption

if TYPE_CHECKING:
    from doki_cli.gcp.google import Google

TagOption = Annotated[
    str | None, typer.Option("--tag", help="Version tag instead of the git short sha (':latest' is added too).")
]
NoCacheOption = Annotated[bool, typer.Option("--no-cache", help="Rebuild every layer.")]
RemoteOption = Annotated[
    bool, typer.Option("--remote", help="Build on Cloud Build and push to Artifact Registry (as gcloud builds submit).")
]
PushOption = Annotated[bool, typer.Option("--push", help="Push every tag to Artifact Registry after the local build.")]
# Docker's tag grammar.
DOCKER_TAG = re.compile(r"\w[\w.-]{0,127}", re.ASCII)


def build(
    ctx: typer.Context,
    tag: TagOption = None,
    base_image: BaseImageOption = None,
    no_cache: NoCacheOption = False,
    remote: RemoteOption = False,
    push: PushOption = False,
) -> None:
    """Build the image through the Docker engine, tagged <image>:<git sha>[-dirty] and <image>:latest."""
    from doki_cli.engine import DockerEngine
    from doki_cli.gitinfo import version_tag

    app = app_of(ctx)
    out = app.output
    if push and remote:
        raise DokiError(
            Code.BAD_OPTION,
            "--push and --remote do not go together: a remote build pushes its image itself",
            "drop --push: doki build --remote builds on Cloud Build and pushes to Artifact Registry",
        )
    if tag is not None and not DOCKER_TAG.fullmatch(tag):
        raise DokiError(
            Code.BAD_OPTION,
            f"--tag {tag!r} is not a Docker tag",
            "use up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-' (e.g. --tag v1.2.3)",
        )
    config = app.config
    version = tag or version_tag(config.root, hint="commit your work (git init && git commit), or pass --tag VERSION")
    tags = [f"{config.image}:{version}", f"{config.image}:latest"]
    if remote:
        _build_remote(app, tags, base_image)
        return
    engine = DockerEngine.connect()
    google = None
    if push:
        # Made sure of before building, so a missing credential, permission or setting fails fast.
        google = _with_repository(app)
        google.artifact_registry.login()
    out.line(f"Building {tags[0]} from {config.root}")

    build_args = {"BASE_IMAGE": base_image} if base_image else None
    with out.build_progress() as on_line:
        image = engine.build(config.root, tags, build_args=build_args, no_cache=no_cache, on_line=on_line)
    result: dict[str, object] = {"image": config.image, "tags": image.tags, "id": image.id, "size": image.size}
    out.line(f"Built {image.id[:19]} ({image.size / 1e6:.0f} MB)")
    if google is None:
        out.data(result)
        for name in image.tags:
            out.line(f"  {name}")
        return
    digest = google.artifact_registry.push(engine, image.tags, on_line=out.debug)
    # One image under every tag: one manifest, so one digest (`digests` has the shape `--remote` reports).
    out.data({**result, "digest": digest, "digests": dict.fromkeys(image.tags, digest)})
    out.line("Pushed to Artifact Registry")
    for name in image.tags:
        out.line(f"  {name}  {digest}")


def _with_repository(app: App) -> Google:
    """The project's Google adapters, once the Artifact Registry repository images go to exists."""
    config, google = app.config, app.google
    if google.artifact_registry.ensure_repository(config.repository):
        app.output.note(f"created the Artifact Registry repository {config.repository} in {config.region}")
    return google


def _build_remote(app: App, tags: list[str], base_image: str | None) -> None:
    from doki_cli.engine import build_context
    from doki_cli.gcp.cloudbuild import build_identity

    out, config = app.output, app.config
    google = _with_repository(app)
    context = build_context(config.root)
    account = config.build.service_account
    out.line(
        f"Building {tags[0]} on Cloud Build ({len(context) / 1e6:.1f} MB of context, .dockerignore applied), "
        + build_identity(account)
    )
    build_args = {"BASE_IMAGE": base_image} if base_image else {}
    result = google.cloud_build.submit(context, tags, build_args=build_args, service_account=account, on_line=out.debug)
    out.data({"image": config.image, "tags": tags, "build": result.id, "digests": result.images})
    out.line(f"Built and pushed on Cloud Build (build {result.id})")
    for name in tags:
        out.line(f"  {name}  {result.images.get(name, '')}".rstrip())
