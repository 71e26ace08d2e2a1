"""The real Dockerfile, built once per session on a real engine from a copy of the repository; and PostgreSQL dressed
as a Supabase project's database, for the migrations in migrations/supabase/."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import select
import shutil
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    BASE_IMAGE,
    REPO,
    Build,
    Process,
    build_image,
    container,
    copy_checkout,
    record,
    secret,
    unavailable,
)

# Planted in the build context: none of it may reach the image, nor the build's log or a container's.
PLANTED_SECRET = secret("the secret planted in the build context", "planted-secret-value-0123456789")


@pytest.fixture(scope="session")
def build_context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository as committed, plus what a developer's checkout holds and the image must not."""
    context = copy_checkout(tmp_path_factory.mktemp("context"))
    (context / ".env").write_text(f"SUPABASE_SECRET_KEY={PLANTED_SECRET}\n")
    (context / ".env.production").write_text(f"ENCRYPTION_KEY={PLANTED_SECRET}\n")
    (context / ".git").mkdir(exist_ok=True)
    (context / ".git" / "config").write_text(f"[secret]\n\tvalue = {PLANTED_SECRET}\n")
    (context / ".doki").mkdir(exist_ok=True)
    (context / ".doki" / "dev-keys.json").write_text(f'{{"encryption_key": "{PLANTED_SECRET}"}}')
    return context


@pytest.fixture(scope="session")
def image(docker_client: Any, build_context: Path) -> Iterator[Build]:
    build = build_image(docker_client, build_context, "doki-backend:test")
    yield build


# Debian's PostgreSQL 15 on the stand-in base (Debian bookworm, whose PostgreSQL is 15), for migrations/supabase/
# (tests/container/test_migration_postgres.py). `postgresql-15` by name, not the `postgresql` that follows the
# release: on another Debian the build stops there, rather than install another major beside the PATH set below.
# Supabase itself: new projects on its platform run PostgreSQL 17 ("Postgres 17 is what we currently default to on the
# Supabase platform"), and self-hosted Supabase ships 15 until its default moves to 17 in June 2026 (Supabase's
# changelog, 2026-05-18); projects made earlier keep their version until upgraded
# (https://supabase.com/docs/guides/platform/upgrading).
# https://supabase.com/changelog/46080-self-hosted-supabase-upgrading-from-pg-15-to-17-breaking-change
# So our SQL is checked on 15; nothing here runs it on 17. What Supabase adds on top (roles, the auth schema) is in
# supabase_stand_in.sql.
POSTGRES_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
# Debian's packaging makes a cluster on install unless told not to; the one below is made for the tests instead.
# dpkg without fsync, and the downloaded packages dropped: a cold build is CI time.
ARG APT_INSTALL="apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-unsafe-io"
RUN apt-get update -q \\
    && DEBIAN_FRONTEND=noninteractive $APT_INSTALL postgresql-common \\
    && sed -ri 's/^#? *create_main_cluster *=.*/create_main_cluster = false/' \\
        /etc/postgresql-common/createcluster.conf \\
    && DEBIAN_FRONTEND=noninteractive $APT_INSTALL postgresql-15 \\
    && apt-get clean && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
USER postgres
# Made at build, so a run only starts the server. Supabase's bootstrap superuser is supabase_admin; trust on the
# socket, the only way in (no TCP listener, no network). No fsync: the data dies with the container.
RUN initdb --username=supabase_admin --auth=trust --no-sync --encoding=UTF8 --no-locale
"""
# No TCP listener (so no port to take, and the container runs without a network); durability off for speed.
POSTGRES_COMMAND = [
    "postgres",
    *("-c", "listen_addresses=", "-c", "unix_socket_directories=/tmp"),
    *("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"),
]
SUPABASE_STAND_IN = Path(__file__).with_name("supabase_stand_in.sql")
SUPABASE_MIGRATIONS = sorted((REPO / "migrations" / "supabase").glob("*.sql"))


class SqlError(Exception):
    """A statement PostgreSQL refused: its SQLSTATE (`42501`, `23514`, ...) and message."""

    def __init__(self, sqlstate: str, message: str) -> None:
        super().__init__(f"{sqlstate}: {message}")
        self.sqlstate = sqlstate
        self.message = message


def sql_literal(value: str) -> str:
    """`value` as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


# psql's connection, the same for every session: no psqlrc, bare rows (`|` between columns), and a socket to connect
# through, the server's only way in.
PSQL = ["psql", "--no-psqlrc", "--quiet", "--no-align", "--tuples-only", "--host=/tmp", "--dbname=postgres"]


class Session:
    """One psql kept open in the container, logged in as one role, statements written to it one at a time: a round
    trip takes milliseconds, where a psql per statement costs a `docker exec` and a new connection (~0.2 s).

    After each statement psql echoes a marker with the SQLSTATE of the error it met (`00000` when none) and that
    error's message: what the statement returned is what came before the marker. A session that did not reach its
    marker (a timeout, psql gone) is spent: `kill` it."""

    TIMEOUT = 30.0  # for psql to answer a statement
    CLOSE_TIMEOUT = 10.0  # for psql to quit once its input ends, before it is killed

    def __init__(self, container: Any, user: str) -> None:
        self.container = container
        self.user = user
        self.backend_pid: int | None = None
        self.process = Process(
            ["docker", "exec", "--interactive", container.id, *PSQL, f"--username={user}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._unread = b""
        try:
            # The server process serving this session, for `kill` to end.
            [pid] = self.run("select pg_backend_pid()")
        except BaseException:
            self.kill()
            raise
        self.backend_pid = int(pid)

    def run(self, statement: str) -> list[str]:
        """The rows `statement` returned, one line each; SqlError if PostgreSQL refused it.

        The `;` that ends it goes on a line of its own: appended to a statement ending in a `-- comment`, it would be
        commented out, and psql would hold the statement back, to send it glued to whatever comes next. The error is
        read from psql's LAST_ERROR_SQLSTATE, reset first, not from SQLSTATE, the last query's: a statement written
        with its own `;` and a comment after it sends that lone `;` as an empty query, which succeeds and would hide
        the statement's error."""
        assert self.process.stdin is not None
        marker = f"doki-{uuid.uuid4().hex}"
        self.process.stdin.write(
            (
                "\\set LAST_ERROR_SQLSTATE 00000\n\\set LAST_ERROR_MESSAGE\n"
                f"{statement.rstrip().rstrip(';')}\n;\n"
                f"\\echo {marker} :LAST_ERROR_SQLSTATE :LAST_ERROR_MESSAGE\n"
            ).encode()
        )
        self.process.stdin.flush()
        output, status = self._until(marker)
        sqlstate, _, message = status.partition(" ")
        if sqlstate != "00000":
            raise SqlError(sqlstate, message)
        return output.splitlines()

    def _until(self, marker: str) -> tuple[str, str]:
        """What psql printed before the line starting with `marker`, and the rest of that line."""
        assert self.process.stdout is not None
        stdout = self.process.stdout.fileno()
        deadline = time.monotonic() + self.TIMEOUT
        start = f"{marker} ".encode()
        # Until the marker's whole line is in.
        while (found := self._unread.find(start)) < 0 or (end := self._unread.find(b"\n", found)) < 0:
            ready, _, _ = select.select([stdout], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(stdout, 65536) if ready else b""
            if not chunk:
                ended = self.process.poll()
                state = f"ended with {ended}" if ended is not None else f"answered nothing in {self.TIMEOUT} s"
                raise AssertionError(f"psql as {self.user} {state}; it had printed: {self._unread.decode()!r}")
            self._unread += chunk
        output, status = self._unread[:found], self._unread[found + len(start) : end]
        self._unread = self._unread[end + 1 :]
        return output.decode(), status.decode()

    def kill(self) -> None:
        """End the session now, whatever it is doing. Its server process first, as the bootstrap superuser: killing
        the `docker exec` client alone leaves a running query running, and the transaction open with its locks until
        it ends; terminated, the transaction rolls back. Then psql, through its client."""
        try:
            if self.backend_pid is not None:
                wait = int(self.CLOSE_TIMEOUT * 1000)  # ms, for the server process to be gone
                terminate = f"--command=select pg_terminate_backend({self.backend_pid}, {wait})"
                _, output = self.container.exec_run([*PSQL, "--username=supabase_admin", terminate])
                record(f"the output of psql in container {self.container.name}", output)
                self.backend_pid = None
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(timeout=self.CLOSE_TIMEOUT)

    def close(self) -> None:
        """psql's input ended, for it to quit; killed if it has not within CLOSE_TIMEOUT (a statement still running)."""
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process.wait(timeout=self.CLOSE_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()


@dataclass
class Postgres:
    """PostgreSQL in a container, spoken to with its own psql through `docker exec` (no driver to install, and no
    port: the server listens on its socket only): one session per role logged in as, kept open."""

    container: Any
    sessions: dict[str, Session] = field(default_factory=dict)

    def sql(
        self, *statements: str, user: str = "postgres", role: str | None = None, sub: str | None = None
    ) -> list[str]:
        """Run `statements` in one transaction logged in as `user` (the SQL editor's postgres by default); the rows
        they return, one line each (columns `|`-separated). With `role`, run them as PostgREST runs a request
        (PostgREST's src/library/PostgREST/Query/PreQuery.hs, `txVarQuery`; docs:
        https://docs.postgrest.org/en/v12/references/transactions.html): logged in as authenticator, the role set
        for the transaction only, and the JWT's claims (`role`, and `sub`, a user's id) in `request.jwt.claims`,
        where auth.uid() reads them."""
        setup = []
        if role is not None:
            user = "authenticator"
            claims = {"role": role} | ({"sub": sub} if sub else {})
            setup = [f"set local role {role}", f"set local request.jwt.claims = {sql_literal(json.dumps(claims))}"]
        return self._transaction(user, [*setup, *statements], "commit")

    def scratch(self, *statements: str) -> list[str]:
        """Run `statements` as postgres in a transaction rolled back after: what they change is never seen."""
        return self._transaction("postgres", list(statements), "rollback")

    def value(self, *statements: str, **kwargs: Any) -> Any:
        """The JSON the last statement returns (one row, one column), as Python."""
        lines = self.sql(*statements, **kwargs)
        return json.loads(lines[-1]) if lines else None

    def _transaction(self, user: str, statements: list[str], end: str) -> list[str]:
        if user not in self.sessions:
            self.sessions[user] = Session(self.container, user)
        session = self.sessions[user]
        try:
            session.run("begin")
            rows = []
            try:
                for statement in statements:
                    rows += session.run(statement)
            except SqlError:
                session.run("rollback")
                raise
            session.run(end)
            return rows
        except SqlError:
            raise  # PostgreSQL refused a statement: rolled back, every marker read, the session as good as new
        except BaseException:
            # Anything else (a timeout, psql gone, an interrupt) may leave the transaction open and psql's output
            # unread: the next test must not inherit them. Its session ends, and the next transaction gets a new one.
            del self.sessions[user]
            session.kill()
            raise

    def run_files(self, *paths: Path, user: str) -> None:
        """Run each file as one transaction (as `supabase db push` applies a migration) logged in as `user`, stopping
        at the first error (a psql of its own: a session would go on past it)."""
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            for path in paths:
                tar.add(path, arcname=f"doki-sql/{path.name}")
        self.container.put_archive("/tmp", archive.getvalue())
        for path in paths:
            command = [*PSQL, f"--username={user}", "--set=ON_ERROR_STOP=1", "--set=VERBOSITY=verbose"]
            code, (out, err) = self.container.exec_run(
                [*command, "--single-transaction", f"--file=/tmp/doki-sql/{path.name}"], demux=True
            )
            record(f"the stdout of psql in container {self.container.name}", out)
            stderr = record(f"the stderr of psql in container {self.container.name}", err)
            if code != 0:
                # VERBOSITY=verbose puts the SQLSTATE before the message.
                error = re.search(r"^psql:.*ERROR:  ([0-9A-Z]{5}): (.*)$", stderr, re.MULTILINE)
                raise SqlError(error[1], error[2]) if error else AssertionError(f"psql exited with {code}:\n{stderr}")

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.container.exec_run(["pg_isready", "--quiet", "--host=/tmp"]).exit_code == 0:
                return
            self.container.reload()
            if self.container.status != "running":
                break
            time.sleep(0.05)
        raise AssertionError(f"PostgreSQL did not start:\n{self.container.logs().decode(errors='replace')}")

    def close(self) -> None:
        """Every session closed, each even if closing another failed."""
        sessions, self.sessions = list(self.sessions.values()), {}
        with ExitStack() as closing:
            for session in sessions:
                closing.callback(session.close)


@pytest.fixture(scope="session")
def postgres_image(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The image's tag, named after its Dockerfile and base: built once on a machine, then found by name (a rebuilt
    base gets a new name, so nothing stale is reused)."""
    from docker.errors import ImageNotFound

    base = docker_client.images.get(BASE_IMAGE).id
    digest = hashlib.sha256(f"{base}\n{POSTGRES_DOCKERFILE}".encode()).hexdigest()[:12]
    tag = f"doki-test-postgres:{digest}"
    try:
        docker_client.images.get(tag)
    except ImageNotFound:
        context = tmp_path_factory.mktemp("postgres")
        (context / "Dockerfile").write_text(POSTGRES_DOCKERFILE)
        build_image(docker_client, context, tag)
    return tag


@pytest.fixture(scope="module")
def supabase_postgres(docker_client: Any, postgres_image: str) -> Iterator[Postgres]:
    """One PostgreSQL for the module: Supabase's roles and auth schema stood in, then every migrations/supabase/*.sql
    applied in order, twice (the files say they are safe to run twice). Tests keep to users of their own."""
    if shutil.which("docker") is None:
        unavailable("the docker CLI is not installed (psql sessions run through `docker exec --interactive`)")
    with container(docker_client, postgres_image, POSTGRES_COMMAND, network_mode="none") as started:
        db = Postgres(started)
        db.wait_ready()
        db.run_files(SUPABASE_STAND_IN, user="supabase_admin")
        for attempt in ("first", "second"):
            try:
                db.run_files(*SUPABASE_MIGRATIONS, user="postgres")
            except SqlError as exc:
                raise AssertionError(f"migrations/supabase/ failed when applied a {attempt} time: {exc}") from exc
        try:
            yield db
        finally:
            db.close()
