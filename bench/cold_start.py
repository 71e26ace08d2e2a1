"""Backend cold start: process spawn to the first 200 on `GET /`, Doki against the bare FastAPI app.

Same uvicorn command line, same environment, runs alternating so both share the noise. One untimed start of
each first: it warms the page cache for both, writes their bytecode (the image ships it compiled) and lets Doki
write its dev keys and database once, as a deployed revision (which gets its keys from configuration) never does on
a cold start.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import BARE_MODULE, DOKI_MODULE, median, serve, server_env

GOAL = 1.3


def start_time(module: str, workdir: Path, env: dict[str, str]) -> float:
    with serve(module, workdir, env) as server:
        return server.wait_ready()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7, help="timed starts of each app (>= 5; default 7)")
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5")

    apps = {"doki": DOKI_MODULE, "bare": BARE_MODULE}
    with tempfile.TemporaryDirectory(prefix="bench-cold-start-") as tmp:
        workdir = Path(tmp)
        env = server_env(workdir / "state")
        for module in apps.values():
            start_time(module, workdir, env)
        times: dict[str, list[float]] = {name: [] for name in apps}
        for i in range(args.runs):
            for name in list(apps) if i % 2 == 0 else reversed(apps):
                times[name].append(start_time(apps[name], workdir, env))

    doki, bare = median(times["doki"]), median(times["bare"])
    print(
        f"cold_start_ratio {doki / bare:.2f} (doki {doki * 1000:.0f} ms vs bare {bare * 1000:.0f} ms, "
        f"median of {args.runs}) goal <= {GOAL}"
    )


if __name__ == "__main__":
    main()
