"""`doki keys`: make the secrets the backend needs."""

from __future__ import annotations

import typer

from doki_cli.context import app_of
from doki_cli.globaloptions import DokiTyper

app = DokiTyper(help="Make encryption keys and session secrets.", no_args_is_help=True)


@app.command("generate")
def generate(ctx: typer.Context) -> None:
    """Print a new Fernet ENCRYPTION_KEY and SESSION_SECRET_KEY, as .env lines (or JSON with --json).

    To rotate, put the new key first and keep the old one after it: ENCRYPTION_KEY=new,old.
    """
    import secrets

    from doki.crypto import generate_key

    out = app_of(ctx).output
    values = {
        "ENCRYPTION_KEY": generate_key(),
        "SESSION_SECRET_KEY": secrets.token_urlsafe(48),
    }
    out.data(values)
    for name, value in values.items():
        out.line(f"{name}={value}")
    out.note("Keep these in Secret Manager or a git-ignored .env; never commit them.")
