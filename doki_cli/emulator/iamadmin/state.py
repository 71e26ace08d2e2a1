"""Service accounts: which exist, per project.

Every project has its Compute Engine default account (PROJECT_NUMBER-compute@developer.gserviceaccount.com, what
Cloud Run runs a revision as when its template names none); a user-managed account (ID@PROJECT.iam.gserviceaccount.com)
exists once created, through IAM Admin's CreateServiceAccount or the control API. Accounts Google manages itself
(service agents, Cloud Build's legacy account) exist wherever they are named. The other services ask `require` before
they accept an account: Cloud Run for a revision's identity, every IAM policy for a `serviceAccount:` member.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from doki_cli.emulator.errors import ApiError, already_exists, invalid_argument, not_found
from doki_cli.emulator.paging import Paging
from doki_cli.emulator.projects import project_number

# CreateServiceAccountRequest.account_id: "must be 6-30 characters long, and match the regular expression
# [a-z]([-a-z0-9]*[a-z0-9])" (the proto's field comment, google/iam/admin/v1/iam.proto).
_ACCOUNT_ID = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_COMPUTE_DEFAULT = re.compile(r"[0-9]+-compute@developer\.gserviceaccount\.com")
# Accounts Google makes and manages: service agents (service-NUMBER@gcp-sa-SERVICE.iam.gserviceaccount.com, Cloud
# Run's older serverless-robot-prod one) and Cloud Build's legacy account (https://cloud.google.com/iam/docs/service-agents).
_GOOGLE_MANAGED = re.compile(
    r"(service-[0-9]+@gcp-sa-[-a-z0-9]+\.iam\.gserviceaccount\.com"
    r"|[0-9]+@cloudbuild\.gserviceaccount\.com"
    r"|[0-9]+@cloudservices\.gserviceaccount\.com"
    r"|service-[0-9]+@serverless-robot-prod\.iam\.gserviceaccount\.com)"
)
PAGING = Paging(default_size=20, max_size=100, bad_size="page_size must not be negative, got {size}")
_NAME = re.compile(r"projects/(?P<project>[^/]+)/serviceAccounts/(?P<account>[^/]+)")


@dataclass(frozen=True)
class Account:
    """One service account, as IAM Admin's ServiceAccount message carries it."""

    project: str
    email: str
    display_name: str = ""
    description: str = ""

    @property
    def name(self) -> str:
        return f"projects/{self.project}/serviceAccounts/{self.email}"

    @property
    def unique_id(self) -> str:
        # 21 digits, as Google's are, and the same on every start for the same email.
        return str(10**20 + int.from_bytes(hashlib.sha256(self.email.encode()).digest()[:8], "big") % (9 * 10**20))


def compute_default(project: str) -> Account:
    return Account(
        project,
        f"{project_number(project)}-compute@developer.gserviceaccount.com",
        "Compute Engine default service account",
    )


class ServiceAccounts:
    """The user-managed accounts of every project (the default ones are implied). Thread-safe; `persist` is called
    after every change."""

    def __init__(self, *, persist: Callable[[], None] = lambda: None) -> None:
        self._persist = persist
        self._lock = threading.Lock()
        self._accounts: dict[str, Account] = {}  # email -> account

    def exists(self, email: str) -> bool:
        if _COMPUTE_DEFAULT.fullmatch(email) or _GOOGLE_MANAGED.fullmatch(email):
            return True
        with self._lock:
            return email in self._accounts

    def require(self, email: str, refusal: Callable[[str], ApiError]) -> None:
        """Raise `refusal(email)` unless `email` is an account that exists."""
        if not self.exists(email):
            raise refusal(email)

    def create(self, project: str, account_id: str, display_name: str = "", description: str = "") -> Account:
        # Google's answers, as users meet them: google/litmus#107 and DataDog/stratus-red-team#294 (the length),
        # prebid/salesagent#789 (the pattern), GoogleCloudPlatform/java-docs-samples#3605 (one that exists).
        if not 6 <= len(account_id) <= 30:
            raise invalid_argument(f'The account ID "{account_id}" does not have a length between 6 and 30.')
        if not _ACCOUNT_ID.fullmatch(account_id):
            raise invalid_argument(f"{account_id} does not match [a-zA-Z][a-zA-Z\\d\\-]*[a-zA-Z\\d].")
        account = Account(project, f"{account_id}@{project}.iam.gserviceaccount.com", display_name, description)
        with self._lock:
            if account.email in self._accounts:
                raise already_exists(f"Service account {account_id} already exists within project projects/{project}.")
            self._accounts[account.email] = account
        self._persist()
        return account

    def add(self, project: str, email: str) -> Account:
        """An account made outside IAM Admin's rules (the control API): any email, in `project`."""
        account = Account(project, email)
        with self._lock:
            self._accounts[email] = self._accounts.get(email, account)
            account = self._accounts[email]
        self._persist()
        return account

    def email_of(self, unique_id: str) -> str | None:
        """The email of the user-managed account whose unique id is `unique_id` (an ID token's `sub`), if any."""
        with self._lock:
            return next((a.email for a in self._accounts.values() if a.unique_id == unique_id), None)

    def get(self, name: str) -> Account:
        """The account `projects/P/serviceAccounts/EMAIL` (P may be `-`)."""
        match = _NAME.fullmatch(name)
        if match is None:
            raise invalid_argument(
                f"Invalid service account name {name}: expected projects/PROJECT/serviceAccounts/EMAIL."
            )
        email = match["account"]
        # "Service account projects/-/serviceAccounts/… does not exist." (GoogleCloudPlatform/python-docs-samples#10243)
        missing = not_found(f"Service account {name} does not exist.")
        if _COMPUTE_DEFAULT.fullmatch(email):
            number = email.split("-", 1)[0]
            project = match["project"]
            if project != "-" and str(project_number(project)) != number:
                raise missing
            return Account(project, email, "Compute Engine default service account")
        with self._lock:
            account = self._accounts.get(email)
        if account is None or match["project"] not in ("-", account.project):
            raise missing
        return account

    def list(self, project: str, page_size: int, page_token: str) -> tuple[list[Account], str]:
        with self._lock:
            mine = [a for a in self._accounts.values() if a.project == project]
        return PAGING.page([compute_default(project), *mine], lambda a: a.email, page_size, page_token)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"accounts": [asdict(a) for a in self._accounts.values()]}

    def restore(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._accounts = {a["email"]: Account(**a) for a in data.get("accounts", [])}
