"""The user's roads burnt on the model grid: road, background, and what is ignored."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj import CRS

from sanchari_processes.adapt.labels import (
    BACKGROUND,
    IGNORE,
    ROAD,
    Grid,
    label_grid,
    read_roads,
    roads_from_geojson,
)
from sanchari_processes.errors import InvalidInputError
from tests.adapt.conftest import SIZE, road_lines_lonlat
from tests.synthetic import DEFAULT_TRANSFORM, write_geotiff

GRID = Grid((SIZE, SIZE), DEFAULT_TRANSFORM, CRS.from_epsg(32633), 0.5)
VALID = np.ones((SIZE, SIZE), bool)


def test_lines_in_another_crs_land_on_the_roads(scene: tuple[Path, Path]) -> None:
    labels = label_grid(read_roads(scene[1]), GRID, VALID, road_width_m=4.0, ignore_m=1.0)
    row = SIZE // 2
    assert (labels[row, 10:-10] == ROAD).all()  # the horizontal road, along its length
    assert labels[row + 4, SIZE // 2] == ROAD  # 4 px = 2 m from the centreline: inside 4 m
    assert labels[row + 5, SIZE // 2] == IGNORE  # the uncertain band beside it
    assert labels[row + 20, SIZE - 20] == BACKGROUND  # inside the default area, off the road


def test_the_default_area_is_the_roads_hull_grown(scene: tuple[Path, Path]) -> None:
    # a single road: its hull is a thin strip, grown by 10 m (20 px); beyond that nothing is taught
    collection = road_lines_lonlat()
    collection["features"] = collection["features"][:1]
    labels = label_grid(roads_from_geojson(collection), GRID, VALID, area_margin_m=10.0)
    row = SIZE // 2
    assert labels[row - 15, 50] == BACKGROUND and labels[row - 40, 50] == IGNORE


def test_an_area_limits_what_is_taught(scene: tuple[Path, Path]) -> None:
    left = shapely.box(*(DEFAULT_TRANSFORM * (0, SIZE)), *(DEFAULT_TRANSFORM * (SIZE / 2, 0)))
    labels = label_grid(read_roads(scene[1]), GRID, VALID, area=((left,), GRID.crs))
    assert (labels[:, SIZE // 2 + 2 :] == IGNORE).all()
    assert (labels[:, : SIZE // 2 - 2] != IGNORE).any()


def test_no_data_teaches_nothing(scene: tuple[Path, Path]) -> None:
    valid = VALID.copy()
    valid[:, :50] = False
    labels = label_grid(read_roads(scene[1]), GRID, valid)
    assert (labels[:, :50] == IGNORE).all()


def test_a_mask_raster_keeps_its_widths(tmp_path: Path) -> None:
    mask = np.zeros((1, SIZE, SIZE), np.uint8)
    mask[0, 100:110, :] = 255
    path = write_geotiff(tmp_path / "mask.tif", mask)
    labels = label_grid(read_roads(path), GRID, VALID, ignore_m=1.0)
    assert (labels[100:110, 5] == ROAD).all() and labels[98, 5] == IGNORE
    assert labels[50, 5] == BACKGROUND  # a mask is complete over its extent


def test_unreadable_roads_are_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "roads.geojson"
    bad.write_text("{not json")
    with pytest.raises(InvalidInputError, match="roads: cannot read"):
        read_roads(bad)
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    with pytest.raises(InvalidInputError, match="roads: no geometry"):
        read_roads(bad)
    with pytest.raises(InvalidInputError, match="not valid GeoJSON"):
        roads_from_geojson({"type": "LineString", "coordinates": "nope"})
