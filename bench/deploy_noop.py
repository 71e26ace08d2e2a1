"""A no-op `doki deploy` against the emulator: the service is up to date, so doki must only read.

Figures: the median wall time of `doki deploy --yes` when nothing changed (goal <= 1.5 s here), the same for
`doki deploy --dry-run`, and the number of mutating API calls those runs made (goal 0), counted by the emulator.
Needs a Docker engine and the stand-in base image (`bash .ci/docker-setup`): the deployed revision really runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import free_port, median

BASE = os.environ.get("DOKI_TEST_BASE_IMAGE", "doki-base:bookworm-py311")
IMAGE = "us-central1-docker.pkg.dev/bench-proj/doki/bench-api:1"
DOKI = str(Path(sys.executable).with_name("doki"))
# A stand-in backend: it answers the health contract on $PORT, which is all a deploy checks.
SERVER = """import http.server, json, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"message": "Doki Backend up"}).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
"""
# Settings production accepts: deploy checks them by the backend's rules before it calls Google.
TOML = """[service]
name = "bench-api"
project = "bench-proj"
repository = "doki"
service_account = "runtime@bench-proj.iam.gserviceaccount.com"
[service.env]
ENVIRONMENT = "production"
SUPABASE_URL = "https://benchbenchbenchbench.supabase.co"
ALLOWED_ORIGINS = ["https://app.bench.example"]
GOOGLE_CLIENT_ID = "1234-bench.apps.googleusercontent.com"
[service.secrets]
ENCRYPTION_KEY = "encryption-key"
SESSION_SECRET_KEY = "session-secret-key"
SUPABASE_SECRET_KEY = "supabase-secret-key"
GOOGLE_CLIENT_SECRET = "google-client-secret"
"""
ENV = "".join(
    f"{name}=bench-value-{name.lower()}\n"
    for name in ("ENCRYPTION_KEY", "SESSION_SECRET_KEY", "SUPABASE_SECRET_KEY", "GOOGLE_CLIENT_SECRET")
)
MUTATING = ("Create", "Update", "Delete", "Set", "Add", "Disable", "Enable", "Destroy")


def run(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run([DOKI, *args], cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode not in (0, 2):
        sys.exit(f"doki {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return elapsed


def calls(rest: str) -> dict[str, int]:
    with urllib.request.urlopen(rest + "/_doki/faults") as answer:  # noqa: S310 - the emulator on loopback
        counted: dict[str, int] = json.loads(answer.read())["calls"]
    return counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        work = Path(tmp)
        (work / "server.py").write_text(SERVER)
        (work / "Dockerfile").write_text(f'FROM {BASE}\nCOPY server.py /server.py\nCMD ["python3", "/server.py"]\n')
        (work / "doki.toml").write_text(TOML)
        (work / ".env").write_text(ENV)
        grpc_port, rest_port, registry_port = free_port(), free_port(), free_port()
        state = work / "state"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOKI_")}
        start = [
            "emulator",
            "start",
            "--port",
            str(grpc_port),
            "--rest-port",
            str(rest_port),
            "--registry-port",
            str(registry_port),
            "--state-dir",
            str(state),
        ]
        run(start, work, env)
        env["DOKI_EMULATOR"] = f"127.0.0.1:{grpc_port}"
        env["DOKI_EMULATOR_REGISTRY"] = f"127.0.0.1:{registry_port}"
        rest = f"http://127.0.0.1:{rest_port}"
        try:
            # The runtime account exists, as `doki init --create-account` leaves it: a deploy looks it up.
            account = json.dumps({"project": "bench-proj", "email": "runtime@bench-proj.iam.gserviceaccount.com"})
            request = urllib.request.Request(rest + "/_doki/service-accounts", account.encode(), method="POST")  # noqa: S310
            urllib.request.urlopen(request).close()  # noqa: S310 - the emulator on loopback
            # Pushed as a user would: a deploy checks that the image is in Artifact Registry.
            run(["build", "--tag", IMAGE.rpartition(":")[2], "--push"], work, env)
            run(["secrets", "push"], work, env)
            run(["deploy", "--yes", "--image", IMAGE], work, env)
            before = calls(rest)
            applied = [run(["deploy", "--yes", "--image", IMAGE], work, env) for _ in range(runs)]
            planned = [run(["deploy", "--dry-run", "--image", IMAGE], work, env) for _ in range(runs)]
            after = calls(rest)
        finally:
            subprocess.run([DOKI, "emulator", "stop", "--state-dir", str(state)], cwd=work, env=env, check=False)
            # doki build tags :latest too, and the push tags both under the emulator's registry address.
            tags = [IMAGE, IMAGE.rpartition(":")[0] + ":latest"]
            tags += [f"127.0.0.1:{registry_port}/{tag}" for tag in tags]
            subprocess.run(["docker", "rmi", "-f", *tags], capture_output=True, check=False)
    mutating = sum(n - before.get(m, 0) for m, n in after.items() if any(v in m.rsplit("/", 1)[-1] for v in MUTATING))
    print(f"no-op deploy: {median(applied):.2f} s median wall time (goal <= 1.5 s), dry run {median(planned):.2f} s")
    print(f"no-op deploy: {mutating} mutating API calls in {2 * runs} runs (goal 0)")


if __name__ == "__main__":
    main()
