"""A block's window: warped onto the grid from every scene that meets it, best first, no-data
(nodata values, alpha bands) filled from the next scene, nothing where no scene has data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasterio.enums import ColorInterp
from shapely.geometry import box

from sanchari_processes.aoi.grid import BlockRef, make_grid
from sanchari_processes.aoi.scenes import find_scenes
from sanchari_processes.aoi.tasks import read_window
from sanchari_processes.sources.settings import RemoteSettings
from tests.synthetic import write_geotiff

RGBA = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]


@pytest.mark.parametrize("hole", ["nodata", "alpha"])
def test_the_best_scene_wins_and_its_holes_come_from_the_next(tmp_path: Path, hole: str) -> None:
    # a fine scene (0.5 m, value 200) with a hole in its left half, over a coarser one (1 m,
    # value 100) in another CRS; the window starts where neither has data
    fine = np.full((3, 64, 64), 200, np.uint8)
    transform = Affine(0.5, 0, 500000.0, 0, -0.5, 4649760.0)  # one 32 m block of the lattice
    if hole == "nodata":
        fine[:, :, :32] = 0
        write_geotiff(tmp_path / "fine.tif", fine, transform=transform, nodata=0)
    else:
        alpha = np.full((1, 64, 64), 255, np.uint8)
        alpha[:, :, :32] = 0
        rgba = np.concatenate([fine, alpha])
        write_geotiff(tmp_path / "fine.tif", rgba, transform=transform, colorinterp=RGBA)
    coarse = np.full((3, 40, 40), 100, np.uint8)
    write_geotiff(
        tmp_path / "coarse.tif", coarse, crs="EPSG:32633",
        transform=Affine(1.0, 0, 499990.0, 0, -1.0, 4649780.0),
    )  # fmt: skip
    scenes = find_scenes([str(tmp_path)])
    assert [Path(s.location).name for s in scenes] == ["fine.tif", "coarse.tif"]
    aoi = box(14.9, 41.9, 15.1, 42.1)
    grid = make_grid(aoi, 0.5, 32.0, 0.0)  # 64 px blocks, no margin
    ix, iy = 500000 // 32, 4649728 // 32  # the block the fine scene fills
    block = BlockRef(ix, iy, box(*grid.core(ix, iy)), (0, 1))
    image, valid = read_window(tuple(scenes), grid, block, RemoteSettings())
    assert image.shape == (3, 64, 64) and valid.shape == (64, 64)
    # the fine scene where it has data; the coarse one (down to y = 4649740, row 40) in its
    # hole; nothing below that in the hole
    assert np.all(image[:, 2:62, 34:62] == 200) and valid[:, 32:].all()
    assert np.all(np.abs(image[:, 2:38, 2:30] - 100) <= 1) and valid[:40, :32].all()
    assert not valid[41:, :32].any() and np.all(image[:, 41:, :32] == 0)
