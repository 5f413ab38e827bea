"""Road probability raster → road graph → GeoJSON centrelines.

Pipeline (lengths from :class:`~sanchari_processes.config.VectorizeConfig`, in metres, converted
to pixels with the ground sample distance):

1. :mod:`.mask` threshold, fill small holes, remove small objects, close, skeletonize;
2. :mod:`.tiles` do that tile by tile with a halo and stitch the sknw graphs into one;
3. :mod:`.graph` prune spurs, collapse false loops and redundant parallels, merge degree-2 nodes;
4. :mod:`.bridge` join dead ends across small, collinear gaps, then clean again;
5. :mod:`.geojson` simplify, georeference and write an EPSG:4326 FeatureCollection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import networkx as nx
import numpy as np
from affine import Affine
from pyproj import CRS
from skimage.draw import line as draw_line

from sanchari_processes.chip import pixel_size_m
from sanchari_processes.config import VectorizeConfig
from sanchari_processes.errors import InvalidInputError
from sanchari_processes.vectorize.bridge import LineSampler, bridge_gaps
from sanchari_processes.vectorize.geojson import graph_to_geojson
from sanchari_processes.vectorize.graph import clean_graph, enable_jit_cache
from sanchari_processes.vectorize.params import PixelParams
from sanchari_processes.vectorize.tiles import Progress, build_graph

__all__ = ["PixelParams", "road_graph", "vectorize_probability"]


def _raster_shape(prob: Any, valid: Any) -> tuple[int, int]:
    """The 2-D shape of ``prob``, checked against ``valid``."""
    shape = getattr(prob, "shape", None)
    if shape is None or len(shape) != 2:
        raise InvalidInputError(f"probability must be a 2-D array, got shape {shape}")
    rows, cols = int(shape[0]), int(shape[1])
    if rows < 1 or cols < 1:
        raise InvalidInputError(f"probability raster is empty (shape {rows} x {cols})")
    if valid is not None and tuple(getattr(valid, "shape", ())) != (rows, cols):
        raise InvalidInputError(
            f"valid mask shape {getattr(valid, 'shape', None)} != probability shape {shape}"
        )
    return rows, cols


def _line_sampler(prob: Any, valid: Any, shape: tuple[int, int]) -> LineSampler:
    """Probability under straight bridge lines, read through small windows of ``prob``."""

    def sample(start: np.ndarray, end: np.ndarray) -> tuple[float, int]:
        ends = np.clip(np.rint([start, end]), 0, np.array(shape) - 1).astype(int).tolist()
        (r0, c0), (r1, c1) = ends  # plain ints: adapters slice rasters with them
        rr, cc = draw_line(r0, c0, r1, c1)
        top, left = min(r0, r1), min(c0, c1)
        bottom, right = max(r0, r1) + 1, max(c0, c1) + 1
        window = np.asarray(prob[top:bottom, left:right], dtype=np.float64)
        values = np.nan_to_num(window[rr - top, cc - left])
        if valid is not None:
            values = (
                values * np.asarray(valid[top:bottom, left:right], dtype=bool)[rr - top, cc - left]
            )
        return float(values.sum()), len(values)

    return sample


def road_graph(
    prob: Any,
    params: PixelParams,
    *,
    valid: Any = None,
    progress: Progress | None = None,
) -> nx.MultiGraph:
    """The cleaned, bridged road graph in pixel coordinates (see :mod:`.graph` for attributes).

    ``prob`` and ``valid`` are read only through ``[r0:r1, c0:c1]`` windows, one tile at a time.
    """
    shape = _raster_shape(prob, valid)
    g = build_graph(prob, valid, shape, params, progress)
    clean_graph(g, params)
    if bridge_gaps(g, params, shape, _line_sampler(prob, valid, shape)):
        clean_graph(g, params)
    return g


def vectorize_probability(
    prob: Any,
    transform: Affine,
    crs: CRS | None,
    config: VectorizeConfig,
    *,
    gsd_m: float | None = None,
    valid: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Vectorize a road probability raster into an RFC 7946 GeoJSON FeatureCollection.

    ``prob`` is any 2-D array-like whose ``[r0:r1, c0:c1]`` slices are probabilities in 0..1
    (``np.ndarray``, ``np.memmap`` or a lazy raster adapter: it is read tile by tile, never whole).
    ``valid`` (same indexing, bool) marks pixels with data; elsewhere there is no road. ``gsd_m``
    (metres per pixel) defaults to the raster's own and is required when ``crs`` is ``None``, in
    which case coordinates stay in pixel space. ``progress(done, total)`` is called per tile.

    Features are graph edges: ``length_m``, ``mean_probability`` and the end nodes ``u``, ``v``
    with their degrees. Raises :class:`InvalidInputError` for unusable input.
    """
    shape = _raster_shape(prob, valid)
    if crs is not None and not isinstance(crs, CRS):
        crs = CRS.from_user_input(crs)  # e.g. a rasterio CRS
    if gsd_m is None:
        if crs is None:
            raise InvalidInputError("gsd_m (metres per pixel) is required without a CRS")
        gsd_m = pixel_size_m(transform, crs, shape)
    params = PixelParams.from_config(config, float(gsd_m))
    if config.jit_cache is not None:
        enable_jit_cache(config.jit_cache)
    bar = None
    if progress is None and config.progress:
        from tqdm import tqdm

        bar = tqdm(desc="vectorize", unit="tile")

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

    try:
        g = road_graph(prob, params, valid=valid, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    return graph_to_geojson(g, transform, crs, params.gsd_m, params.simplify_px)
