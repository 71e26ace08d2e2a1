"""migrations/supabase/*.sql on a real PostgreSQL (Debian bookworm's 15: a Supabase project runs 15 or, if new, 17; see
POSTGRES_DOCKERFILE), dressed as a Supabase project's database (supabase_stand_in.sql), reached the ways the backend
and a browser reach it: as PostgREST's roles.

The fake PostgREST (tests/fakes/postgrest.py) only models this table; here its grants, row level security,
constraints, `updated_at` trigger and cascade from auth.users run for real, and the fake's spec of it is held to the
table the migration makes, so the two cannot drift apart."""

# The SQL here is built from the tests' own constants and fresh uuids, never from input.
# ruff: noqa: S608

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from typing import Any

import pytest

from tests.container.conftest import SUPABASE_MIGRATIONS, Postgres, Session, SqlError, sql_literal
from tests.fakes.postgrest import CREDENTIALS_TABLE

pytestmark = pytest.mark.docker

TABLE = "public.doki_credentials"


@pytest.fixture
def db(supabase_postgres: Postgres) -> Postgres:
    return supabase_postgres


def _new_user(db: Postgres) -> str:
    """A user as Supabase Auth makes one: a row in auth.users, written by Auth's own role."""
    user_id = str(uuid.uuid4())
    db.sql(f"insert into auth.users (id) values ('{user_id}')", user="supabase_auth_admin")
    return user_id


def _put(user_id: str, provider: str, ciphertext: str, metadata: dict[str, str] | None = None) -> str:
    """The statement PostgREST makes of the store's put() (SupabaseCredentialStore: a POST with
    on_conflict=user_id,provider and resolution=merge-duplicates): on conflict each column of the body is set from
    EXCLUDED, and no other, so created_at stays (PostgREST's src/library/PostgREST/Query/QueryBuilder.hs,
    `mutatePlanToQuery`)."""
    values = ", ".join(sql_literal(value) for value in (user_id, provider, ciphertext, json.dumps(metadata or {})))
    return (
        f"insert into {TABLE} (user_id, provider, ciphertext, metadata) values ({values}) "
        "on conflict (user_id, provider) do update set user_id = excluded.user_id, provider = excluded.provider, "
        "ciphertext = excluded.ciphertext, metadata = excluded.metadata"
    )


def _row(db: Postgres, user_id: str, provider: str) -> dict[str, Any] | None:
    """The row, as the service role reads it."""
    found: dict[str, Any] | None = db.value(
        f"select row_to_json(c) from {TABLE} c where user_id = '{user_id}' and provider = {sql_literal(provider)}",
        role="service_role",
    )
    return found


def _providers(db: Postgres, user_id: str) -> list[str]:
    return db.sql(f"select provider from {TABLE} where user_id = '{user_id}' order by provider", role="service_role")


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


# The service role: the backend's key. It bypasses row level security and holds the table's grants.


def test_the_service_role_writes_reads_and_deletes_a_row_under_row_level_security(db: Postgres) -> None:
    user = _new_user(db)
    db.sql(_put(user, "google", "ct-1"), role="service_role")

    row = _row(db, user, "google")
    assert row is not None
    assert (row["ciphertext"], row["metadata"]) == ("ct-1", {})
    assert row["created_at"] == row["updated_at"]

    delete = f"delete from {TABLE} where user_id = '{user}' and provider = 'google' returning provider"
    assert db.sql(delete, role="service_role") == ["google"]
    assert _row(db, user, "google") is None


def test_an_upsert_on_user_and_provider_replaces_the_row_moving_updated_at_and_not_created_at(db: Postgres) -> None:
    user = _new_user(db)
    db.sql(_put(user, "google", "ct-1", {"email": "ada@example.com"}), role="service_role")
    first = _row(db, user, "google")
    db.sql(_put(user, "google", "ct-2", {"email": "grace@example.com"}), role="service_role")
    second = _row(db, user, "google")

    assert first is not None and second is not None
    assert _providers(db, user) == ["google"]
    assert (second["ciphertext"], second["metadata"]) == ("ct-2", {"email": "grace@example.com"})
    assert second["created_at"] == first["created_at"]
    # The upsert's SET names neither timestamp: only the trigger can have moved it.
    assert _time(second["updated_at"]) > _time(first["updated_at"])


def test_an_update_gets_the_triggers_updated_at_whatever_it_sets_and_the_fake_touches_the_same_columns(
    db: Postgres,
) -> None:
    user = _new_user(db)
    db.sql(_put(user, "google", "ct-1"), role="service_role")
    before = _row(db, user, "google")

    # The store's replace_ciphertext: a PATCH filtered on the ciphertext it replaces (a compare-and-swap).
    swap = (
        f"update {TABLE} set ciphertext = 'ct-2', updated_at = '2000-01-01T00:00:00Z' "
        f"where user_id = '{user}' and provider = 'google' and ciphertext = 'ct-1' returning provider"
    )
    assert db.sql(swap, role="service_role") == ["google"]
    after = _row(db, user, "google")

    assert before is not None and after is not None
    assert after["ciphertext"] == "ct-2"
    assert _time(after["updated_at"]) > _time(before["updated_at"])  # now(), not the year 2000 it asked for
    moved = tuple(column for column in ("created_at", "updated_at") if after[column] != before[column])
    assert moved == CREDENTIALS_TABLE.touch_on_update
    # The same swap again finds the old ciphertext gone.
    assert db.sql(swap, role="service_role") == []


def test_the_trigger_takes_now_from_pg_catalog_whatever_search_path_the_writer_sets(db: Postgres) -> None:
    user = _new_user(db)
    db.sql(_put(user, "google", "ct-1"), role="service_role")

    # A now() of the writer's own, found first on the search_path it chose: the trigger's empty search_path is what
    # keeps it out (otherwise pg_catalog, listed after, comes second).
    seen = db.scratch(
        "create schema doki_shadow",
        "create function doki_shadow.now() returns timestamptz language sql as $$ select '2000-01-01Z'::timestamptz $$",
        "set local search_path = doki_shadow, pg_catalog",
        "select extract(year from now())",
        f"update {TABLE} set ciphertext = 'ct-2' where user_id = '{user}' returning extract(year from updated_at)",
    )

    assert seen[0] == "2000"  # the shadow works for the writer's own statements
    assert int(seen[1]) > 2000


# anon (the publishable key) and authenticated (a signed-in user's token): kept out twice over.


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_anon_and_a_signed_in_user_are_refused_the_table_even_their_own_row(db: Postgres, role: str) -> None:
    user = _new_user(db)
    db.sql(_put(user, "google", "ct-1"), role="service_role")
    attempts = [
        f"select * from {TABLE}",
        _put(user, "github", "ct-x"),
        f"update {TABLE} set ciphertext = 'ct-x' where user_id = '{user}'",
        f"delete from {TABLE} where user_id = '{user}'",
    ]

    for attempt in attempts:
        with pytest.raises(SqlError) as refused:
            db.sql(attempt, role=role, sub=user if role == "authenticated" else None)
        assert (refused.value.sqlstate, refused.value.message) == (
            "42501",
            "permission denied for table doki_credentials",
        ), attempt

    assert _providers(db, user) == ["google"]
    row = _row(db, user, "google")
    assert row is not None and row["ciphertext"] == "ct-1"


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_granted_the_table_anon_and_a_signed_in_user_still_see_and_change_no_row_as_it_has_no_policy(
    db: Postgres, role: str
) -> None:
    user = _new_user(db)
    db.sql(_put(user, "google", "ct-1"), role="service_role")
    # As a request would run (see Postgres.sql), but inside a scratch transaction that granted the role first.
    claims = {"role": role, "sub": user} if role == "authenticated" else {"role": role}
    as_role = [f"set local role {role}", f"set local request.jwt.claims = {sql_literal(json.dumps(claims))}"]
    grant = f"grant select, insert, update, delete on {TABLE} to {role}"

    seen = db.scratch(
        grant,
        *as_role,
        "select auth.uid()",
        f"select count(*) from {TABLE}",
        f"update {TABLE} set ciphertext = 'ct-x' where user_id = '{user}' returning provider",
        f"delete from {TABLE} where user_id = '{user}' returning provider",
    )
    # auth.uid() is the user's own id (null for anon), and still no row is seen, updated or deleted.
    assert seen == [user if role == "authenticated" else "", "0"]

    with pytest.raises(SqlError) as refused:
        db.scratch(grant, *as_role, _put(user, "github", "ct-x"))
    assert refused.value.sqlstate == "42501"
    assert refused.value.message == 'new row violates row-level security policy for table "doki_credentials"'

    # The grants went with the scratch transactions; the row is as it was.
    privileges = db.value(
        "select json_agg(has_table_privilege("
        f"{sql_literal(role)}, {sql_literal(TABLE)}, privilege)) "
        "from unnest(array['select', 'insert', 'update', 'delete']) privilege"
    )
    assert privileges == [False, False, False, False]
    row = _row(db, user, "google")
    assert row is not None and row["ciphertext"] == "ct-1"


def test_the_stand_in_grants_a_new_public_table_to_anon_and_authenticated_as_supabase_does(db: Postgres) -> None:
    # Without this default, the refusals above would not show the migration's revoke at work.
    seen = db.scratch(
        "create table public.doki_scratch (x int)",
        "select has_table_privilege('anon', 'public.doki_scratch', 'select'), "
        "has_table_privilege('authenticated', 'public.doki_scratch', 'insert')",
        "set local role anon",
        "select count(*) from public.doki_scratch",
    )
    assert seen == ["t|t", "0"]


# What the table itself refuses, whoever writes.


@pytest.mark.parametrize(
    ("column", "value", "refusal"),
    [
        ("provider", "''", "23514 doki_credentials_provider_check"),
        ("ciphertext", "''", "23514 doki_credentials_ciphertext_check"),
        ("metadata", "'[]'", "23514 doki_credentials_metadata_check"),
        ("metadata", """'"text"'""", "23514 doki_credentials_metadata_check"),
        ("metadata", "'null'", "23514 doki_credentials_metadata_check"),  # JSON's null
        ("metadata", "null", "23502 metadata"),  # SQL's
        ("ciphertext", "null", "23502 ciphertext"),
        ("user_id", f"'{uuid.UUID(int=0)}'", "23503 doki_credentials_user_id_fkey"),  # no such user
    ],
)
def test_the_table_refuses_an_empty_provider_or_ciphertext_metadata_not_an_object_and_a_stranger(
    db: Postgres, column: str, value: str, refusal: str
) -> None:
    user = _new_user(db)
    values = {"user_id": f"'{user}'", "provider": "'google'", "ciphertext": "'ct-1'", "metadata": "'{}'"}
    values[column] = value

    with pytest.raises(SqlError) as refused:
        db.sql(f"insert into {TABLE} ({', '.join(values)}) values ({', '.join(values.values())})", role="service_role")

    sqlstate, named = refusal.split()
    assert refused.value.sqlstate == sqlstate
    assert f'"{named}"' in refused.value.message
    assert _providers(db, user) == []


def test_deleting_a_user_from_auth_users_deletes_their_credentials_and_no_one_elses(db: Postgres) -> None:
    gone, kept = _new_user(db), _new_user(db)
    for user, provider in [(gone, "google"), (gone, "github"), (kept, "google")]:
        db.sql(_put(user, provider, "ct-1"), role="service_role")

    # Supabase Auth deletes users as its own role, which holds no grant on our table: the cascade runs as the table's
    # owner, so deleting a user never fails on it.
    assert db.sql(f"select has_table_privilege('supabase_auth_admin', '{TABLE}', 'delete')") == ["f"]
    db.sql(f"delete from auth.users where id = '{gone}'", user="supabase_auth_admin")

    assert _providers(db, gone) == []
    assert _providers(db, kept) == ["google"]


# The migration itself: safe to run again, and the fake's picture of its table.

_CATALOG = f"""
select json_build_object(
    'acl', (select relacl::text[] from pg_class where oid = '{TABLE}'::regclass),
    'rls', (select relrowsecurity from pg_class where oid = '{TABLE}'::regclass),
    'policies', (select count(*) from pg_policy where polrelid = '{TABLE}'::regclass),
    'triggers', (
        select json_agg(tgname order by tgname) from pg_trigger where tgrelid = '{TABLE}'::regclass and not tgisinternal
    ),
    'constraints', (
        select json_object_agg(conname, pg_get_constraintdef(oid))
        from pg_constraint where conrelid = '{TABLE}'::regclass
    ),
    'function', (
        select json_agg(json_build_array(proconfig, prosrc, proacl::text[]))
        from pg_proc where proname = 'doki_set_updated_at'
    ),
    'comment', obj_description('{TABLE}'::regclass, 'pg_class')
)
"""


def test_the_migration_runs_again_over_rows_changing_neither_them_nor_the_table(db: Postgres) -> None:
    user = _new_user(db)
    db.sql(_put(user, "google", "ct-1", {"email": "ada@example.com"}), role="service_role")
    row, catalog = _row(db, user, "google"), db.value(_CATALOG)

    db.run_files(*SUPABASE_MIGRATIONS, user="postgres")

    assert _row(db, user, "google") == row
    assert db.value(_CATALOG) == catalog
    # One trigger (the second run dropped and remade it), row level security on, and no policy at all.
    assert (catalog["triggers"], catalog["rls"], catalog["policies"]) == (["doki_credentials_set_updated_at"], True, 0)


def test_the_fake_postgrest_declares_the_real_tables_columns_key_defaults_and_comment(db: Postgres) -> None:
    columns = db.value(
        "select json_agg(json_build_object('name', column_name, 'type', data_type, 'not_null', is_nullable = 'NO', "
        "'default', column_default) order by ordinal_position) "
        "from information_schema.columns where table_schema = 'public' and table_name = 'doki_credentials'"
    )
    primary_key = db.value(
        "select json_agg(a.attname order by array_position(i.indkey::int2[], a.attnum)) "
        "from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey) "
        f"where i.indrelid = '{TABLE}'::regclass and i.indisprimary"
    )
    spec = CREDENTIALS_TABLE

    assert [column["name"] for column in columns] == list(spec.columns)
    assert {column["name"] for column in columns if column["not_null"]} == spec.not_null
    assert {column["name"]: column["type"] for column in columns} == {
        name: spec.types.get(name, "text") for name in spec.columns
    }
    assert {column["name"] for column in columns if column["type"] == "uuid"} == spec.uuid_columns
    defaults = {column["name"]: column["default"] for column in columns if column["default"] is not None}
    assert defaults == dict(spec.sql_defaults)
    assert set(spec.defaults) == set(defaults)  # the fake fills in exactly the columns Postgres does
    assert tuple(primary_key) == spec.primary_key
    assert db.value(f"select to_json(obj_description('{TABLE}'::regclass, 'pg_class'))") == spec.comment


# The harness itself: one psql session per role serves the whole module, so a session left in a bad state by one
# test must not reach the next.


def test_a_statement_ending_in_a_comment_runs_and_an_error_before_its_comment_is_still_seen(db: Postgres) -> None:
    assert db.scratch("select 1 -- a comment, after which the harness's own ; must still count") == ["1"]
    with pytest.raises(SqlError) as refused:
        db.scratch("select 1 / 0; -- the statement's own ; then a comment: psql runs an empty query after")
    assert refused.value.sqlstate == "22012"
    assert db.scratch("select 2") == ["2"]


def test_a_transaction_that_times_out_is_ended_with_its_locks_and_the_next_gets_a_new_session(
    db: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    db.scratch("select 1")
    stuck = db.sessions["postgres"]
    backend = stuck.backend_pid
    with monkeypatch.context() as impatient:
        impatient.setattr(Session, "TIMEOUT", 1.0)
        with pytest.raises(AssertionError, match="answered nothing"):
            db.scratch(f"lock table {TABLE} in access exclusive mode", "select pg_sleep(60)")

    assert db.sessions.get("postgres") is None
    assert stuck.process.returncode is not None
    # Its server process is gone, and with it the transaction and its lock: the table answers at once (it would wait
    # the minute out otherwise, and this test's 30 s with it).
    assert db.sql(f"select count(*) from pg_stat_activity where pid = {backend}") == ["0"]
    assert db.sql(f"select count(*) >= 0 from {TABLE}", role="service_role") == ["t"]
    assert db.sessions["postgres"] is not stuck


def test_closing_a_session_whose_statement_still_runs_kills_it_after_the_wait(
    db: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Session, "CLOSE_TIMEOUT", 1.0)
    session = Session(db.container, "postgres")
    backend = session.backend_pid
    assert session.process.stdin is not None
    session.process.stdin.write(b"select pg_sleep(60);\n")
    session.process.stdin.flush()

    started = time.monotonic()
    session.close()

    assert time.monotonic() - started < 10  # not the minute psql would have taken to quit
    assert session.process.returncode is not None
    assert db.sql(f"select count(*) from pg_stat_activity where pid = {backend}") == ["0"]
