"""Vectorizer benchmark: seconds, features and peak RSS on a large synthetic road mask.

Prints figures; it is not a test. The mask (seeded) is a grid of straight roads of mixed widths,
curved roads, short broken pieces and speckle, held as a 0/1 ``uint8`` array (1 byte a pixel)
so the vectorizer's own memory shows in the peak RSS.

    python benchmarks/bench_vectorize.py                 # 8192 x 8192 at 0.5 m, default config
    python benchmarks/bench_vectorize.py --size 4096 --tile-size 2048
"""

from __future__ import annotations

import argparse
import itertools
import resource
import sys
import time
from pathlib import Path

import numpy as np
from affine import Affine
from pyproj import CRS
from skimage.draw import disk, polygon

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sanchari_processes.config import VectorizeConfig  # noqa: E402
from sanchari_processes.vectorize import vectorize_probability  # noqa: E402


def draw_polyline(mask: np.ndarray, pts: np.ndarray, width: float) -> None:
    """Burn a road of ``width`` pixels along ``(row, col)`` points into ``mask``."""
    half = width / 2.0
    for (r0, c0), (r1, c1) in itertools.pairwise(pts):
        length = float(np.hypot(r1 - r0, c1 - c0))
        if length == 0:
            continue
        nr, nc = -(c1 - c0) / length * half, (r1 - r0) / length * half
        rr, cc = polygon(
            [r0 + nr, r1 + nr, r1 - nr, r0 - nr], [c0 + nc, c1 + nc, c1 - nc, c0 - nc], mask.shape
        )
        mask[rr, cc] = 1
        rr, cc = disk((r1, c1), half, shape=mask.shape)
        mask[rr, cc] = 1


def synthetic_mask(size: int, seed: int = 0) -> np.ndarray:
    """A seeded ``size x size`` 0/1 road mask: grid, curves, broken pieces and speckle."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), dtype=np.uint8)
    spacing = 400
    for offset in range(spacing // 2, size, spacing):
        jitter = rng.integers(-40, 40)
        width = rng.choice([10, 14, 20])
        draw_polyline(mask, np.array([[offset + jitter, 0], [offset - jitter, size - 1]]), width)
        draw_polyline(mask, np.array([[0, offset - jitter], [size - 1, offset + jitter]]), width)
    for _ in range(size // 256):  # curved roads
        centre = rng.uniform(0, size, 2)
        radius = rng.uniform(150, 600)
        start = rng.uniform(0, 2 * np.pi)
        theta = np.linspace(start, start + rng.uniform(1, 3), 80)
        pts = np.column_stack(
            [centre[0] + radius * np.sin(theta), centre[1] + radius * np.cos(theta)]
        )
        draw_polyline(mask, pts, rng.choice([8, 12]))
    for _ in range(size // 64):  # short isolated pieces
        r, c = rng.uniform(0, size, 2)
        angle = rng.uniform(0, np.pi)
        length = rng.uniform(10, 80)
        end = [r + length * np.sin(angle), c + length * np.cos(angle)]
        draw_polyline(mask, np.array([[r, c], end]), 8)
    for _ in range(size * size // 20000):  # speckle
        rr, cc = disk(tuple(rng.uniform(0, size, 2)), rng.uniform(1, 4), shape=mask.shape)
        mask[rr, cc] = 1
    return mask


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (MiB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192, help="raster side (pixels)")
    parser.add_argument("--gsd", type=float, default=0.5, help="metres per pixel")
    parser.add_argument("--tile-size", type=int, default=VectorizeConfig.tile_size)
    parser.add_argument("--tile-overlap", type=int, default=VectorizeConfig.tile_overlap)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    mask = synthetic_mask(args.size, args.seed)
    built = time.perf_counter() - start
    before = peak_rss_mib()
    transform = Affine(args.gsd, 0, 500000.0, 0, -args.gsd, 4650000.0)
    config = VectorizeConfig(tile_size=args.tile_size, tile_overlap=args.tile_overlap)
    start = time.perf_counter()
    collection = vectorize_probability(mask, transform, CRS.from_epsg(32633), config)
    seconds = time.perf_counter() - start
    length_km = sum(f["properties"]["length_m"] for f in collection["features"]) / 1000.0
    print(
        f"raster            {args.size} x {args.size} px at {args.gsd} m ({mask.mean():.1%} road)"
    )
    print(f"tiles             {args.tile_size} px + {args.tile_overlap} px halo")
    print(f"mask built in     {built:.1f} s")
    print(f"vectorize         {seconds:.1f} s")
    print(f"features          {len(collection['features'])} ({length_km:.1f} km of road)")
    print(f"peak RSS          {peak_rss_mib():.0f} MiB (before vectorizing: {before:.0f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
