"""CPU speed against the seed's per-patch loop, at equal output; per-backend s/km²; peak RSS.

Prints figures; it is not a test. In one run, on one machine:

1. A ``SIZE²`` mosaic of CIL and EPFL road tiles, written as a GeoTIFF at the checkpoint's
   ground resolution (so neither side resamples).
2. The seed-style loop (its ``predict_v4.py``): the same checkpoint in torch, batch 1, each of
   the four TTA views (identity, hflip, vflip, rot90) a separate forward pass, 512 px patches
   at 50 % overlap, plain mean. Its *inference alone* is timed (model loaded beforehand).
3. ``sanchari predict --tta flip4`` on the same file, end to end (start-up, reading, the model,
   vectorizing, writing), as a child process, after one warm-up run (a user's second run: the
   compiled network cached). The two sides run interleaved, seed, ours, seed, ours
   (``--rounds``), each with the load average before and after; the best of each counts.
4. The ratio, the forward passes of each and seconds a pass, the CPU's model and instruction
   sets, and how the two road masks agree at the checkpoint's threshold: the share of each
   mask's road pixels within 2 px of the other's, and plain IoU; with the best run's own
   report of where its seconds went (``sanchari predict`` prints them: first patch after start,
   then model, network, vectorize, write and the whole command).
   Then seconds per forward pass of each backend, one patch per call against four (how the
   batch size per device was chosen).
5. CPU seconds per km² of ``sanchari predict`` for tta none/flip4/d4 on every installed backend
   (a ``--speed-size²`` crop of the mosaic).
6. Peak RSS of the whole ``sanchari predict`` command on a ``--rss-size²`` synthetic raster.

Child processes are measured with ``os.wait4`` (their own CPU time and peak RSS). The load
average is printed before and after each run, and a loud warning says when the machine was not
idle (load >= 0.3): then no timing here is a result.

    python benchmarks/bench_vs_seed.py                       # everything (~30 min on 2 cores)
    python benchmarks/bench_vs_seed.py --skip-backends --skip-rss
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sanchari_processes.config import TTA_MODES  # noqa: E402
from sanchari_processes.inference.backends import CPU_PREFERENCE, installed  # noqa: E402
from sanchari_processes.inference.checkpoint import read_metadata  # noqa: E402
from sanchari_processes.inference.sliding import count_patches  # noqa: E402
from tests.synthetic import TILED, write_geotiff  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_flags, load_note, settle, warn_if_busy  # noqa: E402

VIEWS = {"none": 1, "flip4": 4, "d4": 8}
SEED_PATCH, SEED_STRIDE = 512, 256


def mosaic(data: Path, size: int, gsd_m: float, path: Path, seed: int = 0) -> Path:
    """A ``size²`` RGB GeoTIFF tiled from the CIL and EPFL images (shuffled, seeded)."""
    from PIL import Image

    files = sorted((data / "cil" / "images").glob("*")) + sorted(
        (data / "epfl" / "images").glob("*")
    )
    if not files:
        raise SystemExit(f"no CIL/EPFL images under {data} (pass --data)")
    files = [files[i] for i in np.random.default_rng(seed).permutation(len(files))]
    canvas = np.zeros((size, size, 3), np.uint8)
    tile = 400
    index = 0
    for row in range(0, size, tile):
        for col in range(0, size, tile):
            image = np.asarray(Image.open(files[index % len(files)]).convert("RGB"))[:tile, :tile]
            h, w = min(tile, size - row), min(tile, size - col)
            canvas[row : row + h, col : col + w] = image[:h, :w]
            index += 1
    transform = Affine(gsd_m, 0, 500000.0, 0, -gsd_m, 4650000.0)
    return write_geotiff(
        path, canvas.transpose(2, 0, 1), transform=transform, photometric="RGB", **TILED
    )


def crop(src_path: Path, size: int, path: Path) -> Path:
    """The top-left ``size²`` of a GeoTIFF."""
    with rasterio.open(src_path) as src:
        profile = src.profile | {"width": size, "height": size}
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(src.read(window=Window(0, 0, size, size)))
    return path


def seed_loop(image: np.ndarray, weights: Path) -> tuple[np.ndarray, float, int]:
    """The seed's ``predict_v4.py`` loop: ``(probability, seconds, forward passes)``."""
    import torch

    from sanchari_processes.inference.checkpoint import load_checkpoint
    from sanchari_processes.inference.metadata import normalise

    loaded = load_checkpoint(weights, "cpu")
    x = normalise(image, loaded.metadata)
    _, height, width = x.shape
    rows = _seed_starts(height)
    cols = _seed_starts(width)
    views = [
        (lambda t: t, lambda t: t),
        (lambda t: t.flip(-1), lambda t: t.flip(-1)),
        (lambda t: t.flip(-2), lambda t: t.flip(-2)),
        (lambda t: t.rot90(1, (-2, -1)), lambda t: t.rot90(-1, (-2, -1))),
    ]
    total = np.zeros((height, width), np.float32)
    count = np.zeros((height, width), np.float32)
    passes = 0
    start = time.perf_counter()
    with torch.inference_mode():
        for r in rows:
            for c in cols:
                patch = torch.from_numpy(
                    np.ascontiguousarray(x[:, r : r + SEED_PATCH, c : c + SEED_PATCH])
                )[None]
                prob = torch.zeros(SEED_PATCH, SEED_PATCH)
                for forward, inverse in views:
                    prob += inverse(torch.sigmoid(loaded.module(forward(patch))))[0, 0]
                    passes += 1
                total[r : r + SEED_PATCH, c : c + SEED_PATCH] += (prob / len(views)).numpy()
                count[r : r + SEED_PATCH, c : c + SEED_PATCH] += 1
    return total / count, time.perf_counter() - start, passes


def _seed_starts(length: int) -> list[int]:
    """Patch starts at 50 % overlap, the last one flush with the edge (no padding)."""
    starts = list(range(0, max(1, length - SEED_PATCH + 1), SEED_STRIDE))
    if starts[-1] + SEED_PATCH < length:
        starts.append(length - SEED_PATCH)
    return starts


def run(cmd: list[str]) -> dict[str, Any]:
    """Run a command; its wall and CPU seconds and peak RSS (GiB), from ``os.wait4``, and
    ``sanchari predict``'s own report of its start-up and stages (``times``: its last lines)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{err}")
    times = [line for line in err.splitlines() if line.startswith(("first patch", "stages:"))]
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_gib": usage.ru_maxrss / 1024**2,
        "times": "; ".join(times),
    }


def sanchari(*args: str) -> list[str]:
    return [sys.executable, "-m", "sanchari_processes.cli", *args]


def agreement(a: np.ndarray, b: np.ndarray, tolerance: float = 2.0) -> dict[str, float]:
    """Share of each mask's road pixels within ``tolerance`` px of the other's; IoU."""
    from scipy import ndimage

    near_b = ndimage.distance_transform_edt(~b) <= tolerance
    near_a = ndimage.distance_transform_edt(~a) <= tolerance
    return {
        "a_near_b": float(near_b[a].mean()) if a.any() else 1.0,
        "b_near_a": float(near_a[b].mean()) if b.any() else 1.0,
        "iou": float((a & b).sum() / max(1, (a | b).sum())),
    }


def compare_with_seed(args: argparse.Namespace, work: Path, raster: Path, threshold: float):
    """Seed loop and `sanchari predict` interleaved (seed, ours, seed, ...), best of each."""
    with rasterio.open(raster) as src:
        image = src.read().astype(np.float32)
    precisions = args.precision
    cmds = {}
    for precision in precisions:
        mask, out = work / f"mask-{precision}.tif", work / f"roads-{precision}.geojson"
        cmd = sanchari("predict", str(raster), "-o", str(out), "--mask-out", str(mask))
        cmd += ["--weights", str(args.weights), "--tta", "flip4", "--no-progress"]
        cmd += ["--cache-dir", str(args.cache_dir), "--precision", precision]
        run(cmd)  # warm: the compiled network and the vectorizer's code cached, a user's 2nd run
        cmds[precision] = (cmd, mask, out)
    seed_best = float("inf")
    ours_best = {precision: float("inf") for precision in precisions}
    ours_times = dict.fromkeys(precisions, "")  # the best run's own start-up and stage times
    seed_prob = None
    starts: list[float] = []  # the load average as each timed run began
    print(f"\n== {image.shape[1]}x{image.shape[2]} mosaic, tta flip4, {args.rounds} rounds")
    for round_ in range(1, args.rounds + 1):
        before = settle(args.settle)
        seed_prob, seed_s, seed_passes = seed_loop(image, args.weights)
        after = os.getloadavg()[0]
        starts.append(before)
        seed_best = min(seed_best, seed_s)
        line = f"round {round_}: seed {seed_s:.1f} s (load {before:.2f} -> {after:.2f})"
        for precision, (cmd, _, _) in cmds.items():
            before = settle(args.settle)
            starts.append(before)
            ours = run(cmd)
            after = os.getloadavg()[0]
            if ours["wall"] < ours_best[precision]:
                ours_best[precision], ours_times[precision] = ours["wall"], ours["times"]
            line += (
                f", sanchari {precision} {ours['wall']:.1f} s (load {before:.2f} -> {after:.2f})"
            )
        print(line, flush=True)
    print(f"best of {args.rounds}, threshold {threshold:.2f}:")
    print(
        f"seed-style loop, inference alone: {seed_best:.1f} s, {seed_passes} forward passes, "
        f"{seed_best / seed_passes:.3f} s a pass"
    )
    assert seed_prob is not None
    for precision, (_, mask, out) in cmds.items():
        record = json.loads(out.read_text())["sanchari"]["inference"]
        shape = image.shape[1:]
        patches = count_patches(
            shape, record["patch_size"], record["stride"], record.get("edge_margin", 0)
        )
        ours_passes = patches * VIEWS["flip4"]
        with rasterio.open(mask) as src:
            our_mask = src.read(1) > 0
        agree = agreement(seed_prob > threshold, our_mask)
        best = ours_best[precision]
        print(
            f"sanchari predict --precision {precision}, end to end: {best:.1f} s, "
            f"{ours_passes} forward passes ({best / ours_passes:.3f} s a pass, start-up and "
            f"vectorizing included), backend {record['backend']}, arithmetic "
            f"{record.get('arithmetic', record.get('precision', '?'))}, stride {record['stride']}"
        )
        print(f"  speed-up: {seed_best / best:.2f}x")
        print(f"  its own report: {ours_times[precision]}")
        print(
            f"  masks: {agree['a_near_b']:.1%} of the seed's road pixels within 2 px of ours, "
            f"{agree['b_near_a']:.1%} of ours within 2 px of the seed's; IoU {agree['iou']:.3f}"
        )
    warn_if_busy(starts)


def backend_speeds(args: argparse.Namespace, work: Path, raster: Path, gsd_m: float) -> None:
    small = crop(raster, args.speed_size, work / "speed.tif")
    km2 = (args.speed_size * gsd_m) ** 2 / 1e6
    print(f"\n== CPU s/km², sanchari predict end to end on {args.speed_size}² ({km2:.2f} km²)")
    print("backend       " + "".join(f"{t:>22s}" for t in TTA_MODES))
    for backend in CPU_PREFERENCE:
        if not installed(backend):
            print(f"{backend:12s}  (not installed)")
            continue
        cells = []
        for tta in TTA_MODES:
            cmd = sanchari("predict", str(small), "-o", str(work / "speed.geojson"))
            cmd += ["--weights", str(args.weights), "--tta", tta, "--backend", backend]
            cmd += ["--device", "cpu", "--no-progress", "--cache-dir", str(args.cache_dir)]
            r = run(cmd)
            cells.append(f"{r['cpu'] / km2:7.0f} ({r['wall'] / km2:5.0f} wall)")
        print(f"{backend:12s}  " + "".join(f"{c:>22s}" for c in cells))


def per_patch(args: argparse.Namespace) -> None:
    """Seconds per 512² forward pass per backend: one patch at a time vs four in one call
    (four patches, or the four flip4 views of one: the same call)."""
    from sanchari_processes.config import InferenceConfig
    from sanchari_processes.engine.build import EngineOptions, build_predictor

    rng = np.random.default_rng(0)
    batch = rng.standard_normal((4, 3, 512, 512)).astype(np.float32)
    print("\n== seconds per 512² forward pass (tta none), interleaved, best of 3")
    runners = {}
    for backend in CPU_PREFERENCE:
        if installed(backend):
            for n in (1, 4):
                config = InferenceConfig(tta="none", device="cpu", backend=backend, batch_size=n)
                options = EngineOptions(args.weights, config, cache_dir=args.cache_dir)
                runners[(backend, n)] = build_predictor(options).runner
    best = dict.fromkeys(runners, float("inf"))
    for _ in range(3):
        for (backend, n), runner in runners.items():
            start = time.perf_counter()
            runner(batch[:n])
            best[(backend, n)] = min(best[(backend, n)], (time.perf_counter() - start) / n)
    for backend in CPU_PREFERENCE:
        if (backend, 1) in best:
            print(
                f"{backend:12s} batch 1: {best[(backend, 1)]:.3f} s   "
                f"batch 4: {best[(backend, 4)]:.3f} s"
            )


def peak_rss(args: argparse.Namespace, work: Path) -> None:
    from bench_inference import write_synthetic

    big = write_synthetic(work / "big.tif", args.rss_size)
    cmd = sanchari("predict", str(big), "-o", str(work / "big.geojson"), "--tta", "none")
    cmd += ["--weights", str(args.weights), "--no-progress", "--cache-dir", str(args.cache_dir)]
    r = run(cmd)
    print(
        f"\n== peak RSS, sanchari predict on {args.rss_size}² @ 0.5 m (tta none, default "
        f"backend): {r['rss_gib']:.2f} GiB, wall {r['wall']:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=REPO / "weights")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "roads")
    parser.add_argument("--size", type=int, default=4096, help="mosaic side for the comparison")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved seed/ours rounds")
    parser.add_argument(
        "--settle",
        type=float,
        default=300.0,
        help="before each timed run wait up to this many seconds for load < 0.3 (0: do not)",
    )
    parser.add_argument(
        "--precision",
        nargs="+",
        default=["auto"],
        help="precisions of our side, each timed in every round after the seed loop",
    )
    parser.add_argument("--speed-size", type=int, default=2048, help="raster side for s/km²")
    parser.add_argument("--rss-size", type=int, default=20000, help="raster side for peak RSS")
    parser.add_argument("--cache-dir", type=Path, help="export cache (default: a temporary one)")
    parser.add_argument("--skip-seed", action="store_true")
    parser.add_argument("--skip-backends", action="store_true")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--skip-patch", action="store_true")
    args = parser.parse_args()
    meta = read_metadata(args.weights)
    print(f"{meta.model_id}: gsd {meta.gsd_m:.3f} m, threshold {meta.threshold:.2f}")
    print(f"CPU: {cpu_flags()}")
    print(f"before: {load_note()}")
    with tempfile.TemporaryDirectory(prefix="sanchari-bench-") as tmp:
        work = Path(tmp)
        args.cache_dir = args.cache_dir or work / "cache"
        raster = mosaic(args.data, args.size, meta.gsd_m, work / "mosaic.tif")
        if not args.skip_seed:
            compare_with_seed(args, work, raster, meta.threshold)
        if not args.skip_patch:
            per_patch(args)
        if not args.skip_backends:
            backend_speeds(args, work, raster, meta.gsd_m)
        if not args.skip_rss:
            peak_rss(args, work)
    print(f"\nafter: {load_note()}")


if __name__ == "__main__":
    main()
