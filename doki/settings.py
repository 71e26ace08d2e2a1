"""Backend settings: read from the environment and an optional `.env`, checked before the app starts.

Production refuses to start on anything that would be unsafe or lose data (missing or placeholder secrets, open
CORS, a SQLite credential store on Cloud Run's ephemeral disk, ...) and lists every problem at once, so one
redeploy fixes them all. Development needs nothing: missing keys are generated once into the git-ignored state
directory (`.doki/` by default) and kept there, so encrypted values survive restarts.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
from collections.abc import Collection, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from doki.crypto import bad_key_message, fernet_key_defect, generate_key, is_fernet_key
from doki.origins import origin_problem

GOOGLE_AUTH_URL = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - an endpoint, not a secret
GOOGLE_REVOKE_URL = "https://oauth2.googleapis.com/revoke"
GOOGLE_DRIVE_API_URL = "https://www.googleapis.com/drive/v3"
GOOGLE_SHEETS_API_URL = "https://sheets.googleapis.com/v4"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


# How the backend exits on settings it cannot run on: EX_CONFIG, what an operator reads in Cloud Run's logs.
EXIT_CONFIG = 78


class ConfigError(Exception):
    """The settings cannot run: `problems` lists each one with its fix."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"Doki cannot start: {len(self.problems)} configuration problem(s)"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


def _alias(name: str, *legacy: str) -> AliasChoices:
    # The deployment guide's services set GOOGLE_CLIENT_ID_NAME etc. holding the *values*; accept both spellings
    # so services deployed with the guide keep working. The clean name wins when both are set.
    return AliasChoices(name, *legacy)


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CommaList = Annotated[list[str], NoDecode]

DEV_SESSION_PREFIX = "doki-dev-"
# Values copied from examples and guides that must never reach production.
PLACEHOLDER_MARKERS = (
    "your-",
    "your_",
    "changeme",
    "change-me",
    "changethis",
    "placeholder",
    "example",
    "dev-secret",
    "secret-key",
    DEV_SESSION_PREFIX,
)
# "xxx" is a placeholder only as the whole value (xxxx, xxx-xxx): inside a random key it appears by chance
# (about one generated Fernet key in 800 contains it, case-insensitively).
_X_PLACEHOLDER = re.compile(r"[x_.-]*x{3,}[x_.-]*")
MIN_SESSION_SECRET_LENGTH = 32
# HS256 with a shorter secret can be brute-forced; Supabase's legacy secrets are longer.
MIN_JWT_SECRET_BYTES = 32
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# A Postgres table name PostgREST serves without quoting: at most 63 bytes (NAMEDATALEN - 1).
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class Settings(BaseSettings):
    """Every setting the backend reads. Secrets are `SecretStr`, so they never print in a repr or a log."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
    )

    environment: Environment = Environment.DEVELOPMENT
    port: int = Field(default=8080, ge=1, le=65535)
    allowed_origins: CommaList = Field(default_factory=list)
    session_secret_key: SecretStr | None = Field(
        default=None, validation_alias=_alias("SESSION_SECRET_KEY", "SESSION_SECRET_KEY_NAME")
    )
    encryption_key: SecretStr | None = Field(
        default=None, validation_alias=_alias("ENCRYPTION_KEY", "ENCRYPTION_KEY_NAME")
    )
    supabase_url: str | None = None
    supabase_secret_key: SecretStr | None = Field(
        default=None, validation_alias=_alias("SUPABASE_SECRET_KEY", "SUPABASE_SECRET_KEY_NAME")
    )
    supabase_jwt_secret: SecretStr | None = Field(
        default=None, validation_alias=_alias("SUPABASE_JWT_SECRET", "SUPABASE_JWT_SECRET_NAME")
    )
    # Pinned here, never read from a token's header: an attacker chooses the header.
    supabase_jwt_algorithms: CommaList = Field(default_factory=lambda: ["ES256", "RS256"])
    google_client_id: SecretStr | None = Field(
        default=None, validation_alias=_alias("GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_ID_NAME")
    )
    google_client_secret: SecretStr | None = Field(
        default=None, validation_alias=_alias("GOOGLE_CLIENT_SECRET", "GOOGLE_CLIENT_SECRET_NAME")
    )
    google_redirect_uri: str | None = None
    # Google's endpoints, configurable so tests (and rehearsals) can point them at local stand-ins.
    google_auth_url: str = GOOGLE_AUTH_URL
    google_token_url: str = GOOGLE_TOKEN_URL
    google_revoke_url: str = GOOGLE_REVOKE_URL
    google_drive_api_url: str = GOOGLE_DRIVE_API_URL
    google_sheets_api_url: str = GOOGLE_SHEETS_API_URL
    # Where the browser lands after signing in with Google; None means the callback answers JSON.
    frontend_url: str | None = None
    # The publishable (anon) key for Supabase Auth calls made for users; without it they use the secret key.
    supabase_anon_key: SecretStr | None = None
    gcp_project_id: str | None = None
    credential_store: Literal["auto", "sqlite", "supabase"] = "auto"
    credentials_table: str = "doki_credentials"
    # The original backend's table (Tsu-kimi/Doki-Backend's `credentials`): set, a user's connection still only there
    # is carried over to CREDENTIALS_TABLE (doki.legacy). Unset, Doki never reads it.
    legacy_credentials_table: str | None = None
    # The original's Fernet key(s); unset, ENCRYPTION_KEY's, which the original's ENCRYPTION_KEY_NAME already feeds.
    legacy_encryption_key: SecretStr | None = None
    state_dir: Path = Field(default=Path(".doki"), validation_alias=_alias("DOKI_STATE_DIR"))
    log_level: str = "INFO"

    @field_validator("allowed_origins", "supabase_jwt_algorithms", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator(
        "supabase_url",
        "google_auth_url",
        "google_token_url",
        "google_revoke_url",
        "google_drive_api_url",
        "google_sheets_api_url",
    )
    @classmethod
    def _strip_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def store_kind(self) -> Literal["sqlite", "supabase"]:
        """`auto` means Supabase once its URL and service key are set, else the embedded SQLite store."""
        if self.credential_store != "auto":
            return self.credential_store
        return "supabase" if self.supabase_url and self.supabase_secret_key else "sqlite"

    @property
    def encryption_keys(self) -> list[str]:
        """The Fernet keys, newest first: the first encrypts, all decrypt."""
        raw = self.encryption_key.get_secret_value() if self.encryption_key else ""
        return [k.strip() for k in raw.split(",") if k.strip()]

    @property
    def session_secret_keys(self) -> list[str]:
        """The session-signing secrets, newest first: the first signs, all verify. A list, as ENCRYPTION_KEY is, so a
        rotation (`doki keys rotate session`) lets sessions signed with the old secret live out their 15 minutes."""
        raw = self.session_secret_key.get_secret_value() if self.session_secret_key else ""
        return [k.strip() for k in raw.split(",") if k.strip()]

    @property
    def legacy_encryption_keys(self) -> list[str]:
        """The keys the original backend's tokens decrypt with: LEGACY_ENCRYPTION_KEY's, else ENCRYPTION_KEY's."""
        if self.legacy_encryption_key is None:
            return self.encryption_keys
        return [k.strip() for k in self.legacy_encryption_key.get_secret_value().split(",") if k.strip()]

    @property
    def supabase_issuer(self) -> str | None:
        return f"{self.supabase_url}/auth/v1" if self.supabase_url else None

    def problems(self) -> list[str]:
        """Everything that stops these settings from running, each with its fix. Empty means good to go."""
        found = _origin_problems(self.allowed_origins, production=self.is_production)
        found += _fernet_problems(self.encryption_keys)
        found += _algorithm_problems(self.supabase_jwt_algorithms)
        if self.supabase_url and not _is_http_url(self.supabase_url):
            found.append(f"SUPABASE_URL {self.supabase_url!r} is not a URL: use https://<project>.supabase.co")
        jwt_secret = self.supabase_jwt_secret.get_secret_value() if self.supabase_jwt_secret else ""
        if jwt_secret and len(jwt_secret.encode()) < MIN_JWT_SECRET_BYTES:
            found.append(
                f"SUPABASE_JWT_SECRET is shorter than {MIN_JWT_SECRET_BYTES} bytes: copy the project's JWT secret "
                "from Supabase (Settings > API), or unset it to verify with the project's signing keys only"
            )
        if self.store_kind == "supabase" and not (self.supabase_url and self.supabase_secret_key):
            found.append("CREDENTIAL_STORE=supabase needs SUPABASE_URL and SUPABASE_SECRET_KEY (the service role key)")
        if self.log_level.upper() not in LOG_LEVELS:
            found.append(f"LOG_LEVEL {self.log_level!r} is not a level: use one of {', '.join(LOG_LEVELS)}")
        found += self._google_url_problems()
        found += self._legacy_problems()
        found += _frontend_problems(self.frontend_url, self.allowed_origins)
        if self.is_production:
            found += self._production_problems()
        return found

    def _google_url_problems(self) -> list[str]:
        found: list[str] = []
        for name, url in (
            ("GOOGLE_AUTH_URL", self.google_auth_url),
            ("GOOGLE_TOKEN_URL", self.google_token_url),
            ("GOOGLE_REVOKE_URL", self.google_revoke_url),
            ("GOOGLE_DRIVE_API_URL", self.google_drive_api_url),
            ("GOOGLE_SHEETS_API_URL", self.google_sheets_api_url),
        ):
            if not _is_http_url(url):
                found.append(f"{name} {url!r} is not a URL: unset it to use Google's own endpoint")
            elif self.is_production and not is_https_or_loopback(url):
                # Tokens travel to these endpoints: in the clear they could be read on the way.
                found.append(f"{name} {url!r} is not https: unset it to use Google's own endpoint")
        return found

    def _legacy_problems(self) -> list[str]:
        table = self.legacy_credentials_table
        if table is None:
            if self.legacy_encryption_key is not None:
                # Otherwise ignored without a word: the operator would think an import ran.
                return [
                    "LEGACY_ENCRYPTION_KEY is set but LEGACY_CREDENTIALS_TABLE is not: set LEGACY_CREDENTIALS_TABLE to "
                    "the original backend's table (credentials) to carry its connections over, or unset the key"
                ]
            return []
        found: list[str] = []
        if not _IDENTIFIER.fullmatch(table):
            found.append(
                f"LEGACY_CREDENTIALS_TABLE {table[:80]!r} is not a table name: use the original backend's table, "
                "credentials (letters, digits and _, at most 63)"
            )
        elif table == self.credentials_table:
            found.append(
                f"LEGACY_CREDENTIALS_TABLE and CREDENTIALS_TABLE are both {table!r}: the original's table is not "
                "Doki's; set LEGACY_CREDENTIALS_TABLE=credentials and leave CREDENTIALS_TABLE at doki_credentials"
            )
        if not (self.supabase_url and self.supabase_secret_key):
            found.append(
                "LEGACY_CREDENTIALS_TABLE needs SUPABASE_URL and SUPABASE_SECRET_KEY: the original's table is read "
                "in that Supabase project with its secret (service role) key"
            )
        if self.legacy_encryption_key is not None and not self.legacy_encryption_keys:
            found.append("LEGACY_ENCRYPTION_KEY is empty: set the original's key, or unset it to use ENCRYPTION_KEY's")
        found += [
            f"LEGACY_ENCRYPTION_KEY key #{index} is not a valid Fernet key: {fernet_key_defect(key)}; set it to "
            "the original backend's ENCRYPTION_KEY_NAME value as it is"
            for index, key in enumerate(self.legacy_encryption_keys if self.legacy_encryption_key else [], start=1)
            if not is_fernet_key(key)
        ]
        return found

    def _production_problems(self) -> list[str]:
        found: list[str] = []
        required: dict[str, SecretStr | str | None] = {
            "SESSION_SECRET_KEY": self.session_secret_key,
            "ENCRYPTION_KEY": self.encryption_key,
            "SUPABASE_URL": self.supabase_url,
            "SUPABASE_SECRET_KEY": self.supabase_secret_key,
            "GOOGLE_CLIENT_ID": self.google_client_id,
            "GOOGLE_CLIENT_SECRET": self.google_client_secret,
        }
        for name, value in required.items():
            plain = value.get_secret_value() if isinstance(value, SecretStr) else value
            # SUPABASE_URL and GOOGLE_CLIENT_ID are plain settings; the others are secrets, two of them our own keys.
            secret = name not in ("SUPABASE_URL", "GOOGLE_CLIENT_ID")
            if not plain:
                where = " (put it in Secret Manager)" if secret else ""
                found.append(f"{name} is not set: production needs it{where}")
            elif is_placeholder(plain):
                keys = " (`doki keys generate` makes keys)" if name in ("SESSION_SECRET_KEY", "ENCRYPTION_KEY") else ""
                found.append(f"{name} holds a development placeholder: set the real value{keys}")
        for name, optional in (("SUPABASE_JWT_SECRET", self.supabase_jwt_secret),):
            if optional and is_placeholder(optional.get_secret_value()):
                found.append(f"{name} holds a development placeholder: set the real value or unset it")
        sessions = self.session_secret_keys
        if self.session_secret_key is not None and not sessions:
            found.append("SESSION_SECRET_KEY holds no secret, only commas or spaces: `doki keys generate` makes one")
        for index, session in enumerate(sessions, start=1):
            if not is_placeholder(session) and len(session) < MIN_SESSION_SECRET_LENGTH:
                which = f"SESSION_SECRET_KEY key #{index}" if len(sessions) > 1 else "SESSION_SECRET_KEY"
                found.append(
                    f"{which} is {len(session)} characters: use at least {MIN_SESSION_SECRET_LENGTH} "
                    "(`doki keys generate` makes one)"
                )
        if self.supabase_url and _is_http_url(self.supabase_url) and not is_https_or_loopback(self.supabase_url):
            found.append(f"SUPABASE_URL {self.supabase_url!r} is not https: use the https:// project URL")
        if self.google_redirect_uri and not is_https_or_loopback(self.google_redirect_uri):
            found.append(
                f"GOOGLE_REDIRECT_URI {self.google_redirect_uri!r} is not https: Google only redirects to "
                "https outside loopback; use https://<your-service>/auth/google/callback"
            )
        if self.frontend_url and _is_http_url(self.frontend_url) and not is_https_or_loopback(self.frontend_url):
            found.append(
                f"FRONTEND_URL {self.frontend_url!r} is not https: the Supabase session travels to it; "
                "use the https:// address of your frontend"
            )
        if self.store_kind == "sqlite":
            found.append(
                "the credential store is the local SQLite file, and Cloud Run disks are ephemeral: every "
                "token would be lost on restart; set SUPABASE_URL and SUPABASE_SECRET_KEY "
                "(or CREDENTIAL_STORE=supabase)"
            )
        return found


def is_placeholder(value: str) -> bool:
    """Whether `value` is a stand-in to replace (your-project, changeme, xxx...), not a real setting."""
    lowered = value.strip().lower()
    return any(marker in lowered for marker in PLACEHOLDER_MARKERS) or bool(_X_PLACEHOLDER.fullmatch(lowered))


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_https_or_loopback(url: str) -> bool:
    """Whether `url` is https, or plain http to this machine (loopback)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    # A production build may run against the local emulator and fake services on loopback.
    return parts.scheme == "http" and is_loopback_host(parts.hostname)


def _origin_problems(origins: list[str], *, production: bool) -> list[str]:
    found: list[str] = []
    if "*" in origins:
        found.append(
            "ALLOWED_ORIGINS contains '*': with credentials on, browsers need exact origins; "
            "list them, e.g. https://app.example.com"
        )
    elif production and not origins:
        found.append("ALLOWED_ORIGINS is empty: list your frontend origins, e.g. https://app.example.com")
    found += [p for o in origins if o != "*" and (p := origin_problem(o))]
    return found


def url_origin(url: str) -> str:
    """`scheme://host[:port]` of an http(s) URL, spelled as browsers send it in `Origin`."""
    parts = urlsplit(url)
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None and parts.port != default_port else ""
    return f"{parts.scheme}://{host}{port}"


def _frontend_problems(frontend_url: str | None, origins: list[str]) -> list[str]:
    if not frontend_url:
        return []
    try:
        parts = urlsplit(frontend_url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return [f"FRONTEND_URL {frontend_url!r} has an invalid port: use e.g. https://app.example.com/auth/done"]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"FRONTEND_URL {frontend_url!r} is not a URL: use e.g. https://app.example.com/auth/done"]
    if parts.username or parts.password or parts.fragment:
        # The session goes into the fragment; credentials in a URL end up in histories and logs.
        return [f"FRONTEND_URL {frontend_url!r} has credentials or a #fragment: remove them"]
    origin = url_origin(frontend_url)
    if origin not in origins:
        # Sign-in hands the session only to the frontend the browser is allowed to call us from.
        return [f"FRONTEND_URL {frontend_url!r} is not on an allowed origin: add {origin} to ALLOWED_ORIGINS"]
    return []


def _fernet_problems(keys: list[str]) -> list[str]:
    return [bad_key_message(index, key) for index, key in enumerate(keys, start=1) if not is_fernet_key(key)]


SUPPORTED_ASYMMETRIC_ALGORITHMS = ("ES256", "RS256")


def _algorithm_problems(algorithms: list[str]) -> list[str]:
    bad = [a for a in algorithms if a not in SUPPORTED_ASYMMETRIC_ALGORITHMS]
    if bad:
        return [
            f"SUPABASE_JWT_ALGORITHMS has {', '.join(bad)}: allowed are "
            f"{', '.join(SUPPORTED_ASYMMETRIC_ALGORITHMS)} (HS256 is enabled by setting SUPABASE_JWT_SECRET)"
        ]
    return []


DEV_KEYS_FILE = "dev-keys.json"
# The usual local frontends: the original backend's two (3000, 3001), and Vite's default (5173).
DEV_ORIGINS = ["http://localhost:3000", "http://localhost:3001", "http://127.0.0.1:3000", "http://localhost:5173"]


def with_development_defaults(settings: Settings) -> Settings:
    """Fill what development leaves unset: keys kept in the state dir, the usual local frontend origins.

    Production settings come back unchanged: production never runs on generated keys.
    """
    if settings.is_production:
        return settings
    updates: dict[str, object] = {}
    if not settings.allowed_origins:
        updates["allowed_origins"] = list(DEV_ORIGINS)
    if settings.session_secret_key is None or settings.encryption_key is None:
        keys = _load_or_create_dev_keys(settings.state_dir)
        if settings.session_secret_key is None:
            updates["session_secret_key"] = SecretStr(keys["session_secret_key"])
        if settings.encryption_key is None:
            updates["encryption_key"] = SecretStr(keys["encryption_key"])
    return settings.model_copy(update=updates) if updates else settings


def _load_or_create_dev_keys(state_dir: Path) -> dict[str, str]:
    path = state_dir / DEV_KEYS_FILE
    if path.exists():
        try:
            data = json.loads(path.read_text())
            if isinstance(data, dict) and {"session_secret_key", "encryption_key"} <= data.keys():
                return {k: str(v) for k, v in data.items()}
        except (OSError, json.JSONDecodeError) as exc:
            # Silently replacing the file would orphan everything encrypted with the old key.
            raise ConfigError(
                [f"{path} is unreadable ({exc}): fix it, or delete it to start over with new keys"]
            ) from exc
        raise ConfigError([f"{path} lacks a key: delete it to start over with new keys"])
    keys = {
        "session_secret_key": DEV_SESSION_PREFIX + secrets.token_urlsafe(32),
        "encryption_key": generate_key(),
    }
    try:
        ensure_state_dir(state_dir)
        # Written whole then renamed, with owner-only permissions: a crash never leaves half a key file.
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(keys, handle)
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(
            [
                f"cannot keep development keys in {state_dir}/ ({exc.strerror or exc}): "
                "set DOKI_STATE_DIR to a writable directory, or set ENCRYPTION_KEY and SESSION_SECRET_KEY"
            ]
        ) from None
    return keys


def ensure_state_dir(state_dir: Path) -> None:
    """Create the local state dir with a .gitignore of its own, so its keys and data never get committed."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    ignore = state_dir / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")


def read_settings(**overrides: object) -> Settings:
    """Settings from the environment and `.env` (and `overrides`); a value of the wrong kind is a ConfigError naming
    its variable, never pydantic's own report (which may quote a secret)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError([_invalid(error) for error in exc.errors(include_input=False, include_url=False)]) from None


class _Declared(Settings):
    """Settings from the values given alone: neither the process environment nor a `.env` file."""

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: Any, *others: Any, **named_others: Any
    ) -> tuple[Any, ...]:
        return (init_settings,)


def declared_settings(values: Mapping[str, str]) -> Settings:
    """Settings from exactly these environment variables (a deployed service's), neither this process's environment
    nor a `.env`: what that service runs with. ConfigError names a variable whose value is of the wrong kind."""
    try:
        return _Declared(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError([_invalid(error) for error in exc.errors(include_input=False, include_url=False)]) from None


def problems_of(values: Mapping[str, str], *, elsewhere: Collection[str] = ()) -> list[str]:
    """What the backend would refuse at start with exactly these environment variables, the process's own environment
    and `.env` aside: `doki deploy` asks it of doki.toml before it writes anything.

    Names in `elsewhere` are set where `values` cannot show them (Secret Manager): they count as present, and what
    their values would be refused for is checked where they live, so no problem naming one is reported."""
    try:
        declared = {name: value for name, value in values.items() if name not in elsewhere}
        settings = _Declared(**declared)  # type: ignore[arg-type]
    except ValidationError as exc:
        found = [_invalid(error) for error in exc.errors(include_input=False, include_url=False)]
    else:
        found = settings.problems()
    unseen = [re.compile(rf"\b{re.escape(name)}\b") for name in elsewhere]
    return [problem for problem in found if not any(name.search(problem) for name in unseen)]


def _invalid(error: ErrorDetails) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info else None
    name = str(alias.choices[0]) if isinstance(alias, AliasChoices) else field.upper()
    return f"{name}: {error['msg'][0].lower()}{error['msg'][1:]}"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and `.env`, with development defaults; raise ConfigError on any problem."""
    settings = with_development_defaults(read_settings(**overrides))
    problems = settings.problems()
    if problems:
        raise ConfigError(problems)
    return settings
