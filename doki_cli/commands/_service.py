"""What the day-2 commands (status, rollback, cors, scale) share: doki.toml and the Google adapters, wired once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from doki_cli.state import GlobalOptions, global_options

if TYPE_CHECKING:
    from doki_cli.config import ServiceConfig
    from doki_cli.gcp.google import Google


def setup(ctx: typer.Context) -> tuple[GlobalOptions, ServiceConfig, Google]:
    from doki_cli.config import load_config
    from doki_cli.gcp.google import Google

    options = global_options(ctx)
    config = load_config(options.config, env=options.env, project=options.project, region=options.region)
    return options, config, Google.from_env(config.project, config.region)
