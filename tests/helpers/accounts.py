"""Service accounts a test's project has: the emulator's Cloud Run and IAM policies accept only accounts that exist."""

from __future__ import annotations

import re

from doki_cli.emulator.server import Emulator

_ACCOUNT = re.compile(r"""service_account\s*=\s*["']([^"'@]+)@([a-z][-a-z0-9]*)\.iam\.gserviceaccount\.com["']""")


def make_accounts(emulator: Emulator, toml: str) -> None:
    """Create in `emulator` every user-managed account the doki.toml text `toml` names, as the user would have."""
    for account_id, project in _ACCOUNT.findall(toml):
        emulator.accounts.add(project, f"{account_id}@{project}.iam.gserviceaccount.com")
