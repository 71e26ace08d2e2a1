"""doki beside gcloud, against the same emulator, with a real (stand-in) container: three ratios, medians of
interleaved runs in one process.

1. `doki status` / `gcloud run services describe` (wall time; goal <= 0.3).
2. A no-op `doki deploy --yes` / `gcloud run deploy` with the same flags on an up-to-date service (goal <= 0.3), and the
   mutating calls doki made (goal 0), counted by the emulator: doki's runs go first, one after another, so that
   count holds doki's calls alone. gcloud has no no-op: every deploy makes a revision and waits for it.
3. A code change, end to end (build, push, deploy, then the first 200 from the new revision): `doki build --push &&
   doki deploy --yes` (and `doki release --local`) / the guide's `docker build`, `docker push`, `gcloud run deploy`
   (goal <= 0.8).

gcloud is pointed at the emulator by `doki emulator env`; each tool deploys its own service (gcloud's
`--set-env-vars` would drop what doki adds, so a shared one would never be up to date for doki). Needs a Docker
engine, the stand-in base image (`bash .ci/docker-setup`) and gcloud.
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
from collections.abc import Callable
from pathlib import Path

from _common import free_port, median, need_tool

BASE = os.environ.get("DOKI_TEST_BASE_IMAGE", "doki-base:bookworm-py311")
PROJECT = f"bench-peers-{os.getpid()}"  # this run's own image names on a shared engine
REGION = "us-central1"
REPOSITORY = f"{REGION}-docker.pkg.dev/{PROJECT}/doki"
ACCOUNT = f"runtime@{PROJECT}.iam.gserviceaccount.com"
DOKI = str(Path(sys.executable).with_name("doki"))
# A stand-in backend: the health contract on $PORT, and the version of its code in a header, to tell revisions apart.
SERVER = """import http.server, json, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"message": "Doki Backend up"}).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Version", "%s"); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
"""
ENV_VARS = {
    "ENVIRONMENT": "production",
    "SUPABASE_URL": "https://benchbenchbenchbench.supabase.co",
    "ALLOWED_ORIGINS": "https://app.bench.example",
    "GOOGLE_CLIENT_ID": "1234-bench.apps.googleusercontent.com",
}
SECRETS = {
    "ENCRYPTION_KEY": "encryption-key",
    "SESSION_SECRET_KEY": "session-secret-key",
    "SUPABASE_SECRET_KEY": "supabase-secret-key",
    "GOOGLE_CLIENT_SECRET": "google-client-secret",
}
TOML = (
    f'[service]\nname = "bench-api"\nproject = "{PROJECT}"\nrepository = "doki"\nservice_account = "{ACCOUNT}"\n'
    "[service.env]\n"
    + "".join(f'{k} = "{v}"\n' for k, v in ENV_VARS.items())
    + "[service.secrets]\n"
    + "".join(f'{k} = "{v}"\n' for k, v in SECRETS.items())
)
# The guide's `gcloud run deploy` flags, with doki.toml's values (doki's defaults are the guide's).
GCLOUD_FLAGS = [
    "--region", REGION, "--allow-unauthenticated", "--port", "8080", "--memory", "512Mi", "--cpu", "1",
    "--min-instances", "0", "--max-instances", "10", "--timeout", "300", "--concurrency", "80",
    "--service-account", ACCOUNT,
    "--set-env-vars", ",".join(f"{k}={v}" for k, v in ENV_VARS.items()),
    "--set-secrets", ",".join(f"{k}={v}:latest" for k, v in SECRETS.items()),
]  # fmt: skip
MUTATING = ("Create", "Update", "Delete", "Set", "Add", "Disable", "Enable", "Destroy")


class Bench:
    def __init__(self, work: Path, env: dict[str, str], gcloud_env: dict[str, str], gcloud: str) -> None:
        self.work = work
        self.env = env
        self.gcloud_env = gcloud_env
        self.gcloud_path = gcloud

    def _run(self, args: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
        started = time.perf_counter()
        result = subprocess.run(args, cwd=self.work, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if result.returncode not in ok:
            sys.exit(f"{' '.join(args[:4])} … failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        return elapsed

    def doki(self, *args: str) -> float:
        return self._run([DOKI, *args], self.env, ok=(0, 2))  # 2: a dry run that would change something

    def gcloud(self, *args: str) -> float:
        return self._run([self.gcloud_path, *args], self.gcloud_env)

    def shell(self, command: str) -> float:
        return self._run(["bash", "-c", command], self.gcloud_env)

    def git_commit(self, version: str) -> None:
        (self.work / "server.py").write_text(SERVER % version)
        for args in (["add", "-A"], ["commit", "-qm", version]):
            subprocess.run(
                ["git", "-c", "user.name=b", "-c", "user.email=b@example.com", *args], cwd=self.work, check=True
            )

    def doki_output(self, *args: str) -> str:
        done = subprocess.run([DOKI, *args], cwd=self.work, env=self.env, capture_output=True, text=True, check=True)
        return done.stdout


def first_200_from(url: str, version: str, started: float, deadline: float = 60.0) -> float:
    """Seconds from `started` until `url` answers 200 from the code `version`."""
    while True:
        try:
            with urllib.request.urlopen(url + "/", timeout=5) as answer:  # noqa: S310 - the emulator on loopback
                if answer.status == 200 and answer.headers.get("X-Version") == version:
                    return time.perf_counter() - started
        except OSError:
            pass
        if time.perf_counter() - started > deadline:
            sys.exit(f"{url} never answered from version {version}")
        time.sleep(0.05)


def interleaved(runs: int, *measures: Callable[[int], float]) -> list[list[float]]:
    """Each measure run `runs` times, alternating, so drift in the machine's speed hits them alike."""
    results: list[list[float]] = [[] for _ in measures]
    for index in range(runs):
        for slot, measure in enumerate(measures):
            results[slot].append(measure(index))
    return results


def calls(rest: str) -> dict[str, int]:
    with urllib.request.urlopen(rest + "/_doki/faults") as answer:  # noqa: S310 - the emulator on loopback
        counted: dict[str, int] = json.loads(answer.read())["calls"]
    return counted


def mutating_between(before: dict[str, int], after: dict[str, int]) -> int:
    return sum(n - before.get(m, 0) for m, n in after.items() if any(v in m.rsplit("/", 1)[-1] for v in MUTATING))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs of each of the quick figures (1 and 2)")
    parser.add_argument("--change-runs", type=int, default=3, help="runs of the code-change figure (3)")
    options = parser.parse_args()
    gcloud = need_tool("gcloud", "install the Google Cloud CLI")
    need_tool("docker", "install docker.io and start it: bash .ci/docker-setup")
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        work = Path(tmp) / "project"
        work.mkdir()
        (work / "Dockerfile").write_text(f'FROM {BASE}\nCOPY server.py /server.py\nCMD ["python3", "/server.py"]\n')
        (work / "doki.toml").write_text(TOML)
        (work / ".env").write_text("".join(f"{name}=bench-value-{name.lower()}\n" for name in SECRETS))
        (work / ".gitignore").write_text(".env\n")
        subprocess.run(["git", "init", "-q"], cwd=work, check=True)
        state = Path(tmp) / "state"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOKI_")}
        ports = [str(free_port()) for _ in range(3)]
        start = ["emulator", "start", "--port", ports[0], "--rest-port", ports[1], "--registry-port", ports[2]]
        subprocess.run([DOKI, *start, "--state-dir", str(state)], cwd=work, env=env, check=True, capture_output=True)
        emulator_env = json.loads(
            subprocess.run(
                [DOKI, "--json", "emulator", "env", "--state-dir", str(state)],
                cwd=work, env=env, check=True, capture_output=True, text=True,
            ).stdout
        )  # fmt: skip
        env.update(emulator_env)
        gcloud_env = {
            **env,
            "CLOUDSDK_CONFIG": str(Path(tmp) / "gcloud"),
            "CLOUDSDK_CORE_PROJECT": PROJECT,
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
            "DOCKER_CONFIG": str(Path(tmp) / "docker"),
        }
        bench = Bench(work, env, gcloud_env, gcloud)
        rest = emulator_env["STORAGE_EMULATOR_HOST"]
        registry = emulator_env["DOKI_EMULATOR_REGISTRY"]
        try:
            account = json.dumps({"project": PROJECT, "email": ACCOUNT}).encode()
            request = urllib.request.Request(rest + "/_doki/service-accounts", account, method="POST")  # noqa: S310
            urllib.request.urlopen(request).close()  # noqa: S310 - the emulator on loopback
            bench.shell(f"echo token | docker login -u oauth2accesstoken --password-stdin {registry}")
            bench.git_commit("v0")
            bench.doki("secrets", "push")
            bench.doki("build", "--push")
            bench.doki("deploy", "--yes")
            image = json.loads(bench.doki_output("--json", "status"))["image"]
            url = json.loads(bench.doki_output("--json", "status"))["url"]
            bench.gcloud("run", "deploy", "bench-gcloud", "--image", image, *GCLOUD_FLAGS)
            gcloud_url = json.loads(
                subprocess.run(
                    [gcloud, "run", "services", "describe", "bench-gcloud", "--region", REGION, "--format=json"],
                    env=gcloud_env, check=True, capture_output=True, text=True,
                ).stdout
            )["status"]["url"]  # fmt: skip

            status, describe = interleaved(
                options.runs,
                lambda _: bench.doki("status"),
                lambda _: bench.gcloud("run", "services", "describe", "bench-api", "--region", REGION),
            )
            before = calls(rest)
            noop = [bench.doki("deploy", "--yes") for _ in range(options.runs)]
            doki_mutating = mutating_between(before, calls(rest))
            (gcloud_noop,) = interleaved(
                options.runs, lambda _: bench.gcloud("run", "deploy", "bench-gcloud", "--image", image, *GCLOUD_FLAGS)
            )

            steps = ("doki build --push", "doki deploy", "docker build", "docker push", "gcloud run deploy")
            parts: dict[str, list[float]] = {step: [] for step in steps}

            def doki_change(index: int) -> float:
                version = f"doki-{index}"
                bench.git_commit(version)
                started = time.perf_counter()
                parts["doki build --push"].append(bench.doki("build", "--push"))
                parts["doki deploy"].append(bench.doki("deploy", "--yes"))
                return first_200_from(url, version, started)

            def doki_release(index: int) -> float:
                version = f"release-{index}"
                bench.git_commit(version)
                started = time.perf_counter()
                bench.doki("release", "--local", "--base-image", BASE, "--yes")
                return first_200_from(url, version, started)

            def guide_change(index: int) -> float:
                version = f"guide-{index}"
                bench.git_commit(version)
                tag = f"{REPOSITORY}/bench-gcloud:{version}"
                started = time.perf_counter()
                parts["docker build"].append(
                    bench.shell(f"docker build -q -t {tag} . && docker tag {tag} {registry}/{tag}")
                )
                parts["docker push"].append(bench.shell(f"docker push -q {registry}/{tag}"))
                parts["gcloud run deploy"].append(
                    bench.gcloud("run", "deploy", "bench-gcloud", "--image", tag, *GCLOUD_FLAGS)
                )
                return first_200_from(gcloud_url, version, started)

            doki_changes, releases, guide_changes = interleaved(
                options.change_runs, doki_change, doki_release, guide_change
            )
        finally:
            subprocess.run([DOKI, "emulator", "stop", "--state-dir", str(state)], cwd=work, env=env, check=False)
            listed = subprocess.run(
                ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True
            ).stdout.split()
            ours = [tag for tag in listed if f"/{PROJECT}/doki/" in tag]
            subprocess.run(["docker", "rmi", "-f", *ours], capture_output=True, check=False)

    def line(label: str, ours: list[float], theirs: list[float], peer: str, goal: str) -> None:
        ratio = median(ours) / median(theirs)
        print(f"{label}: {ratio:.2f} ({median(ours):.2f} s vs {peer} {median(theirs):.2f} s, goal {goal})")

    line("doki status / gcloud run services describe", status, describe, "gcloud", "<= 0.3")
    line("no-op doki deploy / gcloud run deploy", noop, gcloud_noop, "gcloud", "<= 0.3")
    print(f"no-op doki deploy: {doki_mutating} mutating API calls in {options.runs} runs (goal 0)")
    line("code change, doki build --push && doki deploy / the guide's", doki_changes, guide_changes, "guide", "<= 0.8")
    line("code change, doki release --local / the guide's", releases, guide_changes, "guide", "<= 0.8")
    print("code change, its parts (medians): " + ", ".join(f"{k} {median(v):.2f} s" for k, v in parts.items()))


if __name__ == "__main__":
    main()
