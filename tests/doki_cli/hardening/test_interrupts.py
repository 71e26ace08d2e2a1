"""Ctrl-C at every step of `doki deploy` and `doki release` (issue 8): nothing is left that the next run cannot finish.

The installed `doki` runs as a real process against one emulator with real containers, and receives a real SIGINT
at the exact moment it waits on a step's call: the emulator's `Faults.on_call` hook fires when that call arrives,
sends the signal, and holds the call until doki has let go of it (it exited, or said it finishes that change first).
Then: exit 130 and a message saying what happened; the service serves what it served before or the new state
fully (never traffic on an unchecked revision, never a release lock left behind); `doki deploy --dry-run` lists
exactly what remains; and the next `doki deploy --yes` or `doki release` completes.

Each case deploys a service of its own on the module's emulator, so the cases share the setup but not their state.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.cloud import artifactregistry_v1, run_v2
from google.protobuf import json_format

from doki_cli.deploy.lock import LOCK
from doki_cli.emulator.errors import ApiError
from doki_cli.emulator.faults import Faults
from doki_cli.emulator.server import Emulator, EmulatorConfig
from doki_cli.gcp.clients import ClientFactory
from doki_cli.gitinfo import CI_SHA_VARIABLES
from doki_cli.interrupts import NOTE, deferred_interrupt
from tests.helpers import Process, clean_env, record, run, secret
from tests.helpers.accounts import make_accounts
from tests.helpers.images import publish
from tests.helpers.project import ENV, PROJECT, TOML

# The doki beside the interpreter running the tests: .venv's, or scripts/test-newest's own venv.
DOKI = str(Path(sys.executable).with_name("doki"))
REGION = "us-central1"
# A commit of this session alone, so parallel sessions on one engine never share its image tags.
SHA = f"{os.getpid():07x}"[-7:] + "c" * 33
RELEASE = "[release]\nsteps = [10, 50, 100]\nstep_wait_seconds = 0\nattempts = 3\n"
WRITES = ("UpdateService", "SetIamPolicy")
# How long a held call waits for doki to let go of it: far more than doki needs, so only a hang reaches it.
HOLD_LIMIT = 60.0


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Step:
    """Where to interrupt: the `call`-th call of `method` (counted from the command's start), in order."""

    calls: tuple[tuple[str, int], ...]
    says: str  # what the error message says about where the command stopped


class Project:
    """A directory with the doki.toml of one service, named after the case; `doki` runs there as a process."""

    def __init__(self, root: Path, emulator: Emulator, name: str) -> None:
        self.root = root
        self.emulator = emulator
        self.name = name
        self.path = f"projects/{PROJECT}/locations/{REGION}/services/{name}"
        self.release_image = f"{REGION}-docker.pkg.dev/{PROJECT}/doki/{name}:{SHA[:7]}"
        root.mkdir(parents=True)
        toml = TOML.replace('name = "doki-backend"', f'name = "{name}"').replace("doki-runtime@", f"sa-{name}@")
        (root / "doki.toml").write_text(toml + RELEASE)
        make_accounts(emulator, toml)
        (root / ".env").write_text(ENV)
        for line in ENV.splitlines():  # the production secrets doki deploys and the containers run with
            name, _, value = line.partition("=")
            secret(f"{name} of the project's .env", value)
        self._runs = 0

    def env(self) -> dict[str, str]:
        env = clean_env(
            DOKI_EMULATOR=self.emulator.grpc_address,
            STORAGE_EMULATOR_HOST=self.emulator.rest_url,
            DOKI_EMULATOR_REGISTRY=self.emulator.registry_address,
        )
        for name in ("CI", *CI_SHA_VARIABLES):
            env.pop(name, None)
        return env

    def doki(self, *args: str) -> Run:
        done = run([DOKI, *args], cwd=self.root, env=self.env(), capture_output=True, text=True, timeout=180)
        return Run(done.returncode, done.stdout, done.stderr)

    def interrupted(self, *args: str, at: Step) -> Run:
        """`doki ARGS`, sent SIGINT when each of `at`'s calls arrives at the emulator."""
        self._runs += 1
        out, err = self.root / f"run-{self._runs}.out", self.root / f"run-{self._runs}.err"
        started, exited = threading.Event(), threading.Event()
        reached: list[str] = []
        proc: Process | None = None

        def interrupt(method: str) -> None:
            started.wait(HOLD_LIMIT)
            assert proc is not None
            reached.append(method)
            proc.send_signal(signal.SIGINT)
            # Hold the call, as a slow network would, until doki has let go of it.
            deadline = time.monotonic() + HOLD_LIMIT
            while not exited.wait(0.02) and time.monotonic() < deadline:
                if NOTE in err.read_text():
                    return

        for method, call in at.calls:
            self.emulator.faults.on_call(method, interrupt, call=call)
        # Every operation is then polled at least once, as on Google, however fast its container starts: otherwise
        # one done within the emulator's inline wait is never polled, and a GetOperation step never reached.
        self.emulator.faults.lro_delay = 0.01
        with out.open("w") as stdout, err.open("w") as stderr:
            proc = Process([DOKI, *args], cwd=self.root, env=self.env(), stdout=stdout, stderr=stderr)
            started.set()
            try:
                code = proc.wait(timeout=180)
            finally:
                exited.set()
                self.emulator.faults.clear()  # hooks a run never reached must not fire in the next one
        command = shlex.join(["doki", *args])
        done = Run(
            code,
            record(f"the stdout of `{command}`", out.read_text()),
            record(f"the stderr of `{command}`", err.read_text()),
        )
        assert len(reached) == len(at.calls), f"doki never reached {at.calls[len(reached)]}:\n{done.stderr}"
        if at.calls[-1][0].endswith(WRITES):
            # A write in flight is finished before the interrupt takes effect: abandoned, it could land later.
            assert NOTE in done.stderr
        return done

    def service(self) -> Any:
        return self.emulator.run.get_service(self.path)

    def settled(self) -> Any:
        """The service once Cloud Run has finished what it was sent (an interrupted deploy's operation goes on)."""
        deadline = time.monotonic() + HOLD_LIMIT
        service = self.service()
        while service.reconciling and time.monotonic() < deadline:
            time.sleep(0.05)
            service = self.service()
        return service

    def serving(self) -> dict[str, int]:
        return {s.revision: s.percent for s in self.settled().traffic_statuses if s.percent}

    def record_logs(self) -> None:
        """Hand the log entries of the service's containers, as the emulator's Cloud Logging holds them, to the leak
        check."""
        entries, token = [], ""
        while True:
            page, token = self.emulator.logs.list_entries(
                resource_names=[f"projects/{PROJECT}"],
                filter_text=f'resource.labels.service_name="{self.name}"',
                page_token=token,
            )
            entries += [json.dumps(json_format.MessageToDict(entry), ensure_ascii=False) for entry in page]
            if not token:
                break
        record(f"the logs of {self.name}'s containers", "\n".join(entries))


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, docker_client: Any, backend_image: str) -> Iterator[Emulator]:
    """One emulator with real containers for every case, its secrets pushed once."""
    from doki_cli.engine import DockerEngine

    root = tmp_path_factory.mktemp("interrupts")
    with Emulator(EmulatorConfig(state_dir=root / "emulator"), engine=DockerEngine(docker_client)) as running:
        setup = Project(root / "setup", running, "setup")
        pushed = setup.doki("secrets", "push")
        assert pushed.code == 0, pushed.stderr
        running.registry.create_repository(
            f"projects/{PROJECT}/locations/{REGION}",
            "doki",
            artifactregistry_v1.Repository(format_=artifactregistry_v1.Repository.Format.DOCKER),
        )
        publish(running, backend_image)
        yield running


@pytest.fixture
def release_images(docker_client: Any, backend_image: str) -> Iterator[list[str]]:
    """Release images a case puts on the engine (the backend image under the commit's tag), removed after it."""
    tags: list[str] = []
    yield tags
    for tag in tags:
        docker_client.images.remove(tag)


@pytest.fixture
def project(case: str, tmp_path: Path, cloud: Emulator) -> Iterator[Project]:
    """The case's own service, named after it; deleted afterwards, so its containers do not pile up."""
    made = Project(tmp_path / "project", cloud, case)
    yield made
    with contextlib.suppress(ApiError):
        cloud.run.delete_service(made.path)
    made.record_logs()


UPDATE = "/google.cloud.run.v2.Services/UpdateService"


def test_a_hook_fires_once_on_the_kth_call_counted_from_when_it_was_added_and_before_the_call_is_served() -> None:
    faults = Faults()
    faults.check(UPDATE)  # before the hook: not one of its calls
    reached: list[str] = []
    faults.on_call("Services/UpdateService", reached.append, call=2)
    faults.check("/google.cloud.run.v2.Services/GetService")
    faults.check(UPDATE)
    assert reached == []
    faults.check(UPDATE)
    assert reached == [UPDATE]
    faults.check(UPDATE)
    assert reached == [UPDATE]
    assert faults.calls[UPDATE] == 4


def test_a_hook_that_raises_fails_its_call_and_clear_forgets_the_hooks_never_reached() -> None:
    faults = Faults()

    def unavailable(method: str) -> None:
        raise ApiError(grpc.StatusCode.UNAVAILABLE, f"held {method}")

    faults.on_call("UpdateService", unavailable)
    with pytest.raises(ApiError, match=f"held {UPDATE}"):
        faults.check(UPDATE)
    reached: list[str] = []
    faults.on_call("UpdateService", reached.append)
    faults.clear()
    faults.check(UPDATE)
    assert reached == []


def test_a_failure_planned_for_invoke_is_what_the_service_url_answers(emulator: Emulator) -> None:
    services = ClientFactory(emulator.grpc_address).run_services()
    spec = run_v2.Service(template=run_v2.RevisionTemplate(containers=[run_v2.Container(image="example.com/api:v1")]))
    services.create_service(parent=f"projects/{PROJECT}/locations/{REGION}", service_id="api", service=spec)
    url = services.get_service(name=f"projects/{PROJECT}/locations/{REGION}/services/api").uri
    emulator.faults.fail("Invoke", "NOT_FOUND")
    failed = httpx.get(url + "/", timeout=10)
    assert (failed.status_code, failed.text) == (404, "injected NOT_FOUND for Invoke\n")
    assert httpx.get(url + "/", timeout=10).status_code == 403  # then the invoker check, as before
    assert emulator.faults.calls[f"/projects/{PROJECT}/locations/{REGION}/services/api/Invoke"] == 2


def test_ctrl_c_during_a_write_takes_effect_once_the_write_has_returned(capsys: pytest.CaptureFixture[str]) -> None:
    done = []
    with pytest.raises(KeyboardInterrupt), deferred_interrupt():
        signal.raise_signal(signal.SIGINT)
        done.append("the write returned")
    assert done == ["the write returned"]
    assert capsys.readouterr().err == NOTE + "\n"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_during_a_write_stops_at_once() -> None:
    done = []
    with pytest.raises(KeyboardInterrupt), deferred_interrupt():
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)
        done.append("the write returned")
    assert done == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# Deploy: a first deploy makes every kind of call (grants, the create, its operation, the redirect URI's second
# revision, the invoker policy, the health check). What remains after each, as the next dry run must list it.
DEPLOY_STEPS = {
    "d-grant": Step((("SecretManagerService/SetIamPolicy", 1),), "granting"),
    "d-create": Step((("Services/UpdateService", 1),), "creating the service"),
    "d-wait": Step((("Operations/GetOperation", 1),), "creating the service"),  # its operation, not yet polled
    "d-redirect": Step((("Services/UpdateService", 2),), "setting GOOGLE_REDIRECT_URI"),
    "d-invoker": Step((("Services/SetIamPolicy", 1),), "allowing unauthenticated calls"),
    "d-health": Step((("Invoke", 1),), "checking http://127.0.0.1:"),
}

LATER = "setting GOOGLE_REDIRECT_URI, the invoker change, the health check"
DEPLOY_NOT_RUN = {
    "d-grant": f"; not run: the service's creation, {LATER}",
    "d-create": f"; not run: {LATER}",
    "d-wait": f"; not run: {LATER}",
    "d-redirect": "; not run: the invoker change, the health check",
    "d-invoker": "; not run: the health check",
    "d-health": " (a deploy Cloud Run has started goes on)",
}


@pytest.mark.docker
@pytest.mark.parametrize("case", list(DEPLOY_STEPS))
def test_a_deploy_interrupted_at_any_step_leaves_what_the_next_dry_run_lists_and_the_next_deploy_finishes(
    case: str, project: Project, backend_image: str
) -> None:
    deploy = ("deploy", "--image", backend_image)
    whole = project.doki(*deploy, "--dry-run")
    assert whole.code == 2, whole.stderr

    stopped = project.interrupted(*deploy, "--yes", at=DEPLOY_STEPS[case])

    assert stopped.code == 130, stopped.stderr
    message = stopped.stderr.split("Error [interrupted]: ", 1)[-1]
    assert message.startswith(f"interrupted while {DEPLOY_STEPS[case].says}"), stopped.stderr
    assert "Hint: `doki deploy --dry-run` shows what remains; `doki deploy` finishes it" in stopped.stderr
    # The steps that never started, and what serves once the interrupt took effect.
    said = message.split("\n", 1)[0]
    assert said.endswith(f"{DEPLOY_NOT_RUN[case]}. Serving now: " + said.rsplit(". Serving now: ", 1)[1]), said
    serving_now = said.rsplit(". Serving now: ", 1)[1]
    if case == "d-grant":
        assert serving_now == "nothing (no service)"
    elif case in ("d-invoker", "d-health"):
        (revision,) = project.serving()
        assert serving_now == f"100% {revision} (image {backend_image})"
    else:  # the revision may or may not be routed yet when doki reads it
        assert serving_now == "nothing" or serving_now.endswith(f" (image {backend_image})"), said
    grants = [line for line in whole.stdout.splitlines() if " access to secret " in line]
    if case == "d-grant":
        # The grant in flight was finished; the others, the service and its invoker remain.
        *remaining, total = [line for line in whole.stdout.splitlines() if line != grants[0]]
        expected = "\n".join([*remaining, f"{int(total.split()[0]) - 1} changes.", ""])
        with pytest.raises(ApiError):
            project.service()
    else:
        # The service exists and serves its one Ready revision; only what came after the step remains.
        assert list(project.serving().values()) == [100]
        url = project.settled().uri
        lines = [f"Plan for {project.name} ({project.path}) on the emulator at {project.emulator.grpc_address}:"]
        if case in ("d-create", "d-wait"):
            lines.append(f"  + env GOOGLE_REDIRECT_URI: {url}/auth/google/callback")
        if case in ("d-create", "d-wait", "d-redirect"):
            lines.append("  ~ invoker: authenticated callers only -> allUsers (public)")
        count = len(lines) - 1
        if case in ("d-create", "d-wait"):  # a new revision: the image it runs is said, though unchanged
            lines.append(f"  = image: {backend_image} (unchanged)")
        lines.append("No changes." if not count else f"{count} change{'s' if count > 1 else ''}.")
        expected = "\n".join([*lines, ""])
    dry = project.doki(*deploy, "--dry-run")
    assert dry.stdout == expected
    assert dry.code == (0 if expected.endswith("No changes.\n") else 2)

    finished = project.doki(*deploy, "--yes")
    assert finished.code == 0, finished.stderr
    assert project.doki(*deploy, "--dry-run").code == 0
    assert list(project.serving().values()) == [100]


# Release: a service that serves, then a release in steps of 10, 50 and 100 %, interrupted at each of its calls;
# the last case is interrupted during its wait and again while it puts the traffic back.
RELEASE_STEPS = {
    "r-stage": Step((("Services/UpdateService", 1),), "deploy"),
    "r-wait": Step((("Operations/GetOperation", 1),), "deploy"),
    "r-smoke": Step((("Invoke", 1),), "smoke"),
    "r-10": Step((("Services/UpdateService", 2),), "traffic"),
    "r-check": Step((("Invoke", 2),), "traffic"),
    "r-50": Step((("Services/UpdateService", 3),), "traffic"),
    "r-100": Step((("Services/UpdateService", 4),), "traffic"),
    "r-put-back": Step((("Operations/GetOperation", 1), ("Services/UpdateService", 2)), "deploy"),
}


@pytest.mark.docker
@pytest.mark.parametrize("case", list(RELEASE_STEPS))
def test_a_release_interrupted_at_any_step_serves_the_old_or_the_new_revision_fully_and_the_next_release_finishes(
    case: str,
    project: Project,
    cloud: Emulator,
    backend_image: str,
    docker_client: Any,
    release_images: list[str],
) -> None:
    first = project.doki("deploy", "--image", backend_image, "--yes")
    assert first.code == 0, first.stderr
    (before,) = project.serving()
    # The commit's image is in Artifact Registry (and on the engine): the release reuses it, nothing is built.
    docker_client.images.get(backend_image).tag(project.release_image)
    release_images.append(project.release_image)
    cloud.registry.record_image(project.release_image, "sha256:" + "0" * 64, 1)

    stopped = project.interrupted("--json", "release", "--sha", SHA, at=RELEASE_STEPS[case])

    assert stopped.code == 130, stopped.stderr
    summary = json.loads(stopped.stdout)
    assert (summary["result"], summary["error"]["code"]) == ("interrupted", "interrupted")
    last = summary["steps"][-1]
    assert (last["step"], last["result"]) == (RELEASE_STEPS[case].says, "interrupted")
    assert summary["error"]["hint"] == "`doki deploy --dry-run` shows what remains; `doki release` again finishes it"
    service = project.settled()
    assert LOCK not in service.annotations
    serving = project.serving()
    staged = next(r.name.rsplit("/", 1)[-1] for r in cloud.run.list_revisions(project.path)[0] if SHA[:7] in r.name)
    step = RELEASE_STEPS[case].says
    message = summary["error"]["message"]
    header = f"Plan for {project.name} ({project.path}) on the emulator at {cloud.grpc_address}:"
    if case == "r-100":
        # The last step had landed when the interrupt took effect: the release is complete.
        assert serving == {staged: 100}
        assert message.startswith(f"interrupted during the {step} step, after it had landed: {staged} serves all")
        expected = f"{header}\nNo changes.\n"
    else:
        assert serving == {before: 100}
        assert not [t for t in service.traffic if t.tag], "the release's tag stays only on a released revision"
        assert message.startswith(
            f"interrupted during the {step} step; {project.name}'s traffic is back as it was and its release lock"
            " released"
        ), message
        later = {"deploy": "; the smoke and traffic steps did not run", "smoke": "; the traffic step did not run"}
        assert message.endswith(f"{later.get(step, '')}. Serving now: 100% {before} (image {backend_image})"), message
        expected = f"{header}\n  ~ traffic: 100% {before} -> 100% latest\n1 change.\n"
    dry = project.doki("deploy", "--image", project.release_image, "--dry-run")
    assert (dry.stdout, dry.code) == (expected, 0 if case == "r-100" else 2)

    again = project.doki("release", "--sha", SHA)
    assert again.code == 0, again.stderr
    released = project.serving()
    assert list(released.values()) == [100] and SHA[:7] in next(iter(released))
    assert project.doki("deploy", "--image", project.release_image, "--dry-run").code == 0


@pytest.mark.docker
@pytest.mark.parametrize("case", ["s-wait"])
def test_a_command_interrupted_where_it_says_nothing_of_its_own_still_says_it_was_interrupted_and_what_to_do(
    case: str, project: Project, backend_image: str
) -> None:
    first = project.doki("deploy", "--image", backend_image, "--yes")
    assert first.code == 0, first.stderr

    stopped = project.interrupted(
        "scale", "--max-instances", "3", "--yes", at=Step((("Operations/GetOperation", 1),), "")
    )

    assert stopped.code == 130, stopped.stderr
    assert stopped.stderr.endswith(
        "Error [interrupted]: interrupted before the command finished\n  Hint: run it again to finish; if it was "
        "changing the service, what it had sent stays, and `doki status` shows what the service serves now\n"
    ), stopped.stderr
    # The change was sent before the interrupt: Cloud Run finishes it.
    assert project.settled().template.scaling.max_instance_count == 3
