"""One block of an AOI run, start to finish, wherever it runs (here or on a Dask worker).

A :class:`BlockTask` is small and picklable: the block's indices, the grid, the scenes that
meet its window and the engine's options. :func:`run_block` reads the block's window (core plus
margin) from those scenes, each warped onto the grid (``WarpedVRT``: GDAL reads only the source
pixels under the window) and mosaicked best-first where they hold data; predicts it; vectorizes
it in grid coordinates; and keeps the lines inside the block's core, clipped half-open
(:func:`~sanchari_processes.aoi.stitch.clip_to_core`). Memory is one window's worth whatever
the AOI's size.
"""

from __future__ import annotations

import functools
import resource
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import RasterioIOError
from rasterio.vrt import WarpedVRT

from sanchari_processes.aoi.grid import BlockRef, Grid
from sanchari_processes.aoi.scenes import Scene, open_scene
from sanchari_processes.aoi.stitch import Piece, clip_to_core
from sanchari_processes.engine.build import Engine, EngineOptions
from sanchari_processes.errors import SourceUnavailableError
from sanchari_processes.sources.raster import BandStretch, RasterSource, select_bands
from sanchari_processes.sources.settings import RemoteSettings


@dataclass(frozen=True)
class BlockTask:
    """Everything a worker needs for one block (picklable, a few kB)."""

    block: BlockRef
    grid: Grid
    scenes: tuple[Scene, ...]
    options: EngineOptions
    remote: RemoteSettings = field(default_factory=RemoteSettings)


@dataclass(frozen=True)
class BlockResult:
    """A finished block: its clipped lines (grid CRS) and what it cost."""

    name: str
    pieces: list[Piece]
    km2: float
    cpu_s: float
    wall_s: float
    #: Peak resident memory of the process that ran it (MiB).
    rss_mib: float
    #: Share of the window that held imagery.
    coverage: float


def run_block(task: BlockTask, engine: Engine | None = None) -> BlockResult:
    """Read, predict, vectorize and clip one block (``engine``: one already built here)."""
    from sanchari_processes.vectorize import vectorize_probability

    wall0, cpu0 = time.perf_counter(), time.process_time()
    engine = engine or engine_for(task.options)
    grid, block = task.grid, task.block
    transform = grid.window_transform(block.ix, block.iy)
    image, valid = read_window(task.scenes, grid, block, task.remote)
    pieces: list[Piece] = []
    coverage = float(valid.mean())
    if valid.any():
        prob = engine.predictor.predict(image, valid)
        del image
        collection = vectorize_probability(
            prob, transform, None, engine.vectorize, gsd_m=grid.gsd_m, valid=valid
        )
        pieces = clip_to_core(collection["features"], grid.core(block.ix, block.iy), block.area)
    return BlockResult(
        name=block.name,
        pieces=pieces,
        km2=block.km2,
        cpu_s=time.process_time() - cpu0,
        wall_s=time.perf_counter() - wall0,
        rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        coverage=coverage,
    )


@functools.lru_cache(maxsize=2)
def engine_for(options: EngineOptions) -> Engine:
    """The engine ``options`` describe, built once per process (a worker keeps it)."""
    from sanchari_processes.engine.build import build_engine

    return build_engine(options)


def read_window(
    scenes: tuple[Scene, ...], grid: Grid, block: BlockRef, remote: RemoteSettings
) -> tuple[np.ndarray, np.ndarray]:
    """The block's window on the grid: ``(3, n, n)`` float32 0..255 pixels and validity.

    Each scene is warped onto the window (bilinear; its no-data, alpha and masks respected);
    where scenes overlap, the first (best) one with data wins.
    """
    n = grid.window_px
    transform = grid.window_transform(block.ix, block.iy)
    image = np.zeros((3, n, n), np.float32)
    valid = np.zeros((n, n), bool)
    for scene in scenes:
        if valid.all():
            break
        try:
            with open_scene(scene, remote) as dataset:
                bands = select_bands(dataset, 3, scene.bands)
                stretch = _stretch(scene, dataset, bands)
                with WarpedVRT(
                    dataset,
                    crs=grid.crs_wkt,
                    transform=transform,
                    width=n,
                    height=n,
                    resampling=Resampling.bilinear,
                    # an alpha band marks what lies outside the scene (its own, if it has one)
                    add_alpha=ColorInterp.alpha not in dataset.colorinterp,
                ) as vrt:
                    data = vrt.read(list(bands))
                    mask = np.all(vrt.read_masks(list(bands)) > 0, axis=0)
        except RasterioIOError as exc:
            raise SourceUnavailableError(
                f"block {block.name}: cannot read {scene.location[:200]}: {exc}"
            ) from None
        take = mask & ~valid
        if take.any():
            image[:, take] = stretch.apply(data)[:, take]
            valid |= take
    return image, valid


def _stretch(scene: Scene, dataset: Any, bands: tuple[int, ...]) -> BandStretch:
    """The scene's own 0..255 scaling (the same for every block, so no seams appear)."""
    if {dataset.dtypes[b - 1] for b in bands} == {"uint8"}:
        return BandStretch(low=(0.0,) * len(bands), high=(255.0,) * len(bands))
    key = (scene.location, bands)
    if key not in _STRETCHES:
        if len(_STRETCHES) >= 256:
            _STRETCHES.clear()
        _STRETCHES[key] = RasterSource(dataset, bands).stretch
    return _STRETCHES[key]


#: Per-process cache of the scenes' stretches (one decimated read of each deep scene).
_STRETCHES: dict[tuple[str, tuple[int, ...]], BandStretch] = {}
