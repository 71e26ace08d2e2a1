"""Cloud Build served from fakes: the emulator's own Cloud Build, Artifact Registry and Operations services on a gRPC
port, with a fake Docker engine, fake bucket objects and a fake log store behind them, so every path of a build
(failures, timeouts, cancels) runs in milliseconds and through the official client."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.cloud import artifactregistry_v1 as ar
from google.cloud.devtools import cloudbuild_v1 as cb
from google.cloud.devtools.cloudbuild_v1.services.cloud_build.transports import CloudBuildGrpcTransport

from doki_cli.emulator.artifactregistry import grpc_api as artifactregistry_grpc
from doki_cli.emulator.artifactregistry.state import Registry
from doki_cli.emulator.cloudbuild import grpc_api as cloudbuild_grpc
from doki_cli.emulator.cloudbuild.state import CloudBuild
from doki_cli.emulator.errors import not_found
from doki_cli.emulator.faults import Faults
from doki_cli.emulator.operations import grpc_api as operations_grpc
from doki_cli.emulator.operations.state import Operations
from doki_cli.engine import BuiltImage
from doki_cli.errors import Code, DokiError

PROJECT = "p"
BUCKET = f"{PROJECT}_cloudbuild"
OBJECT = "source/1700000000.5-0123456789abcdef0123456789abcdef.tgz"
REPOSITORY = f"projects/{PROJECT}/locations/us-central1/repositories/apps"
IMAGE = f"us-central1-docker.pkg.dev/{PROJECT}/apps/web:v1"
GENERATION = 1700000000123456


def tarball(files: dict[str, str], *, extra: list[tarfile.TarInfo] | None = None) -> bytes:
    """A gzipped tarball of `files` (path -> text), plus raw `extra` members, as `gcloud builds submit` uploads."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info in extra or []:
            archive.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return buffer.getvalue()


@dataclass
class EngineCall:
    """One build the fake engine was asked for: what it saw in the context, and with which options."""

    files: dict[str, str]
    tags: list[str]
    build_args: dict[str, str]
    no_cache: bool


@dataclass
class FakeEngine:
    """Reads the context's Dockerfile as a script: `RUN fail` fails the build, `RUN wait` blocks until released;
    every other line is streamed as a step. The image id is the hash of the context and the options."""

    calls: list[EngineCall] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)
    failure = DokiError  # what its builds raise, as doki's Docker engine does

    def build(
        self,
        context: Path,
        tags: list[str],
        *,
        build_args: dict[str, str] | None = None,
        no_cache: bool = False,
        on_line: Any = lambda line: None,
    ) -> BuiltImage:
        files = {str(p.relative_to(context)): p.read_text() for p in sorted(context.rglob("*")) if p.is_file()}
        self.calls.append(EngineCall(files, list(tags), dict(build_args or {}), no_cache))
        self.started.set()
        instructions = [line for line in files.get("Dockerfile", "").splitlines() if line.strip()]
        if not instructions:
            raise DokiError(Code.BUILD_FAILED, "the image build failed at (before the first step):\nno Dockerfile")
        for number, instruction in enumerate(instructions, 1):
            on_line(f"Step {number}/{len(instructions)} : {instruction}")
            if instruction == "RUN wait":
                self.release.wait(10)
            if instruction == "RUN fail":
                on_line(" ---> Running in 0123456789ab")
                raise DokiError(
                    Code.BUILD_FAILED,
                    f"the image build failed at Step {number}/{len(instructions)} : RUN fail:\n"
                    "The command '/bin/sh -c fail' returned a non-zero code: 127",
                )
        digest = hashlib.sha256(repr((files, sorted((build_args or {}).items()))).encode()).hexdigest()
        on_line(f"Successfully built {digest[:12]}")
        return BuiltImage(id=f"sha256:{digest}", tags=list(tags), size=1000 + len(files))


class FakeBuckets:
    """Objects by (bucket, name), one generation each, as the storage emulator's Buckets.read_object serves them."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], tuple[int, bytes]] = {}

    def read_object(self, bucket: str, name: str, generation: int | None = None) -> tuple[int, bytes]:
        stored = self.objects.get((bucket, name))
        if stored is None or generation not in (None, stored[0]):
            raise not_found(f"No such object: {bucket}/{name}")
        return stored


class FakeLogs:
    """Every emitted line, with its log and resource, as the log store receives them."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def emit(self, **entry: Any) -> None:
        self.entries.append(entry)

    def lines(self, build_id: str) -> list[str]:
        return [e["line"] for e in self.entries if e["labels"]["build_id"] == build_id]


@dataclass
class BuildWorld:
    """The served Cloud Build with its fakes, and official clients talking to it."""

    builds: CloudBuild
    registry: Registry
    engine: FakeEngine
    buckets: FakeBuckets
    logs: FakeLogs
    faults: Faults
    client: Any
    registry_client: Any
    saves: list[int]

    def upload(self, files: dict[str, str], **kwargs: Any) -> cb.Source:
        self.buckets.objects[(BUCKET, OBJECT)] = (GENERATION, tarball(files, **kwargs))
        return cb.Source(storage_source=cb.StorageSource(bucket=BUCKET, object_=OBJECT, generation=GENERATION))

    def create_repository(self, repository_id: str = "apps") -> None:
        self.registry_client.create_repository(
            parent=f"projects/{PROJECT}/locations/us-central1",
            repository_id=repository_id,
            repository=ar.Repository(format_=ar.Repository.Format.DOCKER),
        ).result(timeout=10)


def _serve(builds: CloudBuild, registry: Registry, operations: Operations, faults: Faults) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    services = [
        operations_grpc.service(operations, faults),
        cloudbuild_grpc.service(builds, faults),
        artifactregistry_grpc.service(registry, operations, faults),
    ]
    server.add_generic_rpc_handlers([s.handler() for s in services])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def _world(engine: FakeEngine | None) -> Iterator[BuildWorld]:
    saves: list[int] = []
    faults = Faults()
    operations = Operations(faults)
    registry = Registry(persist=lambda: None)
    buckets, logs = FakeBuckets(), FakeLogs()
    builds = CloudBuild(
        persist=lambda: saves.append(1),
        buckets=buckets,
        registry=registry,
        logs=logs,
        operations=operations,
        engine=engine,
    )
    server, port = _serve(builds, registry, operations, faults)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    client = cb.CloudBuildClient(transport=CloudBuildGrpcTransport(channel=channel))
    registry_client = ar.ArtifactRegistryClient(
        transport=ar.services.artifact_registry.transports.ArtifactRegistryGrpcTransport(channel=channel)
    )
    fake_engine = engine or FakeEngine()
    try:
        yield BuildWorld(builds, registry, fake_engine, buckets, logs, faults, client, registry_client, saves)
    finally:
        fake_engine.release.set()
        operations.wait_all(timeout=5)
        channel.close()
        server.stop(grace=None)


@pytest.fixture
def world() -> Iterator[BuildWorld]:
    """Cloud Build with a fake engine."""
    yield from _world(FakeEngine())


@pytest.fixture
def engineless() -> Iterator[BuildWorld]:
    """Cloud Build on an emulator started without a Docker engine."""
    yield from _world(None)
