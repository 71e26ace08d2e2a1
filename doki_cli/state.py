"""The global options every command sees, parsed once by the top-level callback."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from typer._click.core import Context

from doki_cli.output import Output


@dataclass(frozen=True)
class GlobalOptions:
    config: Path | None = None
    env: str | None = None
    project: str | None = None
    region: str | None = None
    json: bool = False
    verbose: int = 0
    output: Output = field(default_factory=Output)


def global_options(ctx: Context) -> GlobalOptions:
    """The options of the `doki` call that `ctx` belongs to."""
    root = ctx.find_root()
    if isinstance(root.obj, GlobalOptions):
        return root.obj
    return GlobalOptions()
