"""PLACEHOLDER: `doki logs` (being written)."""

from __future__ import annotations

import typer


def logs(ctx: typer.Context) -> None:
    """Show the service's logs."""
    raise NotImplementedError
