"""Secrets from a .env file (or stdin) into Secret Manager, and access for the runtime service account.

`push` checks everything before it changes anything: a declared secret named on the command line without a value,
or an empty value, stops it with nothing written. A value equal to the latest version adds no version, so pushing
twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import TextIO

from doki_cli.config import ServiceConfig
from doki_cli.errors import Code, DokiError
from doki_cli.gcp.secretmanager import SecretManager


@dataclass(frozen=True)
class Pushed:
    secret: str
    env_names: tuple[str, ...]
    outcome: str  # created, updated, unchanged or skipped (no value in the source)
    version: int | None
    note: str | None = None


@dataclass(frozen=True)
class SecretStatus:
    secret: str
    env_names: tuple[str, ...]
    exists: bool
    latest: int | None
    created: str | None
    state: str | None


@dataclass(frozen=True)
class Granted:
    secret: str
    member: str
    changed: bool


def read_values(source: str, stdin: TextIO, *, hint: str) -> dict[str, str]:
    """NAME=value lines from a .env file, or from stdin when `source` is "-" (`doki keys generate | ...`).

    No such file is `secrets_source_missing`, with `hint`: the command's own option names the file (`--from`,
    `--secrets-from`)."""
    from dotenv import dotenv_values

    if source == "-":
        stream: TextIO = StringIO(stdin.read())
    else:
        path = Path(source)
        if not path.is_file():
            raise DokiError(
                Code.SECRETS_SOURCE_MISSING,
                f"no file at {source} to read secret values from",
                hint,
            )
        stream = StringIO(path.read_text())
    return {k: v for k, v in dotenv_values(stream=stream).items() if v is not None}


def _by_secret(config: ServiceConfig) -> dict[str, list[str]]:
    """Declared secrets, each with the environment variables that use it."""
    secrets: dict[str, list[str]] = {}
    for env_name, ref in config.secrets.items():
        secrets.setdefault(ref.secret, []).append(env_name)
    return secrets


def _select(config: ServiceConfig, names: list[str]) -> dict[str, list[str]]:
    declared = _by_secret(config)
    if not declared:
        raise DokiError(
            Code.NO_SECRETS_DECLARED,
            f"{config.path} declares no secrets",
            'add them under [service.secrets], e.g. ENCRYPTION_KEY = "encryption-key"',
        )
    if not names:
        return declared
    chosen: dict[str, list[str]] = {}
    for name in names:
        match = {s: e for s, e in declared.items() if name == s or name in e}
        if not match:
            raise DokiError(
                Code.UNKNOWN_SECRET,
                f"{name} is not a secret declared in {config.path}",
                f"name one of: {', '.join(sorted(declared))} (or their variables)",
            )
        chosen.update(match)
    return chosen


def push(
    sm: SecretManager, config: ServiceConfig, values: dict[str, str], names: list[str], *, source: str = "the source"
) -> list[Pushed]:
    """Create missing secrets and add a version wherever the value differs from the latest one; `source` names
    where `values` came from, for the messages."""
    chosen = _select(config, names)
    planned: list[tuple[str, list[str], str | None]] = []
    for secret, env_names in chosen.items():
        found = [values[e] for e in env_names if e in values]
        if len(set(found)) > 1:
            raise DokiError(
                Code.CONFLICTING_VALUES,
                f"{', '.join(env_names)} share the secret {secret} but have different values",
                "give them the same value, or point them at different secrets in doki.toml",
            )
        value = found[0] if found else None
        if value == "":
            raise DokiError(
                Code.EMPTY_SECRET, f"{env_names[0]} is empty", "set a value (Secret Manager refuses empty secrets)"
            )
        if value is None and names:
            raise DokiError(
                Code.SECRET_VALUE_MISSING,
                f"no value for {' or '.join(env_names)} in {source}",
                f"add {env_names[0]}=... to {source}; nothing was pushed",
            )
        planned.append((secret, env_names, value))
    results = []
    for secret, env_names, value in planned:
        pinned = sorted({config.secrets[e].version for e in env_names} - {"latest"})
        note = f"doki.toml pins version {', '.join(pinned)}: deploys use that, not this one" if pinned else None
        if value is None:
            note = f"no {' or '.join(env_names)} in {source}"
            results.append(Pushed(secret, tuple(env_names), "skipped", None, note))
            continue
        data = value.encode()
        latest = sm.latest(secret)
        if latest is not None and latest.state == "ENABLED" and sm.access(secret, str(latest.number)) == data:
            results.append(Pushed(secret, tuple(env_names), "unchanged", latest.number))
            continue
        # A secret with a version exists: no creation to ask for. Asking only for one without (which may not exist)
        # keeps "already exists" on a retried creation meaning what it almost always does: the lost try made it.
        outcome = "updated" if latest is not None or not sm.create(secret) else "created"
        version = sm.add_version(secret, data)
        results.append(Pushed(secret, tuple(env_names), outcome, version, note))
    return results


def status(sm: SecretManager, config: ServiceConfig) -> list[SecretStatus]:
    result = []
    for secret, env_names in _by_secret(config).items():
        latest = sm.latest(secret)
        exists = latest is not None or sm.exists(secret)
        result.append(
            SecretStatus(
                secret,
                tuple(env_names),
                exists,
                latest.number if latest else None,
                latest.created.isoformat(timespec="seconds") if latest and latest.created else None,
                latest.state if latest else None,
            )
        )
    return result


def runtime_member(config: ServiceConfig) -> str:
    if not config.service_account:
        raise DokiError(
            Code.NO_SERVICE_ACCOUNT,
            f"{config.path} names no service_account for the revisions to run as",
            'set service_account = "NAME@PROJECT.iam.gserviceaccount.com" in doki.toml '
            "(a dedicated account with only the roles it needs)",
        )
    return f"serviceAccount:{config.service_account}"


def grant(sm: SecretManager, config: ServiceConfig) -> list[Granted]:
    """Let the runtime service account read every referenced secret (secret-level bindings)."""
    member = runtime_member(config)
    declared = _select(config, [])
    missing = [s for s in declared if not sm.exists(s)]
    if missing:
        raise DokiError(
            Code.SECRET_MISSING,
            f"these secrets do not exist yet: {', '.join(missing)}",
            "create them with `doki secrets push` first",
        )
    return [Granted(secret, member, sm.grant(secret, member)) for secret in declared]
