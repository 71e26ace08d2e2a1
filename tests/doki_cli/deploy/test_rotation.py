"""The key rotation core (doki_cli/deploy/rotation.py) on the in-memory Cloud Run and Secret Manager and a real SQLite
store: where a rotation stands read from the secret's versions, each step's writes, a failure at any write leaving
every credential readable by the service, and the run after it finishing the same rotation."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from doki.crypto import CredentialCipher
from doki.storage.base import CredentialStore, StoreUnavailableError
from doki.storage.sqlite import SQLiteCredentialStore
from doki_cli.config import SecretRef
from doki_cli.deploy.rotation import KINDS, Outcome, Rotation, Rotator, Version, _stage, read, steps
from doki_cli.errors import Code, DokiError
from doki_cli.model import Edit, LiveService, Target
from tests.fakes.deploy import FakeCloudRun, FakeSecretManager
from tests.helpers.deploy_core import deployed, doki_toml, quiet

OLD = Fernet.generate_key().decode()
SESSION = "s" * 48
SECRETS = {"ENCRYPTION_KEY": "encryption-key", "SESSION_SECRET_KEY": "session-secret-key"}


class World:
    """A service `api` deployed with its keys in Secret Manager, and a store of credentials encrypted with OLD."""

    def __init__(self, tmp_path: Path, users: int = 4) -> None:
        self.run = FakeCloudRun()
        self.secrets = FakeSecretManager(clock=self.run.now)
        self.secrets.add_version("encryption-key", OLD.encode())
        self.secrets.add_version("session-secret-key", SESSION.encode())
        config = doki_toml(secrets={name: SecretRef(secret) for name, secret in SECRETS.items()})
        deployed(self.run, self.secrets, config)
        self.store = SQLiteCredentialStore(tmp_path / "credentials.sqlite3")
        self.slept = 0.0  # what the rotations' waits slept: the clock runs that much ahead of the double's
        self.plaintexts = {str(uuid.uuid4()): f"token {n}" for n in range(users)}
        old = CredentialCipher.from_keys([OLD])
        for user, plaintext in self.plaintexts.items():
            self.store.put(user, "google", old.encrypt(user, plaintext))

    @contextmanager
    def open_store(self) -> Iterator[tuple[CredentialStore | None, str]]:
        yield self.store, "the test's SQLite store"

    def read(self, kind: str = "encryption", **changes: object) -> Rotation:
        return read(
            KINDS[kind],
            self.run,
            self.secrets,
            "api",
            declared={name: f"{secret}:latest" for name, secret in SECRETS.items()},
            open_store=self.open_store if kind == "encryption" else None,
            now=datetime.fromtimestamp(self.clock(), UTC),
        )

    def rotate(self, kind: str = "encryption", *, run: object = None, secrets: object = None) -> Outcome:
        rotation = self.read(kind)
        rotator = Rotator(
            run or self.run,  # type: ignore[arg-type]
            secrets or self.secrets,  # type: ignore[arg-type]
            open_store=self.open_store,
            health=lambda url: None,
            on_progress=quiet,
            clock=self.clock,
            sleep=self.sleep,
        )
        return rotator.execute(rotation, steps(rotation, now=self.run.now()))

    def clock(self) -> float:
        return self.run.now().timestamp() + self.slept

    def sleep(self, seconds: float) -> None:
        self.slept += seconds

    def keys(self, version: str = "latest", of: str = "encryption-key") -> list[str]:
        return self.secrets.access(of, version).decode().split(",")

    def states(self, of: str = "encryption-key") -> list[tuple[int, str]]:
        return [(v.number, v.state) for v in self.secrets.versions(of)]

    def serving_keys(self) -> list[list[str]]:
        """The key lists the service's instances may hold: the version the serving revision reads, and the one the
        Ready revision before it read (its instances finish their requests as traffic moves)."""
        ready = [r.name for r in self.run.revisions("api") if r.ready][:2]
        numbers = [int(self.run.variable(name, "ENCRYPTION_KEY").rpartition(":")[2]) for name in ready]
        # Read whatever the version's state: a running instance holds what it read when it started.
        return [(self.secrets.value("encryption-key", n) or b"").decode().split(",") for n in numbers]

    def assert_readable(self) -> None:
        """Every credential decrypts, for its user, under each key list an instance of the service may hold."""
        for keys in self.serving_keys():
            cipher = CredentialCipher.from_keys(keys)
            for user, plaintext in self.plaintexts.items():
                row = self.store.get(user, "google")
                assert row is not None
                assert cipher.decrypt(user, row.ciphertext) == plaintext


def test_an_encryption_key_rotation_adds_three_versions_deploys_three_times_and_moves_every_credential(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    before = len(world.run.revisions("api"))

    outcome = world.rotate()

    new = world.keys()
    assert len(new) == 1 and new != [OLD]
    assert outcome.complete and outcome.versions == [2, 3, 4] and outcome.disabled == [1, 2, 3]
    assert world.states() == [(4, "ENABLED"), (3, "DISABLED"), (2, "DISABLED"), (1, "DISABLED")]
    assert len(world.run.revisions("api")) == before + 3
    assert [w.edit for w in world.run.writes] == [Edit(secret_versions={"ENCRYPTION_KEY": n}) for n in "234"]
    assert sum(report.moved for report in outcome.reencrypted) == len(world.plaintexts)
    only_new = CredentialCipher.from_keys(new)
    for user, plaintext in world.plaintexts.items():
        row = world.store.get(user, "google")
        assert row is not None and only_new.decrypt(user, row.ciphertext) == plaintext
    # Done: the next run would start another rotation, not repeat this one.
    assert world.read().stage == "idle"


def test_the_versions_a_rotation_adds_learn_the_new_key_before_it_writes(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.rotate()
    [new] = world.keys()
    assert world.secrets.value("encryption-key", 2) == f"{OLD},{new}".encode()
    assert world.secrets.value("encryption-key", 3) == f"{new},{OLD}".encode()


@dataclass
class Breaker:
    """Counts the rotation's writes, wherever they go, and fails the one numbered `at`."""

    at: int
    count: int = 0

    def tick(self, error: Exception) -> None:
        self.count += 1
        if self.count == self.at:
            raise error


class BreakingSecrets:
    def __init__(self, inner: FakeSecretManager, breaker: Breaker) -> None:
        self.inner, self.breaker = inner, breaker

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def add_version(self, secret_id: str, data: bytes) -> int:
        self.breaker.tick(DokiError(Code.GOOGLE_UNAVAILABLE, "Secret Manager kept failing", "retry"))
        return self.inner.add_version(secret_id, data)

    def disable(self, secret_id: str, number: int) -> None:
        self.breaker.tick(DokiError(Code.GOOGLE_UNAVAILABLE, "Secret Manager kept failing", "retry"))
        self.inner.disable(secret_id, number)


class BreakingRun:
    def __init__(self, inner: FakeCloudRun, breaker: Breaker) -> None:
        self.inner, self.breaker = inner, breaker

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def update(self, name: str, decide: object, **kwargs: object) -> LiveService:
        try:
            self.breaker.tick(DokiError(Code.REVISION_NOT_READY, "the revision did not become Ready", "see logs"))
        except DokiError:
            self.inner.fail_next_revision("the container exited")
            self.inner.update(name, decide, **kwargs)  # type: ignore[arg-type]
            raise
        return self.inner.update(name, decide, **kwargs)  # type: ignore[arg-type]


class BreakingStore:
    def __init__(self, inner: CredentialStore, breaker: Breaker) -> None:
        self.inner, self.breaker = inner, breaker

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def replace_ciphertext(self, user_id: str, provider: str, expected: str, new: str) -> bool:
        self.breaker.tick(StoreUnavailableError("Supabase did not answer"))
        return self.inner.replace_ciphertext(user_id, provider, expected, new)


# An idle rotation of four credentials makes 3 versions, 3 deploys, 4 + 0 rewrites and 3 disables: 13 writes.
@pytest.mark.parametrize("failing", range(1, 14))
def test_a_failure_at_any_write_leaves_every_credential_readable_and_the_next_run_finishes_the_rotation(
    tmp_path: Path, failing: int
) -> None:
    world = World(tmp_path)
    breaker = Breaker(failing)
    real_store = world.store
    world.store = BreakingStore(real_store, breaker)  # type: ignore[assignment]

    with pytest.raises(DokiError):
        world.rotate(run=BreakingRun(world.run, breaker), secrets=BreakingSecrets(world.secrets, breaker))

    world.store = real_store
    world.assert_readable()
    held = [world.secrets.value("encryption-key", n) or b"" for n in range(1, len(world.states()) + 1)]
    introduced = {key for value in held for key in value.decode().split(",")} - {OLD}
    outcome = world.rotate()
    assert outcome.complete
    new = world.keys()
    assert len(new) == 1 and new != [OLD]
    if introduced:
        assert {new[0]} == introduced  # the key the failed run brought in, not another
    world.assert_readable()
    only_new = CredentialCipher.from_keys(new)
    for user in world.plaintexts:
        row = world.store.get(user, "google")
        assert row is not None and only_new.is_current(row.ciphertext)
    assert [state for _, state in world.states()[1:]] == ["DISABLED"] * (len(world.states()) - 1)
    assert world.read().stage == "idle"


@pytest.mark.parametrize(
    ("latest", "previous", "expected"),
    [
        (("a",), None, ("idle", None, ("a",))),
        (("a",), ("z",), ("idle", None, ("a",))),
        (("a", "b"), ("a",), ("learning", "b", ("a",))),
        (("b", "a"), ("a", "b"), ("adopting", "b", ("a",))),
        # "new,old" a person pushed: the first key writes, the rest are dropped once the store is moved.
        (("b", "a"), ("a",), ("adopting", "b", ("a",))),
        (("b", "a", "z"), None, ("adopting", "b", ("a", "z"))),
        (("b",), ("b", "a"), ("forgetting", "b", ("a",))),
        (("b",), ("a", "b"), ("idle", None, ("b",))),
    ],
)
def test_where_a_rotation_stands_is_read_from_the_newest_version_against_the_one_before(
    latest: tuple[str, ...], previous: tuple[str, ...] | None, expected: tuple[object, ...]
) -> None:
    older = Version(1, None, previous) if previous is not None else None
    assert _stage(Version(2, None, latest), older) == expected


def test_a_session_secret_rotation_waits_for_the_old_secrets_sessions_to_expire_then_drops_it(tmp_path: Path) -> None:
    world = World(tmp_path)
    first = world.rotate("session")
    assert not first.complete and first.versions == [2, 3]
    assert first.resume_after is not None
    new, old = world.keys(of="session-secret-key")
    assert old == SESSION and len(new) == 64
    waiting = world.read("session")
    assert (waiting.stage, waiting.current) == ("adopting", True)
    plan = steps(waiting, now=first.resume_after - timedelta(minutes=1))
    assert [s.action for s in plan] == ["wait", "forget", "deploy", "disable"]
    assert plan[0].text.startswith("wait until ")
    # Run again too early: it stops at the wait again, having written nothing.
    writes = len(world.run.writes)
    again = world.rotate("session")
    assert not again.complete and again.versions == [] and len(world.run.writes) == writes

    later = Rotator(
        world.run,
        world.secrets,  # type: ignore[arg-type]
        open_store=None,
        health=lambda url: None,
        on_progress=quiet,
        clock=lambda: (first.resume_after + timedelta(seconds=1)).timestamp(),  # type: ignore[operator]
    ).execute(waiting, plan)
    assert later.complete and later.versions == [4] and later.disabled == [1, 2, 3]
    assert world.keys(of="session-secret-key") == [new]


def refused(world: World, kind: str = "encryption") -> str:
    with pytest.raises(DokiError) as caught:
        world.read(kind)
    assert caught.value.code == Code.ROTATION_REFUSED
    return caught.value.message


def test_a_key_replaced_by_hand_and_not_deployed_is_not_rotated_over(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.secrets.add_version("encryption-key", Fernet.generate_key())
    message = refused(world)
    assert message.startswith("projects/doki-test/locations/us-central1/services/api runs with version 1 of ")
    assert message.endswith("deploying it would leave what the service stored unreadable")


def test_a_new_list_pushed_by_hand_without_the_key_in_use_is_not_deployed(tmp_path: Path) -> None:
    # "NEW,OLD" with the wrong old key reads as a rotation adopting NEW: deploying it would strand every credential.
    world = World(tmp_path)
    other = Fernet.generate_key().decode()
    world.secrets.add_version("encryption-key", f"{Fernet.generate_key().decode()},{other}".encode())
    assert "does not hold that key" in refused(world)


def test_every_variable_reading_the_secret_moves_to_the_new_version_so_none_is_left_on_a_disabled_one(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    # The guide's name beside the backend's, both reading the secret (the backend reads the first).
    live = world.run.get("api")
    assert live is not None
    spec = replace(live.spec, secrets={**live.spec.secrets, "ENCRYPTION_KEY_NAME": "encryption-key:1"})
    with world.run.by_someone_else():
        world.run.apply("api", spec, keep_env=(), live=live, on_progress=quiet)
    assert world.rotate().complete
    [serving] = [r for r in world.run.revisions("api") if r.percent]
    assert serving.secrets["ENCRYPTION_KEY"] == serving.secrets["ENCRYPTION_KEY_NAME"] == "encryption-key:4"


def test_a_plain_variable_the_backend_reads_first_is_not_rotated_behind_its_back(tmp_path: Path) -> None:
    world = World(tmp_path)
    live = world.run.get("api")
    assert live is not None
    secrets = {k: v for k, v in live.spec.secrets.items() if k != "ENCRYPTION_KEY"}
    spec = replace(
        live.spec,
        env={**live.spec.env, "ENCRYPTION_KEY": OLD},
        secrets={**secrets, "ENCRYPTION_KEY_NAME": "encryption-key:1"},
    )
    with world.run.by_someone_else():
        world.run.apply("api", spec, keep_env=(), live=live, on_progress=quiet)
    assert refused(world).startswith("ENCRYPTION_KEY is a plain variable")


class RacingSecrets(BreakingSecrets):
    """Another rotation, or a push, adds a version right after this one's first."""

    def add_version(self, secret_id: str, data: bytes) -> int:
        number = self.inner.add_version(secret_id, data)
        if self.breaker.count == 0:
            self.breaker.count += 1
            self.inner.add_version(secret_id, Fernet.generate_key())
        return number


def test_a_version_added_meanwhile_by_someone_else_stops_the_rotation_before_it_deploys(tmp_path: Path) -> None:
    world = World(tmp_path)
    with pytest.raises(DokiError) as caught:
        world.rotate(secrets=RacingSecrets(world.secrets, Breaker(0)))
    assert caught.value.message.startswith("version 3 of encryption-key was added meanwhile")
    [serving] = [r for r in world.run.revisions("api") if r.percent]
    assert serving.secrets["ENCRYPTION_KEY"] == "encryption-key:1"


def test_a_newest_version_that_is_not_a_key_list_is_refused_naming_the_key_by_position(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.secrets.add_version("encryption-key", f"{OLD},not-a-key".encode())
    message = refused(world)
    assert message.startswith("version 2 of encryption-key does not hold a list of ENCRYPTION_KEY keys: key #2")
    assert OLD not in message


def test_a_disabled_newest_version_is_refused_as_no_instance_could_start(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.secrets.disable("encryption-key", 1)
    assert refused(world).startswith("version 1 of encryption-key, the newest, is disabled")


def test_traffic_pinned_to_a_revision_is_refused(tmp_path: Path) -> None:
    world = World(tmp_path)
    [serving] = [r.name for r in world.run.revisions("api") if r.percent]
    with world.run.by_someone_else():
        world.run.update("api", lambda live: Edit(traffic=(Target(serving, 100),)), on_progress=quiet)
    assert refused(world).startswith("traffic to projects/doki-test/locations/us-central1/services/api is pinned")
