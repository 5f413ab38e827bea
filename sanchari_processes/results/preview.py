"""A picture of the result: the image with the extracted roads drawn over it.

For people who would rather look than read GeoJSON. The image is read decimated (longest side
at most ``max_side``), so a preview of a huge raster costs little memory.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from affine import Affine
from PIL import Image, ImageDraw
from pyproj import Transformer
from rasterio.windows import Window

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.sources.raster import RasterSource

Convert = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

ROAD_COLOUR = (255, 40, 40)
NODE_COLOUR = (255, 230, 0)


def render_preview(
    source: RasterSource, collection: dict, path: Path, *, max_side: int = 2048
) -> Path:
    """Draw ``collection``'s lines over ``source``'s image and save a PNG at ``path``."""
    path = Path(path)
    if not path.absolute().parent.is_dir():
        raise InvalidInputError(f"output directory does not exist: {path.parent}")
    factor = max(1.0, max(source.height, source.width) / max_side)
    shape = (max(1, round(source.height / factor)), max(1, round(source.width / factor)))
    chip = source.read(Window(0, 0, source.width, source.height), out_shape=shape)
    rgb = np.clip(chip.data[:3], 0, 255).astype(np.uint8).transpose(1, 2, 0)
    image = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    draw = ImageDraw.Draw(image)
    to_pixel = _to_pixel(source, chip.transform, collection)
    width = max(2, round(min(shape) / 300))
    for feature in collection.get("features", []):
        coords = feature["geometry"]["coordinates"]
        xs, ys = to_pixel(np.array([c[0] for c in coords]), np.array([c[1] for c in coords]))
        points = list(zip(xs.tolist(), ys.tolist(), strict=True))
        draw.line(points, fill=ROAD_COLOUR, width=width, joint="curve")
        for x, y in (points[0], points[-1]):
            draw.ellipse((x - width, y - width, x + width, y + width), fill=NODE_COLOUR)
    image.save(path, format="PNG")
    return path


def _to_pixel(source: RasterSource, transform: Affine, collection: dict) -> Convert:
    """Map the collection's coordinates to preview pixels (lon/lat or raw pixel coordinates)."""
    inverse = ~transform
    if source.crs is None or collection.get("sanchari:coordinates") == "pixel":
        to_crs = None
    else:
        to_crs = Transformer.from_crs("EPSG:4326", source.crs, always_xy=True)

    def convert(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if to_crs is not None:
            x, y = to_crs.transform(x, y)
        col, row = inverse @ (np.asarray(x), np.asarray(y))
        return np.asarray(col), np.asarray(row)

    return convert
