"""A small georeferenced scene with its two roads as lines (UTM 33N, 0.5 m: the tiny model's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyproj import Transformer

from tests.synthetic import DEFAULT_TRANSFORM, road_image, write_geotiff

SIZE = 256


def road_lines_lonlat() -> dict:
    """The two roads of :func:`road_image` (row SIZE/2, column SIZE/3) as WGS 84 GeoJSON."""
    to_ll = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)

    def line(p0: tuple[float, float], p1: tuple[float, float]) -> dict:
        pts = [to_ll.transform(*(DEFAULT_TRANSFORM * p)) for p in (p0, p1)]
        return {
            "type": "Feature",
            "properties": {},
            "geometry": {"type": "LineString", "coordinates": pts},
        }

    half = SIZE / 2 + 0.5
    third = SIZE // 3 + 0.5
    return {
        "type": "FeatureCollection",
        "features": [line((0, half), (SIZE, half)), line((third, 0), (third, SIZE))],
    }


@pytest.fixture
def scene(tmp_path: Path) -> tuple[Path, Path]:
    """``(image.tif, roads.geojson)``."""
    image = write_geotiff(tmp_path / "scene.tif", road_image(SIZE, SIZE))
    roads = tmp_path / "roads.geojson"
    roads.write_text(json.dumps(road_lines_lonlat()))
    return image, roads
