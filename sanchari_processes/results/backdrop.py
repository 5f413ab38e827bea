"""The imagery under a job's map: a small picture on the web map's own grid.

The job's HTML page draws the roads over the imagery in a browser map (Web Mercator). An image
is placed there by two corners only, so a picture on the raster's own grid (UTM, Lambert, …)
would sit rotated against the roads; this one is warped to EPSG:3857 first, so it lies exactly
under them. It holds the imagery alone (the roads are drawn by the map, on top), with
transparency where the raster has no data, longest side at most ``max_side``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from pyproj import CRS, Transformer
from rasterio.enums import Resampling
from rasterio.transform import array_bounds
from rasterio.warp import calculate_default_transform, reproject
from rasterio.windows import Window

from sanchari_processes.sources.raster import RasterSource

#: The picture and its placement, in the job's folder.
BACKDROP_IMAGE = "map.png"
BACKDROP_INFO = "map.json"
WEB_MERCATOR = CRS.from_epsg(3857)


def write_backdrop(source: RasterSource, folder: Path, *, max_side: int = 1024) -> Path | None:
    """Write ``map.png`` and ``map.json`` (``{"image", "bounds": [[S, W], [N, E]]}``) into
    ``folder``; ``None`` (nothing written) for imagery without a CRS."""
    if source.crs is None:
        return None
    factor = max(1.0, max(source.height, source.width) / max_side)
    shape = (max(1, round(source.height / factor)), max(1, round(source.width / factor)))
    chip = source.read(Window(0, 0, source.width, source.height), out_shape=shape)
    rgb = np.clip(chip.data[:3], 0, 255).astype(np.uint8)
    if rgb.shape[0] < 3:
        rgb = np.repeat(rgb[:1], 3, axis=0)
    valid = chip.valid if chip.valid is not None else np.ones(shape, bool)
    bands = [*rgb, np.where(valid, 255, 0).astype(np.uint8)]
    height, width = shape
    west, south, east, north = array_bounds(height, width, chip.transform)
    _, out_w, out_h = calculate_default_transform(
        source.crs, WEB_MERCATOR, width, height, west, south, east, north
    )
    scale = max(1.0, max(out_w, out_h) / max_side)
    transform, out_w, out_h = calculate_default_transform(
        source.crs,
        WEB_MERCATOR,
        width,
        height,
        west,
        south,
        east,
        north,
        dst_width=max(1, round(out_w / scale)),
        dst_height=max(1, round(out_h / scale)),
    )
    warped = np.zeros((4, out_h, out_w), np.uint8)
    for index, data in enumerate(bands):
        reproject(
            data,
            warped[index],
            src_transform=chip.transform,
            src_crs=source.crs,
            dst_transform=transform,
            dst_crs=WEB_MERCATOR,
            resampling=Resampling.nearest if index == 3 else Resampling.bilinear,
            dst_nodata=0,
        )
    folder = Path(folder)
    image = Image.fromarray(np.ascontiguousarray(warped.transpose(1, 2, 0)), "RGBA")
    image.save(folder / BACKDROP_IMAGE, format="PNG")
    left, bottom, right, top = array_bounds(out_h, out_w, transform)
    to_lonlat = Transformer.from_crs(WEB_MERCATOR, CRS.from_epsg(4326), always_xy=True)
    (lon0, lon1), (lat0, lat1) = to_lonlat.transform([left, right], [bottom, top])
    info = {"image": BACKDROP_IMAGE, "bounds": [[lat0, lon0], [lat1, lon1]]}
    (folder / BACKDROP_INFO).write_text(json.dumps(info), encoding="utf-8")
    return folder / BACKDROP_IMAGE
