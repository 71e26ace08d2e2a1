"""Checks a deploy or a release runs before its first write: what would keep the new revision from starting.

The backend refuses to start on settings production cannot run with (exit 78: a placeholder SUPABASE_URL, a
missing secret, an origin that is no origin). Found inside the container, that costs a whole deploy and a failed
revision; found here, nothing has changed yet. The rules are the backend's own (`doki.settings.problems_of`), asked
of doki.toml's plain settings, with valid stand-ins for the values that live in Secret Manager (whose own checks,
a version that exists and is enabled, the planner makes).
"""

from __future__ import annotations

import secrets

from doki_cli.config import ServiceConfig
from doki_cli.errors import DokiError
from doki_cli.gitinfo import EXIT_CONFIG

SKIP_HINT = "--skip-checks deploys anyway"


def startup_problems(config: ServiceConfig) -> list[str]:
    """What the backend would refuse at start with doki.toml's environment; empty when it would start."""
    from doki.crypto import generate_key
    from doki.settings import problems_of

    values = dict(config.env)
    for name in config.secrets:
        # A stand-in any check accepts: the real value is checked where it lives, not read here.
        values[name] = generate_key() if name.startswith("ENCRYPTION_KEY") else secrets.token_urlsafe(48)
    return problems_of(values)


def preflight(config: ServiceConfig, *, skip: bool) -> list[str]:
    """Stop with exit 78, having changed nothing, when the new revision could not start; with `skip`, return the
    problems found instead, for the plan to show."""
    problems = startup_problems(config)
    if problems and not skip:
        where = f"[environments.{config.environment}] or [service]" if config.environment else "[service]"
        raise DokiError(
            "would_not_start",
            f"the new revision of {config.name} would not start, the backend would refuse its settings: "
            + "; ".join(problems)
            + "; nothing was changed",
            f"fix the env and secrets of {where} in {config.path}; {SKIP_HINT}",
            exit_code=EXIT_CONFIG,
        )
    return problems
