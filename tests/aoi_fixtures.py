"""Four adjacent synthetic scenes with one straight road crossing every seam, and an AOI.

The road runs from (row 60, col 0) to (row 400, col 511) of a 512 x 512 mosaic at 0.5 m (UTM
33N), cut into four 256 x 256 GeoTIFFs. With 80 m blocks (nine over the AOI) it crosses both
scene seams and four block edges, through five blocks, far (> 10 m) from every corner where four
blocks or scenes meet.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from affine import Affine
from pyproj import Transformer
from skimage.draw import line_aa

from sanchari_processes.config import InferenceConfig
from sanchari_processes.engine.build import EngineOptions
from tests.synthetic import write_geotiff

SIZE = 512
X0, Y0 = 500000.0, 4649776.0
GSD = 0.5
#: The AOI: the mosaic less 20 m on every side (metres, UTM 33N).
INSET_M = 20.0
#: Block side used by the tests (metres): 9 blocks over the AOI.
BLOCK_M = 80.0
#: Context around each block used by the tests (metres).
MARGIN_M = 32.0


def road_mosaic(seed: int = 0) -> np.ndarray:
    """``(3, 512, 512)`` uint8: textured ground and an 11 px grey road."""
    rng = np.random.default_rng(seed)
    img = np.empty((3, SIZE, SIZE), np.float32)
    img[0] = 90 + 20 * rng.random((SIZE, SIZE))
    img[1] = 110 + 20 * rng.random((SIZE, SIZE))
    img[2] = 70 + 20 * rng.random((SIZE, SIZE))
    for offset in range(-5, 6):
        rr, cc, _ = line_aa(60 + offset, 0, 400 + offset, SIZE - 1)
        img[:, rr, cc] = 190
    return img.astype(np.uint8)


def write_scenes(folder: Path) -> list[Path]:
    """The mosaic as four 256 x 256 GeoTIFFs in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    img, half = road_mosaic(), SIZE // 2
    paths = []
    for i in range(2):
        for j in range(2):
            transform = Affine(GSD, 0, X0 + j * half * GSD, 0, -GSD, Y0 - i * half * GSD)
            part = np.ascontiguousarray(
                img[:, i * half : (i + 1) * half, j * half : (j + 1) * half]
            )
            paths.append(write_geotiff(folder / f"scene_{i}{j}.tif", part, transform=transform))
    return paths


def write_mosaic(path: Path) -> Path:
    """The same pixels as one GeoTIFF (the single-mosaic run's input)."""
    return write_geotiff(path, road_mosaic(), transform=Affine(GSD, 0, X0, 0, -GSD, Y0))


def aoi_ring(inset_m: float = INSET_M, shift_m: float = 0.0) -> list[list[float]]:
    """The AOI's ring in lon/lat: the mosaic less ``inset_m``, moved ``shift_m`` east."""
    to_wgs84 = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    side = SIZE * GSD
    x0, x1 = X0 + inset_m + shift_m, X0 + side - inset_m + shift_m
    y0, y1 = Y0 - side + inset_m, Y0 - inset_m
    corners = [(x0, y1), (x1, y1), (x1, y0), (x0, y0), (x0, y1)]
    return [list(to_wgs84.transform(x, y)) for x, y in corners]


def write_aoi(path: Path, **kwargs: float) -> Path:
    feature = {
        "type": "Feature",
        "properties": {"name": "test district"},
        "geometry": {"type": "Polygon", "coordinates": [aoi_ring(**kwargs)]},
    }
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    return path


def tiny_options(weights: Path) -> EngineOptions:
    """The tiny random model (its lines are noise, but many, across every seam), in 128 px
    patches sixteen to a forward pass: a block in about a second."""
    inference = InferenceConfig(
        tta="none", device="cpu", backend="torch", patch_size=128, batch_size=16
    )
    return EngineOptions(weights=weights, inference=inference, threshold=0.52)
