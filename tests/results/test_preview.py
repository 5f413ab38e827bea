"""Preview PNGs: roads are drawn where they are, for georeferenced and plain images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pyproj import Transformer

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.results.preview import ROAD_COLOUR, render_preview
from sanchari_processes.sources import open_raster
from tests.synthetic import write_geotiff


def _is_road(pixels: np.ndarray) -> np.ndarray:
    return np.all(pixels == np.array(ROAD_COLOUR, np.uint8), axis=-1)


def test_line_in_lon_lat_is_drawn_on_its_row(tmp_path):
    path = write_geotiff(tmp_path / "utm.tif", np.zeros((3, 100, 200), np.uint8))
    with open_raster(path) as src:
        to_lonlat = Transformer.from_crs(src.crs, "EPSG:4326", always_xy=True)
        # Row 30 (pixel centres), from column 20 to column 180.
        xs, ys = src.transform @ (np.array([20.5, 180.5]), np.array([30.5, 30.5]))
        lon, lat = to_lonlat.transform(xs, ys)
        line = {"type": "LineString", "coordinates": list(zip(lon, lat, strict=True))}
        collection = {"type": "FeatureCollection", "features": [{"geometry": line}]}
        out = render_preview(src, collection, tmp_path / "p.png")
    pixels = np.asarray(Image.open(out).convert("RGB"))
    assert pixels.shape == (100, 200, 3)
    road_rows = np.nonzero(_is_road(pixels)[:, 100])[0]
    assert road_rows.size and abs(road_rows.mean() - 30.5) <= 1.0
    assert not _is_road(pixels)[70:, :].any()


def test_large_image_is_decimated_and_pixel_coordinates_work(tmp_path):
    path = write_geotiff(tmp_path / "plain.tif", np.zeros((3, 300, 600), np.uint8), crs=None)
    collection = {
        "type": "FeatureCollection",
        "sanchari:coordinates": "pixel",
        "features": [{"geometry": {"type": "LineString", "coordinates": [[0, 150], [600, 150]]}}],
    }
    with open_raster(path, gsd_m=0.5) as src:
        out = render_preview(src, collection, tmp_path / "p.png", max_side=300)
    pixels = np.asarray(Image.open(out).convert("RGB"))
    assert pixels.shape == (150, 300, 3)
    assert _is_road(pixels)[75, 10:290].all()


def test_missing_output_directory(tmp_path):
    path = write_geotiff(tmp_path / "a.tif", np.zeros((3, 10, 10), np.uint8))
    with open_raster(path) as src, pytest.raises(InvalidInputError, match="does not exist"):
        render_preview(src, {"features": []}, tmp_path / "no" / "p.png")
