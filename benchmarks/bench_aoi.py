"""AOI benchmark: an area over four scenes, end to end, on 1 and on 2 Dask workers.

Prints figures; it is not a test. It writes a ``size²`` synthetic mosaic (a road grid on
texture, 0.5 m, UTM 33N) as four adjacent GeoTIFF scenes, an AOI covering them, and runs the
whole AOI pipeline — planning, each block's windowed read, the model (``--tta none``), the
vectorizer, the record, the stitch and the GeoPackage — on a throwaway local cluster of 1 and
then of 2 single-threaded worker processes, interleaved A, B, A, B (``--repeats`` pairs), and
reports the best of each, the speed-up, the peak RSS per worker (as each worker's blocks
recorded it), the CPU-seconds per km² and whether the outputs are identical. Machine: CPU model
and flags, load average before and after; it refuses to time (unless ``--force``) when the
1-minute load average is 0.3 or more, since a shared machine gives numbers that mean nothing.

    python benchmarks/bench_aoi.py                        # 16384², 1024 m blocks
    python benchmarks/bench_aoi.py --size 2048 --block-m 256 --repeats 1 --force   # a try
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per worker, as on the cluster

import numpy as np
from affine import Affine
from pyproj import Transformer

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sanchari_processes.aoi import find_scenes, plan_aoi, run_aoi  # noqa: E402
from sanchari_processes.aoi.grid import aoi_from_geojson  # noqa: E402
from sanchari_processes.aoi.record import record_dir  # noqa: E402
from sanchari_processes.config import InferenceConfig  # noqa: E402
from sanchari_processes.engine.build import EngineOptions, build_engine  # noqa: E402
from sanchari_processes.inference.checkpoint import read_metadata  # noqa: E402
from sanchari_processes.settings import SHIPPED_WEIGHTS  # noqa: E402
from tests.synthetic import TILED, write_geotiff_blocks  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import IDLE_LOAD, cpu_flags, settle, warn_if_busy  # noqa: E402

X0, Y0, GSD = 500000.0, 4650000.0, 0.5


def write_scenes(folder: Path, size: int) -> Path:
    """The ``size²`` mosaic as four ``size/2`` scenes, written block by block."""
    folder.mkdir(parents=True)
    half = size // 2
    texture = np.random.default_rng(0).integers(60, 120, (3, 1024, 1024), dtype=np.uint8)
    for i in range(2):
        for j in range(2):

            def block_at(row: int, col: int, h: int, w: int, i: int = i, j: int = j) -> np.ndarray:
                tile = texture[:, :h, :w].copy()
                rows = np.arange(h) + row + i * half
                cols = np.arange(w) + col + j * half
                tile[:, rows % 200 < 12, :] = 190
                tile[:, :, cols % 260 < 12] = 190
                return tile

            transform = Affine(GSD, 0, X0 + j * half * GSD, 0, -GSD, Y0 - i * half * GSD)
            write_geotiff_blocks(
                folder / f"scene_{i}{j}.tif", half, block_at, transform=transform,
                BIGTIFF="IF_SAFER", **TILED,
            )  # fmt: skip
    return folder


def aoi_over(size: int) -> Any:
    """The mosaic's extent less 1 % on each side, as a lon/lat polygon."""
    to_wgs84 = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    side, inset = size * GSD, size * GSD * 0.01
    x0, x1, y0, y1 = X0 + inset, X0 + side - inset, Y0 - side + inset, Y0 - inset
    ring = [to_wgs84.transform(x, y) for x, y in ((x0, y1), (x1, y1), (x1, y0), (x0, y0), (x0, y1))]
    return aoi_from_geojson({"type": "Polygon", "coordinates": [[list(p) for p in ring]]})


def one_run(plan: Any, options: EngineOptions, sha: str, workers: int, out: Path) -> dict:
    """One end-to-end AOI run on a fresh local cluster of ``workers`` (model loaded first)."""
    from distributed import Client, LocalCluster

    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", env=env
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(lambda: build_engine(options) and None)  # each worker loads the model once
        start = time.perf_counter()
        summary = run_aoi(plan, out, options, model_sha=sha, client=client)
        wall = time.perf_counter() - start
    costs = [json.loads(p.read_text()) for p in sorted(record_dir(out).glob("x*.json"))]
    return {
        "wall": wall,
        "cpu_per_km2": summary.cpu_s / summary.km2,
        "peak_rss_mib": max(c["rss_mib"] for c in costs),
        "lines": summary.lines,
        "features": _features(out),
    }


def _features(path: Path) -> list:
    import pyogrio

    _, _, geometry, fields = pyogrio.raw.read(path)
    return [bytes(g) for g in geometry] + [f.tolist() for f in fields]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=SHIPPED_WEIGHTS)
    parser.add_argument("--size", type=int, default=16384, help="mosaic side in pixels")
    parser.add_argument("--block-m", type=float, default=1024.0)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--repeats", type=int, default=2, help="A,B pairs (best of each)")
    parser.add_argument("--force", action="store_true", help="time even on a busy machine")
    parser.add_argument(
        "--settle", type=float, default=300.0,
        help="wait up to this many seconds for the load to fall under 0.3 before each run (0: no)",
    )  # fmt: skip
    args = parser.parse_args()
    load = settle(args.settle)
    print(f"machine: {cpu_flags()}")
    print(f"load average before: {load:.2f}")
    if load >= IDLE_LOAD and not args.force:
        sys.exit(f"the machine is not idle (load {load:.2f} >= {IDLE_LOAD}); --force to try anyway")
    inference = InferenceConfig(tta="none", device="cpu", backend=args.backend)
    options = EngineOptions(weights=args.weights, inference=inference)
    sha = read_metadata(args.weights).weights_sha256
    with tempfile.TemporaryDirectory(prefix="sanchari-bench-aoi-") as tmp:
        work = Path(tmp)
        scenes = find_scenes([str(write_scenes(work / "scenes", args.size))])
        plan = plan_aoi(aoi_over(args.size), scenes, GSD, block_m=args.block_m)
        print(
            f"{args.size}² over 4 scenes: {len(plan.blocks)} blocks of {args.block_m:g} m, "
            f"{plan.km2:.2f} km², tta none, backend {args.backend}"
        )
        runs: dict[int, list[dict]] = {1: [], 2: []}
        starts: list[float] = []
        for repeat in range(args.repeats):
            for workers in (1, 2):  # A, B, A, B
                out = work / f"roads-{workers}-{repeat}.gpkg"
                starts.append(settle(args.settle))
                result = one_run(plan, options, sha, workers, out)
                runs[workers].append(result)
                print(
                    f"  run {repeat + 1}, {workers} worker(s): {result['wall']:.1f} s end to end, "
                    f"{result['cpu_per_km2']:.0f} CPU-s/km², peak RSS per worker "
                    f"{result['peak_rss_mib']:.0f} MiB, {result['lines']} lines "
                    f"(load {starts[-1]:.2f} before, {os.getloadavg()[0]:.2f} after)",
                    flush=True,
                )
        warn_if_busy(starts)
        best = {n: min(r["wall"] for r in runs[n]) for n in runs}
        same = all(r["features"] == runs[1][0]["features"] for n in runs for r in runs[n])
        print(
            f"best: 1 worker {best[1]:.1f} s, 2 workers {best[2]:.1f} s: x{best[1] / best[2]:.2f}"
        )
        print(f"outputs identical across runs and worker counts: {same}")
        hours = {n: best[n] / plan.km2 * 10_000 / 3600 for n in best}
        print(
            f"projection to 10,000 km² (from the best runs): {hours[1]:.0f} h on 1 worker, "
            f"{hours[2]:.0f} h on 2"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
