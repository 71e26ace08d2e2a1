"""`doki --help` wall time against `gcloud run deploy --help`, the command Doki wraps.

Runs alternate (doki, gcloud, gcloud, doki, ...) so both share the machine's noise; one untimed warm-up of
each first, so neither pays for a cold page cache or gcloud's first write of its config dir.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import median, need_tool

GOAL = 0.12
TIMEOUT_S = 120  # per command: gcloud can take seconds on a slow machine, never minutes


def timed(cmd: list[str], env: dict[str, str]) -> float:
    # Not subprocess.run(timeout=...): waiting with a timeout polls with sleeps of up to 50 ms, which would round a
    # 60 ms command up to about 110 ms. A timer kills a hung command instead, and the wait itself blocks exactly.
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watchdog = threading.Timer(TIMEOUT_S, proc.kill)
    watchdog.start()
    try:
        code = proc.wait()
    finally:
        watchdog.cancel()
    elapsed = time.perf_counter() - start
    if code != 0:
        raise subprocess.CalledProcessError(code, cmd)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each command (>= 5; default 7)")
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5")

    # The doki installed next to this interpreter (the venv's), not whichever is first on PATH.
    doki = Path(sys.executable).parent / "doki"
    if not doki.exists():
        doki = Path(need_tool("doki", "install the project (`pip install -e '.[cli]'`) into this Python"))
    gcloud = need_tool("gcloud", "install the Google Cloud CLI: https://cloud.google.com/sdk/docs/install")

    with tempfile.TemporaryDirectory(prefix="bench-gcloud-") as config:
        env = dict(os.environ)
        # A throwaway config so the user's settings can't change the figure; no prompts, no update check.
        env.update(
            CLOUDSDK_CONFIG=config,
            CLOUDSDK_CORE_DISABLE_PROMPTS="1",
            CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK="1",
        )
        commands = {"doki": [str(doki), "--help"], "gcloud": [gcloud, "run", "deploy", "--help"]}
        for cmd in commands.values():
            timed(cmd, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for i in range(args.runs):
            # Swap the order every run so neither always goes first after the other.
            for name in list(commands) if i % 2 == 0 else reversed(commands):
                times[name].append(timed(commands[name], env))

    doki_s, gcloud_s = median(times["doki"]), median(times["gcloud"])
    print(
        f"help_time_ratio {doki_s / gcloud_s:.2f} (doki --help {doki_s * 1000:.0f} ms vs "
        f"gcloud run deploy --help {gcloud_s * 1000:.0f} ms, median of {args.runs}) goal <= {GOAL}"
    )


if __name__ == "__main__":
    main()
