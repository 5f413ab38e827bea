"""The AOI and its grid: one lattice per CRS, the UTM zone by default, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shapely.geometry import box

from sanchari_processes.aoi.grid import (
    load_aoi,
    make_grid,
    parse_crs,
    plan_blocks,
    to_grid,
    utm_crs,
)
from sanchari_processes.errors import InvalidInputError


def test_the_utm_zone_of_the_centroid() -> None:
    assert utm_crs(15.1, 42.0).to_epsg() == 32633
    assert utm_crs(-43.2, -22.9).to_epsg() == 32723
    assert utm_crs(180.0, 0.0).to_epsg() == 32660


def test_blocks_lie_on_one_lattice_whatever_the_aoi() -> None:
    aoi = box(15.0, 42.0, 15.02, 42.01)
    grid = make_grid(aoi, 0.5, 1000.0, 64.0)
    assert grid.crs.to_epsg() == 32633 and grid.block_px == 2000 and grid.margin_px == 128
    area = to_grid(aoi, grid)
    blocks = plan_blocks(area, grid, [area.buffer(5000)])
    cores = [box(*grid.core(b.ix, b.iy)) for b in blocks]
    # every block's core meets the AOI; the cores tile it without overlap
    assert all(c.intersects(area) for c in cores)
    assert sum(b.km2 for b in blocks) == pytest.approx(area.area / 1e6)
    smaller = plan_blocks(to_grid(box(15.005, 42.002, 15.01, 42.005), grid), grid, [area])
    assert {b.name for b in smaller} <= {b.name for b in blocks}
    transform = grid.window_transform(blocks[0].ix, blocks[0].iy)
    assert transform.c == grid.core(blocks[0].ix, blocks[0].iy)[0] - 64.0


def test_blocks_without_imagery_are_left_out() -> None:
    aoi = box(15.0, 42.0, 15.02, 42.01)
    grid = make_grid(aoi, 0.5, 500.0, 64.0)
    area = to_grid(aoi, grid)
    left, bottom, right, top = area.bounds
    west = box(left, bottom, (left + right) / 2, top)
    half = plan_blocks(area, grid, [west])
    assert 0 < len(half) < len(plan_blocks(area, grid, [area]))
    assert all(b.scenes == (0,) for b in half)
    assert plan_blocks(area, grid, [box(0, 0, 10, 10)]) == []


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "aoi.geojson"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


POLYGON = {"type": "Polygon", "coordinates": [[[15, 42], [15.1, 42], [15.1, 42.1], [15, 42]]]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "not valid GeoJSON"),
        ({"type": "Point", "coordinates": [15, 42]}, "Point is not an area"),
        ({"type": "FeatureCollection", "features": []}, "has no features"),
        (
            {
                **POLYGON,
                "coordinates": [
                    [[4649776, 500000], [4649800, 500000], [4649800, 500100], [4649776, 500000]]
                ],
            },
            "not longitude/latitude",
        ),
        (
            {**POLYGON, "crs": {"type": "name", "properties": {"name": "EPSG:999999"}}},
            "unknown CRS",
        ),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
            "not valid .*Self-intersection",
        ),
        ({"type": "Polygon", "coordinates": "x"}, "not a valid GeoJSON geometry"),
        ([1, 2], "not a GeoJSON object"),
    ],
)
def test_a_bad_aoi_is_one_clear_error(tmp_path: Path, data: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        load_aoi(write(tmp_path, data))


def test_an_aoi_in_a_named_crs_is_reprojected(tmp_path: Path) -> None:
    utm = {
        "type": "Polygon",
        "crs": {"type": "name", "properties": {"name": "EPSG:32633"}},
        "coordinates": [[[500000, 4649776], [501000, 4649776], [501000, 4650776],
                         [500000, 4649776]]],
    }  # fmt: skip
    aoi = load_aoi(write(tmp_path, utm))
    assert 14.99 < aoi.bounds[0] < 15.01 and 41.99 < aoi.bounds[1] < 42.01


def test_grid_crs_must_be_known_and_projected() -> None:
    with pytest.raises(InvalidInputError, match="unknown CRS"):
        parse_crs("EPSG:0")
    with pytest.raises(InvalidInputError, match="projected"):
        parse_crs("EPSG:4326")
    assert parse_crs("EPSG:3857").to_epsg() == 3857
