"""The emulator process: every emulated service wired together on one gRPC port and one REST port.

This is the one place the services meet: each gets the state it depends on through its constructor (Cloud Run
reads secrets and writes logs; Cloud Build reads uploaded sources and writes images and logs).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from doki_cli.emulator import control
from doki_cli.emulator.artifactregistry import grpc_api as artifactregistry_grpc
from doki_cli.emulator.artifactregistry.state import Registry
from doki_cli.emulator.cloudbuild import grpc_api as cloudbuild_grpc
from doki_cli.emulator.cloudbuild.state import CloudBuild
from doki_cli.emulator.cloudlogging import grpc_api as logging_grpc
from doki_cli.emulator.cloudlogging.state import LogStore
from doki_cli.emulator.faults import Faults
from doki_cli.emulator.operations import grpc_api as operations_grpc
from doki_cli.emulator.operations.state import Operations
from doki_cli.emulator.persist import StateDir
from doki_cli.emulator.rest import RestServer, Router
from doki_cli.emulator.run import grpc_api as run_grpc
from doki_cli.emulator.run.state import CloudRun
from doki_cli.emulator.secretmanager import grpc_api as secretmanager_grpc
from doki_cli.emulator.secretmanager import rest_api as secretmanager_rest
from doki_cli.emulator.secretmanager.state import SecretStore
from doki_cli.emulator.storage import rest_api as storage_rest
from doki_cli.emulator.storage.state import Buckets

if TYPE_CHECKING:
    from doki_cli.engine import DockerEngine

log = logging.getLogger("doki.emulator")

# Bidirectional log tails hold a worker each for as long as they stay open.
GRPC_WORKERS = 64


@dataclass(frozen=True)
class EmulatorConfig:
    host: str = "127.0.0.1"
    grpc_port: int = 0  # 0: any free port
    rest_port: int = 0
    state_dir: Path | None = None  # None: nothing persists


class Emulator:
    """Start with `start()` (or `with`), stop with `stop()`; the ports are known once started."""

    def __init__(
        self,
        config: EmulatorConfig,
        *,
        engine: DockerEngine | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.engine = engine
        self.state_dir = StateDir(config.state_dir)
        self.faults = Faults()
        self.operations = Operations(self.faults, sleep=sleep)
        self.logs = LogStore(persist=self._saver("logging", lambda: self.logs))
        self.secrets = SecretStore(persist=self._saver("secretmanager", lambda: self.secrets))
        blob_dir = config.state_dir / "storage-objects" if config.state_dir else None
        self.buckets = Buckets(persist=self._saver("storage", lambda: self.buckets), blob_dir=blob_dir)
        self.registry = Registry(persist=self._saver("artifactregistry", lambda: self.registry))
        self.run = CloudRun(
            persist=self._saver("run", lambda: self.run),
            secrets=self.secrets,
            logs=self.logs,
            operations=self.operations,
            faults=self.faults,
            engine=engine,
            host=config.host,
            sleep=sleep,
        )
        self.builds = CloudBuild(
            persist=self._saver("cloudbuild", lambda: self.builds),
            buckets=self.buckets,
            registry=self.registry,
            logs=self.logs,
            operations=self.operations,
            engine=engine,
        )
        self._persistent: dict[str, Any] = {
            "logging": self.logs,
            "secretmanager": self.secrets,
            "storage": self.buckets,
            "artifactregistry": self.registry,
            "run": self.run,
            "cloudbuild": self.builds,
        }
        self._grpc: grpc.Server | None = None
        self._rest: RestServer | None = None
        self.grpc_port = 0
        self.rest_port = 0
        self.stopped = threading.Event()

    def _saver(self, name: str, state: Callable[[], Any]) -> Callable[[], None]:
        return lambda: self.state_dir.save(name, state().snapshot())

    @property
    def grpc_address(self) -> str:
        return f"{self.config.host}:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.config.host}:{self.rest_port}"

    def status(self) -> dict[str, Any]:
        return {
            "grpc": self.grpc_address,
            "rest": self.rest_url,
            "state_dir": str(self.config.state_dir) if self.config.state_dir else None,
            "engine": self.engine is not None,
        }

    def touch(self, resource: str) -> bool:
        """Change `resource` behind every client's back (new etag), as a concurrent writer would."""
        return any(state.touch(resource) for state in (self.secrets, self.run))

    def start(self) -> Emulator:
        for name, state in self._persistent.items():
            data = self.state_dir.load(name)
            if data is not None:
                state.restore(data)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=GRPC_WORKERS, thread_name_prefix="doki-grpc"))
        services = [
            operations_grpc.service(self.operations, self.faults),
            secretmanager_grpc.service(self.secrets, self.faults),
            *run_grpc.services(self.run, self.faults),
            cloudbuild_grpc.service(self.builds, self.faults),
            artifactregistry_grpc.service(self.registry, self.operations, self.faults),
            logging_grpc.service(self.logs, self.faults),
        ]
        server.add_generic_rpc_handlers([s.handler() for s in services])
        self.grpc_port = server.add_insecure_port(f"{self.config.host}:{self.config.grpc_port}")
        if self.grpc_port == 0:
            raise OSError(f"cannot listen for gRPC on {self.config.host}:{self.config.grpc_port}")
        router = Router(self.faults)
        secretmanager_rest.add_routes(router, self.secrets)
        storage_rest.add_routes(router, self.buckets)
        control.add_routes(router, self)
        self._rest = RestServer(self.config.host, self.config.rest_port, router)
        self.rest_port = self._rest.server_address[1]
        server.start()
        self._grpc = server
        self._rest.start()
        self.run.start()
        log.info("emulator serving gRPC on %s and REST on %s", self.grpc_address, self.rest_url)
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
        self.operations.wait_all(timeout=5)
        self.run.stop()
        for name, state in self._persistent.items():
            self.state_dir.save(name, state.snapshot())

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
