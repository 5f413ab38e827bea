"""Start-up: seconds from ``sanchari predict``'s start to its first patch, cold and warm.

Prints figures; it is not a test. Runs ``sanchari predict`` on the demo scene (``--tta none``)
as a child process with a new cache folder: the first run is cold (OpenVINO compiles the
network and numba the skeleton-graph code), the next ``--runs`` are warm (both read back from
the cache), as a user's second command. Each run's own "first patch N s after start" line is
read, plus the whole command's wall time; the load average is printed before and after each
run (each waits for the load to settle first), with a loud warning when the machine was not
idle.

    python benchmarks/bench_startup.py [--runs 5] [--backend auto] [--precision auto] [--settle 120]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from machine import cpu_flags, load_note, settle, warn_if_busy  # noqa: E402

DEMO = REPO / "geotiffs" / "paris_img1447.tif"
FIRST = re.compile(r"first patch ([0-9.]+) s after start")


def one_run(args: argparse.Namespace, cache: Path, out: Path) -> tuple[float, float]:
    """``(seconds to the first patch, wall seconds)`` of one ``sanchari predict``."""
    cmd = [sys.executable, "-m", "sanchari_processes.cli", "predict", str(DEMO), "-o", str(out)]
    cmd += ["--tta", "none", "--no-progress", "--backend", args.backend]
    cmd += ["--precision", args.precision]
    env = {**os.environ, "SANCHARI_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    found = FIRST.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stderr}")
    return float(found.group(1)), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="warm runs after the cold one")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument(
        "--settle", type=float, default=120.0,
        help="before each run wait up to this many seconds for load < 0.3 (0: do not)",
    )  # fmt: skip
    args = parser.parse_args()
    print(f"CPU: {cpu_flags()}")
    loads = []
    warm: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="sanchari-start-") as tmp:
        cache, out = Path(tmp) / "cache", Path(tmp) / "roads.geojson"
        for i in range(args.runs + 1):
            before = settle(args.settle)
            first, wall = one_run(args, cache, out)
            after = os.getloadavg()[0]
            loads.append(before)  # a run's own load shows only after it
            label = "cold" if i == 0 else f"warm {i}"
            print(
                f"{label:7s}: first patch {first:.2f} s, whole command {wall:.2f} s "
                f"(load {before:.2f} -> {after:.2f})"
            )
            if i:
                warm.append((first, wall))
    if warm:
        print(
            f"warm, best of {len(warm)}: first patch {min(w[0] for w in warm):.2f} s, "
            f"whole command {min(w[1] for w in warm):.2f} s"
        )
    print(f"after: {load_note()}")
    warn_if_busy(loads)


if __name__ == "__main__":
    main()
