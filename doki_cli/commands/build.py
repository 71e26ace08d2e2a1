"""`doki build`: the production image from the project's Dockerfile, tagged by commit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from doki_cli.options import BaseImageOption
from doki_cli.state import global_options

if TYPE_CHECKING:
    from doki_cli.config import ServiceConfig
    from doki_cli.output import Output

TagOption = Annotated[
    str | None, typer.Option("--tag", help="Version tag instead of the git short sha (':latest' is added too).")
]
NoCacheOption = Annotated[bool, typer.Option("--no-cache", help="Rebuild every layer.")]
RemoteOption = Annotated[
    bool, typer.Option("--remote", help="Build on Cloud Build and push to Artifact Registry (as gcloud builds submit).")
]


def build(
    ctx: typer.Context,
    tag: TagOption = None,
    base_image: BaseImageOption = None,
    no_cache: NoCacheOption = False,
    remote: RemoteOption = False,
) -> None:
    """Build the image through the Docker engine, tagged <image>:<git sha>[-dirty] and <image>:latest."""
    from doki_cli.config import load_config
    from doki_cli.engine import DockerEngine
    from doki_cli.gitinfo import version_tag

    options = global_options(ctx)
    out = options.output
    config = load_config(options.config, env=options.env, project=options.project, region=options.region)
    version = tag or version_tag(config.root)
    tags = [f"{config.image}:{version}", f"{config.image}:latest"]
    if remote:
        _build_remote(out, config, tags, base_image)
        return
    engine = DockerEngine.connect()
    out.line(f"Building {tags[0]} from {config.root}")

    build_args = {"BASE_IMAGE": base_image} if base_image else None
    with out.build_progress() as on_line:
        image = engine.build(config.root, tags, build_args=build_args, no_cache=no_cache, on_line=on_line)
    out.data({"image": config.image, "tags": image.tags, "id": image.id, "size": image.size})
    out.line(f"Built {image.id[:19]} ({image.size / 1e6:.0f} MB)")
    for name in image.tags:
        out.line(f"  {name}")


def _build_remote(out: Output, config: ServiceConfig, tags: list[str], base_image: str | None) -> None:
    from doki_cli.engine import build_context
    from doki_cli.gcp.google import Google

    google = Google.from_env(config.project, config.region)
    if google.cloud_build.ensure_repository(config.repository):
        out.note(f"created the Artifact Registry repository {config.repository} in {config.region}")
    context = build_context(config.root)
    out.line(f"Building {tags[0]} on Cloud Build ({len(context) / 1e6:.1f} MB of context, .dockerignore applied)")
    build_args = {"BASE_IMAGE": base_image} if base_image else {}
    result = google.cloud_build.submit(context, tags, build_args=build_args, on_line=out.debug)
    out.data({"image": config.image, "tags": tags, "build": result.id, "digests": result.images})
    out.line(f"Built and pushed on Cloud Build (build {result.id})")
    for name in tags:
        out.line(f"  {name}  {result.images.get(name, '')}".rstrip())
