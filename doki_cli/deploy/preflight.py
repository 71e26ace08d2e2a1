"""Checks a deploy or a release runs before its first write: what would keep the new revision from starting.

The backend refuses to start on settings production cannot run with (exit 78: a placeholder SUPABASE_URL, a
missing secret, an origin that is no origin). Found inside the container, that costs a whole deploy and a failed
revision; found here, nothing has changed yet. The rules are the backend's own (`doki.settings.problems_of`), asked
of doki.toml's plain settings; the values that live in Secret Manager count as set (the planner checks that each
has a version that exists and is enabled).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from doki_cli.config import ServiceConfig
from doki_cli.errors import EXIT_CONFIG, Code, DokiError

if TYPE_CHECKING:
    from doki_cli.gcp.artifactregistry import ArtifactRegistry
    from doki_cli.gcp.serviceaccounts import ServiceAccounts

SKIP_HINT = "--skip-checks deploys anyway"


def startup_problems(config: ServiceConfig) -> list[str]:
    """What the backend would refuse at start with doki.toml's environment; empty when it would start."""
    from doki.settings import problems_of

    # The secrets' values are not read here: they count as set, and are checked where they live.
    return problems_of(config.env, elsewhere=set(config.secrets))


def preflight(config: ServiceConfig, *, skip: bool) -> list[str]:
    """Stop with exit 78, having changed nothing, when the new revision could not start; with `skip`, return the
    problems found instead, for the plan to show."""
    problems = startup_problems(config)
    if problems and not skip:
        where = f"[environments.{config.environment}] or [service]" if config.environment else "[service]"
        raise DokiError(
            Code.WOULD_NOT_START,
            f"the new revision of {config.name} would not start, the backend would refuse its settings: "
            + "; ".join(problems)
            + "; nothing was changed",
            f"fix the env and secrets of {where} in {config.path}; {SKIP_HINT}",
        )
    return problems


def image_check(registry: ArtifactRegistry, image: str, *, skip: bool) -> list[str]:
    """A new revision's image must be in Artifact Registry, where Cloud Run pulls it from ("Image '…' not found"
    fails the revision otherwise): stop with exit 78 when it is not; with `skip`, return the problem instead (a lookup
    that fails, too). Images elsewhere (Docker Hub, by digest) and remote or virtual repositories are not judged."""
    if not registry.is_tagged_reference(image):
        return []
    try:
        if registry.digest_of(image) is not None or not registry.is_standard_repository(image):
            return []
    except DokiError as err:
        if skip:
            return [f"whether {image} is in Artifact Registry is unknown: {err.message}"]
        raise
    problem = f"the image {image} is not in Artifact Registry, so Cloud Run could not pull it"
    if skip:
        return [problem]
    raise DokiError(
        Code.IMAGE_NOT_PUSHED,
        f"{problem}; nothing was changed",
        f"build and push it with `doki build --push`, or pass --image with one that is there; {SKIP_HINT}",
    )


def token_check(mint: Callable[[str], str], config: ServiceConfig) -> None:
    """A private service's release checks call it with an ID token: mint one now, before anything is built or
    deployed, so credentials that cannot (a user's login without [release] invoker_account, a missing
    roles/iam.serviceAccountTokenCreator, the IAM Credentials API off) stop the release with nothing changed. The
    audience does not matter to whether a token can be minted; the checks mint their own for the service's URL."""
    if config.allow_unauthenticated or config.ingress != "all":
        return  # public, or unreachable from here: the checks send no token
    try:
        mint(f"https://{config.name}.preflight.invalid")
    except DokiError as err:
        err.message = (
            f"{config.name} is private (allow_unauthenticated = false), and its release checks need an ID token that "
            f"could not be minted ({err.message}); nothing was built or changed"
        )
        if err.code == Code.NO_IDENTITY_TOKEN:
            err.exit_code = EXIT_CONFIG  # doki.toml names no account to mint it as
        raise


def account_check(accounts: ServiceAccounts, config: ServiceConfig, *, skip: bool) -> list[str]:
    """The runtime account must exist: Cloud Run refuses to deploy a service as one that does not, and no secret can
    be granted to it. Stop with exit 78, having changed nothing, when it is missing; with `skip`, return the problem
    instead (a lookup that fails, too: anyone allowed to deploy as the account may read it, through
    roles/iam.serviceAccountUser, so a refused lookup is itself worth stopping for)."""
    from doki_cli.gcp.serviceaccounts import create_command

    email = config.service_account
    if email is None:
        return []
    try:
        found = accounts.get(email)
    except DokiError as err:
        if skip:
            return [f"whether the runtime account {email} exists is unknown: {err.message}"]
        raise
    if found is not None:
        return []
    if skip:
        return [f"the runtime account {email} does not exist"]
    raise DokiError(
        Code.SERVICE_ACCOUNT_MISSING,
        f"the runtime account {email} (service_account in {config.path}) does not exist, and Cloud Run runs no "
        "revision as an account that does not; nothing was changed",
        f"create it: `doki doctor --create-account` (or {create_command(email)}), or name another in {config.path}",
    )
