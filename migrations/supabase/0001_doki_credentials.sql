-- Doki's credential store: one row per (user, connector provider), holding the connector credential
-- encrypted by the backend (Fernet, bound to the user id). The database never sees plaintext.
--
-- Only the backend reads this table, with the project's secret key (service_role), which bypasses row level
-- security. RLS is on with no policies, and anon/authenticated have no grants, so a browser holding the
-- publishable key cannot read or write a single row, even through a future policy mistake elsewhere.
--
-- Apply with `supabase db push`, or paste into the dashboard's SQL editor. Safe to run twice.

create table if not exists public.doki_credentials (
    user_id    uuid        not null references auth.users (id) on delete cascade,
    provider   text        not null check (provider <> ''),
    ciphertext text        not null check (ciphertext <> ''),
    metadata   jsonb       not null default '{}'::jsonb check (jsonb_typeof(metadata) = 'object'),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (user_id, provider)
);

comment on table public.doki_credentials is
    'Doki connector credentials, encrypted by the backend; read only with the service role.';

alter table public.doki_credentials enable row level security;

-- Supabase grants new public tables to anon and authenticated by default; RLS already hides the rows, and
-- revoking keeps them hidden should anyone add a permissive policy later.
revoke all on table public.doki_credentials from anon, authenticated;
grant select, insert, update, delete on table public.doki_credentials to service_role;

-- An empty search_path keeps the function from resolving names through a schema a caller controls.
create or replace function public.doki_set_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    new.updated_at := now();
    return new;
end;
$$;

-- BEFORE UPDATE also fires for PostgREST upserts (INSERT ... ON CONFLICT DO UPDATE).
drop trigger if exists doki_credentials_set_updated_at on public.doki_credentials;
create trigger doki_credentials_set_updated_at
    before update on public.doki_credentials
    for each row execute function public.doki_set_updated_at();
