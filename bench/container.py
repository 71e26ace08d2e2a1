"""The production image against the deployment guide's way of building it, side by side in one run.

- size: runtime image size minus base image size, ours vs the guide's (Poetry in the runtime image);
- rebuild: rebuild time after a code-only change as a fraction of a cold (--no-cache) build;
- start: container start -> first 200 on `/` (median; an absolute figure, the goal is <= 1.5 s here).
Needs a Docker engine and a base image (`bash .ci/docker-setup` makes the stand-in `doki-base:bookworm-py311`).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from _common import BENCH_DIR, free_port, median

REPO = BENCH_DIR.parent


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout.strip()


def _build(context: Path, tag: str, base: str, dockerfile: str = "Dockerfile", no_cache: bool = False) -> float:
    args = ["build", "-q", "--network", "host", "--build-arg", f"BASE_IMAGE={base}", "-f", dockerfile, "-t", tag]
    started = time.perf_counter()
    _docker(*args, *(["--no-cache"] if no_cache else []), str(context))
    return time.perf_counter() - started


def _size(image: str) -> int:
    return int(_docker("image", "inspect", "-f", "{{.Size}}", image))


def _start_to_200(image: str) -> float:
    port = free_port()
    started = time.perf_counter()
    name = _docker("run", "-d", "--network", "host", "-e", f"PORT={port}", image)
    try:
        while time.perf_counter() - started < 60:
            probe = subprocess.run(
                ["curl", "-sf", "-o", "/dev/null", f"http://127.0.0.1:{port}/"], check=False, capture_output=True
            )
            if probe.returncode == 0:
                return time.perf_counter() - started
            time.sleep(0.02)
        raise RuntimeError("the container never answered")
    finally:
        _docker("rm", "-f", name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-image", default="doki-base:bookworm-py311")
    parser.add_argument("--runs", type=int, default=5, help="container starts to time (default 5)")
    args = parser.parse_args()
    if shutil.which("docker") is None:
        raise SystemExit("container.py: `docker` not found: install docker.io and start the engine (.ci/docker-setup)")
    base = args.base_image
    with tempfile.TemporaryDirectory(prefix="bench-container-") as tmp:
        context = Path(tmp)
        files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
        for name in files.splitlines():
            if (REPO / name).is_file():
                (context / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / name, context / name)
        shutil.copy2(BENCH_DIR / "guide.Dockerfile", context / "guide.Dockerfile")
        cold = _build(context, "doki-bench:ours", base, no_cache=True)
        _build(context, "doki-bench:guide", base, dockerfile=str(context / "guide.Dockerfile"))
        marker = context / "doki" / "api" / "routes" / "root.py"
        marker.write_text(marker.read_text() + "\n# a code-only change\n")
        rebuild = _build(context, "doki-bench:ours", base)
    base_size = _size(base)
    ours, guide = _size("doki-bench:ours") - base_size, _size("doki-bench:guide") - base_size
    starts = [_start_to_200("doki-bench:ours") for _ in range(args.runs)]
    print(f"image_size_over_base {ours / 1e6:.0f} MB (guide's way {guide / 1e6:.0f} MB) goal <= 70 MB")
    print(f"rebuild_fraction {rebuild / cold:.2f} (code-only {rebuild:.1f} s vs cold {cold:.1f} s) goal <= 0.15")
    print(f"container_start {median(starts):.2f} s (start -> first 200, median of {args.runs}) goal <= 1.5 s")


if __name__ == "__main__":
    main()
