"""`doki build`: the production image from the project's Dockerfile, tagged by commit."""

from __future__ import annotations

from typing import Annotated

import typer

from doki_cli.options import BaseImageOption
from doki_cli.state import global_options

TagOption = Annotated[
    str | None, typer.Option("--tag", help="Version tag instead of the git short sha (':latest' is added too).")
]
NoCacheOption = Annotated[bool, typer.Option("--no-cache", help="Rebuild every layer.")]


def build(
    ctx: typer.Context, tag: TagOption = None, base_image: BaseImageOption = None, no_cache: NoCacheOption = False
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
    engine = DockerEngine.connect()
    out.line(f"Building {tags[0]} from {config.root}")

    build_args = {"BASE_IMAGE": base_image} if base_image else None
    with out.build_progress() as on_line:
        image = engine.build(config.root, tags, build_args=build_args, no_cache=no_cache, on_line=on_line)
    out.data({"image": config.image, "tags": image.tags, "id": image.id, "size": image.size})
    out.line(f"Built {image.id[:19]} ({image.size / 1e6:.0f} MB)")
    for name in image.tags:
        out.line(f"  {name}")
