"""`doki dev --from-service`: the deployed service's configuration for a backend run on this machine.

The live service's plain variables and the values of its secrets, read once at start from Cloud Run and Secret
Manager (each secret at the version the service pins), into this process's environment: the backend's server reads
them there, and nothing is written to disk or printed (names and secret versions are; values never are).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from doki_cli.config import RESERVED_ENV
from doki_cli.errors import Code, DokiError, service_not_found
from doki_cli.model import LiveService


class ServiceReader(Protocol):
    def get(self, name: str) -> LiveService | None: ...

    def path(self, name: str) -> str: ...


class SecretReader(Protocol):
    def access(self, secret_id: str, version: str = "latest") -> bytes: ...


@dataclass(frozen=True)
class CloudEnvironment:
    """What the service's newest revision runs with (the template Cloud Run makes revisions of): its plain values and
    its secrets' values, by variable (`sources`: each secret variable's "secret:version"); `warnings`: why that may
    not be what serves."""

    service: str
    revision: str | None
    uri: str
    values: dict[str, str] = field(repr=False)
    sources: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def plain(self) -> list[str]:
        return [name for name in self.values if name not in self.sources]


def read(run: ServiceReader, secrets: SecretReader, name: str) -> CloudEnvironment:
    """The live service `name`'s environment, its secrets resolved; DokiError when it does not exist or a secret
    cannot be read (the adapters' errors name the role a reader needs)."""
    live = run.get(name)
    if live is None:
        error = service_not_found(run.path(name))
        error.hint = "deploy it first (`doki deploy`), or name a deployed one with --env NAME or --service NAME"
        raise error
    values = dict(live.spec.env)
    sources = {}
    for variable, ref in live.spec.secrets.items():
        secret, _, version = ref.rpartition(":")
        # Another project's secret is read by its full name, as the service reads it.
        where = live.foreign_secrets.get(variable, secret)
        data = secrets.access(where, version or "latest")
        try:
            values[variable] = data.decode()
        except UnicodeDecodeError:
            raise DokiError(
                Code.CONFIG_INVALID,
                f"secret {where} version {version} is not text, so {variable} cannot hold it here",
                "an environment variable holds text: store the value as UTF-8 text (`doki secrets push`)",
            ) from None
        sources[variable] = f"{where}:{version}"
    # Cloud Run sets these itself; here, doki dev does (PORT from --port).
    values = {key: value for key, value in values.items() if key not in RESERVED_ENV}
    sources = {key: source for key, source in sources.items() if key in values}
    warnings = []
    if live.stuck is not None:
        warnings.append(
            f"{live.stuck}, whose configuration this is, never became ready: it may be why "
            f"({' '.join(live.message.split()) or 'see doki logs'})"
        )
    elif not live.traffic_to_latest:
        warnings.append(
            f"traffic is pinned ({live.traffic_text}): what serves may run an older configuration than this, the "
            "newest revision's"
        )
    return CloudEnvironment(run.path(name), live.latest_created, live.uri, values, sources, warnings)


def apply(
    cloud: CloudEnvironment,
    environ: MutableMapping[str, str] = os.environ,
    aliases: Sequence[Sequence[str]] = (),
) -> list[str]:
    """Set the service's values in `environ` (the process's: the server process inherits it), except those the
    environment sets already, which win (so one can be pointed elsewhere); the names kept from it. `aliases`: the
    names one setting is read under, the first winning (the backend's, `backend_aliases`): a service that sets a later
    one is overridden by an earlier one the environment sets, which is named as kept too."""
    kept = [name for name in cloud.values if name in environ]
    for names in aliases:
        given = [name for name in names if name in cloud.values]
        if given:
            earlier = names[: names.index(given[0])]
            kept += [name for name in earlier if name in environ and name not in kept]
    for name, value in cloud.values.items():
        environ.setdefault(name, value)
    return kept


def backend_aliases() -> list[list[str]]:
    """Each backend setting read under more than one name (the deployment guide's *_NAME spellings), its names in
    the order the backend prefers them."""
    from pydantic import AliasChoices

    from doki.settings import Settings

    groups = []
    for setting in Settings.model_fields.values():
        alias = setting.validation_alias
        if isinstance(alias, AliasChoices):
            names = [choice for choice in alias.choices if isinstance(choice, str)]
            if len(names) > 1:
                groups.append(names)
    return groups
