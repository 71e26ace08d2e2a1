"""The production credential store: a Supabase Postgres table, spoken to over PostgREST (`/rest/v1/<table>`).

It talks plain httpx rather than the `postgrest` client because error handling needs the HTTP status, which
`postgrest.APIError` drops (a gateway 401 and a database error look alike there), and because that client
retries reads with multi-second sleeps, which would stall a request thread; callers see failures at once.

The key is the project's secret key (`sb_secret_...`) or the legacy `service_role` JWT: both bypass row
level security, which is how this table stays unreadable to browsers holding the publishable/anon key.
The key goes in the `apikey` header, and also as `Authorization: Bearer` only when it is a JWT: PostgREST
verifies any bearer token as a JWT, and the new secret keys are not JWTs. No error message includes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import httpx
from pydantic import SecretStr

from doki.storage.base import StoredCredential, StoreError, StoreUnavailableError

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_PAGE_SIZE = 500
_SELECT = "user_id,provider,ciphertext,metadata,updated_at"
_JWT = re.compile(r"^eyJ[\w-]*\.[\w-]+\.[\w-]+$")
_MIGRATION = "migrations/supabase/0001_doki_credentials.sql"


def looks_like_jwt(key: str) -> bool:
    """Whether `key` is a JWT (three base64url parts, a JSON header), as legacy Supabase keys are."""
    return bool(_JWT.match(key))


class PostgrestTable:
    """One table of a Supabase project over PostgREST, with the service key: requests, and their failures as store
    errors that name the fix. `missing_table_fix` says what to do when the table does not exist."""

    def __init__(
        self,
        url: str,
        secret_key: SecretStr | str,
        table: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        missing_table_fix: str,
    ) -> None:
        key = secret_key.get_secret_value() if isinstance(secret_key, SecretStr) else secret_key
        headers = {"apikey": key, "Accept": "application/json"}
        if looks_like_jwt(key):
            headers["Authorization"] = f"Bearer {key}"
        self.url = url.rstrip("/")
        self.table = table
        self.timeout = timeout
        self._missing_table_fix = missing_table_fix
        self._client = httpx.Client(
            base_url=f"{self.url}/rest/v1/", headers=headers, timeout=timeout, follow_redirects=False
        )

    def request(
        self,
        method: str,
        *,
        params: Mapping[str, str],
        json: dict[str, Any] | None = None,
        prefer: str | None = None,
    ) -> list[dict[str, Any]]:
        """The rows PostgREST answers (none for an empty body); a StoreError (StoreUnavailableError when a retry may
        succeed) for any failure."""
        headers = {"Prefer": prefer} if prefer else {}
        try:
            response = self._client.request(method, self.table, params=params, json=json, headers=headers)
        except httpx.TimeoutException as exc:
            raise StoreUnavailableError(
                f"Supabase at {self.url} did not answer within {self.timeout:g}s: check the project is up "
                "(paused projects do not answer) at https://supabase.com/dashboard, and retry"
            ) from exc
        except httpx.TransportError as exc:
            raise StoreUnavailableError(
                f"cannot reach Supabase at {self.url} ({type(exc).__name__}: {exc}): check SUPABASE_URL "
                "and that this host can reach it"
            ) from exc
        if response.is_success:
            body = response.json() if response.content else []
            if not isinstance(body, list):
                raise StoreError(f"Supabase answered {method} on {self.table!r} with a non-list JSON body")
            return body
        raise self._error(response)

    def close(self) -> None:
        self._client.close()

    def _error(self, response: httpx.Response) -> StoreError:
        error = _error_body(response)
        what = f"Supabase answered {response.status_code}"
        if error.get("code"):
            what += f" {error['code']}"
        if error.get("message"):
            what += f" ({error['message']})"
        if response.status_code >= 500 or response.status_code == httpx.codes.TOO_MANY_REQUESTS:
            return StoreUnavailableError(f"{what}: Supabase is failing or overloaded at {self.url}; retry later")
        if response.status_code in (httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN):
            return StoreError(
                f"{what}: SUPABASE_SECRET_KEY was refused; set it to the project's secret key "
                "(sb_secret_...) or legacy service_role key, from Project Settings > API Keys"
            )
        if error.get("code") == "PGRST205":
            return StoreError(f"{what}: the table {self.table!r} does not exist; {self._missing_table_fix}")
        # Leave `details` out: Postgres may echo a failing row there.
        hint = f"; hint: {error['hint']}" if error.get("hint") else ""
        return StoreError(f"{what} on {self.table!r}{hint}")


class SupabaseCredentialStore:
    """A `CredentialStore` in the Supabase table `table`, read and written with the service key."""

    def __init__(
        self,
        url: str,
        secret_key: SecretStr | str,
        table: str = "doki_credentials",
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        self._table = PostgrestTable(
            url,
            secret_key,
            table,
            timeout=timeout,
            missing_table_fix=f"apply {_MIGRATION} in the SQL editor (or `supabase db push`), or set "
            "CREDENTIALS_TABLE to the right name",
        )
        self.url = self._table.url
        self.table = table
        self.timeout = timeout
        self.page_size = page_size

    def __repr__(self) -> str:
        return f"SupabaseCredentialStore(url={self.url!r}, table={self.table!r})"

    def put(
        self, user_id: str, provider: str, ciphertext: str, metadata: dict[str, str] | None = None
    ) -> StoredCredential:
        rows = self._insert(user_id, provider, ciphertext, metadata, on_conflict="merge-duplicates")
        if len(rows) != 1:
            raise StoreError(f"Supabase upsert into {self.table!r} returned {len(rows)} rows instead of 1")
        return _credential(rows[0])

    def insert_if_absent(
        self, user_id: str, provider: str, ciphertext: str, metadata: dict[str, str] | None = None
    ) -> StoredCredential | None:
        # ON CONFLICT DO NOTHING: a row already there is left as it is, and RETURNING gives nothing for it
        # (https://postgrest.org/en/v12/references/api/tables_views.html#on-conflict).
        rows = self._insert(user_id, provider, ciphertext, metadata, on_conflict="ignore-duplicates")
        if len(rows) > 1:
            raise StoreError(f"Supabase insert into {self.table!r} returned {len(rows)} rows instead of 0 or 1")
        return _credential(rows[0]) if rows else None

    def _insert(
        self, user_id: str, provider: str, ciphertext: str, metadata: dict[str, str] | None, *, on_conflict: str
    ) -> list[dict[str, Any]]:
        """One row POSTed on (user_id, provider); `on_conflict` is PostgREST's resolution for a row already there."""
        return self._table.request(
            "POST",
            params={"on_conflict": "user_id,provider", "select": _SELECT},
            json={"user_id": user_id, "provider": provider, "ciphertext": ciphertext, "metadata": metadata or {}},
            prefer=f"resolution={on_conflict},return=representation",
        )

    def get(self, user_id: str, provider: str) -> StoredCredential | None:
        rows = self._table.request(
            "GET",
            params={
                "select": _SELECT,
                "user_id": f"eq.{user_id}",
                "provider": f"eq.{provider}",
                "limit": "1",
            },
        )
        return _credential(rows[0]) if rows else None

    def list_for_user(self, user_id: str) -> list[StoredCredential]:
        rows = self._table.request(
            "GET", params={"select": _SELECT, "user_id": f"eq.{user_id}", "order": "provider.asc"}
        )
        return [_credential(row) for row in rows]

    def delete(self, user_id: str, provider: str, *, expected_ciphertext: str | None = None) -> bool:
        params = {"select": "provider", "user_id": f"eq.{user_id}", "provider": f"eq.{provider}"}
        if expected_ciphertext is not None:
            # As in replace_ciphertext: the filter makes it a compare-and-delete inside one DELETE statement.
            params["ciphertext"] = f"eq.{expected_ciphertext}"
        rows = self._table.request("DELETE", params=params, prefer="return=representation")
        return bool(rows)

    def iter_all(self) -> Iterator[StoredCredential]:
        # Keyset pagination on the primary key: rows rewritten between pages keep their place, so none is
        # skipped or repeated (offset paging would shift when a row is deleted meanwhile).
        after: tuple[str, str] | None = None
        while True:
            params = {"select": _SELECT, "order": "user_id.asc,provider.asc", "limit": str(self.page_size)}
            if after is not None:
                user, provider = (_quote(v) for v in after)
                params["or"] = f"(user_id.gt.{user},and(user_id.eq.{user},provider.gt.{provider}))"
            rows = self._table.request("GET", params=params)
            yield from (_credential(row) for row in rows)
            if len(rows) < self.page_size:
                return
            after = (rows[-1]["user_id"], rows[-1]["provider"])

    def replace_ciphertext(
        self,
        user_id: str,
        provider: str,
        expected_ciphertext: str,
        new_ciphertext: str,
        metadata: dict[str, str] | None = None,
    ) -> bool:
        changes: dict[str, Any] = {"ciphertext": new_ciphertext}
        if metadata is not None:
            changes["metadata"] = metadata
        # The ciphertext filter makes the PATCH a compare-and-swap inside one UPDATE statement.
        rows = self._table.request(
            "PATCH",
            params={
                "select": "provider",
                "user_id": f"eq.{user_id}",
                "provider": f"eq.{provider}",
                "ciphertext": f"eq.{expected_ciphertext}",
            },
            json=changes,
            prefer="return=representation",
        )
        return bool(rows)

    def close(self) -> None:
        self._table.close()


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _quote(value: str) -> str:
    # Inside `or=(...)`, PostgREST reads commas, dots and parentheses as syntax unless the value is quoted.
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _credential(row: dict[str, Any]) -> StoredCredential:
    try:
        return StoredCredential(
            user_id=str(row["user_id"]),
            provider=str(row["provider"]),
            ciphertext=str(row["ciphertext"]),
            metadata={str(k): str(v) for k, v in (row.get("metadata") or {}).items()},
            updated_at=datetime.fromisoformat(row["updated_at"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StoreError(f"Supabase returned a credential row this code cannot read ({exc!r})") from exc
