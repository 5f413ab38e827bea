"""The one engine every entry point runs: raster source → probability map → road network.

Large rasters stream block by block over one patch grid: each block is read (resampled to the
model's ground sample distance when it differs), predicted patch by patch, and its finished
pixels are written into a disk-backed probability map; the patch overlap a block shares with
its neighbours is all the context it needs. Memory therefore depends on the block size and the
raster's width, not on its area.
"""

from __future__ import annotations

import functools
import math
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

from sanchari_processes.config import VectorizeConfig
from sanchari_processes.engine.probability import ProbabilityMap
from sanchari_processes.engine.provenance import provenance
from sanchari_processes.errors import InvalidInputError
from sanchari_processes.inference.nodata import shrink_valid
from sanchari_processes.inference.predictor import Predictor, RemoteBlocks
from sanchari_processes.sources.raster import RasterSource, SourceSpec

#: Progress callbacks receive the fraction of the work done, 0..1.
Progress = Callable[[float], None]
#: Input and model resolutions closer than this are treated as equal (no resampling).
_GSD_TOLERANCE = 0.02
#: A (rows, columns) pair.
Pair = tuple[int, int]


def model_scale(source_gsd_m: float | None, model_gsd_m: float) -> float:
    """Model pixels per input pixel (1.0 when the resolutions match or the input has none)."""
    if source_gsd_m is None:
        return 1.0
    scale = source_gsd_m / model_gsd_m
    return 1.0 if abs(scale - 1.0) <= _GSD_TOLERANCE else scale


def model_scales(
    pixel_sizes_m: tuple[float, float] | None, model_gsd_m: float
) -> tuple[float, float]:
    """Model pixels per input pixel along (rows, columns): square ground pixels for the model.

    An EPSG:4326 raster with equal degree steps has pixels 0.66 as wide as tall at 49° N; scaling
    each axis on its own keeps roads at the shape and width the model was trained on.
    """
    if pixel_sizes_m is None:
        return (1.0, 1.0)
    x_m, y_m = pixel_sizes_m
    return (model_scale(y_m, model_gsd_m), model_scale(x_m, model_gsd_m))


def model_grid(
    shape: tuple[int, int], scales: tuple[float, float]
) -> tuple[tuple[int, int], tuple[float, float]]:
    """The model's pixel grid over a raster: ``(shape, input pixels per model pixel)``."""
    height, width = shape
    grid = (max(1, round(height * scales[0])), max(1, round(width * scales[1])))
    return grid, (height / grid[0], width / grid[1])


def source_grid(
    source: RasterSource, predictor: Predictor
) -> tuple[tuple[int, int], tuple[float, float]]:
    """:func:`model_grid` of ``source`` at ``predictor``'s resolution."""
    scales = model_scales(source.pixel_sizes_m, predictor.metadata.gsd_m)
    return model_grid((source.height, source.width), scales)


def several_blocks(source: RasterSource, predictor: Predictor) -> bool:
    """Whether the model's grid over ``source`` is streamed in more than one block."""
    grid, _ = source_grid(source, predictor)
    return max(grid) > predictor.config.stream_window


def predict_probability(
    source: RasterSource,
    predictor: Predictor,
    workdir: Path,
    progress: Progress | None = None,
    blocks: RemoteBlocks | None = None,
) -> ProbabilityMap:
    """Road probability for the whole ``source`` on its own grid, streamed block by block
    (``blocks``: their patches run on a cluster, with the same result).

    The model's patch grid covers the raster once (see :func:`stream_predict`): the context a
    block needs is the patch overlap it shares with its neighbours. When the raster's ground
    resolution differs from the model's, the patches run on the model's grid (windows resampled
    as they are read) and the probabilities are resampled back to the raster's grid.
    """
    shape = (source.height, source.width)
    grid, step = source_grid(source, predictor)
    prob = ProbabilityMap.scratch(
        shape, source.transform, source.crs, source.gsd_m or predictor.metadata.gsd_m, workdir
    )
    margin_px = predictor.config.nodata_margin_m / (source.gsd_m or predictor.metadata.gsd_m)
    resampled = grid != shape
    read = GridReader(source, grid, step)
    cluster = {} if blocks is None else {"blocks": blocks}  # only real predictors take it

    def report(done: int, total: int) -> None:
        if progress is not None:
            progress(done / max(total, 1))

    if not resampled:

        def write(row: int, col: int, block: np.ndarray) -> None:
            prob.write(row, col, _drop_nodata(source, row, col, block, margin_px))

        predictor.predict_stream(grid, read, write, report, **cluster)
    else:
        grid_path = workdir / "model-grid.tif"
        with _grid_writer(grid_path, grid) as dst:

            def write_grid(row: int, col: int, block: np.ndarray) -> None:
                window = Window(col, row, block.shape[1], block.shape[0])
                dst.write(_quantise(block)[None], window=window)

            predictor.predict_stream(grid, read, write_grid, report, **cluster)
        _resample_back(grid_path, step, source, prob, margin_px)
        grid_path.unlink(missing_ok=True)
    if progress:
        progress(1.0)
    return prob


class GridReader:
    """Raw pixels and validity of windows of the model grid over a raster (resampled as they are
    read when the grids differ): the engine's one read path.

    Picklable: sent to a cluster worker it keeps only the raster's :class:`SourceSpec`, and the
    worker opens the raster itself (once per process), so a block reads its own window there
    through this same code.
    """

    def __init__(self, source: RasterSource, grid: Pair, step: tuple[float, float]) -> None:
        self._source: RasterSource | None = source
        self._spec = source.spec
        self._shape = (source.height, source.width)
        self._grid = grid
        self._step = step

    def __call__(self, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray | None]:
        source = self._source or _opened(self._spec)
        out = (rows.stop - rows.start, cols.stop - cols.start)
        resampled = self._grid != self._shape
        window = _scaled_window(rows, cols, self._step, self._shape)
        chip = source.read(window, out if resampled else None)
        return chip.data, chip.valid

    def __getstate__(self) -> dict:
        if self._spec is None:
            raise InvalidInputError("a raster not opened from a path cannot be read on a cluster")
        return {**self.__dict__, "_source": None}


@functools.lru_cache(maxsize=2)
def _opened(spec: SourceSpec | None) -> RasterSource:
    """A worker's open raster, kept for the job's next blocks; one clear error when the worker
    cannot see the client's file."""
    assert spec is not None
    where = f"a Dask worker on {socket.gethostname()}"
    try:
        source = spec.open()
    except InvalidInputError as exc:
        raise InvalidInputError(
            f"{where} cannot open the input ({exc}); workers read it themselves, "
            "at the same path (a shared filesystem)"
        ) from None
    if source.spec is None or source.spec.version != spec.version:
        source.close()
        raise InvalidInputError(
            f"{where} sees a different file at {spec.location} (size or modification time "
            "differ from the client's)"
        )
    return source


def _scaled_window(rows: slice, cols: slice, step: tuple[float, float], shape: Pair) -> Window:
    """The input window (fractional) under a window of the model grid."""
    row0, col0 = rows.start * step[0], cols.start * step[1]
    return Window(
        col0,
        row0,
        min(shape[1] - col0, (cols.stop - cols.start) * step[1]),
        min(shape[0] - row0, (rows.stop - rows.start) * step[0]),
    )


def _quantise(prob: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(prob, 0.0, 1.0) * 255.0).astype(np.uint8)


def _grid_writer(path: Path, grid: Pair) -> rasterio.io.DatasetWriter:
    """An uncompressed, tiled scratch GeoTIFF for the model-grid probabilities."""
    profile = {"driver": "GTiff", "height": grid[0], "width": grid[1], "count": 1}
    profile.update(dtype="uint8", BIGTIFF="IF_SAFER")
    if min(grid) >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return rasterio.open(path, "w", **profile)


def _resample_back(
    grid_path: Path,
    step: tuple[float, float],
    source: RasterSource,
    prob: ProbabilityMap,
    margin_px: float,
    size: int = 2048,
) -> None:
    """Bilinear (area-aware when shrinking) resampling of the model grid to the raster's grid."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        grid = rasterio.open(grid_path)
    with grid:
        for row in range(0, source.height, size):
            for col in range(0, source.width, size):
                h, w = min(size, source.height - row), min(size, source.width - col)
                window = Window(
                    col / step[1],
                    row / step[0],
                    min(grid.width - col / step[1], w / step[1]),
                    min(grid.height - row / step[0], h / step[0]),
                )
                data = grid.read(1, window=window, out_shape=(h, w), resampling=Resampling.bilinear)
                block = data.astype(np.float32) / 255.0
                prob.write(row, col, _drop_nodata(source, row, col, block, margin_px))


def _drop_nodata(
    source: RasterSource, row: int, col: int, block: np.ndarray, margin_px: float
) -> np.ndarray:
    """Zero the block where the raster has no data, or is within ``margin_px`` of no-data."""
    h, w = block.shape
    pad = math.ceil(margin_px) + 1 if margin_px > 0 else 0
    r0, c0 = max(0, row - pad), max(0, col - pad)
    r1, c1 = min(source.height, row + h + pad), min(source.width, col + w + pad)
    valid = source.read_valid(Window(c0, r0, c1 - c0, r1 - r0))
    if valid.all():
        return block
    keep = shrink_valid(valid, margin_px)[row - r0 : row - r0 + h, col - c0 : col - c0 + w]
    block[~keep] = 0.0
    return block


def extract_roads(
    prob: ProbabilityMap, config: VectorizeConfig, progress: Progress | None = None
) -> dict:
    """Vectorize a probability map into a GeoJSON FeatureCollection."""
    # imported here, not at the top: the vectorizer's libraries take a second to load, and
    # the first patch need not wait for them
    from sanchari_processes.vectorize import vectorize_probability

    tile_progress = None
    if progress is not None:

        def tile_progress(done: int, total: int) -> None:
            progress(done / max(total, 1))

    return vectorize_probability(
        prob, prob.transform, prob.crs, config, gsd_m=prob.gsd_m, progress=tile_progress
    )


@dataclass
class StageTimes:
    """Wall seconds per stage, summed over the rasters of a run (what ``predict`` reports)."""

    #: Reading, the model and blending into the probability map.
    model_s: float = 0.0
    #: Probability map -> skeleton graph -> GeoJSON features.
    vectorize_s: float = 0.0
    #: The result files (GeoJSON, previews, masks).
    write_s: float = 0.0


def run_source(
    source: RasterSource,
    predictor: Predictor,
    vcfg: VectorizeConfig,
    workdir: Path,
    *,
    model_progress: Progress | None = None,
    vector_progress: Progress | None = None,
    keep: Callable[[ProbabilityMap], None] | None = None,
    blocks: RemoteBlocks | None = None,
    times: StageTimes | None = None,
) -> dict:
    """The whole engine on an open source: probability → roads, with provenance attached.

    The CLI and the service jobs both run this, with what :func:`build_engine` configured;
    the provenance records the predictor's own configuration, so it names what ran. ``keep``
    sees the probability map before the scratch files go (the CLI's ``--mask-out`` and
    ``--prob-out``); the map lives in ``workdir``. ``times`` gets each stage's seconds added.
    """
    times = times if times is not None else StageTimes()
    start = time.perf_counter()
    prob = predict_probability(source, predictor, workdir, model_progress, blocks)
    modelled = time.perf_counter()
    collection = extract_roads(prob, vcfg, vector_progress)
    vectorized = time.perf_counter()
    if keep is not None:
        keep(prob)
    times.model_s += modelled - start
    times.vectorize_s += vectorized - modelled
    times.write_s += time.perf_counter() - vectorized
    collection["sanchari"] = provenance(predictor, source, vcfg)
    return collection
