"""The emulator process: every emulated service wired together on one gRPC port and one REST port, plus the
Docker registry on a port of its own.

This is the one place the services meet: each gets the state it depends on through its constructor (Cloud Run
reads secrets and writes logs; Cloud Build reads uploaded sources and writes images and logs). `Emulator.apis` then
lists every emulated API once, with its gRPC services, its REST routes and the state it saves: a new API is a
package, its state made here, and one line there.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from doki_cli.emulator import control
from doki_cli.emulator.artifactregistry import grpc_api as artifactregistry_grpc
from doki_cli.emulator.artifactregistry.state import ImageRef, Registry
from doki_cli.emulator.billing import grpc_api as billing_grpc
from doki_cli.emulator.billing.state import Catalog
from doki_cli.emulator.cloudbuild import grpc_api as cloudbuild_grpc
from doki_cli.emulator.cloudbuild.state import CloudBuild
from doki_cli.emulator.cloudlogging import grpc_api as logging_grpc
from doki_cli.emulator.cloudlogging import rest_api as logging_rest
from doki_cli.emulator.cloudlogging.quota import ReadQuota
from doki_cli.emulator.cloudlogging.state import LogStore
from doki_cli.emulator.errors import ApiError
from doki_cli.emulator.faults import Faults
from doki_cli.emulator.grpcapi import GrpcService
from doki_cli.emulator.iam import OrgPolicy, Propagation
from doki_cli.emulator.iamadmin import grpc_api as iamadmin_grpc
from doki_cli.emulator.iamadmin.state import ServiceAccounts
from doki_cli.emulator.iamcredentials import grpc_api as iamcredentials_grpc
from doki_cli.emulator.iamcredentials.tokens import IdTokens
from doki_cli.emulator.monitoring import Monitoring
from doki_cli.emulator.monitoring import grpc_api as monitoring_grpc
from doki_cli.emulator.monitoring import rest_api as monitoring_rest
from doki_cli.emulator.operations import grpc_api as operations_grpc
from doki_cli.emulator.operations.state import Operations
from doki_cli.emulator.persist import Persistent, StateDir
from doki_cli.emulator.registry.http_api import RegistryServer
from doki_cli.emulator.registry.state import DockerRegistry
from doki_cli.emulator.rest import RestServer, Router
from doki_cli.emulator.run import grpc_api as run_grpc
from doki_cli.emulator.run import rest_api as run_rest
from doki_cli.emulator.run.domains import DomainMappings
from doki_cli.emulator.run.state import CloudRun
from doki_cli.emulator.secretmanager import grpc_api as secretmanager_grpc
from doki_cli.emulator.secretmanager import rest_api as secretmanager_rest
from doki_cli.emulator.secretmanager.state import SecretStore
from doki_cli.emulator.serviceusage import grpc_api as serviceusage_grpc
from doki_cli.emulator.serviceusage import rest_api as serviceusage_rest
from doki_cli.emulator.serviceusage.gate import DisabledApiGate
from doki_cli.emulator.serviceusage.state import ServiceUsage
from doki_cli.emulator.storage import rest_api as storage_rest
from doki_cli.emulator.storage.state import Buckets

if TYPE_CHECKING:
    from doki_cli.emulator.engine import ContainerEngine

log = logging.getLogger("doki.emulator")

# Bidirectional log tails hold a worker each for as long as they stay open.
GRPC_WORKERS = 64


@dataclass(frozen=True)
class EmulatorConfig:
    host: str = "127.0.0.1"
    grpc_port: int = 0  # 0: any free port
    rest_port: int = 0
    registry_port: int = 0  # the Docker registry (its own server: blob uploads stream to files)
    state_dir: Path | None = None  # None: nothing persists
    disabled_apis: tuple[str, ...] = ()  # APIs a project starts without (e.g. "cloudbuild.googleapis.com")


@dataclass(frozen=True, kw_only=True)
class Api:
    """One emulated API as the emulator serves it: the state it keeps across restarts (in the state directory as
    `saved_as`.json), its gRPC services, and what adds its REST routes."""

    saved_as: str = ""
    state: Persistent | None = None
    grpc: Sequence[GrpcService] = ()
    rest: Callable[[Router], None] | None = None


class Emulator:
    """Start with `start()` (or `with`), stop with `stop()`; the ports are known once started."""

    def __init__(
        self,
        config: EmulatorConfig,
        *,
        engine: ContainerEngine | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """`wall_clock`: the time Cloud Monitoring's points, uptime runs and alerting are stamped and judged on (a
        test's fake one passes an alert's retest window without waiting it out)."""
        self.config = config
        self.engine = engine
        self.state_dir = StateDir(config.state_dir)
        self.faults = Faults()
        self.operations = Operations(self.faults, sleep=sleep)
        self.logs = LogStore(persist=self._saver("logging"))
        self.log_reads = ReadQuota(clock)  # Cloud Logging's entries.list quota, per project
        self.iam_propagation = Propagation(clock)  # how long a grant takes to reach the services, per project
        self.org_policy = OrgPolicy()  # which principals projects' IAM policies may name
        self.accounts = ServiceAccounts(persist=self._saver("iam"))  # which accounts exist
        self.id_tokens = IdTokens()  # signs the ID tokens IAM Credentials mints; private URLs verify them
        self.secrets = SecretStore(
            persist=self._saver("secretmanager"),
            propagation=self.iam_propagation,
            org=self.org_policy,
            accounts=self.accounts,
        )
        blob_dir = config.state_dir / "storage-objects" if config.state_dir else None
        self.buckets = Buckets(persist=self._saver("storage"), blob_dir=blob_dir)
        self.registry = Registry(persist=self._saver("artifactregistry"), org=self.org_policy, accounts=self.accounts)
        self.docker_registry = DockerRegistry(
            repositories=self.registry,
            root=config.state_dir / "registry" if config.state_dir else None,
            persist=self._saver("registry"),
        )
        self.service_usage = ServiceUsage(persist=self._saver("serviceusage"), disabled=config.disabled_apis)
        self.catalog = Catalog(persist=self._saver("billing"))  # Cloud Run's prices, for plans' costs
        self.monitoring = Monitoring(persist=self._saver("monitoring"), service_url=self._service_url, clock=wall_clock)
        self.run = CloudRun(
            persist=self._saver("run"),
            secrets=self.secrets,
            images=self.registry,
            logs=self.logs,
            operations=self.operations,
            faults=self.faults,
            engine=engine,
            host=config.host,
            sleep=sleep,
            org=self.org_policy,
            accounts=self.accounts,
            id_tokens=self.id_tokens,
            by_digest=self._in_registry,
            observe=self.monitoring.observe_request,
        )
        self.domains = DomainMappings(persist=self._saver("domainmappings"), service_exists=self._service_exists)
        self.builds = CloudBuild(
            persist=self._saver("cloudbuild"),
            buckets=self.buckets,
            registry=self.registry,
            logs=self.logs,
            operations=self.operations,
            engine=engine,
            push=self._push_to_registry if engine is not None else None,
            accounts=self.accounts,
        )
        faults, operations = self.faults, self.operations
        # Every emulated API, once. Its REST routes are matched in this order.
        self.apis = (
            Api(grpc=[operations_grpc.service(operations, faults)]),
            Api(
                saved_as="secretmanager",
                state=self.secrets,
                grpc=[secretmanager_grpc.service(self.secrets, faults)],
                rest=lambda router: secretmanager_rest.add_routes(router, self.secrets),
            ),
            Api(
                saved_as="logging",
                state=self.logs,
                grpc=[logging_grpc.service(self.logs, self.log_reads, faults)],
                rest=lambda router: logging_rest.add_routes(router, self.logs, self.log_reads),
            ),
            Api(
                saved_as="serviceusage",
                state=self.service_usage,
                grpc=[serviceusage_grpc.service(self.service_usage, operations, faults)],
                rest=lambda router: serviceusage_rest.add_routes(router, self.service_usage, operations),
            ),
            Api(
                saved_as="storage",
                state=self.buckets,
                rest=lambda router: storage_rest.add_routes(router, self.buckets),
            ),
            Api(
                saved_as="run",
                state=self.run,
                grpc=run_grpc.services(self.run, faults),
                rest=lambda router: run_rest.add_routes(router, self.run, self.domains),
            ),
            Api(
                saved_as="artifactregistry",
                state=self.registry,
                grpc=[artifactregistry_grpc.service(self.registry, operations, faults)],
            ),
            Api(saved_as="domainmappings", state=self.domains),  # served with Cloud Run's v1 routes
            Api(saved_as="registry", state=self.docker_registry),  # the Docker registry, served on its own port
            Api(saved_as="cloudbuild", state=self.builds, grpc=[cloudbuild_grpc.service(self.builds, faults)]),
            Api(saved_as="iam", state=self.accounts, grpc=[iamadmin_grpc.service(self.accounts, faults)]),
            Api(
                saved_as="monitoring",
                state=self.monitoring,
                grpc=monitoring_grpc.services(self.monitoring.config, self.monitoring.metrics, faults),
                rest=lambda router: monitoring_rest.add_routes(router, self.monitoring.config, self.monitoring.metrics),
            ),
            Api(grpc=[iamcredentials_grpc.service(self.accounts, self.id_tokens, faults)]),
            Api(saved_as="billing", state=self.catalog, grpc=[billing_grpc.service(self.catalog, faults)]),
        )
        self._saved = {api.saved_as: api.state for api in self.apis if api.state is not None}
        self._grpc: grpc.Server | None = None
        self._rest: RestServer | None = None
        self._registry: RegistryServer | None = None
        self.grpc_port = 0
        self.rest_port = 0
        self.registry_port = 0
        self.stopped = threading.Event()

    def _saver(self, name: str) -> Callable[[], None]:
        """What a state calls after each change: save it as its entry in `apis` says."""
        return lambda: self.state_dir.save(name, self._saved[name].snapshot())

    @property
    def grpc_address(self) -> str:
        return f"{self.config.host}:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.config.host}:{self.rest_port}"

    @property
    def registry_address(self) -> str:
        """Where the engine pushes: images are tagged REGISTRY_ADDRESS/LOCATION-docker.pkg.dev/PROJECT/REPO/IMAGE."""
        return f"{self.config.host}:{self.registry_port}"

    def _in_registry(self, image: str) -> str:
        """An Artifact Registry image as this emulator's registry serves it (the engine pulls it from there); other
        images as they are."""
        return f"{self.registry_address}/{image}" if ImageRef.parse(image) is not None else image

    def _service_exists(self, name: str) -> bool:
        return self._service_url(name) is not None

    def _service_url(self, name: str) -> str | None:
        """Where a Cloud Run service answers (the uptime checks' target), or None when there is no such service."""
        try:
            return self.run.get_service(name).uri or None
        except ApiError:
            return None

    def _push_to_registry(self, image: str) -> str:
        """Cloud Build's push: the built local image into this emulator's registry, under its real name."""
        assert self.engine is not None
        target = f"{self.registry_address}/{image}"
        self.engine.tag(image, target)
        # The registry takes any token for oauth2accesstoken, as Artifact Registry takes any valid access token.
        auth = {"username": "oauth2accesstoken", "password": "emulator-cloud-build"}
        return self.engine.push(target, auth, on_line=lambda line: None)

    def status(self) -> dict[str, Any]:
        return {
            "grpc": self.grpc_address,
            "rest": self.rest_url,
            "registry": self.registry_address,
            "state_dir": str(self.config.state_dir) if self.config.state_dir else None,
            "engine": self.engine is not None,
        }

    def touch(self, resource: str) -> bool:
        """Change `resource` behind every client's back (new etag), as a concurrent writer would."""
        return any(state.touch(resource) for state in (self.secrets, self.run))

    def start(self) -> Emulator:
        for name, state in self._saved.items():
            data = self.state_dir.load(name)
            if data is not None:
                state.restore(data)
        gate = DisabledApiGate(self.service_usage)  # calls to a disabled API fail as on Google, on both transports
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=GRPC_WORKERS, thread_name_prefix="doki-grpc"),
            interceptors=[gate],
            # gRPC sets SO_REUSEPORT by default: a second emulator would share the port, the calls split between them.
            options=[("grpc.so_reuseport", 0)],
        )
        server.add_generic_rpc_handlers([service.handler() for api in self.apis for service in api.grpc])
        try:
            # grpcio answers a port it cannot bind with 0, or (newer releases) with a RuntimeError.
            self.grpc_port = server.add_insecure_port(f"{self.config.host}:{self.config.grpc_port}")
        except RuntimeError:
            self.grpc_port = 0
        if self.grpc_port == 0:
            raise OSError(f"cannot listen for gRPC on {self.config.host}:{self.config.grpc_port}")
        router = Router(self.faults, gate=gate)
        for api in self.apis:
            if api.rest is not None:
                api.rest(router)
        control.add_routes(router, self)
        # Serving from the moment it is bound: stop() waits for serve_forever on every server it finds.
        self._registry = RegistryServer(self.config.host, self.config.registry_port, self.docker_registry)
        self.registry_port = self._registry.port
        self._registry.start()
        self._rest = RestServer(self.config.host, self.config.rest_port, router)
        self.rest_port = self._rest.server_address[1]
        server.start()
        self._grpc = server
        self._rest.start()
        self.run.start()
        self.monitoring.start()
        log.info(
            "emulator serving gRPC on %s, REST on %s and the registry on %s",
            self.grpc_address,
            self.rest_url,
            self.registry_address,
        )
        return self

    def stop(self) -> None:
        """Stop serving, stop the revisions' containers, and save every state one last time."""
        if self.stopped.is_set():
            return
        self.stopped.set()
        if self._grpc is not None:
            self._grpc.stop(grace=1).wait()
        if self._rest is not None:
            self._rest.shutdown()
            self._rest.server_close()
        if self._registry is not None:
            self._registry.shutdown()
            self._registry.server_close()
        self.operations.wait_all(timeout=5)
        self.monitoring.stop()
        self.run.stop()
        for name, state in self._saved.items():
            self.state_dir.save(name, state.snapshot())
        self.docker_registry.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
