"""What `doki init` writes: doki.toml, .dockerignore, .env.example and the CI templates that call `doki release`.

The templates are package data (`doki_cli/templates/`), with `%name` placeholders (`$` and `{}` belong to Cloud
Build and GitHub Actions). `.env.example` is generated from the backend's own `Settings`, so it lists every setting
the backend reads, with every name it accepts, and cannot fall behind.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from doki_cli.config import DEFAULT_REGION

if TYPE_CHECKING:
    from doki_cli.model import LiveService

TEMPLATES = Path(__file__).parent / "templates"
# Where each file goes in the project, and the template it comes from (None: generated here).
FILES: dict[str, str | None] = {
    "doki.toml": "doki.toml.tmpl",
    ".dockerignore": "dockerignore.tmpl",
    ".env.example": None,
    "cloudbuild.yaml": "cloudbuild.yaml.tmpl",
    ".github/workflows/doki-release.yml": "doki-release.yml.tmpl",
}
# What the generated doki.toml says until the user gives the real values (the backend refuses "your-" in production).
PLACEHOLDER_SUPABASE_URL = "https://your-project-ref.supabase.co"
PLACEHOLDER_ORIGIN = "https://app.example.com"

# What each setting means, by its environment name; a setting added to `Settings` without an entry here is still
# listed, with its type and default.
DESCRIPTIONS = {
    "ENVIRONMENT": "development or production. Production refuses to start on missing or placeholder secrets.",
    "PORT": "Port to listen on. Cloud Run sets it itself.",
    "ALLOWED_ORIGINS": "Comma-separated CORS origins, each scheme://host[:port]; never *.",
    "SESSION_SECRET_KEY": "Signs the session cookie (OAuth state); at least 32 characters in production.",
    "ENCRYPTION_KEY": "Fernet keys, comma-separated: the first encrypts, all decrypt (rotation: new,old).",
    "SUPABASE_URL": "Your Supabase project, https://<ref>.supabase.co.",
    "SUPABASE_SECRET_KEY": "The service role (secret) key: the credential store writes with it.",
    "SUPABASE_JWT_SECRET": "Legacy HS256 JWT secret; set only if your project still signs tokens with it.",
    "SUPABASE_JWT_ALGORITHMS": "Asymmetric algorithms accepted from the project's signing keys (ES256, RS256).",
    "SUPABASE_ANON_KEY": "The publishable (anon) key for Supabase Auth calls made for users.",
    "GOOGLE_CLIENT_ID": "Google OAuth client id.",
    "GOOGLE_CLIENT_SECRET": "Google OAuth client secret.",
    "GOOGLE_REDIRECT_URI": "OAuth callback, https outside loopback; `doki deploy` sets it from the service URL.",
    "GOOGLE_AUTH_URL": "Google's OAuth authorization endpoint (change it only to point at a local stand-in).",
    "GOOGLE_TOKEN_URL": "Google's OAuth token endpoint (change it only to point at a local stand-in).",
    "GOOGLE_REVOKE_URL": "Google's OAuth revocation endpoint (change it only to point at a local stand-in).",
    "GOOGLE_DRIVE_API_URL": "The Google Drive API (change it only to point at a local stand-in).",
    "GOOGLE_SHEETS_API_URL": "The Google Sheets API (change it only to point at a local stand-in).",
    "FRONTEND_URL": "Where the browser lands after signing in with Google; unset, the callback answers JSON.",
    "GCP_PROJECT_ID": "Ties log lines to Cloud Trace.",
    "CREDENTIAL_STORE": "auto (Supabase once its URL and key are set, else SQLite), sqlite or supabase.",
    "CREDENTIALS_TABLE": "Table of the Supabase credential store.",
    "LEGACY_CREDENTIALS_TABLE": "The original backend's table (credentials): its users' connections are carried over.",
    "LEGACY_ENCRYPTION_KEY": "The original backend's Fernet key(s), comma-separated; unset, ENCRYPTION_KEY's.",
    "DOKI_STATE_DIR": "Local state: development keys, the SQLite credential store.",
    "LOG_LEVEL": "DEBUG, INFO, WARNING, ...",
}
# Examples for settings without a default worth showing.
EXAMPLES = {
    "ALLOWED_ORIGINS": "http://localhost:3000,http://localhost:5173",
    "SUPABASE_URL": "https://your-project-ref.supabase.co",
    "GOOGLE_REDIRECT_URI": "http://localhost:8080/auth/google/callback",
    "FRONTEND_URL": "http://localhost:3000",
    "GCP_PROJECT_ID": "your-project-id",
}


class _Template(string.Template):
    delimiter = "%"


@dataclass(frozen=True)
class Answers:
    """What the templates are filled with."""

    service: str
    project: str
    region: str = DEFAULT_REGION
    supabase_url: str = PLACEHOLDER_SUPABASE_URL
    origins: tuple[str, ...] = (PLACEHOLDER_ORIGIN,)

    @property
    def account_id(self) -> str:
        """The runtime service account's id: 6 to 30 characters, from the service name."""
        base = (service_name_for(self.service) or "doki")[:22].rstrip("-")
        return f"{base}-runtime"

    @property
    def account_email(self) -> str:
        return f"{self.account_id}@{self.project}.iam.gserviceaccount.com"


def service_name_for(text: str) -> str | None:
    """A Cloud Run service name made from `text`, such as a directory name (`My_API` -> `my-api`), or None."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower())
    name = re.sub(r"^[^a-z]+", "", name)[:49].rstrip("-")
    return name or None


def render(answers: Answers) -> dict[str, str]:
    """Every file `doki init` writes, by its path in the project."""
    values = {
        "service": answers.service,
        "project": answers.project,
        "region": answers.region,
        "account_id": answers.account_id,
        "supabase_url": answers.supabase_url,
        # JSON strings of URLs are TOML strings too.
        "origins": ", ".join(json.dumps(origin) for origin in answers.origins),
    }
    files = {}
    for path, template in FILES.items():
        if template is None:
            files[path] = env_example()
        else:
            files[path] = _Template((TEMPLATES / template).read_text()).substitute(values)
    return files


@dataclass(frozen=True)
class Setting:
    """One setting of the backend as the environment spells it."""

    name: str
    aliases: tuple[str, ...]
    secret: bool
    default: str | None


def backend_settings() -> list[Setting]:
    """Every setting `doki.settings.Settings` reads, in its order."""
    from pydantic import AliasChoices, SecretStr

    from doki.settings import Settings

    found = []
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names = [str(n) for n in alias.choices] if isinstance(alias, AliasChoices) else [field_name.upper()]
        secret = SecretStr in getattr(field.annotation, "__args__", (field.annotation,))
        found.append(Setting(names[0], tuple(names[1:]), secret, _default(field)))
    return found


def _default(field: Any) -> str | None:
    from enum import Enum

    value = field.get_default(call_default_factory=True)
    if value is None or value == []:
        return None
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def env_example() -> str:
    """`.env.example`: every setting commented out, secrets first, each with what it means and its default."""
    settings = backend_settings()
    lines = [
        "# Every setting the Doki backend reads. Copy this file to .env (git-ignored, never committed) and uncomment",
        "# what you set: `doki dev` reads .env, and `doki secrets push` sends the secrets in doki.toml's",
        "# [service.secrets] to Secret Manager from it. Each line shows the default, or an example where there is",
        "# none. Real environment variables win over .env.",
    ]
    sections = (
        (
            "Secrets: in production they come from Secret Manager (doki.toml [service.secrets]), never from plain "
            "env vars. Development generates SESSION_SECRET_KEY and ENCRYPTION_KEY when they are unset; "
            "`doki keys generate` makes real ones.",
            [s for s in settings if s.secret],
        ),
        ("Settings: in production they come from doki.toml [service.env].", [s for s in settings if not s.secret]),
    )
    for title, members in sections:
        lines += ["", *_comment(title)]
        for setting in members:
            lines.append("")
            lines += _comment(DESCRIPTIONS.get(setting.name, ""))
            if setting.aliases:
                names = "name" if len(setting.aliases) == 1 else "names"
                lines.append(f"# Also read as {', '.join(setting.aliases)} (the deployment guide's {names}).")
            lines.append(f"# {setting.name}={setting.default or EXAMPLES.get(setting.name, '')}")
    return "\n".join(lines) + "\n"


def _comment(text: str, width: int = 116) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append("# " + word)
    return lines


@dataclass(frozen=True)
class Adopted:
    """A live service, as `doki init --from-service` turns it into doki.toml."""

    live: LiveService
    project: str
    region: str
    public: bool  # allUsers may invoke it


# The Artifact Registry image names doki builds: REGION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE[:tag][@digest].
_ARTIFACT_IMAGE = re.compile(r"[a-z0-9-]+-docker\.pkg\.dev/[^/]+/(?P<repository>[^/]+)/[^:@]+(?::[^@]*)?(?:@.*)?")


def adopted_toml(adopted: Adopted) -> str:
    """doki.toml describing `adopted.live` as it runs, so a first `doki deploy` changes only what doki itself adds
    (its image, pinned secret versions, GOOGLE_REDIRECT_URI) and keeps everything else the service has."""
    from doki_cli.config import env_name_problem, is_compute_default

    live = adopted.live
    spec = live.spec
    match = _ARTIFACT_IMAGE.fullmatch(spec.image)
    lines = [
        f"# Written by `doki init --from-service {live.name}` from the live service: its settings, as doki.toml. doki",
        "# deploy changes only what differs from here, and keeps what this file does not manage (listed at the end).",
        "",
        "[service]",
        f"name = {json.dumps(live.name)}",
        f"project = {json.dumps(adopted.project)}",
        f"region = {json.dumps(adopted.region)}",
    ]
    if match:
        lines.append(f"repository = {json.dumps(match['repository'])}")
    else:
        lines += [
            f"# The live image, {spec.image}, is not in Artifact Registry (gcr.io takes no pushes since March 2025):",
            "# doki builds into this repository, and creates it when it is missing.",
            'repository = "cloud-run-source-deploy"',
        ]
    lines += [
        f"port = {spec.port}",
        f"memory = {json.dumps(spec.memory)}",
        f"cpu = {json.dumps(_whole_cpus(spec.cpu))}",
        f"min_instances = {spec.min_instances}",
        f"max_instances = {spec.max_instances}",
        f"timeout_seconds = {spec.timeout_seconds}",
        f"concurrency = {spec.concurrency}",
        f"ingress = {json.dumps(spec.ingress)}",
        f"allow_unauthenticated = {'true' if adopted.public or not spec.invoker_iam_check else 'false'}",
    ]
    if not spec.invoker_iam_check:
        lines.append("invoker_iam_check = false  # anyone may call it, without an allUsers binding")
    if spec.service_account and not is_compute_default(spec.service_account):
        lines.append(f"service_account = {json.dumps(spec.service_account)}")
    else:
        lines += [
            "# The revisions run as the project's Compute Engine default account (none is named). A dedicated one is",
            "# safer: create it, name it here, and `doki deploy` grants it the secrets below.",
            f'# service_account = "{Answers(live.name, adopted.project).account_email}"',
        ]
    redirect = live.uri.rstrip("/") + "/auth/google/callback"
    env = {name: value for name, value in spec.env.items() if not (name == "GOOGLE_REDIRECT_URI" and value == redirect)}
    # Variables doki.toml cannot name (doki's rules on names), and secrets of another project (doki.toml names its
    # own project's): left out, so a deploy keeps them as they are, and listed at the end.
    unnamed = [name for name in [*env, *spec.secrets] if env_name_problem(name)]
    foreign = [name for name in spec.secrets if name in live.foreign_secrets]
    lines += ["", "[service.env]"]
    for name, value in env.items():
        if name not in unnamed:
            lines.append(f"{name} = {_toml_env_value(name, value)}")
    lines += [
        "",
        "# Environment variable = Secret Manager secret (latest version unless `name:version`).",
        "[service.secrets]",
    ]
    for name, ref in spec.secrets.items():
        if name in unnamed or name in foreign:
            continue
        secret, _, version = ref.partition(":")
        lines.append(f"{name} = {_toml_string(secret if version in ('', 'latest') else ref)}")
    if unnamed:
        lines += ["", "# Kept as they are: variables doki.toml cannot name, " + ", ".join(unnamed) + "."]
    if foreign:
        held = ", ".join(f"{name} ({live.foreign_secrets[name]})" for name in foreign)
        lines += ["", f"# Kept as they are: secrets of another project, {held}."]
    if live.kept:
        lines += [
            "",
            "# Kept as they are by every deploy while this file does not declare them (docs/configuration.md, Cloud "
            "Run settings): " + ", ".join(map(str, live.kept)) + ".",
        ]
    return "\n".join(lines) + "\n"


def _whole_cpus(cpu: str) -> str:
    # Cloud Run answers a default CPU as "1000m", which doki.toml spells "1" (the planner reads both as one).
    if cpu.endswith("m") and cpu[:-1].isdigit() and int(cpu[:-1]) % 1000 == 0:
        return str(int(cpu[:-1]) // 1000)
    return cpu


def _toml_env_value(name: str, value: str) -> str:
    # ALLOWED_ORIGINS reads best as a list; doki joins a list with commas, so it is the same value.
    if name == "ALLOWED_ORIGINS" and "," in value and " " not in value:
        return "[" + ", ".join(_toml_string(origin) for origin in value.split(",")) + "]"
    return _toml_string(value)


def _toml_string(value: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, and characters beyond ASCII go as they are (JSON would write
    those outside the Basic Multilingual Plane as surrogate pairs, which TOML refuses)."""
    return json.dumps(value, ensure_ascii=False)
