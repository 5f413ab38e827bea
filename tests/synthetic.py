"""Synthetic rasters for tests and benchmarks: roads drawn on a textured background, in any CRS.

The one GeoTIFF writer of the repository's tests and benchmarks: small rasters are written from
an array, large ones (benchmarks) block by block so they never sit in memory whole.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window
from skimage.draw import line_aa

#: Where synthetic rasters lie unless a test says otherwise: UTM 33N, 0.5 m pixels.
DEFAULT_TRANSFORM = Affine(0.5, 0, 500000.0, 0, -0.5, 4649776.0)
#: Creation options of the benchmarks' large rasters (internally tiled, compressed).
TILED = {"tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "deflate"}


def road_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A ``(3, H, W)`` uint8 RGB image: green-brown noise with two grey crossing roads."""
    rng = np.random.default_rng(seed)
    img = np.empty((3, height, width), np.float32)
    img[0] = 90 + 20 * rng.random((height, width))
    img[1] = 110 + 20 * rng.random((height, width))
    img[2] = 70 + 20 * rng.random((height, width))
    for offset in range(-4, 5):
        rr, cc, _ = line_aa(height // 2 + offset, 0, height // 2 + offset, width - 1)
        img[:, rr, cc] = 180
        rr, cc, _ = line_aa(0, width // 3 + offset, height - 1, width // 3 + offset)
        img[:, rr, cc] = 180
    return img.astype(np.uint8)


def write_geotiff(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None = "EPSG:32633",
    transform: Affine | None = None,
    nodata: float | None = None,
    colorinterp: list | None = None,
    **creation: Any,
) -> Path:
    """Write ``(bands, H, W)`` ``data`` as a GeoTIFF; ``creation`` adds GDAL creation options."""
    bands, height, width = data.shape
    profile = _profile(bands, height, width, data.dtype.name, crs, transform, nodata, creation)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if colorinterp:
            dst.colorinterp = colorinterp
    return path


def write_geotiff_blocks(
    path: Path,
    size: int,
    block_at: Callable[[int, int, int, int], np.ndarray],
    *,
    block: int = 1024,
    bands: int = 3,
    dtype: str = "uint8",
    crs: str | None = "EPSG:32633",
    transform: Affine | None = None,
    **creation: Any,
) -> Path:
    """A ``size`` x ``size`` GeoTIFF written ``block`` pixels at a time (too large to hold).

    ``block_at(row, col, height, width)`` gives the ``(bands, height, width)`` pixels there.
    """
    profile = _profile(bands, size, size, dtype, crs, transform, None, creation)
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, size, block):
            for col in range(0, size, block):
                h, w = min(block, size - row), min(block, size - col)
                dst.write(block_at(row, col, h, w), window=Window(col, row, w, h))
    return path


def _profile(
    bands: int,
    height: int,
    width: int,
    dtype: str,
    crs: str | None,
    transform: Affine | None,
    nodata: float | None,
    creation: dict[str, Any],
) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "height": height,
        "width": width,
        "count": bands,
        "dtype": dtype,
        "transform": DEFAULT_TRANSFORM if transform is None else transform,
    }
    if crs:
        profile["crs"] = crs
    if nodata is not None:
        profile["nodata"] = nodata
    return profile | creation
