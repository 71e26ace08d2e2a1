-- What a Supabase project's database holds before our migrations run, on a bare PostgreSQL whose bootstrap
-- superuser is supabase_admin (as Supabase's own is). Only what migrations/supabase/*.sql and its tests touch, each
-- piece in the final state Supabase's setup leaves it in, with the file that makes it there:
--   supabase/postgres   migrations/db/init-scripts/00000000000000-initial-schema.sql   (initial-schema)
--   supabase/postgres   migrations/db/init-scripts/00000000000001-auth-schema.sql      (auth-schema)
--   supabase/postgres   migrations/db/migrations/*.sql, migrations/db/migrate.sh      (named below)
--   supabase/auth       migrations/20220224000811_update_auth_functions.up.sql          (auth.uid() today)
-- Run once per database, as supabase_admin.

-- The role migrations run as: the dashboard's SQL editor and `supabase db push` log in as postgres, which Supabase
-- demotes from superuser but leaves able to bypass RLS (10000000000000_demote-postgres.sql), and which owns the
-- database, hence (PostgreSQL 15 and later) the public schema (migrate.sh: `alter database postgres owner to
-- postgres`).
create role postgres login nosuperuser createdb createrole replication bypassrls;
alter database postgres owner to postgres;

-- The API roles the keys and tokens map to (initial-schema), made inheriting later
-- (20230529180330_alter_api_roles_for_inherit.sql); service_role alone bypasses RLS.
create role anon nologin inherit;
create role authenticated nologin inherit;
create role service_role nologin inherit bypassrls;

-- PostgREST logs in as authenticator and becomes the request's role with `set local role` (initial-schema grants
-- it the three; PostgREST: https://docs.postgrest.org/en/v12/references/auth.html, "User Impersonation").
create role authenticator login noinherit;
grant anon, authenticated, service_role to authenticator;
-- So postgres can act as them too (20230201083204_grant_auth_roles_to_postgres.sql).
grant anon, authenticated, service_role to postgres;

-- Every table postgres makes in public is granted to the API roles unless a migration says otherwise
-- (initial-schema, which ran as postgres, so its `alter default privileges` are postgres's own).
grant usage on schema public to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on sequences to postgres, anon, authenticated, service_role;

-- Supabase Auth's schema, owned by its own role (auth-schema; 20211115181400_update-auth-permissions.sql grants
-- postgres its tables, which a foreign key to auth.users needs). auth.users has many more columns; ours reference
-- only its primary key, `id uuid`.
create role supabase_auth_admin login noinherit createrole noreplication;
create schema auth authorization supabase_admin;
grant usage on schema auth to anon, authenticated, service_role, postgres;
grant all privileges on schema auth to supabase_auth_admin;
create table auth.users (id uuid not null, constraint users_pkey primary key (id));
alter table auth.users owner to supabase_auth_admin;
grant all on table auth.users to postgres;

-- The signed-in user's id, from the claims PostgREST sets for the request (supabase/auth's definition; PostgREST
-- sets `request.jwt.claims` per transaction: https://docs.postgrest.org/en/v12/references/transactions.html).
create function auth.uid() returns uuid
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;
alter function auth.uid() owner to supabase_auth_admin;
