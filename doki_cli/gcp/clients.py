"""The one place Google clients are built: against `doki emulator` when DOKI_EMULATOR is set, else Google.

The Google clients read no emulator variable themselves. With `DOKI_EMULATOR=host:port` every gRPC client shares
one insecure channel to the emulator and sends no credentials (a transport instance and `credentials=` cannot be
combined); storage goes to `STORAGE_EMULATOR_HOST`. Without it, Application Default Credentials and Google's
endpoints. Imports stay inside the methods: each client library costs ~0.3 s to import.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from doki_cli.errors import DokiError

if TYPE_CHECKING:
    import grpc

_HOST_PORT = re.compile(r"[A-Za-z0-9.\-\[\]:]+:\d{1,5}")


class ClientFactory:
    def __init__(self, emulator: str | None = None, storage_url: str | None = None) -> None:
        if emulator is not None and not _HOST_PORT.fullmatch(emulator):
            raise DokiError(
                "bad_emulator_address",
                f"DOKI_EMULATOR={emulator!r} is not host:port",
                'set it from `eval "$(doki emulator env)"`, e.g. DOKI_EMULATOR=127.0.0.1:8470',
            )
        self.emulator = emulator
        self.storage_url = storage_url
        self._channel: grpc.Channel | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ClientFactory:
        return cls(env.get("DOKI_EMULATOR") or None, env.get("STORAGE_EMULATOR_HOST") or None)

    def channel(self) -> grpc.Channel:
        """The shared channel to the emulator."""
        import grpc

        if self.emulator is None:
            raise DokiError("no_emulator", "no emulator is configured", "set DOKI_EMULATOR")
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.emulator)
        return self._channel

    def secret_manager(self) -> Any:
        from google.cloud import secretmanager
        from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
            SecretManagerServiceGrpcTransport,
        )

        if self.emulator:
            return secretmanager.SecretManagerServiceClient(
                transport=SecretManagerServiceGrpcTransport(channel=self.channel())
            )
        return _with_credentials(secretmanager.SecretManagerServiceClient)

    def run_services(self) -> Any:
        from google.cloud import run_v2
        from google.cloud.run_v2.services.services.transports import ServicesGrpcTransport

        if self.emulator:
            return run_v2.ServicesClient(transport=ServicesGrpcTransport(channel=self.channel()))
        return _with_credentials(run_v2.ServicesClient)

    def run_revisions(self) -> Any:
        from google.cloud import run_v2
        from google.cloud.run_v2.services.revisions.transports import RevisionsGrpcTransport

        if self.emulator:
            return run_v2.RevisionsClient(transport=RevisionsGrpcTransport(channel=self.channel()))
        return _with_credentials(run_v2.RevisionsClient)

    def cloud_build(self) -> Any:
        from google.cloud.devtools import cloudbuild_v1
        from google.cloud.devtools.cloudbuild_v1.services.cloud_build.transports import CloudBuildGrpcTransport

        if self.emulator:
            return cloudbuild_v1.CloudBuildClient(transport=CloudBuildGrpcTransport(channel=self.channel()))
        return _with_credentials(cloudbuild_v1.CloudBuildClient)

    def artifact_registry(self) -> Any:
        from google.cloud import artifactregistry_v1
        from google.cloud.artifactregistry_v1.services.artifact_registry.transports import (
            ArtifactRegistryGrpcTransport,
        )

        if self.emulator:
            return artifactregistry_v1.ArtifactRegistryClient(
                transport=ArtifactRegistryGrpcTransport(channel=self.channel())
            )
        return _with_credentials(artifactregistry_v1.ArtifactRegistryClient)

    def logging(self) -> Any:
        from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
        from google.cloud.logging_v2.services.logging_service_v2.transports import LoggingServiceV2GrpcTransport

        if self.emulator:
            return LoggingServiceV2Client(transport=LoggingServiceV2GrpcTransport(channel=self.channel()))
        return _with_credentials(LoggingServiceV2Client)

    def storage(self, project: str) -> Any:
        from google.cloud import storage  # type: ignore[attr-defined]

        if self.emulator:
            if not self.storage_url:
                raise DokiError(
                    "no_storage_emulator",
                    "DOKI_EMULATOR is set but STORAGE_EMULATOR_HOST is not, so uploads have nowhere to go",
                    'set both with `eval "$(doki emulator env)"`',
                )
            from google.auth.credentials import AnonymousCredentials

            return storage.Client(
                project=project,
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                client_options={"api_endpoint": self.storage_url},
            )
        return _with_credentials(lambda: storage.Client(project=project))


def _with_credentials(make: Any) -> Any:
    """Build a client on Application Default Credentials; none found becomes an error that says how to get them."""
    from google.auth.exceptions import DefaultCredentialsError

    try:
        return make()
    except DefaultCredentialsError as exc:
        from doki_cli.gcp.errors import no_credentials

        raise no_credentials(exc) from None
