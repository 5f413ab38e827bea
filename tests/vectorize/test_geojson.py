"""GeoJSON output: RFC 7946 lon/lat, valid geometries, properties, and input validation."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import shapely
from affine import Affine
from pyproj import CRS, Geod
from rasterio.warp import transform_bounds

from sanchari_processes.config import VectorizeConfig
from sanchari_processes.errors import InvalidInputError
from sanchari_processes.vectorize import vectorize_probability
from tests.vectorize.test_graph import CONFIG, GSD, draw_roads, vectorize_pixels

SHAPE = (400, 500)
UTM = CRS.from_epsg(32633)
UTM_TRANSFORM = Affine(GSD, 0, 500000.0, 0, -GSD, 4650000.0)


def network() -> np.ndarray:
    return draw_roads(
        SHAPE,
        [[(200, 0), (200, 499)], [(0, 120), (399, 180)], [(60, 300), (350, 420), (399, 499)]],
    )


def all_coords(collection: dict) -> np.ndarray:
    return np.vstack([f["geometry"]["coordinates"] for f in collection["features"]])


def assert_valid_geojson(collection: dict) -> None:
    """RFC 7946 structure, valid non-degenerate lines, a bbox that holds everything."""
    json.dumps(collection)  # serialisable as is
    assert collection["type"] == "FeatureCollection"
    assert collection["features"]
    for feature in collection["features"]:
        assert feature["type"] == "Feature"
        assert feature["geometry"]["type"] == "LineString"
        coords = np.asarray(feature["geometry"]["coordinates"])
        assert coords.shape[0] >= 2 and coords.shape[1] == 2
        assert np.all(np.any(np.diff(coords, axis=0) != 0, axis=1))  # no repeated points
        line = shapely.LineString(coords)
        assert line.is_valid and line.length > 0
        props = feature["properties"]
        assert props["length_m"] > 0
        assert 0.0 <= props["mean_probability"] <= 1.0
        assert all(isinstance(props[k], int) for k in ("u", "v", "u_degree", "v_degree"))
    coords = all_coords(collection)
    west, south, east, north = collection["bbox"]
    assert west == coords[:, 0].min() and east == coords[:, 0].max()
    assert south == coords[:, 1].min() and north == coords[:, 1].max()


def test_utm_output_is_lon_lat_inside_the_raster() -> None:
    fc = vectorize_probability(network(), UTM_TRANSFORM, UTM, CONFIG)
    assert_valid_geojson(fc)
    bounds = (500000.0, 4650000.0 - SHAPE[0] * GSD, 500000.0 + SHAPE[1] * GSD, 4650000.0)
    west, south, east, north = transform_bounds(UTM, "EPSG:4326", *bounds)
    coords = all_coords(fc)
    eps = 1e-7
    assert (coords[:, 0] >= west - eps).all() and (coords[:, 0] <= east + eps).all()
    assert (coords[:, 1] >= south - eps).all() and (coords[:, 1] <= north + eps).all()
    assert 14.9 < west < 15.1 and 41.9 < south < 42.1  # lon first: UTM 33N's meridian is 15°E
    assert "sanchari:coordinates" not in fc


def test_lengths_are_geodesic_metres() -> None:
    fc = vectorize_probability(network(), UTM_TRANSFORM, UTM, CONFIG)
    geod = Geod(ellps="WGS84")
    for feature in fc["features"]:
        lon, lat = np.asarray(feature["geometry"]["coordinates"]).T
        assert feature["properties"]["length_m"] == pytest.approx(geod.line_length(lon, lat), 1e-3)
    straight = vectorize_probability(
        draw_roads((100, 500), [[(50, 0), (50, 499)]]), UTM_TRANSFORM, UTM, CONFIG
    )
    # 250 m in UTM; the grid is 0.9996 scale at the central meridian
    assert straight["features"][0]["properties"]["length_m"] == pytest.approx(250 / 0.9996, 1e-3)


def test_geographic_raster_stays_in_its_bounds() -> None:
    transform = Affine(5e-6, 0, 2.28, 0, -5e-6, 48.98)  # ~0.37 x 0.55 m pixels
    fc = vectorize_probability(network(), transform, CRS.from_epsg(4326), CONFIG)
    assert_valid_geojson(fc)
    coords = all_coords(fc)
    east, south, eps = 2.28 + SHAPE[1] * 5e-6, 48.98 - SHAPE[0] * 5e-6, 1e-9
    assert (coords[:, 0] >= 2.28 - eps).all() and (coords[:, 0] <= east + eps).all()
    assert (coords[:, 1] <= 48.98 + eps).all() and (coords[:, 1] >= south - eps).all()
    decimals = {len(str(v).split(".")[1]) for v in coords.ravel() if "." in str(v)}
    assert max(decimals) <= 7


def test_plain_image_keeps_pixel_coordinates() -> None:
    fc = vectorize_pixels(draw_roads((100, 300), [[(50, 0), (50, 299)]]))
    assert_valid_geojson(fc)
    assert fc["sanchari:coordinates"] == "pixel"
    ((x0, y0), *_, (x1, y1)) = fc["features"][0]["geometry"]["coordinates"]
    assert sorted([x0, x1]) == [0.0, 300.0]  # pixel edges of the raster
    assert y0 == y1 == 50.5  # centre of pixel row 50
    assert fc["features"][0]["properties"]["length_m"] == pytest.approx(300 * GSD)


def test_degrees_match_the_features() -> None:
    fc = vectorize_probability(network(), UTM_TRANSFORM, UTM, CONFIG)
    ends = Counter()
    degree = {}
    for f in fc["features"]:
        p = f["properties"]
        ends.update([p["u"], p["v"]])
        degree[p["u"]], degree[p["v"]] = p["u_degree"], p["v_degree"]
    assert degree == dict(ends)


def test_mean_probability_is_read_from_the_probabilities() -> None:
    prob = draw_roads((100, 300), [[(50, 0), (50, 299)]]) * np.float32(0.7)
    fc = vectorize_pixels(prob)
    assert fc["features"][0]["properties"]["mean_probability"] == pytest.approx(0.7, abs=1e-3)


def test_valid_mask_removes_roads() -> None:
    prob = draw_roads((100, 300), [[(50, 0), (50, 299)]])
    assert vectorize_pixels(prob, valid=np.zeros(prob.shape, dtype=bool))["features"] == []


def test_empty_result_is_a_valid_collection() -> None:
    fc = vectorize_probability(np.zeros((50, 60), np.float32), UTM_TRANSFORM, UTM, CONFIG)
    assert fc == {"type": "FeatureCollection", "features": []}


def test_simplification_keeps_lines_straight_and_short() -> None:
    fc = vectorize_pixels(draw_roads((100, 300), [[(50, 0), (50, 299)]]))
    assert len(fc["features"][0]["geometry"]["coordinates"]) == 2
    rough = vectorize_pixels(
        draw_roads((100, 300), [[(50, 0), (50, 299)]]), VectorizeConfig(simplify_m=0.0)
    )
    assert len(rough["features"][0]["geometry"]["coordinates"]) >= 2


@pytest.mark.parametrize(
    ("prob", "kwargs", "message"),
    [
        (np.zeros((2, 50, 50)), {}, "2-D"),
        (np.zeros((0, 50)), {}, "empty"),
        (np.full((50, 50), np.nan), {}, "finite"),
        (np.full((50, 50), 255.0), {}, "0..1"),
        (np.zeros((50, 50)), {"valid": np.ones((40, 50), bool)}, "valid"),
        (np.zeros((50, 50)), {"gsd_m": 0.0}, "positive"),
        (np.zeros((50, 50)), {"gsd_m": None}, "gsd_m"),
    ],
)
def test_bad_input_is_rejected(prob: np.ndarray, kwargs: dict, message: str) -> None:
    kwargs = {"gsd_m": GSD, **kwargs}
    with pytest.raises(InvalidInputError, match=message):
        vectorize_probability(prob, Affine.identity(), None, CONFIG, **kwargs)


def test_oversized_tiles_are_rejected() -> None:
    config = VectorizeConfig(tile_size=30000, tile_overlap=2000)
    with pytest.raises(InvalidInputError, match="tile"):
        vectorize_pixels(np.zeros((10, 10), np.float32), config)
