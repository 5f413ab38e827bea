"""The GeoTIFF catalogue: index, choice of file, windows across files, path safety."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import CRS

from sanchari_processes.errors import (
    InvalidInputError,
    OutsideCoverageError,
    RequestTooLargeError,
)
from sanchari_processes.sources.catalogue import Catalogue
from sanchari_processes.sources.mosaic import materialise
from tests.service_fixtures import utm_point
from tests.synthetic import road_image, write_geotiff

UTM = Affine(0.5, 0, 500000.0, 0, -0.5, 4649776.0)


def _flat(value: int, size: int = 128) -> np.ndarray:
    return np.full((3, size, size), value, np.uint8)


def test_point_window_and_limits(tmp_path: Path) -> None:
    write_geotiff(tmp_path / "a.tif", road_image(256, 256))
    cat = Catalogue(tmp_path)
    lon, lat = utm_point(128, 128)
    plan = cat.plan_point(lon, lat, 64, 10_000)
    assert (plan.width, plan.height) == (64, 64)
    assert plan.transform.c == pytest.approx(500000 + 96 * 0.5)
    edge = cat.plan_point(*utm_point(10, 10), 64, 10_000)  # clipped to the raster
    assert (edge.width, edge.height) == (42, 42)
    with pytest.raises(RequestTooLargeError):
        cat.plan_point(lon, lat, 128, 10_000)
    with pytest.raises(OutsideCoverageError):
        cat.plan_point(0.0, 0.0, 64, 10_000)


def test_finest_then_newest_file_wins(tmp_path: Path) -> None:
    write_geotiff(
        tmp_path / "coarse.tif", _flat(10), transform=Affine(1, 0, 500000, 0, -1, 4649776)
    )
    write_geotiff(tmp_path / "old.tif", _flat(20), transform=UTM)
    write_geotiff(tmp_path / "new.tif", _flat(30), transform=UTM)
    os.utime(tmp_path / "old.tif", (1e9, 1e9))
    cat = Catalogue(tmp_path, rescan_s=0)
    plan = cat.plan_point(*utm_point(32, 32), 32, 10_000)
    assert plan.sources[0].name == "new.tif"
    scratch = tmp_path.parent / f"{tmp_path.name}-scratch"
    scratch.mkdir()
    with rasterio.open(materialise(plan, scratch)) as ds:
        assert ds.read(1).min() == 30
    (tmp_path / "new.tif").unlink()  # re-indexed when files change
    assert cat.plan_point(*utm_point(32, 32), 32, 10_000).sources[0].name == "old.tif"


def test_window_across_two_files_in_two_crss(tmp_path: Path) -> None:
    write_geotiff(tmp_path / "left.tif", _flat(50), transform=UTM)
    # The right neighbour is stored in EPSG:4326; it is warped onto the left file's grid.
    right_utm = Affine(0.5, 0, 500064.0, 0, -0.5, 4649776.0)
    with rasterio.open(tmp_path / "left.tif") as ds:
        profile = ds.profile
    from rasterio.warp import calculate_default_transform, reproject

    dst_t, w, h = calculate_default_transform(
        "EPSG:32633", "EPSG:4326", 128, 128, *rasterio.transform.array_bounds(128, 128, right_utm)
    )
    data = np.zeros((3, h, w), np.uint8)
    for band in range(3):
        reproject(
            _flat(200)[band],
            data[band],
            src_transform=right_utm,
            src_crs="EPSG:32633",
            dst_transform=dst_t,
            dst_crs="EPSG:4326",
        )
    profile.update(crs="EPSG:4326", transform=dst_t, width=w, height=h, nodata=0)
    with rasterio.open(tmp_path / "right.tif", "w", **profile) as dst:
        dst.write(data)
    cat = Catalogue(tmp_path)
    plan = cat.plan_point(*utm_point(128, 64), 96, 100_000)  # the seam at column 128
    assert [p.name for p in plan.sources] == ["left.tif", "right.tif"]
    assert CRS.from_wkt(plan.crs_wkt).to_epsg() == 32633
    with rasterio.open(materialise(plan, tmp_path)) as ds:
        band = ds.read(1)
    assert (band[:, :40] == 50).all()  # from the left file
    assert (band[10:-10, 60:90] == 200).all()  # from the right file, warped


def test_bbox_plan_and_names(tmp_path: Path) -> None:
    write_geotiff(tmp_path / "a.tif", road_image(128, 128))
    (tmp_path / "sub").mkdir()
    write_geotiff(tmp_path / "sub" / "b.tif", road_image(128, 128))
    cat = Catalogue(tmp_path)
    plan = cat.plan_bbox((500010, 4649736, 500030, 4649766), CRS.from_epsg(32633), 10_000)
    assert (plan.width, plan.height) == (40, 60)
    assert cat.plan_file("sub/b.tif", 100_000).whole_file
    for bad in ("../a.tif", "/etc/a.tif", "C:/a.tif", "a.png", "sub/../../x.tif"):
        with pytest.raises(InvalidInputError):
            cat.resolve_name(bad)
    with pytest.raises(OutsideCoverageError):
        cat.resolve_name("nope.tif")
    with pytest.raises(RequestTooLargeError):
        cat.plan_file("a.tif", 1000)
