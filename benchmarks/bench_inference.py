"""Inference benchmark: CPU seconds per km² (tta none vs flip4) and peak RSS on a large raster.

Prints figures; it is not a test. Each measurement runs ``sanchari predict`` in a child process
so peak RSS (``ru_maxrss`` of the children) covers the whole command: model, streaming,
vectorizing and writing.

    python benchmarks/bench_inference.py                       # untrained lite0, defaults
    python benchmarks/bench_inference.py --weights weights/ --rss-size 20000
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from affine import Affine

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.synthetic import TILED, write_geotiff_blocks  # noqa: E402


def write_synthetic(path: Path, size: int, gsd: float = 0.5, block: int = 1024) -> Path:
    """A ``size²`` RGB GeoTIFF (UTM 33N) with a road grid, written block by block."""
    texture = np.random.default_rng(0).integers(60, 120, (3, block, block), dtype=np.uint8)

    def block_at(row: int, col: int, h: int, w: int) -> np.ndarray:
        tile = texture[:, :h, :w].copy()
        tile[:, (np.arange(h) + row) % 200 < 12, :] = 190
        tile[:, :, (np.arange(w) + col) % 260 < 12] = 190
        return tile

    transform = Affine(gsd, 0, 500000.0, 0, -gsd, 4650000.0)
    return write_geotiff_blocks(
        path, size, block_at, block=block, transform=transform, BIGTIFF="YES", **TILED
    )


def run_predict(raster: Path, weights: Path, out: Path, tta: str) -> tuple[float, float]:
    """Run ``sanchari predict``; return (wall seconds, CPU seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "sanchari_processes.cli", "predict", str(raster), "-o", str(out)]
    cmd += ["--weights", str(weights), "--tta", tta, "--device", "cpu", "--no-progress"]
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def tiny_checkpoint(path: Path) -> Path:
    """A ~0.3 M-parameter random U-Net++ (the test suite's), for memory runs that must be quick."""
    from sanchari_processes.inference import Architecture, make_untrained_checkpoint

    arch = Architecture(
        encoder_name="tu-mobilenetv3_small_050", encoder_depth=3, decoder_channels=(16, 8, 4)
    )
    return make_untrained_checkpoint(path, arch, model_id="tiny-bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, help="checkpoint (default: untrained lite0)")
    parser.add_argument("--speed-size", type=int, default=2048, help="raster side for s/km²")
    parser.add_argument("--rss-size", type=int, default=20000, help="raster side for peak RSS")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument(
        "--rss-tiny",
        action="store_true",
        help="use a tiny random model for the RSS run (isolates streaming memory, runs faster)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sanchari-bench-") as tmp:
        work = Path(tmp)
        weights = args.weights
        if weights is None:
            weights = work / "untrained-lite0.safetensors"
            subprocess.run(
                [sys.executable, "-m", "sanchari_processes.cli", "model-init", "-o", str(weights)],
                check=True,
                stderr=subprocess.DEVNULL,
            )
        print(f"threads: {os.cpu_count()} cores; weights: {weights}")
        small = write_synthetic(work / "speed.tif", args.speed_size)
        km2 = (args.speed_size * 0.5) ** 2 / 1e6
        for tta in () if args.skip_speed else ("none", "flip4"):
            wall, cpu = run_predict(small, weights, work / f"speed-{tta}.geojson", tta)
            print(
                f"tta={tta:5s} {args.speed_size}² @0.5 m ({km2:.3f} km²): wall {wall:.1f} s, "
                f"CPU {cpu:.1f} s → {cpu / km2:.0f} CPU s/km², {wall / km2:.0f} wall s/km²"
            )
        if not args.skip_rss:
            big = write_synthetic(work / "big.tif", args.rss_size)
            if args.rss_tiny:
                weights = tiny_checkpoint(work / "tiny.safetensors")
            wall, cpu = run_predict(big, weights, work / "big.geojson", "none")
            rss_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
            model = "tiny model" if args.rss_tiny else "same model"
            print(
                f"peak RSS over all runs (incl. {args.rss_size}² tta=none, {model}, "
                f"wall {wall:.0f} s): {rss_gib:.2f} GiB"
            )


if __name__ == "__main__":
    main()
