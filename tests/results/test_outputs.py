"""Output formats: the table, GeoPackage/FlatGeobuf roads, mask and probability COGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from affine import Affine
from pyproj import CRS
from rio_cogeo.cogeo import cog_validate

from sanchari_processes.engine.probability import ProbabilityMap
from sanchari_processes.errors import InvalidInputError
from sanchari_processes.results import COG, FGB, GEOJSON, GPKG, OUTPUTS
from sanchari_processes.results.cog import write_mask_cog, write_probability_cog
from sanchari_processes.results.vector import write_lines

COLLECTION = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": [[2.28, 48.98], [2.281, 48.981]]},
            "properties": {
                "length_m": 131.5,
                "mean_probability": 0.8,
                "u": 0,
                "v": 1,
                "u_degree": 1,
                "v_degree": 3,
            },
        }
    ],
}


def test_formats_by_media_type() -> None:
    roads = OUTPUTS["roads"]
    assert roads.format_for(None).media_type == GEOJSON
    assert roads.format_for("application/json").media_type == GEOJSON
    assert roads.format_for("Application/GeoPackage+SQLite3").media_type == GPKG
    assert OUTPUTS["mask"].format_for("image/tiff;application=geotiff").media_type == COG
    with pytest.raises(InvalidInputError, match="one of"):
        roads.format_for("image/png")


@pytest.mark.parametrize(("name", "driver"), [("r.gpkg", "GPKG"), ("r.fgb", "FlatGeobuf")])
def test_roads_as_gpkg_and_fgb(tmp_path: Path, name: str, driver: str) -> None:
    path = write_lines(COLLECTION, tmp_path / name)
    info = pyogrio.read_info(path)
    assert info["driver"] == driver and info["features"] == 1 and info["crs"] == "EPSG:4326"
    assert info["geometry_type"] == "LineString" and "length_m" in list(info["fields"])
    empty = write_lines({"type": "FeatureCollection", "features": []}, tmp_path / f"e{name}")
    assert pyogrio.read_info(empty, force_feature_count=True)["features"] == 0
    assert FGB in {f.media_type for f in OUTPUTS["roads"].formats}


def test_mask_and_probability_are_valid_cogs(tmp_path: Path) -> None:
    prob = ProbabilityMap.scratch(
        (600, 700), Affine(0.5, 0, 500000, 0, -0.5, 4649776), CRS.from_epsg(32633), 0.5, tmp_path
    )
    values = np.linspace(0, 1, 600 * 700, dtype=np.float32).reshape(600, 700)
    prob.write(0, 0, values)
    mask = write_mask_cog(prob, tmp_path / "mask.tif", 0.5, tmp_path)
    probability = write_probability_cog(prob, tmp_path / "probability.tif", tmp_path)
    for path in (mask, probability):
        valid, errors, _ = cog_validate(str(path), quiet=True)
        assert valid, errors
    with rasterio.open(mask) as ds:
        data = ds.read(1)
        assert ds.crs.to_epsg() == 32633 and set(np.unique(data)) == {0, 255}
        assert ds.overviews(1)  # overviews for zoomed-out views
        assert (data == 255).mean() == pytest.approx(0.5, abs=0.01)
    with rasterio.open(probability) as ds:
        assert ds.dtypes[0] == "float32" and float(ds.read(1).max()) == pytest.approx(1.0)
