"""Revisions as real containers on the Docker engine: start, wait until Ready, follow the logs, stop.

A revision is Ready when its ingress container accepts connections on the port in its PORT variable (Cloud Run's
default startup probe), or answers its HTTP startup probe, before the startup timeout. Every container runs on the
host network (engines here may not publish ports), so each revision gets its own loopback port. Each output line
becomes a Cloud Logging entry, as Cloud Run's logging agent writes them.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from google.cloud import run_v2

from doki_cli.emulator.cloudlogging.state import LogStore
from doki_cli.emulator.run.router import BACKEND_HOST, Backend
from doki_cli.emulator.run.validation import default_probe, memory_bytes

if TYPE_CHECKING:
    from doki_cli.emulator.engine import Container, ContainerEngine

log = logging.getLogger("doki.emulator")

# Labels that mark the emulator's containers, so it can find and remove them (even those a crash left behind).
LABEL_EMULATOR = "doki.emulator"
LABEL_STATE = "doki.emulator.state"
LABEL_SERVICE = "doki.service"
LABEL_REVISION = "doki.revision"
CONTAINER_PREFIX = "doki-emu-"
# How often the startup probe runs while a revision starts.
PROBE_INTERVAL_SECONDS = 0.1
# Log lines quoted when a container exits before it is Ready.
FAILED_LOG_LINES = 20
# Cloud Run's defaults for an explicit startup probe's fields left at zero.
PROBE_PERIOD_SECONDS = 10
PROBE_FAILURE_THRESHOLD = 3


class RevisionFailure(Exception):
    """Why a revision cannot become Ready, in Cloud Run's words, with the reason its conditions carry."""

    def __init__(
        self,
        message: str,
        *,
        reason: int = run_v2.Condition.CommonReason.COMMON_REASON_UNDEFINED,
        revision_reason: int = run_v2.Condition.RevisionReason.REVISION_REASON_UNDEFINED,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.revision_reason = revision_reason


class Cancelled(Exception):
    """The start was abandoned (the service was deleted, or the emulator is stopping)."""


@dataclass(frozen=True)
class ContainerSpec:
    """One container of a revision as the engine runs it."""

    name: str
    image: str
    command: list[str]
    args: list[str]
    environment: dict[str, str]
    # Its in-memory volumes' mount paths, each with tmpfs options ("size=N" bytes, or "" unbounded): Cloud Run's
    # in-memory volumes are tmpfs (the proto's comment on EmptyDirVolumeSource: "In memory (tmpfs) ephemeral storage";
    # on its medium: left unspecified, "the default will currently be backed by memory"). Each container gets its own,
    # where an instance's containers share one on Cloud Run: a shortcut of the emulator's. Other
    # volumes (Cloud Storage, NFS, secrets, Cloud SQL) reach services the emulator does not run: not mounted.
    tmpfs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StartupProbe:
    """How Readiness is judged: a TCP connection, or an HTTP GET of `path` answering 2xx/3xx, within `timeout`."""

    timeout: float
    http_path: str | None = None
    default: bool = False  # Cloud Run's own TCP probe, which it names "Default" in its log
    failures: int = 1  # the failure threshold its log counts


@dataclass(frozen=True)
class Launch:
    """Everything needed to run one revision; `containers[0]` is the ingress container."""

    project: str
    location: str
    service: str
    revision: str  # the revision's full resource name
    port: int  # where the ingress container listens here (host networking: one loopback port per revision)
    request_timeout: float
    containers: list[ContainerSpec]
    probe: StartupProbe
    # The port and name Cloud Run's messages use: the template's, not the loopback port above.
    container_port: int = 8080
    container_name: str = ""

    @property
    def revision_id(self) -> str:
        return self.revision.rsplit("/", 1)[-1]

    @property
    def log_labels(self) -> dict[str, str]:
        """The labels of a cloud_run_revision entry about this revision, as Cloud Run writes them."""
        return {
            "service_name": self.service,
            "revision_name": self.revision_id,
            "location": self.location,
            "configuration_name": self.service,
            "project_id": self.project,
        }


def startup_probe(container: run_v2.Container, default_timeout: float) -> StartupProbe:
    """The startup probe of `container`: its own, or Cloud Run's default TCP probe, which waits `default_timeout`
    (the emulator's setting: Google's 240 s would make every test of a container that never listens wait that long)."""
    probe = container.startup_probe
    if "startup_probe" not in container or probe == default_probe(probe.tcp_socket.port):
        return StartupProbe(default_timeout, default=True)
    period = probe.period_seconds or PROBE_PERIOD_SECONDS
    attempts = probe.failure_threshold or PROBE_FAILURE_THRESHOLD
    timeout = float(probe.initial_delay_seconds + period * attempts)
    path = (probe.http_get.path or "/") if "http_get" in probe else None
    return StartupProbe(timeout, path, failures=attempts)


@dataclass
class _Running:
    launch: Launch
    containers: list[Container] = field(default_factory=list)
    ready: bool = False


class Runtime:
    """The containers of the revisions that run now, keyed by revision name. Thread-safe."""

    def __init__(
        self, engine: ContainerEngine, logs: LogStore, *, state_id: str, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        """`state_id` labels the containers, so a later emulator on the same state can find the ones left over."""
        self._engine = engine
        self._logs = logs
        self.state_id = state_id
        self._sleep = sleep
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._closed = False

    def launch(self, launch: Launch, keep_going: Callable[[], bool]) -> None:
        """Start the revision's containers and wait until it is Ready; RevisionFailure (containers removed) if not."""
        self.stop(launch.revision)
        for spec in launch.containers:
            self._ensure_image(spec.image)
        running = _Running(launch)
        with self._lock:
            if self._closed:
                raise Cancelled("the emulator is stopping")
            self._running[launch.revision] = running
            try:
                for spec in launch.containers:
                    running.containers.append(self._start(launch, spec))
            except self._engine.failure as exc:
                failure: RevisionFailure | None = RevisionFailure(
                    f"The container could not be started: {exc}",
                    revision_reason=run_v2.Condition.RevisionReason.HEALTH_CHECK_CONTAINER_ERROR,
                )
            else:
                failure = None
        if failure is not None:
            self.stop(launch.revision)
            raise failure
        for container in running.containers:
            for stream in ("stdout", "stderr"):
                threading.Thread(
                    target=self._follow,
                    args=(launch, container, stream),
                    name=f"run-logs-{launch.revision_id}-{stream}",
                    daemon=True,
                ).start()
        try:
            self._wait_ready(launch, running.containers, keep_going)
        except (RevisionFailure, Cancelled):
            self.stop(launch.revision)
            raise
        with self._lock:
            running.ready = True

    def _ensure_image(self, image: str) -> None:
        if self._engine.has_image(image):
            return
        try:
            self._engine.pull(image)
        except self._engine.failure:
            raise RevisionFailure(
                f"Image '{image}' not found.", reason=run_v2.Condition.CommonReason.CONTAINER_MISSING
            ) from None

    def _start(self, launch: Launch, spec: ContainerSpec) -> Container:
        labels = {
            LABEL_EMULATOR: "1",
            LABEL_STATE: self.state_id,
            LABEL_SERVICE: f"projects/{launch.project}/locations/{launch.location}/services/{launch.service}",
            LABEL_REVISION: launch.revision_id,
        }
        return self._engine.start_detached(
            spec.image,
            spec.name,
            command=spec.command,
            args=spec.args,
            environment=spec.environment,
            labels=labels,
            tmpfs=spec.tmpfs,
        )

    def _follow(self, launch: Launch, container: Container, stream: str) -> None:
        try:
            for line in container.follow_lines(stream):
                if line.strip():
                    self._logs.emit(
                        project=launch.project,
                        log_id=f"run.googleapis.com/{stream}",
                        resource_type="cloud_run_revision",
                        labels=launch.log_labels,
                        line=line,
                    )
        except Exception as exc:  # the container went away mid-stream: its logs end there
            log.debug("log stream of %s ended: %s", launch.revision_id, exc)

    def _wait_ready(self, launch: Launch, containers: list[Container], keep_going: Callable[[], bool]) -> None:
        deadline = time.monotonic() + launch.probe.timeout
        while True:
            if not keep_going():
                raise Cancelled(f"the start of {launch.revision_id} was abandoned")
            for container in containers:
                status = container.status_or_gone()
                if status == "gone":
                    raise RevisionFailure(
                        "The container was removed before it listened on the port defined by the "
                        f"PORT={launch.port} environment variable.",
                        revision_reason=run_v2.Condition.RevisionReason.HEALTH_CHECK_CONTAINER_ERROR,
                    )
                if status in ("exited", "dead"):
                    self._system_log(launch, f"Container called exit({container.exit_code()}).")
                    raise _exited(launch, container)
            if _probe(launch.port, launch.probe):
                return
            if time.monotonic() > deadline:
                probe = launch.probe
                kind = "HTTP" if probe.http_path is not None else "TCP"
                named = f' "{launch.container_name}"' if launch.container_name else ""
                self._system_log(
                    launch,
                    f"{'Default ' if probe.default else ''}STARTUP {kind} probe failed {probe.failures} time"
                    f"{'s' if probe.failures != 1 else ''} consecutively for container{named} on port "
                    f"{launch.container_port}. The instance was not started.",
                )
                raise RevisionFailure(
                    "The user-provided container failed to start and listen on the port defined provided by the "
                    f"PORT={launch.container_port} environment variable within the allocated timeout. This can happen "
                    "when the container port is misconfigured or if the timeout is too short. The health check "
                    "timeout can be extended. Logs for this revision might contain more information.",
                    revision_reason=run_v2.Condition.RevisionReason.HEALTH_CHECK_CONTAINER_ERROR,
                )
            self._sleep(PROBE_INTERVAL_SECONDS)

    def _system_log(self, launch: Launch, line: str) -> None:
        """What Cloud Run itself writes about an instance, at ERROR under the revision, in its system log
        (run.googleapis.com/varlog/system): "Container called exit(1)." and "Default STARTUP TCP probe failed 1 time
        consecutively for container … on port 8080. The instance was not started.", as users quote them (e.g.
        apache/airflow's Cloud Run provider tests; the PORT=8080 wording: googlecodelabs/feedback#1814)."""
        self._logs.emit(
            project=launch.project,
            log_id="run.googleapis.com/varlog/system",
            resource_type="cloud_run_revision",
            labels=launch.log_labels,
            line=line,
            severity="ERROR",
        )

    def backend(self, revision: str) -> Backend | None:
        """Where the Ready revision `revision` listens, or None when it does not run."""
        with self._lock:
            running = self._running.get(revision)
            if running is None or not running.ready:
                return None
            return Backend(running.launch.port, running.launch.request_timeout)

    def is_running(self, revision: str) -> bool:
        """Whether `revision` is Ready and its containers still run."""
        with self._lock:
            running = self._running.get(revision)
            if running is None or not running.ready:
                return False
            containers = list(running.containers)
        return all(container.status_or_gone() == "running" for container in containers)

    def running_revisions(self) -> list[str]:
        with self._lock:
            return list(self._running)

    def stop(self, revision: str) -> None:
        """Remove the containers of `revision`, if it runs."""
        with self._lock:
            running = self._running.pop(revision, None)
        if running is not None:
            for container in running.containers:
                container.remove()

    def stop_all(self) -> None:
        """Remove every container this emulator started; later launches are refused."""
        with self._lock:
            self._closed = True
            revisions = list(self._running)
        threads = [threading.Thread(target=self.stop, args=(revision,), daemon=True) for revision in revisions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def remove_leftovers(self) -> None:
        """Remove containers of this state that a previous emulator left running (it crashed, or was killed)."""
        # Launches wait meanwhile: a container started between listing and removing would look left over.
        with self._lock:
            mine = {c.id for running in self._running.values() for c in running.containers}
            for container in self._engine.containers_labelled(LABEL_STATE, self.state_id):
                if container.id not in mine:
                    container.remove()


def _exited(launch: Launch, container: Container) -> RevisionFailure:
    lines = container.tail(FAILED_LOG_LINES).rstrip()
    return RevisionFailure(
        f"The user-provided container exited with code {container.exit_code()} before it listened on the port "
        f"defined by the PORT={launch.container_port} environment variable. Last log lines:\n{lines}",
        revision_reason=run_v2.Condition.RevisionReason.HEALTH_CHECK_CONTAINER_ERROR,
    )


def _probe(port: int, probe: StartupProbe) -> bool:
    if probe.http_path is None:
        with contextlib.suppress(OSError), socket.create_connection((BACKEND_HOST, port), timeout=1):
            return True
        return False
    connection = http.client.HTTPConnection(BACKEND_HOST, port, timeout=1)
    try:
        connection.request("GET", probe.http_path)
        return 200 <= connection.getresponse().status < 400
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def in_memory_mounts(
    revision: run_v2.RevisionTemplate | run_v2.Revision, container: run_v2.Container
) -> dict[str, str]:
    """`container`'s mounts of the revision's in-memory volumes as tmpfs mounts: path -> options, the volume's size
    limit in bytes where it has one."""
    volumes = {volume.name: volume for volume in revision.volumes if "empty_dir" in volume}
    mounts = {}
    for mount in container.volume_mounts:
        volume = volumes.get(mount.name)
        if volume is not None:
            size = memory_bytes(volume.empty_dir.size_limit) if volume.empty_dir.size_limit else None
            mounts[mount.mount_path] = f"size={size}" if size else ""
    return mounts
