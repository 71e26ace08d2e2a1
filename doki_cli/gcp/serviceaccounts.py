"""IAM Admin's service accounts, through google-cloud-iam: the only module that imports its admin client.

Whether the runtime account doki.toml names exists (a revision cannot run as one that does not, and no secret can be
granted to it), and creating it for `doki init --create-account` and `doki doctor --create-account`. Every Google
error becomes a DokiError with a hint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import Any

from doki_cli.errors import Code, DokiError
from doki_cli.gcp.errors import google_error
from doki_cli.gcp.retry import Retrier, no_library_retry

# ID@PROJECT.iam.gserviceaccount.com: an account a user made in PROJECT. Other accounts (the Compute Engine default
# one, service agents) are Google's: they are not created, and doki does not look them up.
# Service agents (service-NUMBER@gcp-sa-SERVICE.iam.gserviceaccount.com) share the domain but are Google's.
_USER_MANAGED = re.compile(
    r"(?P<id>[a-z][-a-z0-9]{4,28}[a-z0-9])@(?!gcp-sa-|serverless-robot-prod\.)(?P<project>[a-z][-a-z0-9]{4,28}[a-z0-9])"
    r"\.iam\.gserviceaccount\.com"
)
# What lets a deployer read the account: roles/iam.serviceAccountUser on it, which deploying as it needs anyway.
READER_ROLE = "roles/iam.serviceAccountUser"
CREATOR_ROLE = "roles/iam.serviceAccountCreator"


@dataclass(frozen=True)
class ServiceAccount:
    email: str
    project: str
    display_name: str = ""


def user_managed(email: str) -> tuple[str, str] | None:
    """(account id, project) of a user-managed account's email; None for Google's own accounts."""
    match = _USER_MANAGED.fullmatch(email)
    return (match["id"], match["project"]) if match else None


def create_command(email: str) -> str:
    """The gcloud command that creates the user-managed account `email`, for hints."""
    parts = user_managed(email)
    assert parts is not None, f"{email} is not an account users create"
    return f"gcloud iam service-accounts create {parts[0]} --project {parts[1]}"


def how_to_create(email: str) -> str:
    """How to make `email` exist, for hints: a user-managed account is created; Google makes its own."""
    if user_managed(email) is None:
        return f"{email} is an account Google makes, not one to create: check its name, or name an account of your own"
    return (
        f"create it: {create_command(email)} (`doki doctor --create-account` creates the runtime account doki.toml "
        "names)"
    )


class ServiceAccounts:
    def __init__(self, client: Any, project: str, retrier: Retrier) -> None:
        self._client = client
        self.project = project
        self._retrier = retrier

    def get(self, email: str) -> ServiceAccount | None:
        """The account `email`, or None when it does not exist. Google's own accounts are not looked up (they exist
        wherever the project does): returned as they are named."""
        from google.api_core import exceptions

        parts = user_managed(email)
        if parts is None:
            return ServiceAccount(email, self.project)
        name = f"projects/{parts[1]}/serviceAccounts/{email}"
        try:
            found = self._retrier.call(
                partial(self._client.get_service_account, request={"name": name}, retry=no_library_retry())
            )
        except exceptions.NotFound:
            return None
        except exceptions.GoogleAPICallError as exc:
            # Anything else (no permission, the API disabled) says what to fix, as every other call does.
            raise google_error(
                exc, action="reading the service account", resource=name, api="iam", role=READER_ROLE
            ) from None
        return ServiceAccount(found.email, found.project_id, found.display_name)

    def create(self, email: str, display_name: str, description: str = "") -> tuple[ServiceAccount, bool]:
        """Create the user-managed account `email` in its project; (the account, False) when it exists already."""
        from google.api_core import exceptions

        parts = user_managed(email)
        if parts is None:
            raise DokiError(
                Code.NOT_USER_MANAGED,
                f"{email} is not an account doki can create (NAME@PROJECT.iam.gserviceaccount.com)",
                "name a dedicated account in doki.toml's service_account",
            )
        account_id, project = parts
        request = {
            "name": f"projects/{project}",
            "account_id": account_id,
            "service_account": {"display_name": display_name, "description": description},
        }
        try:
            # A retried create whose first answer was lost comes back ALREADY_EXISTS: the account is there.
            made = self._retrier.call(
                partial(self._client.create_service_account, request=request, retry=no_library_retry())
            )
        except exceptions.AlreadyExists:
            # Not read back: creating needs no right to read, and the email is all doki uses.
            return ServiceAccount(email, project), False
        except exceptions.GoogleAPICallError as exc:
            resource = f"projects/{project}/serviceAccounts/{email}"
            raise google_error(
                exc, action="creating the service account", resource=resource, api="iam", role=CREATOR_ROLE
            ) from None
        return ServiceAccount(made.email, made.project_id, made.display_name), True
