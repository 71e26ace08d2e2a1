"""What the deploy core needs of Cloud Run and Secret Manager: the calls it makes, and nothing else.

The planner, the executor and the release take these rather than the adapters (`doki_cli.gcp.run.CloudRun`,
`doki_cli.gcp.secretmanager.SecretManager`), which satisfy them as they are; so the core runs as well on an
in-memory double of them (tests/fakes/deploy.py), and what it may do to the services is written down here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Protocol

from doki_cli.model import Edit, LiveService, RevisionInfo, ServiceSpec
from doki_cli.waiting import DEFAULT_TIMEOUT


class ServiceUpdater(Protocol):
    """The one write every change of a live service goes through (the deploy core's, a rotation's, a preview's)."""

    def update(
        self,
        name: str,
        decide: Callable[[LiveService], Edit],
        *,
        on_progress: Callable[[str], None],
        timeout: float = DEFAULT_TIMEOUT,
        wait: bool = True,
    ) -> LiveService:
        """Read the service, write the `Edit` that `decide` makes of it, guarded by the read's etag (on a conflict:
        read and decide again); wait up to `timeout` seconds until Cloud Run has made the change (wait_timeout past
        it), or, not `wait`, only until Cloud Run accepted it."""
        ...


class RunPort(ServiceUpdater, Protocol):
    """One project and region of Cloud Run, as the deploy core reads and writes it."""

    @property
    def endpoint(self) -> str:
        """Where the services are (Google, or the emulator at host:port), as plans name it."""
        ...

    def path(self, name: str) -> str:
        """The service's resource name: projects/P/locations/R/services/NAME."""
        ...

    def get(self, name: str) -> LiveService | None:
        """The live service, or None when there is none yet."""
        ...

    def revisions(self, name: str) -> list[RevisionInfo]:
        """The service's revisions, newest first, with the traffic each serves now."""
        ...

    def is_public(self, name: str) -> bool:
        """Whether anyone may invoke the service (allUsers holds the invoker role)."""
        ...

    def set_public(self, name: str, public: bool) -> bool:
        """Add or remove the allUsers invoker binding; True if it changed."""
        ...

    def apply(
        self,
        name: str,
        spec: ServiceSpec,
        *,
        keep_env: Collection[str],
        live: LiveService | None,
        on_progress: Callable[[str], None],
        timeout: float = DEFAULT_TIMEOUT,
        wait: bool = True,
        new_revision: bool = False,
    ) -> LiveService:
        """Create the service (`live` None) or update `live` to `spec`, all traffic to the latest revision once it is
        Ready; a revision that fails raises, traffic untouched. Waits as `update` does; traffic a rollback pinned is
        not written unwaited (bad_option), as only the wait's end moves it to the new revision."""
        ...


class SecretsPort(Protocol):
    """One project's Secret Manager, as the deploy core checks and grants its secrets."""

    @property
    def project(self) -> str: ...

    def exists(self, secret_id: str) -> bool: ...

    def resolve(self, secret_id: str, version: str) -> tuple[int, str] | None:
        """The number and state (enabled, disabled, destroyed) of the version `version` ("latest" or a number)
        names; None when there is no such version."""
        ...

    def is_granted(self, secret_id: str, member: str) -> bool:
        """Whether `member` may read the secret's versions."""
        ...

    def members(self, secret_id: str) -> list[str]:
        """Who may read the secret's versions, as its IAM policy binds them."""
        ...

    def grant(self, secret_id: str, member: str) -> bool:
        """Let `member` read the secret's versions; False if it already could."""
        ...
