"""The one engine every entry point runs: raster source → probability map → road network.

Large rasters stream window by window: each window is read with a halo of context, resampled to
the model's ground sample distance, predicted with the sliding window, mapped back to the input
grid, cropped to its core and written into a disk-backed probability map. Memory therefore
depends on the window size, not on the raster size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.windows import Window
from skimage.transform import resize

from sanchari_processes.config import InferenceConfig, VectorizeConfig
from sanchari_processes.inference import Predictor
from sanchari_processes.probability import ProbabilityMap
from sanchari_processes.provenance import provenance
from sanchari_processes.sources.raster import RasterSource
from sanchari_processes.vectorize import vectorize_probability

#: Progress callbacks receive the fraction of the work done, 0..1.
Progress = Callable[[float], None]
#: Input and model resolutions closer than this are treated as equal (no resampling).
_GSD_TOLERANCE = 0.02


@dataclass(frozen=True)
class Block:
    """One streamed window: ``core`` is written to the output, ``read`` adds the halo."""

    core: Window
    read: Window


#: A (rows, columns) pair: block sides, halos and scales may differ per axis.
Pair = tuple[int, int]


def plan_blocks(height: int, width: int, size: int | Pair, halo: int | Pair) -> list[Block]:
    """Cover a ``height × width`` raster with ``size`` blocks, each read with ``halo`` context."""
    (size_r, size_c), (halo_r, halo_c) = _pair(size), _pair(halo)
    blocks = []
    for row in range(0, height, size_r):
        for col in range(0, width, size_c):
            h, w = min(size_r, height - row), min(size_c, width - col)
            r0, c0 = max(0, row - halo_r), max(0, col - halo_c)
            r1, c1 = min(height, row + h + halo_r), min(width, col + w + halo_c)
            blocks.append(Block(Window(col, row, w, h), Window(c0, r0, c1 - c0, r1 - r0)))
    return blocks


def _pair(value: int | Pair) -> Pair:
    return (value, value) if isinstance(value, int) else value


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


def predict_probability(
    source: RasterSource,
    predictor: Predictor,
    config: InferenceConfig,
    workdir: Path,
    progress: Progress | None = None,
) -> ProbabilityMap:
    """Road probability for the whole ``source`` on its own grid, streamed block by block."""
    scale = model_scales(source.pixel_sizes_m, predictor.metadata.gsd_m)
    size = (
        max(16, round(config.stream_window / scale[0])),
        max(16, round(config.stream_window / scale[1])),
    )
    halo = (math.ceil(config.stream_halo / scale[0]), math.ceil(config.stream_halo / scale[1]))
    blocks = plan_blocks(source.height, source.width, size, halo)
    prob = ProbabilityMap.scratch(
        (source.height, source.width),
        source.transform,
        source.crs,
        source.gsd_m or predictor.metadata.gsd_m,
        workdir,
    )
    for index, block in enumerate(blocks):
        block_progress = _sub_progress(progress, index, len(blocks))
        prob.write(
            int(block.core.row_off),
            int(block.core.col_off),
            _predict_block(source, predictor, block, halo, scale, block_progress),
        )
    if progress:
        progress(1.0)
    return prob


def _predict_block(
    source: RasterSource,
    predictor: Predictor,
    block: Block,
    halo: Pair,
    scale: tuple[float, float],
    progress: Callable[[int, int], None] | None,
) -> np.ndarray:
    """Predict one block: read with halo, pad the halo the raster lacks, predict, crop core."""
    read = block.read
    full_shape = (int(read.height), int(read.width))
    model_shape = (max(1, round(read.height * scale[0])), max(1, round(read.width * scale[1])))
    chip = source.read(read, model_shape)
    # Blocks on the raster's edge get their missing context by reflection, so every block
    # is predicted the same way and the sliding window needs no padding of its own.
    pad = _missing_halo(block, source.height, source.width, halo, scale)
    data = np.pad(chip.data, ((0, 0), pad[0], pad[1]), mode="reflect")
    valid = np.pad(chip.valid, pad, mode="reflect")
    prob = predictor.predict(data, valid, progress=progress, margin=0)
    prob = prob[pad[0][0] : prob.shape[0] - pad[0][1], pad[1][0] : prob.shape[1] - pad[1][1]]
    if model_shape != full_shape:
        prob = resize(
            prob,
            full_shape,
            order=1,
            mode="edge",
            anti_aliasing=max(scale) > 1,
            preserve_range=True,
        ).astype(np.float32)
        prob[~source.read_valid(read)] = 0.0
    r0 = int(block.core.row_off - read.row_off)
    c0 = int(block.core.col_off - read.col_off)
    return prob[r0 : r0 + int(block.core.height), c0 : c0 + int(block.core.width)]


def _missing_halo(
    block: Block, height: int, width: int, halo: Pair, scale: tuple[float, float]
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Model pixels of halo to add by reflection on each side where the raster ends."""
    core, read = block.core, block.read

    def side(have: float, axis: int) -> int:
        return max(0, round((halo[axis] - have) * scale[axis]))

    return (
        (
            side(core.row_off - read.row_off, 0),
            side(read.row_off + read.height - core.row_off - core.height, 0),
        ),
        (
            side(core.col_off - read.col_off, 1),
            side(read.col_off + read.width - core.col_off - core.width, 1),
        ),
    )


def _sub_progress(
    progress: Progress | None, index: int, count: int
) -> Callable[[int, int], None] | None:
    if progress is None:
        return None

    def report(done: int, total: int) -> None:
        progress((index + done / max(total, 1)) / count)

    return report


def extract_roads(
    prob: ProbabilityMap, config: VectorizeConfig, progress: Progress | None = None
) -> dict:
    """Vectorize a probability map into a GeoJSON FeatureCollection."""
    tile_progress = None
    if progress is not None:

        def tile_progress(done: int, total: int) -> None:
            progress(done / max(total, 1))

    return vectorize_probability(
        prob, prob.transform, prob.crs, config, gsd_m=prob.gsd_m, progress=tile_progress
    )


def run_source(
    source: RasterSource,
    predictor: Predictor,
    icfg: InferenceConfig,
    vcfg: VectorizeConfig,
    workdir: Path,
    *,
    model_progress: Progress | None = None,
    vector_progress: Progress | None = None,
    keep: Callable[[ProbabilityMap], None] | None = None,
) -> dict:
    """The whole engine on an open source: probability → roads, with provenance attached.

    The CLI and the service jobs both run this. ``keep`` sees the probability map before the
    scratch files go (the CLI's ``--mask-out``/``--prob-out``); the map lives in ``workdir``.
    """
    prob = predict_probability(source, predictor, icfg, workdir, model_progress)
    collection = extract_roads(prob, vcfg, vector_progress)
    if keep is not None:
        keep(prob)
    collection["sanchari"] = provenance(predictor.metadata, source, icfg, vcfg)
    return collection


def iter_inputs(paths: list[Path]) -> Iterator[Path]:
    """Expand directories into the rasters they hold (GeoTIFF, JPEG, PNG), sorted by name."""
    suffixes = {".tif", ".tiff", ".jpg", ".jpeg", ".png", ".jp2", ".vrt"}
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes)
        else:
            yield path
