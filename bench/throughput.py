"""Doki's `GET /` requests/s against a bare FastAPI hello-world, same uvicorn command line, loaded with `wrk`.

Both servers stay up for the whole run (an idle one costs nothing) and wrk alternates between them round by
round, so drifting machine noise hits both; wrk is a separate process on loopback, as a real client would be.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import subprocess
import tempfile
from pathlib import Path

from _common import BARE_MODULE, DOKI_MODULE, median, need_tool, serve, server_env

GOAL = 0.85
WARMUP_S = 1  # a short untimed load first: lazy imports, first-request paths and caches out of the figure


def requests_per_second(wrk: str, port: int, threads: int, connections: int, seconds: int) -> float:
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", f"http://127.0.0.1:{port}/"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    # Errors would make the figure meaningless (a failing server is fast): refuse them rather than report.
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors against port {port}:\n{out}")
    match = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{out}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="wrk rounds per app (>= 3; default 3)")
    parser.add_argument("--threads", type=int, default=1, help="wrk -t (default 1)")
    parser.add_argument("--connections", type=int, default=32, help="wrk -c (default 32)")
    parser.add_argument("--duration", type=int, default=5, help="wrk -d in seconds (default 5)")
    args = parser.parse_args()
    if args.rounds < 3:
        parser.error("--rounds must be at least 3")
    wrk = need_tool("wrk", "install it with `apt-get install -y wrk`")

    load = (args.threads, args.connections, args.duration)
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        env = server_env(workdir / "state")
        apps = {"doki": DOKI_MODULE, "bare": BARE_MODULE}
        servers = {name: stack.enter_context(serve(module, workdir, env)) for name, module in apps.items()}
        for server in servers.values():
            server.wait_ready()
            requests_per_second(wrk, server.port, args.threads, args.connections, WARMUP_S)
        rps: dict[str, list[float]] = {name: [] for name in servers}
        for i in range(args.rounds):
            for name in list(servers) if i % 2 == 0 else reversed(servers):
                rps[name].append(requests_per_second(wrk, servers[name].port, *load))

    doki, bare = median(rps["doki"]), median(rps["bare"])
    print(
        f"throughput_ratio {doki / bare:.2f} (doki {doki:.0f} req/s vs bare {bare:.0f} req/s, "
        f"median of {args.rounds} rounds) goal >= {GOAL}"
    )


if __name__ == "__main__":
    main()
