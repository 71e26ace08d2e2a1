"""The deploy CLI under faults (issue 8): `secrets push`, `deploy`, `cors`, `scale`, `rollback` and `release`, run
through typer against the emulator while its fault injection fails calls, fails revisions and changes resources
behind the command's back.

Each command's calls come from the call counts of a fault-free run (`CALLS`, kept true by the first test). Every one
of them is then made to fail. UNAVAILABLE, RESOURCE_EXHAUSTED and INTERNAL must be retried by doki's Retrier (given a
fake clock through the command context's `Factory`, its one wiring place) to exactly a fault-free run's result. Each
call is also refused once with one of PERMISSION_DENIED, INVALID_ARGUMENT and NOT_FOUND, in rotation across the calls
(NOT_FOUND is an answer to an existence check, not a refusal, so those calls rotate over the other two): every code is
met across the matrix, not every code on every call, which would triple its container runs. A refusal must stop the
command at that one call, naming the resource and the fix, with nothing left that a rerun cannot finish. A revision
that never becomes Ready leaves traffic where it was, and a change made between a command's read and its write is read
again (or, if it never stops, reported as a conflict). After every success a dry run plans nothing and a secrets push
adds no version.

Revisions run as real containers of a stand-in image that keeps the health contract, so a command's state is a real
service's. A release reuses that image: it is recorded in the emulator's Artifact Registry under the commit's tag, so
nothing is built.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from doki_cli.context import Factory
from doki_cli.deploy.lock import LOCK
from doki_cli.emulator.errors import ApiError
from doki_cli.emulator.server import Emulator, EmulatorConfig
from doki_cli.gcp.retry import Retrier
from doki_cli.main import app
from tests.helpers import BASE_IMAGE, CliRunner
from tests.helpers.accounts import make_accounts
from tests.helpers.images import publish
from tests.helpers.project import ENV, PATH, PROJECT, TOML

runner = CliRunner()
REPOSITORY = f"projects/{PROJECT}/locations/us-central1/repositories/doki"
RELEASE_REPO = "us-central1-docker.pkg.dev/doki-e2e/doki/doki-backend"
# A commit of this session alone: its image tag is what this module puts on the engine (and removes).
SHA = f"{os.getpid():07x}"[-7:] + "f" * 33
RELEASE_IMAGE = f"{RELEASE_REPO}:{SHA[:7]}"
STAND_IN = f"{RELEASE_REPO}:faults-{os.getpid()}"
HEALTH_SERVER = """
import http.server, os
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"message": "Doki Backend up"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
print("stand-in backend listening", flush=True)
http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Health).serve_forever()
"""
# With GOOGLE_REDIRECT_URI declared, a first deploy makes one revision (not a second one for the URL): cheaper setup.
TOML_ONE_REVISION = TOML.replace(
    "[service.secrets]", 'GOOGLE_REDIRECT_URI = "https://api.example/auth/google/callback"\n[service.secrets]'
)
TRANSIENT = ("UNAVAILABLE", "RESOURCE_EXHAUSTED", "INTERNAL")
# The Retrier's waits with the jitter at its middle (3/4 of each doubling delay, from 0.25 s): one retried call's.
BACKOFF = [0.1875, 0.375, 0.75]
MUTATING = ("Create", "Update", "Set", "Add", "Delete")
OPERATION = "/google.longrunning.Operations/GetOperation"
LRO_DELAY = 0.01


def sm(method: str) -> str:
    return f"/google.cloud.secretmanager.v1.SecretManagerService/{method}"


def run(method: str) -> str:
    return f"/google.cloud.run.v2.Services/{method}"


@dataclass(frozen=True)
class Scenario:
    """One command under test: the doki.toml, the fault-free commands that prepare it, the command itself."""

    command: tuple[str, ...]
    prepare: tuple[tuple[str, ...], ...] = ()
    toml: str = TOML_ONE_REVISION
    image: str = "{image}"  # what `doki deploy` deploys, before and after
    changed_env: dict[str, str] = field(default_factory=dict)  # .env lines changed after preparing
    release: bool = False  # the commit's image is in Artifact Registry

    def args(self, args: tuple[str, ...], image: str) -> list[str]:
        return [a.replace("{image}", image) for a in args]


PUSH = ("secrets", "push")
DEPLOY = ("deploy", "--image", "{image}", "--yes")
SCENARIOS = {
    "secrets push": Scenario(PUSH),
    "secrets push of a changed value": Scenario(
        PUSH, prepare=(PUSH,), changed_env={"SUPABASE_SECRET_KEY": "a-rotated-service-role-key"}
    ),
    "deploy": Scenario(DEPLOY, prepare=(PUSH,), toml=TOML),
    "cors add": Scenario(("cors", "add", "https://two.example", "--save", "--yes"), prepare=(PUSH, DEPLOY)),
    "scale": Scenario(("scale", "--max-instances", "3", "--memory", "1Gi", "--save", "--yes"), prepare=(PUSH, DEPLOY)),
    "rollback": Scenario(("rollback", "--yes"), prepare=(PUSH, DEPLOY), toml=TOML),
    "release": Scenario(
        ("release", "--sha", SHA, "--local", "--secrets-from", ".env"),
        prepare=(PUSH, DEPLOY),
        image=RELEASE_IMAGE,
        release=True,
    ),
}

# What a fault-free run of each command calls, and how often (the first test keeps this true). An operation is polled
# until done, so GetOperation counts at least one poll per operation: more when the work takes longer.
HEALTH_CHECK = f"/{PATH}/Invoke"  # a request to the service's URL, not a Google call: never failed here
ACCOUNT_LOOKUP = "/google.iam.admin.v1.IAM/GetServiceAccount"
PRICES = "/google.cloud.billing.v1.CloudCatalog/ListSkus"  # the cost in a plan that changes the bill
CALLS: dict[str, dict[str, int]] = {
    "secrets push": {sm("ListSecretVersions"): 4, sm("CreateSecret"): 4, sm("AddSecretVersion"): 4},
    "secrets push of a changed value": {
        sm("ListSecretVersions"): 4,
        sm("AccessSecretVersion"): 4,
        sm("AddSecretVersion"): 1,
    },
    "deploy": {
        ACCOUNT_LOOKUP: 1,  # the runtime account exists
        sm("GetSecret"): 4,
        sm("GetSecretVersion"): 4,
        run("GetService"): 2,  # the plan's read, and the read before the write that sets GOOGLE_REDIRECT_URI
        "/google.devtools.artifactregistry.v1.ArtifactRegistry/ListDockerImages": 1,  # the image is there
        sm("GetIamPolicy"): 8,
        sm("SetIamPolicy"): 4,
        run("UpdateService"): 2,
        OPERATION: 2,
        run("GetIamPolicy"): 1,
        run("SetIamPolicy"): 1,
        PRICES: 1,  # a new service: what it costs
        HEALTH_CHECK: 1,
    },
    "cors add": {run("GetService"): 2, run("UpdateService"): 1, OPERATION: 1},  # the plan's read, the write's
    "scale": {run("GetService"): 2, PRICES: 1, run("UpdateService"): 1, OPERATION: 1},
    "rollback": {
        run("GetService"): 3,  # the plan's read, the write's, and the read once the traffic moved
        "/google.cloud.run.v2.Revisions/ListRevisions": 1,
        run("UpdateService"): 1,
        OPERATION: 1,
    },
    "release": {
        ACCOUNT_LOOKUP: 1,
        "/google.devtools.artifactregistry.v1.ArtifactRegistry/ListDockerImages": 1,
        sm("ListSecretVersions"): 4,
        sm("AccessSecretVersion"): 4,
        sm("GetSecret"): 4,
        sm("GetSecretVersion"): 4,
        run("GetService"): 5,  # the first before the image: what the live service keeps may refuse doki.toml
        run("GetIamPolicy"): 1,
        sm("GetIamPolicy"): 4,
        run("UpdateService"): 2,
        OPERATION: 2,
        HEALTH_CHECK: 1,
    },
}


def google_methods(name: str) -> list[str]:
    return [method for method in CALLS[name] if method != HEALTH_CHECK]


def same_calls(calls: Counter[str], expected: dict[str, int], *, extra: int = 0) -> bool:
    """`calls` are `expected` plus `extra` on each Google method (operations: at least that many polls)."""
    wanted = {m: n + (extra if m != HEALTH_CHECK else 0) for m, n in expected.items()}
    polls = calls.get(OPERATION, 0)
    exact = {m: n for m, n in calls.items() if m != OPERATION}
    return exact == {m: n for m, n in wanted.items() if m != OPERATION} and polls >= wanted.get(OPERATION, 0)


class FakeClock:
    """The Retrier's time: waits are recorded, never slept."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def retrier(self) -> Retrier:
        return Retrier(sleep=self.sleep, clock=lambda: self.now, jitter=lambda: 0.5)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def stand_in(docker_client: Any) -> Iterator[str]:
    """An image that keeps the health contract and nothing else, under the deployed name and the commit's tag.

    The matrix is about the command, not the backend: a container that starts in a blink keeps it fast, and keeps it
    independent of the backend's code."""
    import io

    dockerfile = f"FROM {BASE_IMAGE}\nCMD {json.dumps(['python3', '-c', HEALTH_SERVER])}\n"
    image, _ = docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=STAND_IN, rm=True)
    image.tag(RELEASE_REPO, SHA[:7])
    yield STAND_IN
    for tag in (STAND_IN, RELEASE_IMAGE):
        docker_client.images.remove(tag)


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    calls: Counter[str]


class Project:
    """A project directory and an emulator with real containers, for one scenario."""

    def __init__(self, root: Path, emulator: Emulator, scenario: Scenario, image: str, factory: Factory) -> None:
        self.root = root
        self.factory = factory  # every command's retrier waits on the test's fake clock
        self.emulator = emulator
        self.scenario = scenario
        self.image = image
        root.mkdir(parents=True, exist_ok=True)
        (root / "doki.toml").write_text(scenario.toml)
        (root / ".env").write_text(ENV)
        make_accounts(emulator, scenario.toml)
        publish(emulator, image)

    def invoke(self, args: tuple[str, ...] | list[str]) -> Outcome:
        emulator = self.emulator
        env = {
            "DOKI_EMULATOR": emulator.grpc_address,
            "STORAGE_EMULATOR_HOST": emulator.rest_url,
            "DOKI_EMULATOR_REGISTRY": emulator.registry_address,
        }
        emulator.faults.calls.clear()
        cwd = Path.cwd()
        os.chdir(self.root)  # doki.toml and .env are read from the working directory
        try:
            result = runner.invoke(app, self.scenario.args(tuple(args), self.image), env=env, obj=self.factory)
        finally:
            os.chdir(cwd)
        return Outcome(result.exit_code, result.stdout, result.stderr, Counter(self.emulator.faults.calls))

    def prepare(self) -> None:
        for args in self.scenario.prepare:
            done = self.invoke(args)
            assert done.exit_code == 0, done.stdout + done.stderr
        env = (self.root / ".env").read_text()
        for name, value in self.scenario.changed_env.items():
            env = re.sub(rf"^{name}=.*$", f"{name}={value}", env, flags=re.M)
        (self.root / ".env").write_text(env)
        if self.scenario.release:
            publish(self.emulator, RELEASE_IMAGE)

    def command(self) -> Outcome:
        return self.invoke(self.scenario.command)

    def toml(self) -> str:
        return (self.root / "doki.toml").read_text()

    def state(self) -> dict[str, Any]:
        """What the command leaves behind, with the names and ports that differ from run to run normalized."""
        emulator = self.emulator
        secrets = {}
        for name in ("session-secret-key", "encryption-key", "supabase-secret-key", "google-oauth-client-secret"):
            path = f"projects/{PROJECT}/secrets/{name}"
            try:
                versions, _, _ = emulator.secrets.list_versions(path)
            except ApiError:
                continue
            readers = emulator.secrets.policies.members(path, "roles/secretmanager.secretAccessor")
            secrets[name] = (len(versions), sorted(readers))
        try:
            service = emulator.run.get_service(PATH)
        except ApiError:
            return {"secrets": secrets, "traffic": [], "public": False, "lock": False, "toml": self.toml()}
        container = service.template.containers[0]
        return normalize(
            {
                "secrets": secrets,
                "image": container.image,
                "env": sorted(
                    (
                        e.name,
                        e.value or f"{e.value_source.secret_key_ref.secret}:{e.value_source.secret_key_ref.version}",
                    )
                    for e in container.env
                ),
                "limits": dict(container.resources.limits),
                "scaling": (service.template.scaling.min_instance_count, service.template.scaling.max_instance_count),
                "traffic": sorted((t.revision, t.percent, t.tag) for t in service.traffic_statuses),
                "latest_ready": service.latest_ready_revision,
                "lock": LOCK in service.annotations,
                "ready": service.terminal_condition.state.name,
                "public": "allUsers" in emulator.run.policies.members(PATH, "roles/run.invoker"),
                "toml": self.toml(),
            }
        )


def normalize(value: Any) -> Any:
    """Ports, random revision suffixes, times and durations as placeholders, so two runs compare equal."""
    if isinstance(value, str):
        value = re.sub(r"http://127\.0\.0\.1:\d+", "<url>", value)
        value = re.sub(r"the emulator at 127\.0\.0\.1:\d+", "the emulator at <address>", value)
        value = re.sub(r"(doki-backend-\d{5})-[a-z]{3}\b", r"\1", value)
        value = re.sub(rf"(doki-backend-{SHA[:7]})-[0-9a-f]{{4}}\b", r"\1", value)
        value = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?", "<time>", value)  # when made
        return re.sub(r"\d+\.\d+s \(", "<t>s (", value)
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(normalize(v) for v in value)
    return value


@pytest.fixture
def make_project(tmp_path: Path, docker_client: Any, stand_in: str, clock: FakeClock) -> Iterator[Any]:
    """Projects on emulators of their own (several in one test: a fault-free run beside a faulted one)."""
    from doki_cli.engine import DockerEngine

    running: list[Emulator] = []

    def make(scenario: Scenario, name: str = "faulted") -> Project:
        emulator = Emulator(EmulatorConfig(state_dir=tmp_path / name / "emulator"), engine=DockerEngine(docker_client))
        running.append(emulator.start())
        # Every operation is polled at least once (GetOperation), as on Google, where nothing is done at once.
        emulator.faults.lro_delay = LRO_DELAY
        return Project(tmp_path / name / "project", emulator, scenario, stand_in, Factory(new_retrier=clock.retrier))

    yield make
    for emulator in running:
        emulator.stop()


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_fault_free_run_makes_the_calls_the_matrix_fails(name: str, make_project: Any, clock: FakeClock) -> None:
    project = make_project(SCENARIOS[name])
    project.prepare()
    outcome = project.command()
    assert outcome.exit_code == 0, outcome.stdout + outcome.stderr
    assert same_calls(outcome.calls, CALLS[name]), dict(outcome.calls)
    assert clock.waits == []


def assert_as_fault_free(project: Project, outcome: Outcome, expected: Outcome, expected_state: dict[str, Any]) -> None:
    """The command succeeded, said what a fault-free run said and left what it left."""
    assert outcome.exit_code == 0, outcome.stdout + outcome.stderr
    assert normalize(outcome.stdout) == normalize(expected.stdout)
    assert project.state() == expected_state


def assert_idempotent(project: Project) -> None:
    """Nothing left to do: a dry run plans no change (where a service exists), a push adds no version."""
    scenario = project.scenario
    if DEPLOY in (*scenario.prepare, scenario.command):
        dry_run = project.invoke(("deploy", "--image", scenario.image, "--dry-run"))
        if scenario.command == ("rollback", "--yes"):
            # A rollback pins traffic until the next deploy returns it to latest (documented): that, and only that.
            assert dry_run.exit_code == 2, dry_run.stdout + dry_run.stderr
            assert normalize(dry_run.stdout).endswith(
                "  ~ traffic: 100% doki-backend-00001 -> 100% latest\n1 change.\n"
            )
        else:
            assert dry_run.exit_code == 0, dry_run.stdout + dry_run.stderr
            assert dry_run.stdout.endswith("No changes.\n")
    push = project.invoke(PUSH)
    assert push.exit_code == 0, push.stdout + push.stderr
    assert [line.split()[1] for line in push.stdout.splitlines()] == ["unchanged"] * 4
    assert push.calls[sm("AddSecretVersion")] == 0


@pytest.fixture(scope="module")
def fault_free_runs() -> dict[str, tuple[Outcome, dict[str, Any]]]:
    """Each command's fault-free output and state, made once: they do not depend on the test that asks."""
    return {}


@pytest.fixture
def fault_free(make_project: Any, fault_free_runs: dict[str, tuple[Outcome, dict[str, Any]]]) -> Any:
    def run_once(name: str) -> tuple[Outcome, dict[str, Any]]:
        """The command's output and the state it leaves when nothing fails: what a run under faults must equal."""
        if name not in fault_free_runs:
            calm = make_project(SCENARIOS[name], "fault-free")
            calm.prepare()
            outcome = calm.command()
            assert outcome.exit_code == 0, outcome.stdout + outcome.stderr
            fault_free_runs[name] = (outcome, calm.state())
        return fault_free_runs[name]

    return run_once


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_call_failing_unavailable_then_resource_exhausted_then_internal_is_retried_to_a_fault_free_result(
    name: str, make_project: Any, fault_free: Any, clock: FakeClock
) -> None:
    scenario = SCENARIOS[name]
    expected, expected_state = fault_free(name)
    project = make_project(scenario)
    project.prepare()
    methods = google_methods(name)
    for method in methods:
        for code in TRANSIENT:  # planned in order: the first call fails with the first, and so on
            project.emulator.faults.fail(method, code)
    clock.waits.clear()

    outcome = project.command()

    assert_as_fault_free(project, outcome, expected, expected_state)
    # Each method: its first call failed three times and was tried again after each, by doki's Retrier alone.
    calls = Counter(outcome.calls)
    if sm("AddSecretVersion") in methods:
        # A retried add first reads the newest version, to tell whether the failed try made it after all.
        calls[sm("AccessSecretVersion")] -= len(TRANSIENT)
    assert same_calls(+calls, CALLS[name], extra=len(TRANSIENT)), dict(outcome.calls)
    assert clock.waits == BACKOFF * len(methods)
    assert_idempotent(project)


REFUSALS = ("PERMISSION_DENIED", "INVALID_ARGUMENT", "NOT_FOUND")
DOKI_CODES = {
    "PERMISSION_DENIED": "permission_denied",
    "INVALID_ARGUMENT": "invalid_argument",
    "NOT_FOUND": "not_found",
}
# NOT_FOUND from a call that asks whether something exists is an answer (it does not), not a failure: those calls get
# the other two codes.
EXISTENCE_CHECKS = {
    ACCOUNT_LOOKUP,
    run("GetService"),
    sm("GetSecret"),
    sm("GetSecretVersion"),
    sm("ListSecretVersions"),
    "/google.devtools.artifactregistry.v1.ArtifactRegistry/ListDockerImages",
}


# Calls whose refusal does not stop the command: what a plan costs is read beside it, and a plan is whole without.
OPTIONAL = {PRICES}


def refusals() -> list[Any]:
    """Each Google call of each command, refused with one of the codes in rotation (a command with fewer calls than
    codes does not meet them all; the matrix as a whole does)."""
    cases = []
    for offset, name in enumerate(SCENARIOS):
        for index, method in enumerate(m for m in google_methods(name) if m not in OPTIONAL):
            codes = [c for c in REFUSALS if not (c == "NOT_FOUND" and method in EXISTENCE_CHECKS)]
            code = codes[(offset + index) % len(codes)]
            service, _, short = method.rpartition("/")
            label = f"{name} stops at once when {service.rsplit('.', 1)[-1]}.{short} answers {code}"
            cases.append(pytest.param(name, method, code, id=label))
    return cases


@pytest.mark.parametrize("name", [name for name in SCENARIOS if PRICES in CALLS[name]])
def test_a_refused_price_read_leaves_the_command_whole_and_says_its_cost_was_not_priced(
    name: str, make_project: Any, fault_free: Any
) -> None:
    project = make_project(SCENARIOS[name])
    project.prepare()
    project.emulator.faults.fail(PRICES, "PERMISSION_DENIED", message="refused by the matrix (PERMISSION_DENIED)")
    outcome = project.command()
    assert outcome.exit_code == 0, outcome.stdout + outcome.stderr
    assert "  $ cost: not priced (reading Cloud Run's prices from the Cloud Billing Catalog: permission denied" in (
        outcome.stdout
    )
    _, expected_state = fault_free(name)
    assert project.state() == expected_state


@pytest.mark.parametrize(("name", "method", "code"), refusals())
def test_a_refused_call_stops_the_command_at_once_naming_the_resource_and_the_fix(
    name: str, method: str, code: str, make_project: Any, fault_free: Any, clock: FakeClock
) -> None:
    scenario = SCENARIOS[name]
    project = make_project(scenario)
    project.prepare()
    before = project.state()
    project.emulator.faults.fail(method, code, message=f"refused by the matrix ({code})")
    clock.waits.clear()

    outcome = project.command()

    assert outcome.exit_code not in (0, 2), outcome.stdout + outcome.stderr
    assert clock.waits == []  # not retried
    if not scenario.release:  # a failed release puts the traffic back: those calls come after
        assert outcome.calls[method] == 1
    error = outcome.stderr[outcome.stderr.index("Error [") :]
    assert error.startswith(f"Error [{DOKI_CODES[code]}]: ")
    assert f"projects/{PROJECT}/" in error.splitlines()[0]
    assert f"refused by the matrix ({code})" in error.splitlines()[0]
    assert error.splitlines()[1].startswith("  Hint: ")
    project.emulator.operations.wait_all(timeout=60)  # what Cloud Run accepted goes on after doki stopped waiting
    if project.state() != before:
        # Something landed before the refusal: it is either the whole change (only waiting for it failed, and the
        # error says the change goes on), or the next run finishes the job. Either way, to what a fault-free run leaves.
        _, expected_state = fault_free(name)
        if project.state() == expected_state:
            assert "the change was accepted and goes on at Google" in error.splitlines()[0]
        else:
            rerun = project.command()
            assert rerun.exit_code == 0, rerun.stdout + rerun.stderr
            assert project.state() == expected_state
        assert_idempotent(project)


def serving(state: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [t for t in state["traffic"] if t[1]]


@pytest.mark.parametrize("name", ["deploy", "cors add", "scale", "release"])
def test_a_revision_that_never_becomes_ready_leaves_traffic_untouched_and_the_next_run_finishes_the_job(
    name: str, make_project: Any, clock: FakeClock
) -> None:
    scenario = SCENARIOS[name]
    project = make_project(scenario)
    project.prepare()
    before = project.state()
    project.emulator.faults.fail_revisions("doki-backend", message="the matrix's container never listened")

    outcome = project.command()

    assert outcome.exit_code == (3 if scenario.release else 1), outcome.stdout + outcome.stderr
    error = outcome.stderr[outcome.stderr.index("Error [") :]
    assert error.startswith("Error [revision_not_ready]: ")
    assert "the matrix's container never listened" in error.splitlines()[0]
    after = project.state()
    assert serving(after) == serving(before)  # what served still serves, alone (nothing, before a first deploy)
    assert (after["public"], after["lock"], after["toml"]) == (before["public"], False, before["toml"])
    # What is left shows in a dry run: the failed revision, whose template matching doki.toml proves nothing.
    dry_run = project.invoke(("deploy", "--image", scenario.image, "--dry-run"))
    assert dry_run.exit_code == 2, dry_run.stdout + dry_run.stderr
    assert re.search(r"  ~ revision: doki-backend-\S+ \(not ready\) -> a new revision\n", dry_run.stdout)
    # The next run finishes the job (nothing was wrong but the container). `cors` and `scale` find their value
    # already in the live template, and make its revision again rather than call the service unchanged. A release
    # of the same commit with the same settings says it would repeat the failure, and goes on only when told to.
    rerun = project.command()
    if scenario.release:
        assert rerun.exit_code == 1
        assert "Error [repeats_failed_revision]: " in rerun.stderr
        rerun = project.invoke((*scenario.command, "--yes"))
    assert rerun.exit_code == 0, rerun.stdout + rerun.stderr
    if scenario.command[0] in ("cors", "scale"):
        assert re.search(r"doki-backend-\S+ had not become Ready: made a new revision with the same", rerun.stderr)
    assert project.state()["ready"] == "CONDITION_SUCCEEDED"
    assert_idempotent(project)


# The first write of each command that reads, edits and writes back with the etag it read, and what it writes.
WRITES = {
    "deploy": (sm("SetIamPolicy"), f"projects/{PROJECT}/secrets/encryption-key", sm("GetIamPolicy")),
    "cors add": (run("UpdateService"), PATH, run("GetService")),
    "scale": (run("UpdateService"), PATH, run("GetService")),
    "rollback": (run("UpdateService"), PATH, run("GetService")),
    "release": (run("UpdateService"), PATH, run("GetService")),
}


def change_behind_the_back(emulator: Emulator, write: str, resource: str, *, times: int) -> None:
    """Before each of the next `times` writes, someone else changes `resource`: the etag the command read is stale."""
    for call in range(1, times + 1):
        emulator.faults.on_call(write, lambda _: emulator.touch(resource) or None, call=call)


@pytest.mark.parametrize("name", WRITES)
def test_a_change_made_between_read_and_write_is_read_again_and_the_write_retried_to_a_fault_free_result(
    name: str, make_project: Any, fault_free: Any, clock: FakeClock
) -> None:
    scenario = SCENARIOS[name]
    write, resource, read = WRITES[name]
    expected, expected_state = fault_free(name)
    project = make_project(scenario)
    project.prepare()
    change_behind_the_back(project.emulator, write, resource, times=1)

    outcome = project.command()

    assert_as_fault_free(project, outcome, expected, expected_state)
    assert (outcome.calls[write], outcome.calls[read]) == (expected.calls[write] + 1, expected.calls[read] + 1)
    assert_idempotent(project)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("cors add", f"{PATH} kept changing while doki updated it (5 attempts)"),
        ("deploy", f"the IAM policy of projects/{PROJECT}/secrets/encryption-key kept changing while doki updated it"),
    ],
)
def test_a_resource_that_keeps_changing_stops_the_command_after_a_few_tries_with_a_conflict_error(
    name: str, message: str, make_project: Any, clock: FakeClock
) -> None:
    scenario = SCENARIOS[name]
    write, resource, _ = WRITES[name]
    project = make_project(scenario)
    project.prepare()
    before = project.state()
    change_behind_the_back(project.emulator, write, resource, times=10)

    outcome = project.command()

    assert outcome.exit_code == 1
    assert outcome.calls[write] == 5  # bounded: five reads and writes, then the conflict is the user's to see
    assert outcome.stderr.startswith(f"Error [concurrent_change]: {message}") or (
        f"Error [concurrent_change]: {message}" in outcome.stderr
    )
    assert "  Hint: run the command again once other changes have settled\n" in outcome.stderr
    assert project.state() == before  # nothing landed
    project.emulator.faults.clear()
    project.emulator.faults.lro_delay = LRO_DELAY
    rerun = project.command()  # once the other writer is done, the same command goes through
    assert rerun.exit_code == 0, rerun.stdout + rerun.stderr
    assert_idempotent(project)


def writes(name: str) -> list[str]:
    return [m for m in google_methods(name) if m.rsplit("/", 1)[1].startswith(MUTATING)]


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_write_whose_answer_is_lost_is_not_made_twice_and_the_command_ends_as_a_fault_free_run(
    name: str, make_project: Any, fault_free: Any, clock: FakeClock
) -> None:
    # Google acted on the request, then the connection dropped: the command sees UNAVAILABLE for a change that was
    # made. Its retry must find that change made, not make it again (a second secret version, a second revision).
    scenario = SCENARIOS[name]
    expected, expected_state = fault_free(name)
    project = make_project(scenario)
    project.prepare()
    for method in writes(name):
        project.emulator.faults.fail(method, "UNAVAILABLE", answer_lost=True)

    outcome = project.command()

    assert_as_fault_free(project, outcome, expected, expected_state)
    assert_idempotent(project)
