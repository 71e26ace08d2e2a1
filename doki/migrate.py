"""`python -m doki.migrate`: carry every user's connections over from the original backend's table at once.

The app carries a user's connection over the first time it is asked for (doki.legacy); this does it for every user
now, by the same rules: per user and provider the newest row that decrypts and that Doki accepts, encrypted for its
user, never over a connection the user made on Doki, never one the user disconnected, the original's table only
read. Run it with the deployment's settings (ENCRYPTION_KEY, SUPABASE_URL, SUPABASE_SECRET_KEY,
LEGACY_CREDENTIALS_TABLE, and LEGACY_ENCRYPTION_KEY when the original's key is not among ENCRYPTION_KEY's): first with
`--dry-run`, which reads and decrypts everything and writes nothing, then without. Running it again imports nothing
twice, and looks again at what no key could decrypt before (a key added to LEGACY_ENCRYPTION_KEY since).

It prints one JSON line of counts on stdout, each connection (user and provider) counted once:

    {"dry_run": false, "users": 3, "rows": 7, "imported": {"google": 2, "supabase": 1}, "already": 0,
     "undecryptable": 0, "unusable": 0, "failed": 0}

`rows` is how many of the original's rows were read; `already` connections Doki has (or that the user disconnected);
`undecryptable` those no key decrypts; `unusable` those Doki refuses (a project URL or key a connect would refuse);
`failed` those the store could not write. Why each was not imported goes to stderr, with its user and provider.

Exit status: 0 when done, 1 when the store failed (what was written stays; running again is safe), 2 for bad
arguments, 78 (EX_CONFIG) for settings it cannot run on, nothing written then.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from doki.settings import EXIT_CONFIG, ConfigError, Settings, read_settings

if TYPE_CHECKING:
    from doki.crypto import CredentialCipher
    from doki.legacy import LegacyCredentials, LegacyRow, Outcome
    from doki.storage.base import CredentialStore

EXIT_FAILED = 1
PROVIDERS = ("google", "supabase")
# A user id no one has.
_NOBODY = "00000000-0000-0000-0000-000000000000"


@dataclass
class Counts:
    """What a run did (or, dry, would do), per connection."""

    dry_run: bool
    users: set[str] = field(default_factory=set)
    rows: int = 0
    imported: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PROVIDERS, 0))
    already: int = 0
    undecryptable: int = 0
    unusable: int = 0
    failed: int = 0

    def add(self, provider: str, outcome: Outcome) -> None:
        if outcome == "imported":
            self.imported[provider] += 1
        elif outcome == "already":
            self.already += 1
        elif outcome == "undecryptable":
            self.undecryptable += 1
        elif outcome == "unusable":
            self.unusable += 1

    def as_json(self) -> str:
        body: dict[str, Any] = {
            "dry_run": self.dry_run,
            "users": len(self.users),
            "rows": self.rows,
            "imported": self.imported,
            "already": self.already,
            "undecryptable": self.undecryptable,
            "unusable": self.unusable,
            "failed": self.failed,
        }
        return json.dumps(body)


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run the import as the command line says; the exit status."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    arguments = _parser().parse_args(argv)
    try:
        settings = _settings()
    except ConfigError as exc:
        print(f"doki.migrate cannot run: {len(exc.problems)} configuration problem(s)", file=err)
        print("\n".join(f"  - {problem}" for problem in exc.problems), file=err)
        return EXIT_CONFIG
    from doki.storage import StoreError

    store, legacy, cipher = _open(settings)
    counts = Counts(dry_run=arguments.dry_run)
    try:
        store.get(_NOBODY, PROVIDERS[0])  # a store that cannot answer stops the run before any write
        for provider in [arguments.provider] if arguments.provider else PROVIDERS:
            for user_id, rows in _groups(legacy, provider, arguments.user):
                counts.users.add(user_id)
                counts.rows += len(rows)
                _migrate_one(store, legacy, cipher, user_id, provider, rows, counts, err)
    except StoreError as exc:
        print(f"doki.migrate stopped: {exc}. What was written stays; once fixed, run it again.", file=err)
        print(counts.as_json(), file=out)
        return EXIT_FAILED
    finally:
        legacy.close()
        store.close()
    print(counts.as_json(), file=out)
    return EXIT_FAILED if counts.failed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m doki.migrate",
        description="Carry users' Google and Supabase connections over from the original backend's table "
        "(LEGACY_CREDENTIALS_TABLE) into Doki's, encrypted for each user. The original's table is only read.",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="read and decrypt everything, write nothing, print what would happen"
    )
    parser.add_argument("--provider", choices=PROVIDERS, help="only this provider's connections (default: both)")
    parser.add_argument("--user", type=_user_id, help="only this user's connections (their Supabase Auth user id)")
    return parser


def _user_id(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text[:80]!r} is not a user id: give the user's Supabase Auth id, a UUID "
            "(Authentication > Users in the Supabase dashboard)"
        ) from None


def _settings() -> Settings:
    """The settings to run on: refused (ConfigError) unless the import is configured and every setting is good."""
    settings = read_settings()
    problems = []
    if not settings.legacy_credentials_table:
        problems.append(
            "LEGACY_CREDENTIALS_TABLE is not set: set it to the original backend's table (credentials), with "
            "SUPABASE_URL and SUPABASE_SECRET_KEY of the Supabase project it lives in"
        )
    if settings.encryption_key is None:
        # Development would make up a key: connections encrypted with it would be lost on the deployment.
        problems.append(
            "ENCRYPTION_KEY is not set: connections are encrypted with it for the deployment that serves them; set "
            "it to that deployment's key(s)"
        )
    problems += settings.problems()
    if problems:
        raise ConfigError(problems)
    return settings


def _open(settings: Settings) -> tuple[CredentialStore, LegacyCredentials, CredentialCipher]:
    from doki.connectors.supabase_project import SupabaseProjects
    from doki.crypto import CredentialCipher
    from doki.legacy import LegacyCredentials
    from doki.storage import build_store

    # The rules a connect goes by: a stored project URL a connect would refuse is not imported either.
    parse_url = SupabaseProjects.from_settings(settings).parse_url
    return (
        build_store(settings),
        LegacyCredentials.from_settings(settings, parse_url),
        CredentialCipher.from_settings(settings),
    )


def _groups(legacy: LegacyCredentials, provider: str, user_id: str | None) -> Iterable[tuple[str, list[LegacyRow]]]:
    if user_id is None:
        return legacy.users(provider)
    return _one_user(legacy, provider, user_id)


def _one_user(legacy: LegacyCredentials, provider: str, user_id: str) -> Iterator[tuple[str, list[LegacyRow]]]:
    rows = legacy.rows(user_id, provider)
    if rows:
        yield user_id, rows


def _migrate_one(
    store: CredentialStore,
    legacy: LegacyCredentials,
    cipher: CredentialCipher,
    user_id: str,
    provider: str,
    rows: list[LegacyRow],
    counts: Counts,
    err: TextIO,
) -> None:
    from doki.legacy import FINAL, marker_provider, settle
    from doki.storage import StoreError, StoreUnavailableError

    try:
        marker = store.get(user_id, marker_provider(provider))
        if store.get(user_id, provider) is not None or (marker is not None and marker.metadata.get("status") in FINAL):
            counts.add(provider, "already")
            return
        found = legacy.evaluate(provider, rows)
        outcome = found.outcome if counts.dry_run else settle(store, cipher, user_id, provider, found)[0]
    except StoreUnavailableError:
        raise  # every next write would wait for it too: stop, and say so
    except StoreError as exc:
        counts.failed += 1
        print(f"user {user_id}, {provider}: not written: {exc}", file=err)
        return
    counts.add(provider, outcome)
    if outcome in ("undecryptable", "unusable"):
        print(f"user {user_id}, {provider}: {outcome}: {found.reason}", file=err)


if __name__ == "__main__":
    raise SystemExit(main())
