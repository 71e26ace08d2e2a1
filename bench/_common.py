"""What the bench scripts share: tool checks, free ports, spawning a server, waiting for its first 200, medians.

Every figure is a ratio of two things measured side by side in the same run, so machine speed and most noise
cancel out; none of this asserts an absolute time.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from statistics import median

__all__ = ["BARE_MODULE", "BENCH_DIR", "DOKI_MODULE", "Server", "median", "need_tool", "serve", "server_env"]

BENCH_DIR = Path(__file__).resolve().parent
DOKI_MODULE = "doki.main"
BARE_MODULE = "bare_app"  # bench/bare_app.py, importable through PYTHONPATH (see server_env)

# No server here needs more than a few seconds to come up; past this something is broken, not slow.
START_DEADLINE_S = 60.0


def need_tool(name: str, fix: str) -> str:
    """Path of executable `name`, or exit with a message that says how to get it."""
    path = shutil.which(name)
    if path is None:
        sys.exit(f"{Path(sys.argv[0]).name}: `{name}` not found on PATH: {fix}")
    return path


def free_port() -> int:
    # Bind to port 0 and let the kernel pick; the tiny race until uvicorn binds it is harmless here.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(state_dir: Path) -> dict[str, str]:
    """One environment for both apps, so the only difference between them is the app itself.

    Doki in development needs nothing but a writable state dir (it generates its dev keys there); the bare app
    ignores these variables and is found through PYTHONPATH. Bytecode goes to a cache beside the state dir, written
    by a first start: both apps then load compiled code, as in the image (which ships it), instead of Doki alone
    compiling its own modules on every start (a developer's PYTHONDONTWRITEBYTECODE would otherwise leave them
    uncompiled), and bench/ gets no __pycache__.
    """
    env = dict(os.environ)
    env.update(
        ENVIRONMENT="development",
        DOKI_STATE_DIR=str(state_dir),
        PYTHONPATH=os.pathsep.join(filter(None, [str(BENCH_DIR), env.get("PYTHONPATH")])),
        PYTHONPYCACHEPREFIX=str(state_dir.parent / "pycache"),
    )
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    started: float  # perf_counter() just before the spawn
    log: Path

    def wait_ready(self) -> float:
        """Block until `GET /` answers 200; return seconds since spawn. Raise if the server dies or never does."""
        deadline = self.started + START_DEADLINE_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode} before answering:\n{self.log_text()}")
            if _answers_200(self.port):
                return time.perf_counter() - self.started
            if time.perf_counter() > deadline:
                raise RuntimeError(f"no 200 on / within {START_DEADLINE_S:.0f} s:\n{self.log_text()}")
            # Leave the (possibly only) other core to the server: a hot spin would slow the very start it times.
            time.sleep(0.002)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _answers_200(port: int) -> bool:
    # A short timeout: while uvicorn is still importing, connects are refused at once; a stall must not hide
    # the moment it starts answering.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=0.5)
    try:
        conn.request("GET", "/")
        return conn.getresponse().status == 200
    except OSError:  # refused, reset, timed out
        return False
    finally:
        conn.close()


@contextlib.contextmanager
def serve(module: str, workdir: Path, env: dict[str, str]) -> Iterator[Server]:
    """Run `module:app` with the one uvicorn command line both apps share; killed on exit, Ctrl-C included."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", f"{module}:app", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--no-access-log", "--log-level", "warning"]
    log = Path(tempfile.mkstemp(prefix=f"bench-{module}-", suffix=".log", dir=workdir)[1])
    with log.open("wb") as out:
        started = time.perf_counter()
        # Own session: Ctrl-C reaches only us, and the finally below stops the server cleanly.
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield Server(proc, port, started, log)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
