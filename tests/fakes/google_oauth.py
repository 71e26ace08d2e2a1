"""A local stand-in for Google's OAuth token endpoint, and a service account key file that points at it.

Application Default Credentials then run unchanged: google-auth reads the key file named by
GOOGLE_APPLICATION_CREDENTIALS, signs a JWT assertion with its (real, generated) RSA key and posts it to the key's
`token_uri`, which is this server; it answers with an access token, or with Google's error for a refused grant.

    with FakeTokenEndpoint() as endpoint:
        key = endpoint.key_file(tmp_path / "key.json")
        ...  # GOOGLE_APPLICATION_CREDENTIALS=key; endpoint.assertions holds the JWTs it was sent
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.helpers import secret

ACCESS_TOKEN = secret("the service account's access token", "ya29.fake-access-token")
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class FakeTokenEndpoint:
    def __init__(self, *, refuse: bool = False) -> None:
        self.refuse = refuse
        self.assertions: list[str] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                if form.get("grant_type") == [JWT_BEARER]:
                    endpoint.assertions.append(form["assertion"][0])
                if endpoint.refuse:
                    self._answer(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
                else:
                    self._answer(200, {"access_token": ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer"})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def key_file(self, path: Path, email: str = "pusher@proj.iam.gserviceaccount.com") -> Path:
        """A service account key whose token_uri is this endpoint."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        secret("a service account's private key", pem.splitlines()[1])
        info = {
            "type": "service_account",
            "project_id": email.split("@")[1].split(".")[0],
            "private_key_id": "fake-key-id",
            "private_key": pem,
            "client_email": email,
            "client_id": "1234567890",
            "token_uri": self.url,
        }
        path.write_text(json.dumps(info))
        return path

    def __enter__(self) -> FakeTokenEndpoint:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
