"""The adapters for one project, built on one client factory: the one place they are wired together."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from doki_cli.gcp.clients import ClientFactory
from doki_cli.gcp.retry import Retrier

if TYPE_CHECKING:
    from doki_cli.gcp.artifactregistry import ArtifactRegistry
    from doki_cli.gcp.billing import Billing
    from doki_cli.gcp.cloudbuild import CloudBuild
    from doki_cli.gcp.domains import DomainMappings
    from doki_cli.gcp.identity import IdentityTokens
    from doki_cli.gcp.logs import Logs
    from doki_cli.gcp.monitoring import Monitoring
    from doki_cli.gcp.run import CloudRun
    from doki_cli.gcp.secretmanager import SecretManager
    from doki_cli.gcp.serviceaccounts import ServiceAccounts
    from doki_cli.gcp.serviceusage import ServiceUsage


class Google:
    """Every adapter for one project and region, each made on first use; commands get theirs from the command
    context (`doki_cli.context`), whose factory says which client factory and retry policy they share."""

    def __init__(
        self,
        factory: ClientFactory,
        project: str,
        region: str = "us-central1",
        *,
        retrier: Retrier | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # The time Cloud Run's waits are measured on (--timeout, the heartbeat): a test's fake one runs out at once.
        self._sleep = sleep
        self._clock = clock
        self.factory = factory
        self.project = project
        self.region = region
        self.retrier = retrier or Retrier()

    @cached_property
    def run(self) -> CloudRun:
        from doki_cli.gcp.run import CloudRun
        from doki_cli.provenance import here

        run = CloudRun(
            self.factory.run_services(),
            self.project,
            self.region,
            self.retrier,
            revisions=self.factory.run_revisions(),
            endpoint=self.factory.endpoint,
            sleep=self._sleep,
            clock=self._clock,
        )
        # Who makes a revision and from where, whichever command does (deploy and release say more: `history`).
        run.provenance = here("", None)
        return run

    @cached_property
    def secrets(self) -> SecretManager:
        from doki_cli.gcp.secretmanager import SecretManager

        return SecretManager(self.factory.secret_manager(), self.project, self.retrier)

    @cached_property
    def service_usage(self) -> ServiceUsage:
        from doki_cli.gcp.serviceusage import ServiceUsage

        return ServiceUsage(self.factory.service_usage(), self.project, self.retrier)

    @cached_property
    def accounts(self) -> ServiceAccounts:
        from doki_cli.gcp.serviceaccounts import ServiceAccounts

        return ServiceAccounts(self.factory.iam_admin(), self.project, self.retrier)

    @cached_property
    def identity(self) -> IdentityTokens:
        from doki_cli.gcp.identity import IdentityTokens

        return IdentityTokens(self.factory, self.retrier)

    @cached_property
    def logs(self) -> Logs:
        from doki_cli.gcp.logs import Logs

        return Logs(self.factory.logging(), self.project, self.retrier)

    @cached_property
    def domains(self) -> DomainMappings:
        from doki_cli.gcp.domains import DomainMappings

        return DomainMappings(self.factory.run_v1, self.project, self.region, self.retrier)

    @cached_property
    def billing(self) -> Billing:
        from doki_cli.gcp.billing import Billing

        return Billing(self.factory.billing_catalog(), self.retrier)

    @cached_property
    def monitoring(self) -> Monitoring:
        from doki_cli.gcp.monitoring import Monitoring

        return Monitoring(self.factory.monitoring(), self.project, self.retrier)

    @cached_property
    def cloud_build(self) -> CloudBuild:
        from doki_cli.gcp.cloudbuild import CloudBuild

        return CloudBuild(
            self.factory.cloud_build(),
            self.factory.storage(self.project),
            self.logs,
            self.project,
            self.region,
            self.retrier,
        )

    @cached_property
    def artifact_registry(self) -> ArtifactRegistry:
        from doki_cli.gcp.artifactregistry import ArtifactRegistry

        return ArtifactRegistry(
            self.factory.artifact_registry(),
            self.project,
            self.region,
            self.retrier,
            login=self.factory.registry_login,
        )
