"""The one place Google clients are built: against `doki emulator` when DOKI_EMULATOR is set, else Google.

The Google clients read no emulator variable themselves. With `DOKI_EMULATOR=host:port` every gRPC client shares
one insecure channel to the emulator and sends no credentials (a transport instance and `credentials=` cannot be
combined); storage goes to `STORAGE_EMULATOR_HOST`, and image pushes to the emulator's Docker registry at
`DOKI_EMULATOR_REGISTRY`. Without it, Application Default Credentials and Google's endpoints. Imports stay inside
the methods: each client library costs ~0.3 s to import.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from doki_cli.errors import Code, DokiError

if TYPE_CHECKING:
    import grpc

_HOST_PORT = re.compile(r"[A-Za-z0-9.\-\[\]:]+:\d{1,5}")
# Artifact Registry takes an OAuth access token as the password of this user.
REGISTRY_USERNAME = "oauth2accesstoken"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


@dataclass(frozen=True)
class RegistryLogin:
    """How the Docker engine pushes to Artifact Registry: the registry it talks to, and as whom."""

    address: str
    username: str
    password: str
    prefix: str  # what goes before an Artifact Registry image name to make the name the engine pushes

    def reference(self, image: str) -> str:
        """The name the engine pushes `image` (REGION-docker.pkg.dev/PROJECT/REPO/IMAGE:TAG) under."""
        return self.prefix + image

    def auth_config(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password, "serveraddress": self.address}


# The name the emulator tells Cloud Run's endpoints apart by (doki_cli/emulator/run/__init__.py, RUN_HOST; a test keeps
# the two the same): REGION-run.doki-emulator, through the emulator as an HTTP proxy, as `doki emulator env` sets up
# gcloud.
EMULATOR_RUN_HOST = "run.doki-emulator"


@dataclass(frozen=True)
class RunV1:
    """Cloud Run's v1 REST API (domain mappings have no v2): a session that authorizes its requests, and the base URL
    of the regional endpoint (https://REGION-run.googleapis.com) or, for `region` None, the global one."""

    session: Any
    base: str


@dataclass(frozen=True)
class MonitoringClients:
    uptime: Any
    alerts: Any
    channels: Any
    metrics: Any


# Loopback answers at once; a little longer covers an emulator on another machine of the network.
EMULATOR_CONNECT_TIMEOUT = 2.0


class ClientFactory:
    def __init__(
        self,
        emulator: str | None = None,
        storage_url: str | None = None,
        registry: str | None = None,
        *,
        quota_project: str | None = None,
    ) -> None:
        """`quota_project`: the project calls are billed to and checked against (its APIs must be enabled): sent as
        x-goog-user-project. Without it, a user login bills gcloud's own project, and Google answers that the API
        "has not been used in project 764086051850" (https://cloud.google.com/docs/quotas/set-quota-project)."""
        if emulator is not None and not _HOST_PORT.fullmatch(emulator):
            raise DokiError(
                Code.BAD_EMULATOR_ADDRESS,
                f"DOKI_EMULATOR={emulator!r} is not host:port",
                'set it from `eval "$(doki emulator env)"`, e.g. DOKI_EMULATOR=127.0.0.1:8470',
            )
        if registry is not None and not _HOST_PORT.fullmatch(registry):
            raise DokiError(
                Code.BAD_EMULATOR_ADDRESS,
                f"DOKI_EMULATOR_REGISTRY={registry!r} is not host:port",
                'set it from `eval "$(doki emulator env)"`, e.g. DOKI_EMULATOR_REGISTRY=127.0.0.1:8472',
            )
        self.emulator = emulator
        self.storage_url = storage_url
        self.registry = registry
        self.quota_project = quota_project
        self._channel: grpc.Channel | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, *, quota_project: str | None = None) -> ClientFactory:
        return cls(
            env.get("DOKI_EMULATOR") or None,
            env.get("STORAGE_EMULATOR_HOST") or None,
            env.get("DOKI_EMULATOR_REGISTRY") or None,
            quota_project=quota_project,
        )

    def _options(self) -> dict[str, str]:
        """Client options of the clients on Google: the quota project, when there is one."""
        return {"quota_project_id": self.quota_project} if self.quota_project else {}

    @property
    def endpoint(self) -> str:
        """Where the clients go, as plans and doctor name it: Google, or the emulator at host:port."""
        return f"the emulator at {self.emulator}" if self.emulator else "Google"

    def channel(self) -> grpc.Channel:
        """The shared channel to the emulator."""
        import grpc

        if self.emulator is None:
            raise DokiError(Code.NO_EMULATOR, "no emulator is configured", "set DOKI_EMULATOR")
        if self._channel is None:
            self._check_emulator_answers(self.emulator)
            self._channel = grpc.insecure_channel(self.emulator)
            if self.quota_project:
                # Sent as Google's auth library sends it for a quota project, so the emulator checks the same one.
                self._channel = grpc.intercept_channel(self._channel, _user_project(self.quota_project))
        return self._channel

    @staticmethod
    def _check_emulator_answers(address: str) -> None:
        """Fail at once when nothing listens at the emulator's address (a shell still set up for one that was
        stopped): the calls would otherwise be retried for a minute, then blamed on Google."""
        import socket

        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=EMULATOR_CONNECT_TIMEOUT).close()
        except OSError as exc:
            raise DokiError(
                Code.EMULATOR_UNREACHABLE,
                f"nothing answers at {address} (DOKI_EMULATOR): {exc.strerror or exc}",
                'start the emulator (doki emulator start, then eval "$(doki emulator env)"), or leave emulator '
                'mode: eval "$(doki emulator env --unset)"',
            ) from None

    def secret_manager(self) -> Any:
        from google.cloud import secretmanager
        from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
            SecretManagerServiceGrpcTransport,
        )

        if self.emulator:
            return secretmanager.SecretManagerServiceClient(
                transport=SecretManagerServiceGrpcTransport(channel=self.channel())
            )
        return _with_credentials(lambda: secretmanager.SecretManagerServiceClient(client_options=self._options()))

    def run_services(self) -> Any:
        from google.cloud import run_v2
        from google.cloud.run_v2.services.services.transports import ServicesGrpcTransport

        if self.emulator:
            return run_v2.ServicesClient(transport=ServicesGrpcTransport(channel=self.channel()))
        return _with_credentials(lambda: run_v2.ServicesClient(client_options=self._options()))

    def run_revisions(self) -> Any:
        from google.cloud import run_v2
        from google.cloud.run_v2.services.revisions.transports import RevisionsGrpcTransport

        if self.emulator:
            return run_v2.RevisionsClient(transport=RevisionsGrpcTransport(channel=self.channel()))
        return _with_credentials(lambda: run_v2.RevisionsClient(client_options=self._options()))

    def monitoring(self) -> MonitoringClients:
        """Cloud Monitoring's four clients (uptime checks, alert policies, channels, time series): one API, one
        channel."""
        from google.cloud import monitoring_v3
        from google.cloud.monitoring_v3.services.alert_policy_service.transports import AlertPolicyServiceGrpcTransport
        from google.cloud.monitoring_v3.services.metric_service.transports import MetricServiceGrpcTransport
        from google.cloud.monitoring_v3.services.notification_channel_service.transports import (
            NotificationChannelServiceGrpcTransport,
        )
        from google.cloud.monitoring_v3.services.uptime_check_service.transports import UptimeCheckServiceGrpcTransport

        if self.emulator:
            channel = self.channel()
            return MonitoringClients(
                monitoring_v3.UptimeCheckServiceClient(transport=UptimeCheckServiceGrpcTransport(channel=channel)),
                monitoring_v3.AlertPolicyServiceClient(transport=AlertPolicyServiceGrpcTransport(channel=channel)),
                monitoring_v3.NotificationChannelServiceClient(
                    transport=NotificationChannelServiceGrpcTransport(channel=channel)
                ),
                monitoring_v3.MetricServiceClient(transport=MetricServiceGrpcTransport(channel=channel)),
            )
        return MonitoringClients(
            _with_credentials(lambda: monitoring_v3.UptimeCheckServiceClient(client_options=self._options())),
            _with_credentials(lambda: monitoring_v3.AlertPolicyServiceClient(client_options=self._options())),
            _with_credentials(lambda: monitoring_v3.NotificationChannelServiceClient(client_options=self._options())),
            _with_credentials(lambda: monitoring_v3.MetricServiceClient(client_options=self._options())),
        )

    def run_v1(self, region: str | None) -> RunV1:
        import requests

        if self.emulator:
            if not self.storage_url:
                raise DokiError(
                    Code.BAD_EMULATOR_ADDRESS,
                    "STORAGE_EMULATOR_HOST is not set: Cloud Run's v1 REST API is on the emulator's REST port",
                    'set it from `eval "$(doki emulator env)"`',
                )
            session = requests.Session()
            # The emulator is this session's proxy, whatever HTTP_PROXY says (which requests would otherwise prefer).
            session.trust_env = False
            rest = self.storage_url.rstrip("/")
            session.proxies = {"http": rest}
            port = rest.rsplit(":", 1)[-1]
            return RunV1(session, f"http://{region + '-' if region else ''}{EMULATOR_RUN_HOST}:{port}")

        def authorized() -> Any:
            import google.auth
            from google.auth.transport.requests import AuthorizedSession

            credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE], quota_project_id=self.quota_project)
            return AuthorizedSession(credentials)  # type: ignore[no-untyped-call]

        return RunV1(_with_credentials(authorized), f"https://{region + '-' if region else ''}run.googleapis.com")

    def billing_catalog(self) -> Any:
        from google.cloud import billing_v1
        from google.cloud.billing_v1.services.cloud_catalog.transports import CloudCatalogGrpcTransport

        if self.emulator:
            return billing_v1.CloudCatalogClient(transport=CloudCatalogGrpcTransport(channel=self.channel()))
        return _with_credentials(lambda: billing_v1.CloudCatalogClient(client_options=self._options()))

    def cloud_build(self) -> Any:
        from google.cloud.devtools import cloudbuild_v1
        from google.cloud.devtools.cloudbuild_v1.services.cloud_build.transports import CloudBuildGrpcTransport

        if self.emulator:
            return cloudbuild_v1.CloudBuildClient(transport=CloudBuildGrpcTransport(channel=self.channel()))
        return _with_credentials(lambda: cloudbuild_v1.CloudBuildClient(client_options=self._options()))

    def artifact_registry(self) -> Any:
        from google.cloud import artifactregistry_v1
        from google.cloud.artifactregistry_v1.services.artifact_registry.transports import (
            ArtifactRegistryGrpcTransport,
        )

        if self.emulator:
            return artifactregistry_v1.ArtifactRegistryClient(
                transport=ArtifactRegistryGrpcTransport(channel=self.channel())
            )
        return _with_credentials(lambda: artifactregistry_v1.ArtifactRegistryClient(client_options=self._options()))

    def service_usage(self) -> Any:
        from google.cloud import service_usage_v1
        from google.cloud.service_usage_v1.services.service_usage.transports import ServiceUsageGrpcTransport

        if self.emulator:
            return service_usage_v1.ServiceUsageClient(transport=ServiceUsageGrpcTransport(channel=self.channel()))
        return _with_credentials(lambda: service_usage_v1.ServiceUsageClient(client_options=self._options()))

    def iam_admin(self) -> Any:
        from google.cloud import iam_admin_v1
        from google.cloud.iam_admin_v1.services.iam.transports import IAMGrpcTransport

        if self.emulator:
            return iam_admin_v1.IAMClient(transport=IAMGrpcTransport(channel=self.channel()))
        return _with_credentials(lambda: iam_admin_v1.IAMClient(client_options=self._options()))

    def iam_credentials(self) -> Any:
        from google.cloud import iam_credentials_v1
        from google.cloud.iam_credentials_v1.services.iam_credentials.transports import IAMCredentialsGrpcTransport

        if self.emulator:
            return iam_credentials_v1.IAMCredentialsClient(
                transport=IAMCredentialsGrpcTransport(channel=self.channel())
            )
        return _with_credentials(lambda: iam_credentials_v1.IAMCredentialsClient(client_options=self._options()))

    def logging(self) -> Any:
        from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
        from google.cloud.logging_v2.services.logging_service_v2.transports import LoggingServiceV2GrpcTransport

        if self.emulator:
            return LoggingServiceV2Client(transport=LoggingServiceV2GrpcTransport(channel=self.channel()))
        return _with_credentials(lambda: LoggingServiceV2Client(client_options=self._options()))

    def storage(self, project: str) -> Any:
        from google.cloud import storage  # type: ignore[attr-defined]

        if self.emulator:
            if not self.storage_url:
                raise DokiError(
                    Code.NO_STORAGE_EMULATOR,
                    "DOKI_EMULATOR is set but STORAGE_EMULATOR_HOST is not, so uploads have nowhere to go",
                    'set both with `eval "$(doki emulator env)"`',
                )
            from google.auth.credentials import AnonymousCredentials

            return storage.Client(
                project=project,
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                client_options={"api_endpoint": self.storage_url},
            )
        return _with_credentials(lambda: storage.Client(project=project, client_options=self._options()))

    def registry_login(self, region: str) -> RegistryLogin:
        """Where and as whom the engine pushes images of `region`: Artifact Registry with an ADC access token, or
        the emulator's registry with a stand-in token."""
        if self.emulator:
            if not self.registry:
                raise DokiError(
                    Code.NO_REGISTRY_EMULATOR,
                    "DOKI_EMULATOR is set but DOKI_EMULATOR_REGISTRY is not, so images have nowhere to be pushed",
                    'set both with `eval "$(doki emulator env)"`',
                )
            # One emulator address serves every location, so the real name goes whole behind it
            # (127.0.0.1:8472/us-central1-docker.pkg.dev/p/r/app): the emulator records the image under that real
            # name, and deploys and releases see the same image names against the emulator as on Google.
            return RegistryLogin(self.registry, REGISTRY_USERNAME, "emulator", prefix=self.registry + "/")
        return RegistryLogin(f"{region}-docker.pkg.dev", REGISTRY_USERNAME, _access_token(), prefix="")


def _user_project(project: str) -> Any:
    """An interceptor adding x-goog-user-project to every call on the emulator's channel (unary calls and the log
    tail), made here so grpc is imported only when a channel is."""
    import grpc

    header = ("x-goog-user-project", project)

    class UserProject(grpc.UnaryUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):  # type: ignore[misc]
        def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
            return continuation(details._replace(metadata=[*(details.metadata or ()), header]), request)

        def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
            return continuation(details._replace(metadata=[*(details.metadata or ()), header]), requests)

    return UserProject()


def _access_token() -> str:
    """A fresh OAuth access token of Application Default Credentials."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError, RefreshError, TransportError
    from google.auth.transport.requests import Request

    from doki_cli.gcp.errors import no_credentials

    try:
        credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
        credentials.refresh(Request())  # type: ignore[no-untyped-call]
    except DefaultCredentialsError as exc:
        raise no_credentials(exc) from None
    except RefreshError as exc:
        from doki_cli.gcp.errors import expired_login, is_expired_login

        if is_expired_login(exc):
            raise expired_login(exc, "getting an access token for the registry") from None
        raise DokiError(
            Code.NOT_AUTHENTICATED,
            f"Google refused to give Application Default Credentials an access token ({exc})",
            "run `gcloud auth application-default login` again, or check GOOGLE_APPLICATION_CREDENTIALS",
        ) from None
    except TransportError as exc:
        raise DokiError(
            Code.GOOGLE_UNREACHABLE,
            f"could not reach Google for an access token ({exc})",
            "check the network (and any proxy settings), then try again",
        ) from None
    return str(credentials.token)


def _with_credentials(make: Any) -> Any:
    """Build a client on Application Default Credentials; none found becomes an error that says how to get them."""
    from google.auth.exceptions import DefaultCredentialsError

    try:
        return make()
    except DefaultCredentialsError as exc:
        from doki_cli.gcp.errors import no_credentials

        raise no_credentials(exc) from None
