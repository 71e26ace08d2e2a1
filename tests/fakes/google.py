"""A local stand-in for Google's OAuth, Drive and Sheets HTTP APIs, on loopback over real HTTP.

Faithful where Doki's code could go wrong: the authorization endpoint checks the client, the exact redirect URI
and the PKCE challenge method, then redirects with a code (or `error=access_denied`), granting all or only some
of the scopes as the test chose; the token endpoint verifies the PKCE verifier against the challenge, accepts each
code once, refreshes, and answers Google's OAuth error JSON (`invalid_grant`, `invalid_client`, ...); tokens can be
revoked or expired behind the client's back. Drive's files.list pages (`pageToken`/`nextPageToken`), filters
(`q`), orders (`orderBy`) and answers only the fields its `fields` mask names (Drive's defaults without one, 400 for
an unknown one: see `_select`); Sheets serves `spreadsheets.get` (the whole resource, or only what its `fields`
mask names, 400 for an unknown field, as Sheets spells and answers it), `values.get` and `values:batchGet` with the
value render options. API errors use Google's `{"error": {"code", "message", "status"}}`. `fail_next` injects 429/5xx.

ID tokens are RS256 JWTs signed by this fake's own key with Google's issuer; `FakeSupabaseAuth.trust_google`
makes the fake Supabase Auth accept them, as Supabase accepts Google's.

    with FakeGoogle() as google:
        ada = google.add_account("ada@example.com")
        google.add_spreadsheet(ada, "Budget", {"Sheet1": [["name", "amount"], ["rent", 900]]})
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.fakes.supabase_auth import sign
from tests.helpers import secret

CLIENT_ID = "1234-fake.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-fake-client-secret"
ISSUER = "https://accounts.google.com"
SPREADSHEET = "application/vnd.google-apps.spreadsheet"
SCOPE_EMAIL = "https://www.googleapis.com/auth/userinfo.email"
SCOPE_PROFILE = "https://www.googleapis.com/auth/userinfo.profile"
SCOPE_DRIVE_READONLY = "https://www.googleapis.com/auth/drive.readonly"
SCOPE_SHEETS_READONLY = "https://www.googleapis.com/auth/spreadsheets.readonly"
_LONG_SCOPES = {"email": SCOPE_EMAIL, "profile": SCOPE_PROFILE}
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
CODE_LIFETIME = 600
ACCESS_TOKEN_LIFETIME = 3599


@dataclass(frozen=True)
class Account:
    sub: str
    email: str
    name: str


@dataclass
class Spreadsheet:
    id: str
    owner: str  # account sub
    name: str
    tabs: list[tuple[str, list[list[Any]]]]
    modified_time: str
    shared_with: set[str] = field(default_factory=set)
    mime_type: str = SPREADSHEET
    trashed: bool = False


@dataclass
class Consent:
    """What the user does on the consent screen for the next authorizations."""

    account: Account | None = None  # None: the first account
    scopes: list[str] | None = None  # None: every scope asked for
    deny: bool = False
    refresh_token: bool = True


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str | None
    method: str | None
    account: Account
    scopes: list[str]
    nonce: str | None
    issued_at: float
    refresh_token: bool
    used: bool = False


@dataclass
class _Grant:
    account: Account
    scopes: list[str]
    nonce: str | None
    refresh_token: str | None
    revoked: bool = False


@dataclass
class _AccessToken:
    grant: _Grant
    expires_at: float
    expired: bool = False


@dataclass
class _Fault:
    times: int
    status: int
    path: str | None
    retry_after: str | None
    reason: str | None = None
    body: bytes | None = None


class Held:
    """A request held by `FakeGoogle.hold_next`: Google has it (`arrived`), its answer waits for `release()`."""

    def __init__(self, path: str, grant_type: str | None) -> None:
        self.path = path
        self.grant_type = grant_type
        self.arrived = threading.Event()
        self._released = threading.Event()

    def matches(self, path: str, params: Mapping[str, list[str]]) -> bool:
        return path.startswith(self.path) and (
            self.grant_type is None or params.get("grant_type", [""])[-1] == self.grant_type
        )

    def wait_arrived(self, timeout: float = 10.0) -> None:
        assert self.arrived.wait(timeout), f"no request to {self.path} reached the fake"

    def release(self) -> None:
        self._released.set()

    def _hold(self) -> None:
        self.arrived.set()
        self._released.wait(30)


class FakeGoogle:
    """Google's OAuth endpoints, Drive v3 files.list and Sheets v4, on 127.0.0.1 (ephemeral port)."""

    def __init__(
        self,
        *,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id
        self.client_secret = secret("the Google client secret", client_secret)
        self.clock = clock
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(8)
        self.redirect_uris: set[str] = set()
        self.accounts: list[Account] = []
        self.spreadsheets: dict[str, Spreadsheet] = {}
        self.consent = Consent()
        self.drive_page_size_cap = 1000  # Drive's own maximum; lower it to make few files span pages
        self.nonce_override: str | None = None  # put this nonce in ID tokens instead of the one asked for
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []  # (method, path, query + form)
        self.authorize_requests: list[dict[str, str]] = []
        self.revoked_tokens: list[str] = []
        self._codes: dict[str, _Code] = {}
        self._refresh_tokens: dict[str, _Grant] = {}
        self._access_tokens: dict[str, _AccessToken] = {}
        self._faults: list[_Fault] = []
        self._held: list[Held] = []
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> FakeGoogle:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.01,), name="fake-google", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeGoogle:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self, redirect_uri: str) -> dict[str, Any]:
        """Settings that point Doki at this fake, with `redirect_uri` registered for the OAuth client."""
        self.redirect_uris.add(redirect_uri)
        return {
            "google_client_id": self.client_id,
            "google_client_secret": self.client_secret,
            "google_redirect_uri": redirect_uri,
            "google_auth_url": f"{self.url}/o/oauth2/v2/auth",
            "google_token_url": f"{self.url}/token",
            "google_revoke_url": f"{self.url}/revoke",
            "google_drive_api_url": f"{self.url}/drive/v3",
            "google_sheets_api_url": f"{self.url}/v4",
        }

    # --- the world ------------------------------------------------------------------------------------------

    def add_account(self, email: str, name: str = "") -> Account:
        account = Account(sub=str(100000000000000000000 + len(self.accounts) * 7919), email=email, name=name or email)
        with self._lock:
            self.accounts.append(account)
        return account

    def add_spreadsheet(
        self,
        owner: Account,
        name: str,
        tabs: Mapping[str, list[list[Any]]] | None = None,
        *,
        modified_time: str = "2026-01-01T00:00:00.000Z",
        shared_with: tuple[Account, ...] = (),
        mime_type: str = SPREADSHEET,
        trashed: bool = False,
    ) -> str:
        """A file in `owner`'s Drive. Cells are what `UNFORMATTED_VALUE` with `FORMATTED_STRING` dates returns:
        numbers, booleans, strings (dates already as the sheet shows them)."""
        spreadsheet_id = "1" + secrets.token_urlsafe(30).replace("-", "x").replace("_", "y")
        with self._lock:
            self.spreadsheets[spreadsheet_id] = Spreadsheet(
                id=spreadsheet_id,
                owner=owner.sub,
                name=name,
                tabs=list((tabs or {"Sheet1": []}).items()),
                modified_time=modified_time,
                shared_with={a.sub for a in shared_with},
                mime_type=mime_type,
                trashed=trashed,
            )
        return spreadsheet_id

    def will_consent(
        self,
        account: Account | None = None,
        *,
        scopes: list[str] | None = None,
        deny: bool = False,
        refresh_token: bool = True,
    ) -> None:
        self.consent = Consent(account=account, scopes=scopes, deny=deny, refresh_token=refresh_token)

    def fail_next(
        self,
        times: int,
        status: int = 503,
        *,
        path: str | None = None,
        retry_after: str | None = None,
        reason: str | None = None,
        body: bytes | None = None,
    ) -> None:
        """The next `times` requests (to paths starting with `path`, when given) get `status` in Google's format,
        with `reason` in its `errors` list (as Drive names rate limits: `userRateLimitExceeded`), or `body` as
        it is (an HTML page, say)."""
        with self._lock:
            self._faults.append(_Fault(times, status, path, retry_after, reason, body))

    def hold_next(self, path: str, *, grant_type: str | None = None) -> Held:
        """The next request to `path` (with that `grant_type`, when given) is answered only once released."""
        held = Held(path, grant_type)
        with self._lock:
            self._held.append(held)
        return held

    def expire_access_tokens(self) -> None:
        """Every access token issued so far stops working (as after an hour)."""
        with self._lock:
            for token in self._access_tokens.values():
                token.expired = True

    def revoke_access(self, account: Account) -> None:
        """The user removes Doki at myaccount.google.com: every grant of theirs dies."""
        with self._lock:
            for grant in [*self._refresh_tokens.values(), *(t.grant for t in self._access_tokens.values())]:
                if grant.account == account:
                    grant.revoked = True

    def refresh_tokens_of(self, account: Account) -> list[str]:
        with self._lock:
            return [t for t, g in self._refresh_tokens.items() if g.account == account and not g.revoked]

    def calls(self, path_prefix: str) -> int:
        with self._lock:
            return sum(1 for _, path, _ in self.requests if path.startswith(path_prefix))

    def authorize(self, authorization_url: str) -> str:
        """What the browser does with the authorization URL: the Location Google redirects it to."""
        response = httpx.get(authorization_url, follow_redirects=False)
        assert response.status_code == 302, response.text
        return response.headers["location"]

    def id_token(
        self,
        account: Account,
        *,
        nonce: str | None,
        audience: str | None = None,
        issuer: str = ISSUER,
        lifetime: int = 3600,
    ) -> str:
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": issuer,
            "azp": audience or self.client_id,
            "aud": audience or self.client_id,
            "sub": account.sub,
            "email": account.email,
            "email_verified": True,
            "name": account.name,
            "iat": now,
            "exp": now + lifetime,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        header = {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        signing_input = f"{_b64(_json(header))}.{_b64(_json(claims))}".encode()
        return secret("a Google ID token", f"{signing_input.decode()}.{_b64(sign(signing_input, 'RS256', self.key))}")

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}

    # --- the server -----------------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(handler.path)
        path = unquote(split.path)
        params = parse_qs(split.query, keep_blank_values=True)
        if method == "POST":
            length = int(handler.headers.get("Content-Length") or 0)
            body = handler.rfile.read(length).decode()
            for name, values in parse_qs(body, keep_blank_values=True).items():
                params.setdefault(name, []).extend(values)
        with self._lock:
            self.requests.append((method, path, params))
            fault = self._take_fault(path)
        if fault is not None:
            status, body, _ = _api_error(fault.status, "Backend Error", fault.reason)
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            if fault.body is not None:
                body, headers = fault.body, {**headers, "Content-Type": "text/html; charset=UTF-8"}
            return self._send(handler, status, body, headers)
        one = {name: values[-1] for name, values in params.items()}
        bearer = handler.headers.get("Authorization", "")
        with self._lock:
            if method == "GET" and path == "/o/oauth2/v2/auth":
                result = self._authorize(one)
            elif method == "POST" and path == "/token":
                result = self._token(one)
            elif method == "POST" and path == "/revoke":
                result = self._revoke(one)
            elif method == "GET" and path == "/drive/v3/files":
                result = self._files_list(bearer, one)
            elif method == "GET" and split.path.startswith("/v4/spreadsheets/"):
                result = self._sheets(bearer, split.path[len("/v4/spreadsheets/") :], params)
            else:
                result = _api_error(404, "Not Found")
            held = next((h for h in self._held if h.matches(path, params)), None)
            if held is not None:
                self._held.remove(held)
        if held is not None:
            held._hold()  # the answer is ready, and in flight until released
        self._send(handler, *result)

    def _take_fault(self, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.times > 0 and (fault.path is None or path.startswith(fault.path)):
                fault.times -= 1
                return fault
        return None

    # OAuth

    def _authorize(self, p: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        self.authorize_requests.append(dict(p))
        if p.get("client_id") != self.client_id:
            return 401, b"Error 401: invalid_client", {"Content-Type": "text/html"}
        redirect_uri = p.get("redirect_uri", "")
        if redirect_uri not in self.redirect_uris:
            return 400, b"Error 400: redirect_uri_mismatch", {"Content-Type": "text/html"}
        if p.get("response_type") != "code" or (p.get("code_challenge") and p.get("code_challenge_method") != "S256"):
            return 400, b"Error 400: invalid_request", {"Content-Type": "text/html"}
        state = p.get("state")
        consent = self.consent
        if consent.deny:
            return _redirect(redirect_uri, {"error": "access_denied", "state": state})
        account = consent.account or self.accounts[0]
        asked = [_LONG_SCOPES.get(s, s) for s in p.get("scope", "").split()]
        granted = asked if consent.scopes is None else [s for s in asked if s in consent.scopes]
        code = secret("a Google authorization code", "4/0A" + secrets.token_urlsafe(24))
        self._codes[code] = _Code(
            client_id=self.client_id,
            redirect_uri=redirect_uri,
            challenge=p.get("code_challenge"),
            method=p.get("code_challenge_method"),
            account=account,
            scopes=granted,
            nonce=self.nonce_override or p.get("nonce"),
            issued_at=self.clock(),
            refresh_token=consent.refresh_token,
        )
        return _redirect(redirect_uri, {"state": state, "code": code, "scope": " ".join(granted)})

    def _token(self, p: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        if p.get("client_id") != self.client_id or p.get("client_secret") != self.client_secret:
            return _oauth_error(401, "invalid_client", "Unauthorized")
        grant_type = p.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange(p)
        if grant_type == "refresh_token":
            grant = self._refresh_tokens.get(p.get("refresh_token", ""))
            if grant is None or grant.revoked:
                return _oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
            return 200, _json(self._issue(grant, with_refresh_token=False)), {}
        return _oauth_error(400, "unsupported_grant_type", "Invalid grant_type: " + str(grant_type))

    def _exchange(self, p: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        code = self._codes.get(p.get("code", ""))
        if code is None or code.used or self.clock() - code.issued_at > CODE_LIFETIME:
            return _oauth_error(400, "invalid_grant", "Bad Request")
        if p.get("redirect_uri") != code.redirect_uri:
            return _oauth_error(400, "redirect_uri_mismatch", "Bad Request")
        if code.challenge is not None:
            verifier = p.get("code_verifier")
            if not verifier:
                return _oauth_error(400, "invalid_grant", "Missing code verifier.")
            if _b64(hashlib.sha256(verifier.encode()).digest()) != code.challenge:
                return _oauth_error(400, "invalid_grant", "Invalid code verifier.")
        code.used = True
        refresh_token = (
            secret("a Google refresh token", "1//0g" + secrets.token_urlsafe(40)) if code.refresh_token else None
        )
        grant = _Grant(account=code.account, scopes=code.scopes, nonce=code.nonce, refresh_token=refresh_token)
        if refresh_token:
            self._refresh_tokens[refresh_token] = grant
        return 200, _json(self._issue(grant, with_refresh_token=True)), {}

    def _issue(self, grant: _Grant, *, with_refresh_token: bool) -> dict[str, Any]:
        access_token = secret("a Google access token", "ya29.a0" + secrets.token_urlsafe(40))
        self._access_tokens[access_token] = _AccessToken(grant, self.clock() + ACCESS_TOKEN_LIFETIME)
        body: dict[str, Any] = {
            "access_token": access_token,
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "scope": " ".join(grant.scopes),
            "token_type": "Bearer",
        }
        if "openid" in grant.scopes:
            body["id_token"] = self.id_token(grant.account, nonce=grant.nonce)
        if with_refresh_token and grant.refresh_token:
            body["refresh_token"] = grant.refresh_token
        return body

    def _revoke(self, p: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        token = p.get("token", "")
        grant = self._refresh_tokens.get(token)
        if grant is None and token in self._access_tokens:
            grant = self._access_tokens[token].grant
        if grant is None or grant.revoked:
            return _oauth_error(400, "invalid_token", "Token expired or revoked")
        grant.revoked = True
        self.revoked_tokens.append(token)
        return 200, b"{}", {}

    def _caller(self, bearer: str, scopes: tuple[str, ...]) -> Account | tuple[int, bytes, dict[str, str]]:
        token = self._access_tokens.get(bearer.removeprefix("Bearer "))
        if token is None or token.expired or token.grant.revoked or token.expires_at <= self.clock():
            return _api_error(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
                "other valid authentication credential.",
            )
        if not any(s in token.grant.scopes for s in scopes):
            return _api_error(403, "Request had insufficient authentication scopes.")
        return token.grant.account

    # Drive

    def _files_list(self, bearer: str, p: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        caller = self._caller(bearer, (SCOPE_DRIVE_READONLY,))
        if not isinstance(caller, Account):
            return caller
        files = [s for s in self.spreadsheets.values() if caller.sub == s.owner or caller.sub in s.shared_with]
        for term in [t.strip() for t in p.get("q", "").split(" and ") if t.strip()]:
            if term.startswith("mimeType='") and term.endswith("'"):
                files = [f for f in files if f.mime_type == term[len("mimeType='") : -1]]
            elif term.replace(" ", "") == "trashed=false":
                files = [f for f in files if not f.trashed]
            else:
                return _api_error(400, f"Invalid Value: q ({term})")
        order = p.get("orderBy", "")
        if order:
            name, _, direction = order.partition(" ")
            keys = {"modifiedTime": lambda f: f.modified_time, "name": lambda f: f.name}
            if name not in keys:
                return _api_error(400, f"Invalid Value: orderBy ({order})")
            files = sorted(files, key=keys[name], reverse=direction == "desc")
        size = min(int(p.get("pageSize", "100")), 1000, self.drive_page_size_cap)
        start = 0
        if p.get("pageToken"):
            try:
                start = int(base64.urlsafe_b64decode(p["pageToken"]).decode().split(":")[0])
            except ValueError:
                return _api_error(400, "Invalid Value: pageToken")
        page = files[start : start + size]
        body: dict[str, Any] = {
            "kind": "drive#fileList",
            "incompleteSearch": False,
            "files": [
                {
                    "kind": "drive#file",
                    "id": f.id,
                    "name": f.name,
                    "mimeType": f.mime_type,
                    "modifiedTime": f.modified_time,
                    "webViewLink": f"https://docs.google.com/spreadsheets/d/{f.id}/edit?usp=drivesdk",
                    "trashed": f.trashed,
                }
                for f in page
            ],
        }
        if start + size < len(files):
            body["nextPageToken"] = base64.urlsafe_b64encode(f"{start + size}:{secrets.token_hex(4)}".encode()).decode()
        try:
            mask = parse_fields(p["fields"]) if "fields" in p else DRIVE_FILES_LIST_DEFAULT
            return 200, _json(_select(body, mask, FILE_LIST_FIELDS)), {}
        except InvalidFieldSelection as invalid:
            return _invalid_fields(f"Invalid field selection {invalid.named}")

    # Sheets

    def _sheets(self, bearer: str, rest: str, params: dict[str, list[str]]) -> tuple[int, bytes, dict[str, str]]:
        caller = self._caller(bearer, (SCOPE_SHEETS_READONLY, SCOPE_DRIVE_READONLY))
        if not isinstance(caller, Account):
            return caller
        spreadsheet_id, _, tail = rest.partition("/")
        if spreadsheet_id.endswith(":batchGet"):  # never: batchGet sits under /values
            return _api_error(404, "Not Found")
        sheet = self.spreadsheets.get(spreadsheet_id)
        if sheet is None or sheet.mime_type != SPREADSHEET:
            return _api_error(404, "Requested entity was not found.")
        if caller.sub != sheet.owner and caller.sub not in sheet.shared_with:
            return _api_error(403, "The caller does not have permission")
        formatted = params.get("valueRenderOption", ["FORMATTED_VALUE"])[-1] != "UNFORMATTED_VALUE"
        if tail == "":
            resource = self._spreadsheet_resource(sheet)
            if "fields" not in params:
                return 200, _json(resource), {}
            try:
                mask = parse_fields(params["fields"][-1], SHEETS_SYNTAX)
                return 200, _json(_select(resource, mask, SPREADSHEET_FIELDS, SHEETS_SYNTAX)), {}
            except InvalidFieldSelection as invalid:
                return _invalid_sheets_fields(invalid)
        if tail == "values:batchGet":
            ranges = []
            for a1 in params.get("ranges", []):
                value_range = _value_range(sheet, a1, formatted)
                if value_range is None:
                    return _api_error(400, f"Unable to parse range: {a1}")
                ranges.append(value_range)
            return 200, _json({"spreadsheetId": sheet.id, "valueRanges": ranges}), {}
        if tail.startswith("values/"):
            a1 = unquote(tail[len("values/") :])
            value_range = _value_range(sheet, a1, formatted)
            if value_range is None:
                return _api_error(400, f"Unable to parse range: {a1}")
            return 200, _json(value_range), {}
        return _api_error(404, "Not Found")

    @staticmethod
    def _spreadsheet_resource(sheet: Spreadsheet) -> dict[str, Any]:
        return {
            "spreadsheetId": sheet.id,
            "properties": {"title": sheet.name, "locale": "en_US"},
            "sheets": [
                {
                    "properties": {
                        "sheetId": index * 1000,
                        "title": title,
                        "index": index,
                        "sheetType": "GRID",
                        "gridProperties": {
                            "rowCount": max(1000, len(rows)),
                            "columnCount": max(26, *(len(r) for r in rows)) if rows else 26,
                        },
                    }
                }
                for index, (title, rows) in enumerate(sheet.tabs)
            ],
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{sheet.id}/edit",
        }

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        try:
            handler.send_response(status)
            if "Content-Type" not in headers:
                handler.send_header("Content-Type", "application/json; charset=UTF-8")
            handler.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(body)
        except OSError:
            pass


# --- `fields`: Drive's and Sheets' partial responses -----------------------------------------------------------
#
# Drive, https://developers.google.com/drive/api/guides/fields-parameter:
# - "If you don't specify the fields parameter, the server returns a default set of fields specific to the method.
#   For example, the list method on the files resource only returns the kind, id, name, and mimeType fields."
#   (FileList's own fields stay: kind, incompleteSearch, nextPageToken when there is a next page, files.)
# - Format: a comma-separated list ('name, mimeType': spaces allowed), `a/b` for a field nested in `a`, `a(b,c)`
#   for sub-fields of each element of an array or object, `*` for every field; naming an object or array field
#   alone implies all of its fields.
# - "If the fields parameter has an error or is otherwise invalid, the server returns an HTTP 400 Bad Request
#   status code, along with an error message stating what's wrong with your fields selection", e.g.
#   "Invalid field selection canAddChildren".
# Field names: the FileList and File resources, https://developers.google.com/drive/api/reference/rest/v3/files/list
# and https://developers.google.com/drive/api/reference/rest/v3/files#File. The fake fills only some of File's
# (kind, id, name, mimeType, modifiedTime, webViewLink, trashed); Drive omits fields without a value, so do we.
#
# Sheets, https://developers.google.com/sheets/api/guides/field-masks ("Read with a field mask"):
# - spreadsheets.get without `fields` answers the whole Spreadsheet resource (grid data only with
#   includeGridData); with it, only "the components requested in the field mask".
# - "The format of the fields parameter is the same as the JSON encoding of a FieldMask. Stated briefly, multiple
#   different fields are comma-separated and subfields are dot-separated. Field names can be specified in camelCase
#   or separated_by_underscores. For convenience, multiple subfields from the same type can be listed within
#   parentheses": e.g. `sheets.properties(sheetId,title,sheetType,gridProperties)`. Google's APIs take `/` for `.`
#   and `*` for every field too (the system parameter common to them, summarised at
#   https://gist.github.com/coletdjnz/472856c0729958c2fb5371acd650bf4e).
# - Unlike Drive, spaces are not skipped: 'properties, sheets.properties' names a field ' sheets' and is refused
#   (github.com/ringo380/claude-google-sheets-mcp issue 2, from the live API).
# - An unknown field is a 400 INVALID_ARGUMENT, "Request contains an invalid argument.", whose BadRequest field
#   violation says "Error expanding 'fields' parameter. Cannot find matching fields for path
#   'sheets.sheetProperties'." (recorded from the live API: github.com/r-lib/gargle,
#   tests/testthat/fixtures/sheets-spreadsheets-get-bad-field-mask_400*).
# Field names: https://developers.google.com/sheets/api/reference/rest/v4/spreadsheets#resource:-spreadsheet and
# https://developers.google.com/sheets/api/reference/rest/v4/spreadsheets/sheets (Sheet, SheetProperties,
# GridProperties).

Mask = dict[str, "Mask | None"]  # field → its sub-selection; None: all of it


@dataclass(frozen=True)
class FieldSyntax:
    """How an API spells its `fields` mask (see above)."""

    nesting: str  # the characters that separate a field from one nested in it
    spaces: bool  # spaces around names and punctuation are skipped (Drive), or part of a name (Sheets)
    snake_case: bool  # a name may be given separated_by_underscores for its camelCase


DRIVE_SYNTAX = FieldSyntax(nesting="/", spaces=True, snake_case=False)
SHEETS_SYNTAX = FieldSyntax(nesting="./", spaces=False, snake_case=True)

FILE_FIELDS: tuple[str, ...] = (
    "kind",
    "driveId",
    "fileExtension",
    "copyRequiresWriterPermission",
    "md5Checksum",
    "contentHints",
    "writersCanShare",
    "viewedByMe",
    "mimeType",
    "exportLinks",
    "parents",
    "thumbnailLink",
    "iconLink",
    "shared",
    "lastModifyingUser",
    "owners",
    "headRevisionId",
    "sharingUser",
    "webViewLink",
    "webContentLink",
    "size",
    "viewersCanCopyContent",
    "permissions",
    "hasThumbnail",
    "spaces",
    "folderColorRgb",
    "id",
    "name",
    "description",
    "starred",
    "trashed",
    "explicitlyTrashed",
    "createdTime",
    "modifiedTime",
    "modifiedByMeTime",
    "viewedByMeTime",
    "sharedWithMeTime",
    "quotaBytesUsed",
    "version",
    "originalFilename",
    "ownedByMe",
    "fullFileExtension",
    "properties",
    "appProperties",
    "isAppAuthorized",
    "teamDriveId",
    "capabilities",
    "hasAugmentedPermissions",
    "trashingUser",
    "thumbnailVersion",
    "trashedTime",
    "modifiedByMe",
    "permissionIds",
    "imageMediaMetadata",
    "videoMediaMetadata",
    "shortcutDetails",
    "contentRestrictions",
    "resourceKey",
    "linkShareMetadata",
    "labelInfo",
    "sha1Checksum",
    "sha256Checksum",
    "inheritedPermissionsDisabled",
    "downloadRestrictions",
)
# FileList: its fields, and for `files` the File resource's (None: a field whose insides the fake does not check).
FILE_LIST_FIELDS: dict[str, Any] = {
    "kind": None,
    "nextPageToken": None,
    "incompleteSearch": None,
    "files": dict.fromkeys(FILE_FIELDS),
}
DRIVE_FILES_LIST_DEFAULT: Mask = {
    "kind": None,
    "incompleteSearch": None,
    "nextPageToken": None,
    "files": {"kind": None, "id": None, "name": None, "mimeType": None},
}
# The Spreadsheet resource, down to what the fake fills (None as for FileList).
GRID_PROPERTIES_FIELDS: dict[str, Any] = dict.fromkeys(
    (
        "rowCount",
        "columnCount",
        "frozenRowCount",
        "frozenColumnCount",
        "hideGridlines",
        "rowGroupControlAfter",
        "columnGroupControlAfter",
    )
)
SHEET_PROPERTIES_FIELDS: dict[str, Any] = {
    **dict.fromkeys(
        (
            "sheetId",
            "title",
            "index",
            "sheetType",
            "hidden",
            "tabColor",
            "tabColorStyle",
            "rightToLeft",
            "dataSourceSheetProperties",
        )
    ),
    "gridProperties": GRID_PROPERTIES_FIELDS,
}
SHEET_FIELDS: dict[str, Any] = {
    "properties": SHEET_PROPERTIES_FIELDS,
    **dict.fromkeys(
        (
            "data",
            "merges",
            "conditionalFormats",
            "filterViews",
            "protectedRanges",
            "basicFilter",
            "charts",
            "bandedRanges",
            "developerMetadata",
            "rowGroups",
            "columnGroups",
            "slicers",
            "tables",
        )
    ),
}
SPREADSHEET_FIELDS: dict[str, Any] = {
    "spreadsheetId": None,
    "properties": dict.fromkeys(
        (
            "title",
            "locale",
            "autoRecalc",
            "timeZone",
            "defaultFormat",
            "iterativeCalculationSettings",
            "spreadsheetTheme",
            "importFunctionsExternalUrlAccessAllowed",
        )
    ),
    "sheets": SHEET_FIELDS,
    **dict.fromkeys(("namedRanges", "spreadsheetUrl", "developerMetadata", "dataSources", "dataSourceSchedules")),
}


class InvalidFieldSelection(ValueError):
    """A `fields` mask the API refuses. `named`: the part to name in the answer; `path`: the unknown field's names
    from the resource's root, empty when the mask does not parse at all."""

    def __init__(self, named: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(named)
        self.named = named
        self.path = path


def parse_fields(text: str, syntax: FieldSyntax = DRIVE_SYNTAX) -> Mask:
    """A `fields` mask as a tree: 'nextPageToken, files(id, name)' → {nextPageToken: None, files: {id: None,
    name: None}}; 'files/id' is 'files(id)'. Raises InvalidFieldSelection on a syntax error."""
    mask, rest = _parse_list(text, 0, syntax)
    if rest != len(text):
        raise InvalidFieldSelection(text[rest:].strip() or text)
    return mask


def _parse_list(text: str, at: int, syntax: FieldSyntax) -> tuple[Mask, int]:
    mask: Mask = {}
    while True:
        path, at = _parse_path(text, at, syntax)
        sub: Mask | None = None
        at = _skip_spaces(text, at, syntax)
        if at < len(text) and text[at] == "(":
            sub, at = _parse_list(text, at + 1, syntax)
            at = _skip_spaces(text, at, syntax)
            if at >= len(text) or text[at] != ")":
                raise InvalidFieldSelection(text)
            at = _skip_spaces(text, at + 1, syntax)
        for name in reversed(path[1:]):
            sub = {name: sub}
        _merge(mask, path[0], sub)
        if at < len(text) and text[at] == ",":
            at += 1
            continue
        return mask, at


def _parse_path(text: str, at: int, syntax: FieldSyntax) -> tuple[list[str], int]:
    names = []
    while True:
        at = _skip_spaces(text, at, syntax)
        start = at
        while at < len(text) and _in_name(text[at], syntax):
            at += 1
        if at == start:
            raise InvalidFieldSelection(text)
        names.append(text[start:at])
        if at < len(text) and text[at] in syntax.nesting:
            at += 1
            continue
        return names, at


def _in_name(char: str, syntax: FieldSyntax) -> bool:
    if syntax.spaces:
        return char.isalnum() or char in "_*"
    # Anything up to the punctuation is the name, a space included: Sheets then finds no such field.
    return char not in ",()" and char not in syntax.nesting


def _skip_spaces(text: str, at: int, syntax: FieldSyntax) -> int:
    while syntax.spaces and at < len(text) and text[at].isspace():
        at += 1
    return at


def _merge(mask: Mask, name: str, sub: Mask | None) -> None:
    current = mask.get(name, {})
    if name not in mask:
        mask[name] = sub
    elif current is None or sub is None:
        mask[name] = None  # the whole field, named once alone, wins over any sub-selection
    else:
        for key, value in sub.items():
            _merge(current, key, value)


def _select(
    value: Any, mask: Mask, known: dict[str, Any], syntax: FieldSyntax = DRIVE_SYNTAX, at: tuple[str, ...] = ()
) -> Any:
    """`value` (an object, or a list of objects) cut down to `mask`; an unknown field raises, as Google answers
    400. `at`: where `value` sits in the resource, for the error."""
    if isinstance(value, list):
        return [_select(item, mask, known, syntax, at) for item in value]
    if "*" in mask:
        mask = {**dict.fromkeys(known), **{k: v for k, v in mask.items() if k != "*"}}
    selected: dict[str, Any] = {}
    for name, sub in mask.items():
        key = _camel(name) if syntax.snake_case else name
        if key not in known:
            raise InvalidFieldSelection(name, (*at, name, *_first_path(sub)))
        if sub is None:
            if key in value:
                selected[key] = value[key]
        elif known[key] is not None:
            if key in value:
                selected[key] = _select(value[key], sub, known[key], syntax, (*at, name))
        elif key in value:
            # A sub-selection of a field the fake fills is one of a plain value ("id(x)"): nothing to select.
            raise InvalidFieldSelection(next(iter(sub)), (*at, name, *_first_path(sub)))
        # else: inside a field the fake never fills (capabilities/canEdit): nothing to give, as Google omits it
    return selected


def _first_path(mask: Mask | None) -> tuple[str, ...]:
    """The names down to the first field `mask` selects: Sheets names the whole path asked for, not only the part
    it could not find (' sheets.properties' for a field ' sheets')."""
    path: tuple[str, ...] = ()
    while mask:
        name, mask = next(iter(mask.items()))
        path += (name,)
    return path


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def _invalid_fields(message: str) -> tuple[int, bytes, dict[str, str]]:
    # Drive's 400 for a bad `fields`: the message names the field, the v2-style detail names the parameter.
    error = {
        "code": 400,
        "message": message,
        "status": "INVALID_ARGUMENT",
        "errors": [
            {
                "message": message,
                "domain": "global",
                "reason": "invalidParameter",
                "location": "fields",
                "locationType": "parameter",
            }
        ],
    }
    return 400, _json({"error": error}), {}


def _invalid_sheets_fields(invalid: InvalidFieldSelection) -> tuple[int, bytes, dict[str, str]]:
    # Sheets' 400 for a bad `fields` (see above): a generic message, the cause in a BadRequest field violation.
    if invalid.path:
        cause = f"Cannot find matching fields for path '{'.'.join(invalid.path)}'."
    else:
        cause = f"Invalid field mask near '{invalid.named}'."  # not recorded from Google: Doki reads only the 400
    error = {
        "code": 400,
        "message": "Request contains an invalid argument.",
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"description": f"Error expanding 'fields' parameter. {cause}"}],
            }
        ],
    }
    return 400, _json({"error": error}), {}


def _value_range(sheet: Spreadsheet, a1: str, formatted: bool) -> dict[str, Any] | None:
    """The rows of an A1 range `'Tab'!1:N`, `Tab!1:N` or `Tab`, trimmed as Sheets trims them; None if unparsable."""
    if a1.startswith("'"):
        end = a1.find("'!", 1) if "'!" in a1 else (len(a1) - 1 if a1.endswith("'") else -1)
        if end < 0:
            return None
        title, rest = a1[1:end].replace("''", "'"), a1[end + 2 :]
    else:
        title, _, rest = a1.partition("!")
    tabs = dict(sheet.tabs)
    if title not in tabs:
        return None
    rows = tabs[title]
    first, last = 1, len(rows)
    if rest:
        start, sep, stop = rest.partition(":")
        if not (start.isdigit() and sep and stop.isdigit()):
            return None
        first, last = int(start), int(stop)
    selected = [_trim(row, formatted) for row in rows[first - 1 : last]]
    while selected and not selected[-1]:
        selected.pop()
    body: dict[str, Any] = {"range": a1, "majorDimension": "ROWS"}
    if selected:
        body["values"] = selected
    return body


def _trim(row: list[Any], formatted: bool) -> list[Any]:
    cells = ["" if cell is None else cell for cell in row]
    while cells and cells[-1] == "":
        cells.pop()
    if formatted:
        return [("TRUE" if c else "FALSE") if isinstance(c, bool) else str(c) for c in cells]
    return cells


def _redirect(uri: str, params: dict[str, str | None]) -> tuple[int, bytes, dict[str, str]]:
    query = urlencode({k: v for k, v in params.items() if v is not None}, quote_via=quote)
    return 302, b"", {"Location": f"{uri}?{query}", "Content-Type": "text/html"}


def _oauth_error(status: int, error: str, description: str) -> tuple[int, bytes, dict[str, str]]:
    return status, _json({"error": error, "error_description": description}), {}


def _api_error(status: int, message: str, reason: str | None = None) -> tuple[int, bytes, dict[str, str]]:
    error: dict[str, Any] = {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}
    if reason is not None:
        # Drive's v2-style detail, which it still sends: the reason tells a rate limit from a refusal.
        error["errors"] = [{"domain": "usageLimits", "reason": reason, "message": message}]
    return status, _json({"error": error}), {}


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
