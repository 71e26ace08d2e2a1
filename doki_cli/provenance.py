"""Who runs doki and from where, as `deploy` and `release` record it on the revisions they make (`doki history`).

Read from the environment alone, with no call to Google: a CI run names its actor and its URL in variables, a service
account key names its account in its file; elsewhere the local user and host are what is known.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from doki_cli.model import Provenance


def here(command: str, commit: str | None, env: Mapping[str, str] = os.environ) -> Provenance:
    """`command`'s provenance for a revision of `commit` ("" unknown), made by whoever runs doki here."""
    return Provenance(command, commit, who(env), where(env))


def who(env: Mapping[str, str]) -> str:
    """The service account of a key file (what Cloud Run's audit log names too), else the CI run's actor, else the
    local user."""
    account = _key_account(env.get("GOOGLE_APPLICATION_CREDENTIALS", ""))
    if account:
        return account
    for name in ("GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILDKITE_BUILD_CREATOR_EMAIL", "CIRCLE_USERNAME"):
        if env.get(name):
            return env[name]
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid with no passwd entry, in a container
        return ""


def where(env: Mapping[str, str]) -> str:
    """The CI run's URL (GitHub Actions, GitLab CI, Buildkite, CircleCI), else the host's name."""
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        return f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    for name in ("CI_JOB_URL", "BUILDKITE_BUILD_URL", "CIRCLE_BUILD_URL"):
        if env.get(name):
            return env[name]
    import socket

    return socket.gethostname()


def _key_account(path: str) -> str:
    if not path:
        return ""
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except (OSError, ValueError):
        return ""
    email = data.get("client_email") if isinstance(data, dict) else None
    return email if isinstance(email, str) else ""
