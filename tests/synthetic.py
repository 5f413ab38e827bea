"""Small synthetic rasters for tests: roads drawn on a textured background, in any CRS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from skimage.draw import line_aa


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
) -> Path:
    """Write ``(bands, H, W)`` ``data`` as a GeoTIFF (tiled when large enough)."""
    bands, height, width = data.shape
    if transform is None:
        transform = Affine(0.5, 0, 500000.0, 0, -0.5, 4649776.0)
    profile = {
        "driver": "GTiff",
        "height": height,
        "width": width,
        "count": bands,
        "dtype": data.dtype.name,
        "transform": transform,
    }
    if crs:
        profile["crs"] = crs
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if colorinterp:
            dst.colorinterp = colorinterp
    return path
