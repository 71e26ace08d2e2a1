"""`doki keys rotate` against the emulator with real containers: the service's credential store (a PostgREST on
loopback, as Supabase serves it) re-encrypted through the backend's own code, interrupted and resumed, and the
session secret brought in while the old one's sessions live out their 15 minutes. The core's every step and failure
is in tests/doki_cli/deploy/test_rotation.py."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from doki.crypto import CredentialCipher
from doki.storage.supabase import SupabaseCredentialStore
from doki_cli.context import Factory
from doki_cli.deploy.rotation import fingerprint
from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.fakes.postgrest import FakePostgrest
from tests.helpers import CliRunner, secret
from tests.helpers.project import ENV, PATH, PROJECT, TOML, setup_project

runner = CliRunner()
VALUES = dict(line.split("=", 1) for line in ENV.splitlines())
SERVICE_ROLE_KEY = VALUES["SUPABASE_SECRET_KEY"]


def doki(*args: str, factory: Factory | None = None) -> object:
    return runner.invoke(app, list(args), obj=factory)


@pytest.fixture
def postgrest() -> Iterator[FakePostgrest]:
    with FakePostgrest(SERVICE_ROLE_KEY) as server:
        yield server


def deploy_with_store(tmp_path: Path, emulator: Emulator, image: str, monkeypatch: pytest.MonkeyPatch, url: str) -> str:
    """The project deployed with its credential store at `url`; the service's URL."""
    setup_project(tmp_path, emulator, monkeypatch)
    # A short request timeout: the rotation waits it out once the new key writes, for requests still running before.
    toml = TOML.replace("https://abcdefghijklmnop.supabase.co", url).replace(
        "[service]\n", "[service]\ntimeout_seconds = 5\n", 1
    )
    (tmp_path / "doki.toml").write_text(toml)
    assert doki("secrets", "push").exit_code == 0
    deployed = doki("--json", "deploy", "--image", image, "--yes")
    assert deployed.exit_code == 0, deployed.output
    return str(json.loads(deployed.stdout)["url"])


def versions(emulator: Emulator, secret_id: str) -> list[tuple[int, str, str]]:
    """Each version of the secret, newest first: number, state and, when enabled, its keys by fingerprint."""
    client = ClientFactory(emulator.grpc_address).secret_manager()
    found = []
    for version in client.list_secret_versions(parent=f"projects/{PROJECT}/secrets/{secret_id}"):
        number = int(version.name.rsplit("/", 1)[1])
        held = ""
        if version.state.name == "ENABLED":
            data = client.access_secret_version(name=version.name).payload.data.decode()
            held = ",".join(fingerprint(secret("a rotated key", key)) for key in data.split(","))
        found.append((number, version.state.name, held))
    return sorted(found, reverse=True)


def latest_keys(emulator: Emulator, secret_id: str) -> list[str]:
    client = ClientFactory(emulator.grpc_address).secret_manager()
    name = f"projects/{PROJECT}/secrets/{secret_id}/versions/latest"
    keys = client.access_secret_version(name=name).payload.data.decode().split(",")
    return [secret("a rotated key", key) for key in keys]


def serving_reads(emulator: Emulator, variable: str) -> str:
    """The version of its secret the revision serving the service reads."""
    service = ClientFactory(emulator.grpc_address).run_services().get_service(name=PATH)
    [env] = [e for e in service.template.containers[0].env if e.name == variable]
    return str(env.value_source.secret_key_ref.version)


def test_an_interrupted_encryption_key_rotation_resumes_and_leaves_every_credential_under_the_new_key_alone(
    tmp_path: Path,
    engine_emulator: Emulator,
    backend_image: str,
    monkeypatch: pytest.MonkeyPatch,
    postgrest: FakePostgrest,
) -> None:
    url = deploy_with_store(tmp_path, engine_emulator, backend_image, monkeypatch, postgrest.url)
    old = VALUES["ENCRYPTION_KEY"]
    store = SupabaseCredentialStore(postgrest.url, SERVICE_ROLE_KEY, "doki_credentials")
    tokens = {str(uuid.uuid4()): f"refresh token {n}" for n in range(5)}
    for user, token in tokens.items():
        store.put(user, "google", CredentialCipher.from_keys([old]).encrypt(user, token))

    planned = doki("keys", "rotate", "encryption", "--dry-run")
    assert planned.exit_code == 2, planned.output
    assert planned.stdout == (
        f"Rotate ENCRYPTION_KEY of {PATH}\n"
        f"  secret encryption-key, version 1 (1 key: {fingerprint(old)}); no rotation in progress: this starts one\n"
        "  1. add a version of encryption-key: the key in use, then a new one (every instance can read what the new "
        "key encrypts before anything is written with it)\n"
        "  2. deploy a new revision of the live configuration, which reads the newest version\n"
        "  3. add a version of encryption-key: the new key first, so it encrypts from now on\n"
        "  4. deploy a new revision of the live configuration, which reads the newest version\n"
        "  5. wait after that deploy until no request that began before it is still running (the service's request "
        "timeout, 5s)\n"
        f"  6. re-encrypt the 5 stored credentials under the new key (Supabase table doki_credentials at "
        f"{postgrest.url})\n"
        "  7. add a version of encryption-key: the new key alone\n"
        "  8. deploy a new revision of the live configuration, which reads the newest version\n"
        "  9. disable the older versions of encryption-key, oldest first: they hold the old key\n"
    )
    assert versions(engine_emulator, "encryption-key") == [(1, "ENABLED", fingerprint(old))]

    # The store stops answering after two credentials are moved.
    postgrest.fail_next(method="PATCH", after=2)
    stopped = doki("keys", "rotate", "encryption", "--yes")
    assert stopped.exit_code == 1, stopped.output
    # Each step is said as it starts (stderr), then the error.
    said = [line.split(" ", 1)[1] for line in stopped.stderr.splitlines() if re.match(r"\d{4}-\d\d-\d\dT", line)]
    assert [line for line in said if not line.startswith("waiting ")] == [
        "add a version of encryption-key: the key in use, then a new one (every instance can read what the new key "
        "encrypts before anything is written with it)",
        "deploy a new revision of the live configuration, which reads the newest version",
        "add a version of encryption-key: the new key first, so it encrypts from now on",
        "deploy a new revision of the live configuration, which reads the newest version",
        "wait after that deploy until no request that began before it is still running (the service's request "
        "timeout, 5s)",
        f"re-encrypt the 5 stored credentials under the new key (Supabase table doki_credentials at {postgrest.url})",
    ]
    error = stopped.stderr[stopped.stderr.index("Error [") :]
    assert error.startswith("Error [reencryption_interrupted]: the re-encryption stopped after 2 credentials: ")
    assert stopped.stderr.endswith(
        "every credential is still readable (each is under the new key or an old one, and the service reads both)\n"
        "  Hint: check that the store answers (a paused Supabase project does not); then run `doki keys rotate "
        "encryption --yes` again: it goes on from where it stopped\n"
    )
    new, then_old = latest_keys(engine_emulator, "encryption-key")
    assert then_old == old and serving_reads(engine_emulator, "ENCRYPTION_KEY") == "3"
    both = CredentialCipher.from_keys([new, old])
    rows = {row.user_id: row.ciphertext for row in store.iter_all()}
    assert {user: both.decrypt(user, rows[user]) for user in tokens} == tokens
    assert sum(CredentialCipher.from_keys([new]).is_current(text) for text in rows.values()) == 2

    resumed = doki("--json", "keys", "rotate", "encryption", "--yes")
    assert resumed.exit_code == 0, resumed.output
    data = json.loads(resumed.stdout)
    assert (data["plan"]["stage"], data["plan"]["new_key"], data["plan"]["deployed"]) == (
        "adopting",
        fingerprint(new),
        True,
    )
    assert [step["action"] for step in data["plan"]["steps"]] == ["wait", "reencrypt", "forget", "deploy", "disable"]
    assert (data["reencrypted"], data["unreadable"], data["complete"]) == (3, [], True)
    assert (data["versions_added"], data["versions_disabled"]) == ([4], [1, 2, 3])
    assert latest_keys(engine_emulator, "encryption-key") == [new]
    assert versions(engine_emulator, "encryption-key") == [
        (4, "ENABLED", fingerprint(new)),
        (3, "DISABLED", ""),
        (2, "DISABLED", ""),
        (1, "DISABLED", ""),
    ]
    assert serving_reads(engine_emulator, "ENCRYPTION_KEY") == "4"
    only_new = CredentialCipher.from_keys([new])
    assert {row.user_id: only_new.decrypt(row.user_id, row.ciphertext) for row in store.iter_all()} == tokens
    assert httpx.get(url + "/", timeout=10).json() == {"message": "Doki Backend up"}
    # No key is ever printed: only fingerprints.
    for output in (planned.output, stopped.output, resumed.output):
        assert old not in output and new not in output
    # Done: a dry run now shows a rotation that would start afresh.
    again = doki("--json", "keys", "rotate", "encryption", "--dry-run")
    assert json.loads(again.stdout)["plan"]["stage"] == "idle"
    store.close()


def test_a_session_secret_rotation_serves_with_both_secrets_then_drops_the_old_once_its_sessions_expired(
    tmp_path: Path,
    engine_emulator: Emulator,
    backend_image: str,
    monkeypatch: pytest.MonkeyPatch,
    postgrest: FakePostgrest,
) -> None:
    url = deploy_with_store(tmp_path, engine_emulator, backend_image, monkeypatch, postgrest.url)
    old = VALUES["SESSION_SECRET_KEY"]

    first = doki("keys", "rotate", "session", "--yes")
    assert first.exit_code == 0, first.output
    new, kept = latest_keys(engine_emulator, "session-secret-key")
    assert kept == old
    # The backend serves with the list: the revision reading "new,old" became Ready and answers.
    assert serving_reads(engine_emulator, "SESSION_SECRET_KEY") == "3"
    assert httpx.get(url + "/", timeout=10).json() == {"message": "Doki Backend up"}
    match = re.search(
        r"run `doki keys rotate session --yes` again after (\S+ \S+) UTC to drop the old one\n", first.stdout
    )
    assert match is not None, first.stdout
    after = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert timedelta(minutes=15) < after - datetime.now(UTC) <= timedelta(minutes=16)
    assert "users notice nothing: sessions (a Google sign-in in progress) signed with the old secret" in first.stderr

    early = doki("keys", "rotate", "session", "--yes")
    assert early.exit_code == 0 and "to drop the old one" in early.stdout
    assert serving_reads(engine_emulator, "SESSION_SECRET_KEY") == "3"

    later = Factory(now=lambda: after + timedelta(seconds=1))
    done = doki("keys", "rotate", "session", "--yes", factory=later)
    assert done.exit_code == 0, done.output
    assert done.stdout.endswith(
        "Rotated SESSION_SECRET_KEY of doki-backend: the new key alone is in use, the old one dropped\n"
    )
    assert latest_keys(engine_emulator, "session-secret-key") == [new]
    assert serving_reads(engine_emulator, "SESSION_SECRET_KEY") == "4"
    assert [state for _, state, _ in versions(engine_emulator, "session-secret-key")] == ["ENABLED"] + ["DISABLED"] * 3
    assert httpx.get(url + "/", timeout=10).json() == {"message": "Doki Backend up"}


def test_what_cannot_be_rotated_is_refused_before_anything_is_written(
    tmp_path: Path,
    engine_emulator: Emulator,
    backend_image: str,
    monkeypatch: pytest.MonkeyPatch,
    postgrest: FakePostgrest,
) -> None:
    deploy_with_store(tmp_path, engine_emulator, backend_image, monkeypatch, postgrest.url)
    before = versions(engine_emulator, "encryption-key")

    unknown = doki("keys", "rotate", "jwt")
    assert unknown.exit_code == 1
    assert unknown.stderr == (
        "Error [bad_option]: 'jwt' is not a key doki rotates\n"
        "  Hint: name one: `doki keys rotate encryption` (ENCRYPTION_KEY) or `doki keys rotate session` "
        "(SESSION_SECRET_KEY)\n"
    )
    assert doki("keys", "rotate", "encryption", "--now").stderr.startswith(
        "Error [bad_option]: --now is for the session"
    )

    toml = (tmp_path / "doki.toml").read_text()
    (tmp_path / "doki.toml").write_text(
        toml.replace('ENCRYPTION_KEY = "encryption-key"', 'ENCRYPTION_KEY = "encryption-key:1"')
    )
    pinned = doki("keys", "rotate", "encryption", "--yes")
    assert pinned.exit_code == 1
    assert pinned.stderr == (
        "Error [rotation_refused]: doki.toml pins ENCRYPTION_KEY to encryption-key:1: the next `doki deploy` would "
        "bring back that version's keys\n"
        '  Hint: reference it as "encryption-key:latest" in doki.toml\'s [service.secrets], then rotate\n'
    )
    (tmp_path / "doki.toml").write_text(toml)

    # The original backend's rows would be stranded: they are read with ENCRYPTION_KEY's keys.
    legacy = toml.replace("[service.env]\n", '[service.env]\nLEGACY_CREDENTIALS_TABLE = "credentials"\n')
    (tmp_path / "doki.toml").write_text(legacy)
    assert doki("deploy", "--image", backend_image, "--yes").exit_code == 0
    stranded = doki("keys", "rotate", "encryption", "--dry-run")
    assert stranded.exit_code == 1
    assert stranded.stderr.startswith(
        f"Error [rotation_refused]: {PATH} reads the original backend's rows (credentials) with ENCRYPTION_KEY's keys"
    )
    # The session secret is no store's key: it rotates all the same.
    assert doki("keys", "rotate", "session", "--dry-run").exit_code == 2
    assert versions(engine_emulator, "encryption-key") == before
