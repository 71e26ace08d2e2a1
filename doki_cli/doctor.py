"""`doki doctor`'s checks: the deployment guide's security checklist and troubleshooting, each pass, warn or fail
with the fix. The local ones read only the project (they work offline); the others read the live project."""

from __future__ import annotations

import io
import re
import tarfile
from dataclasses import dataclass
from fnmatch import fnmatch
from typing import TYPE_CHECKING

from doki_cli.config import ServiceConfig, account_project, is_compute_default
from doki_cli.errors import Code, DokiError

if TYPE_CHECKING:
    from doki_cli.gcp.google import Google

PASS, WARN, FAIL = "pass", "warn", "fail"
SKIP = "skip"  # nothing to check: never a pass that vouches for nothing
_SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|CREDENTIAL|API_KEY|_KEY$)")
# Values that look like keys: long runs of base64/hex without spaces, or well-known token shapes.
_SECRET_VALUE = re.compile(r"^(eyJ[\w-]+\.[\w-]+\.[\w-]+|sk_[\w]{16,}|GOCSPX-[\w-]+|[A-Za-z0-9+/_=-]{40,})$")
_CREDENTIAL_FILES = ("*.pem", "*.key", "*.p12", "*credentials*.json", "*service-account*.json", "id_rsa*", ".env*")


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    message: str
    fix: str | None = None


def local_checks(config: ServiceConfig) -> list[Check]:
    return [
        _secrets_are_refs(config),
        _runtime_account(config),
        _cors(config),
        _production(config),
        _placeholders(config),
        _dockerfile_user(config),
        *_build_context(config),
    ]


def _secrets_are_refs(config: ServiceConfig) -> Check:
    plain = sorted(
        name for name, value in config.env.items() if _SECRET_NAME.search(name) or _SECRET_VALUE.match(value)
    )
    if plain:
        return Check(
            "secrets",
            FAIL,
            f"plain env vars that look secret: {', '.join(plain)}",
            "move them to [service.secrets] (`doki secrets push` stores the values in Secret Manager)",
        )
    return Check("secrets", PASS, f"{len(config.secrets)} secrets come from Secret Manager refs")


def _runtime_account(config: ServiceConfig) -> Check:
    account = config.service_account
    if account is None or is_compute_default(account):
        return Check(
            "runtime account",
            FAIL,
            "the revisions run as the default compute account, which has Editor on the whole project",
            'create a dedicated account and set service_account = "NAME@PROJECT.iam.gserviceaccount.com" in doki.toml',
        )
    owner = account_project(account)
    if owner is not None and owner != config.project:
        # Cloud Run takes an account of another project only where the organisation allows it (the constraint
        # iam.disableCrossProjectServiceAccountUsage, enforced by default) and Cloud Run's service agent of this
        # project may act as it (https://cloud.google.com/run/docs/configuring/services/service-identity).
        return Check(
            "runtime account",
            FAIL,
            f"revisions would run as {account}, an account of project {owner}, while {config.name} is in "
            f"{config.project}",
            f"create the account in {config.project} and name it in doki.toml ([environments.NAME] for a project of "
            "its own), or allow this project's Cloud Run to use it: see "
            "https://cloud.google.com/run/docs/configuring/services/service-identity",
        )
    return Check("runtime account", PASS, f"revisions run as {account}")


def _cors(config: ServiceConfig) -> Check:
    from doki.origins import origin_problem

    origins = [o.strip() for o in config.env.get("ALLOWED_ORIGINS", "").split(",") if o.strip()]
    if "*" in origins:
        return Check("cors", FAIL, "ALLOWED_ORIGINS contains '*'", "list your frontend origins exactly")
    problems = [p for o in origins if (p := origin_problem(o))]
    if problems:
        return Check("cors", FAIL, "; ".join(problems), "write each origin as scheme://host[:port]")
    if not origins:
        return Check(
            "cors", WARN, "ALLOWED_ORIGINS is not set: browsers cannot call the backend", "set it in [service.env]"
        )
    return Check("cors", PASS, f"{len(origins)} specific origin{'s' if len(origins) != 1 else ''}")


def _placeholders(config: ServiceConfig) -> Check:
    # The plain settings production checks for stand-ins (the secrets are checked where they live, in Secret Manager):
    # doki init writes such stand-ins, which the backend refuses at start, after a whole deploy.
    from doki.settings import is_placeholder

    stand_ins = sorted(
        name for name in ("SUPABASE_URL", "GOOGLE_CLIENT_ID") if is_placeholder(config.env.get(name) or "")
    )
    if stand_ins:
        return Check(
            "placeholders",
            FAIL,
            f"{', '.join(stand_ins)} still hold{'s' if len(stand_ins) == 1 else ''} a placeholder: "
            "production would refuse to start",
            "set the real values in doki.toml [service.env]",
        )
    return Check("placeholders", PASS, "no placeholder among the plain settings")


def _production(config: ServiceConfig) -> Check:
    environment = config.env.get("ENVIRONMENT")
    if config.environment not in (None, "production"):
        return Check("environment", PASS, f"[environments.{config.environment}] sets ENVIRONMENT={environment}")
    if environment != "production":
        return Check(
            "environment",
            FAIL,
            f"the production service runs with ENVIRONMENT={environment or '(unset)'}: "
            "development defaults would apply",
            'set ENVIRONMENT = "production" in [service.env]',
        )
    return Check("environment", PASS, "ENVIRONMENT=production")


def _dockerfile_user(config: ServiceConfig) -> Check:
    dockerfile = config.root / "Dockerfile"
    if not dockerfile.exists():
        return Check(
            "dockerfile user",
            FAIL,
            f"no Dockerfile in {config.root}",
            "add one (see docs/deploying.md#the-container-image)",
        )
    user = None
    for line in dockerfile.read_text().splitlines():
        words = line.strip().split()
        if words and words[0].upper() == "FROM":
            user = None  # each stage starts as root again
        elif len(words) >= 2 and words[0].upper() == "USER":
            user = words[1].split(":")[0]
    if user is None or user in ("root", "0"):
        return Check(
            "dockerfile user",
            FAIL,
            "the image's final stage runs as root",
            "add a non-root user and `USER 1000` (or its name) at the end of the final stage",
        )
    return Check("dockerfile user", PASS, f"the image runs as {user}")


def _build_context(config: ServiceConfig) -> list[Check]:
    from doki_cli.engine import build_context

    with tarfile.open(fileobj=io.BytesIO(build_context(config.root)), mode="r:gz") as archive:
        names = archive.getnames()
    leaked = sorted(n for n in names if any(fnmatch(n.rsplit("/", 1)[-1], p) for p in _CREDENTIAL_FILES))
    ignore = config.root / ".dockerignore"
    listed = ignore.exists() and any(
        line.strip() in (".env", ".env*", "/.env", "*") for line in ignore.read_text().splitlines()
    )
    checks = [
        Check("dockerignore", PASS, ".env is excluded from the build context")
        if listed and not any(n.rsplit("/", 1)[-1].startswith(".env") for n in names)
        else Check("dockerignore", FAIL, ".env is not excluded from the build context", "add `.env*` to .dockerignore")
    ]
    if leaked:
        checks.append(
            Check(
                "credential files",
                FAIL,
                f"the build context would send {_some(leaked)}",
                "exclude them in .dockerignore (or move them out of the project)",
            )
        )
    else:
        checks.append(Check("credential files", PASS, "no credential files in the build context"))
    return checks


def live_checks(config: ServiceConfig, google: Google, *, create_account: bool = False) -> list[Check]:
    """Checks that read the live project: the required APIs, that the runtime account exists (created first with
    `create_account`), secret access for it, ingress and invoker as configured. A check whose API is disabled is left
    out: the APIs check already says why."""
    apis, disabled = _required_apis(config, google)
    checks = [apis]
    if "iam.googleapis.com" not in disabled and (config.service_account or create_account):
        checks.append(_account_exists(config.service_account, google, create=create_account))
    if "secretmanager.googleapis.com" not in disabled:
        checks += _secret_checks(config, google)
    if "run.googleapis.com" in disabled:
        return checks
    live = google.run.get(config.name)
    if live is None:
        checks.append(Check("service", WARN, f"{config.name} is not deployed yet", "run `doki deploy`"))
        return checks
    drift = []
    if live.spec.ingress != config.ingress:
        drift.append(f"ingress is {live.spec.ingress}, doki.toml says {config.ingress}")
    public = google.run.is_public(config.name) or not live.spec.invoker_iam_check
    if public != config.allow_unauthenticated:
        drift.append(f"anyone {'may' if public else 'may not'} invoke it, doki.toml says the opposite")
    elif live.spec.invoker_iam_check != config.invoker_iam_check:
        drift.append(
            f"its invoker IAM check is {'on' if live.spec.invoker_iam_check else 'off'}, doki.toml says "
            f"{'on' if config.invoker_iam_check else 'off'}"
        )
    checks.append(
        Check("ingress and invoker", FAIL, "; ".join(drift), "run `doki deploy` to apply doki.toml")
        if drift
        else Check("ingress and invoker", PASS, "match doki.toml")
    )
    return checks


def _account_exists(email: str | None, google: Google, *, create: bool) -> Check:
    """The runtime account exists: Cloud Run runs no revision as one that does not ("Permission
    'iam.serviceaccounts.actAs' denied … (or it may not exist)"), and no secret can be granted to it. A lookup IAM
    refuses fails as a deploy would stop on it."""
    from doki_cli.gcp.serviceaccounts import create_command, user_managed

    name = "runtime account exists"
    if email is None:
        return Check(name, SKIP, "doki.toml names no service_account: nothing to look up or create")
    if user_managed(email) is None:
        return Check(name, SKIP, f"{email} is an account Google makes: not looked up")
    try:
        if create:
            try:
                _, created = google.accounts.create(email, "doki runtime", "Runs the Cloud Run revisions doki deploys")
                return Check(name, PASS, f"{email} {'created' if created else 'exists'}")
            except DokiError as err:
                if err.code != Code.PERMISSION_DENIED:
                    raise
                # No right to create accounts says nothing of whether this one exists: the lookup below does.
        found = google.accounts.get(email)
    except DokiError as err:
        return Check(name, FAIL, f"cannot tell whether {email} exists: {err.message}", err.hint)
    if found is None:
        return Check(
            name,
            FAIL,
            f"{email} does not exist: deploys and releases stop until it does",
            f"`doki doctor --create-account` creates it (or {create_command(email)})",
        )
    return Check(name, PASS, f"{email} exists")


def _secret_checks(config: ServiceConfig, google: Google) -> list[Check]:
    """Every referenced secret exists with the version doki.toml names enabled, and the runtime account may read each
    (a missing one cannot be granted)."""
    from doki_cli.deploy.planner import secret_version

    secrets = sorted({ref.secret for ref in config.secrets.values()})
    absent = [secret for secret in secrets if not google.secrets.exists(secret)]
    checks = []
    if absent:
        checks.append(
            Check(
                "secrets exist",
                FAIL,
                f"doki.toml references secrets that do not exist: {', '.join(absent)}",
                "run `doki secrets push` (values from .env)",
            )
        )
    # What a deploy would stop at: a version it names that is disabled, destroyed or missing.
    unusable: list[DokiError] = []
    for env_name, ref in sorted(config.secrets.items()):
        if ref.secret not in absent:
            try:
                secret_version(google.secrets, env_name, ref)
            except DokiError as err:
                unusable.append(err)
    if unusable:
        checks.append(
            Check(
                "secret versions",
                FAIL,
                "; ".join(err.message.removesuffix(", so nothing was changed") for err in unusable),
                "; ".join(dict.fromkeys(err.hint or "" for err in unusable)),
            )
        )
    if not config.service_account:
        return checks
    if not secrets or set(absent) == set(secrets):
        nothing = "doki.toml references no secrets" if not secrets else "none of the referenced secrets exists yet"
        checks.append(Check("secret access", SKIP, f"{nothing}: nothing to check"))
        return checks
    member = f"serviceAccount:{config.service_account}"
    missing = [s for s in secrets if s not in absent and not google.secrets.is_granted(s, member)]
    checks.append(
        Check(
            "secret access",
            FAIL,
            f"{config.service_account} cannot read {', '.join(missing)}",
            "run `doki secrets grant`",
        )
        if missing
        else Check(
            "secret access",
            PASS,
            f"{config.service_account} can read every referenced secret" + (" that exists" if absent else ""),
        )
    )
    return checks


def _required_apis(config: ServiceConfig, google: Google) -> tuple[Check, list[str]]:
    """The required APIs check, and which of them are disabled."""
    from doki_cli.gcp.serviceusage import REQUIRED_APIS

    try:
        disabled = google.service_usage.disabled(REQUIRED_APIS)
    except DokiError as err:
        if err.code not in ("permission_denied", "api_disabled"):
            raise
        # Reading them needs a role of its own: not having it says nothing about the APIs.
        return Check("required APIs", WARN, f"cannot tell which APIs are enabled: {err.message}", err.hint), []
    if disabled:
        return Check(
            "required APIs",
            FAIL,
            f"not enabled in {config.project}: {', '.join(disabled)}",
            f"gcloud services enable {' '.join(disabled)} --project {config.project}",
        ), disabled
    names = ", ".join(api.removesuffix(".googleapis.com") for api in REQUIRED_APIS)
    return Check("required APIs", PASS, f"{names} are enabled"), []


def _some(names: list[str], shown: int = 5) -> str:
    """`names`, the first `shown` of them and how many more: a big context can hold thousands."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
