"""The Earth Engine source at its seam: what we ask for, the chip we build, the errors we raise."""

from __future__ import annotations

import json
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer

from sanchari_processes.errors import (
    CredentialsError,
    InvalidInputError,
    OutsideCoverageError,
    RateLimitedError,
    RequestTooLargeError,
    SourceUnavailableError,
)
from sanchari_processes.sources import gee, open_raster
from tests.gee_fakes import S2_IMAGES, SECRET, FakeEarthEngine, render, write_service_account_key

TODAY = date(2024, 5, 1)
DENVER = (-104.9903, 39.7392)


def _plan(
    collection: str = gee.NAIP,
    *,
    lonlat: tuple[float, float] = DENVER,
    scale: float = 1.0,
    size: int = 160,
    tile_px: int = 64,
    start: date | None = None,
    end: date | None = None,
) -> gee.GeePlan:
    return gee.plan_gee(
        *lonlat,
        collection=collection,
        scale_m=scale,
        window_px=size,
        start=start,
        end=end,
        today=TODAY,
        max_pixels=512 * 512,
        settings=gee.GeeSettings(tile_px=tile_px),
    )


@pytest.mark.parametrize(
    ("lonlat", "epsg"),
    [((-104.99, 39.74), 32613), ((2.35, 48.86), 32631), ((-43.2, -22.9), 32723), ((180, 0), 32660)],
)
def test_grid_is_the_local_utm_zone_centred_on_the_point(lonlat, epsg) -> None:
    grid = gee.point_grid(*lonlat, scale_m=0.6, size=101)
    assert grid.crs_code == f"EPSG:{epsg}" and (grid.width, grid.height) == (101, 101)
    t = grid.transform
    assert (t.a, t.b, t.d, t.e) == (0.6, 0.0, 0.0, -0.6)
    assert t.c / 0.6 == pytest.approx(round(t.c / 0.6)) and t.f / 0.6 == pytest.approx(
        round(t.f / 0.6)
    )
    x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(*lonlat)
    cx, cy = t * (50.5, 50.5)
    assert abs(cx - x) <= 0.3 + 1e-6 and abs(cy - y) <= 0.3 + 1e-6
    assert grid.to_ee() == {
        "dimensions": {"width": 101, "height": 101},
        "affineTransform": {
            "scaleX": 0.6,
            "shearX": 0.0,
            "translateX": t.c,
            "shearY": 0.0,
            "scaleY": -0.6,
            "translateY": t.f,
        },
        "crsCode": f"EPSG:{epsg}",
    }


def test_naip_request_and_exactly_georeferenced_chip(tmp_path: Path) -> None:
    plan = _plan(size=160, tile_px=64)
    fake = FakeEarthEngine()
    progress: list[float] = []
    fetched = gee.fetch_gee(plan, fake, tmp_path, progress.append)

    (query,) = fake.queries
    assert query.collection == "USDA/NAIP/DOQQ"
    assert (query.start, query.end) == (date(2002, 1, 1), TODAY + timedelta(days=1))  # all NAIP
    minx, miny, maxx, maxy = query.region
    assert minx < DENVER[0] < maxx and miny < DENVER[1] < maxy
    # Newest first until the window is covered: the 2022 image covers half, 2020 the rest.
    ids = [image["id"] for image in fetched.imagery["images"]]
    assert ids == ["USDA/NAIP/DOQQ/m_west_2022", "USDA/NAIP/DOQQ/m_full_2020"]
    assert [image["date"] for image in fetched.imagery["images"]] == ["2022-06-15", "2020-08-20"]

    # 160 px in 64 px tiles: 3 x 3 requests, each on its own exact sub-grid.
    assert len(fake.requests) == 9 and progress[-1] == 1.0
    for request in fake.requests:
        assert request.bands == ("R", "G", "B") and request.composite == "mosaic"
        assert request.image_ids == tuple(ids) and request.cloud_mask is None
        assert request.grid.crs_code == "EPSG:32613"
    last = fake.requests[-1].grid
    assert (last.width, last.height) == (32, 32)
    assert last.transform == plan.grid.transform * Affine.translation(128, 128)

    with rasterio.open(fetched.path) as ds:
        assert ds.crs.to_epsg() == 32613
        assert ds.transform == plan.grid.transform  # exactly the grid we asked for
        assert (ds.width, ds.height, ds.count) == (160, 160, 4)
        stitched = ds.read([1, 2, 3])
        assert ds.read_masks(1).min() == 255
    np.testing.assert_array_equal(stitched, render(plan.grid, "uint8", 3)[:3])
    assert fetched.window["crs"] == "EPSG:32613" and fetched.window["scale_m"] == 1.0
    with open_raster(fetched.path) as source:  # what the engine reads
        # 1 m of UTM grid near Denver is ~1 m on the ground (the zone's scale factor < 0.1 %)
        assert source.bands == (1, 2, 3) and source.gsd_m == pytest.approx(1.0, rel=1e-3)


def test_sentinel2_median_cloud_masked_and_stretched(tmp_path: Path) -> None:
    plan = _plan(gee.SENTINEL2, scale=10.0, size=64, end=date(2023, 9, 30))
    fake = FakeEarthEngine(S2_IMAGES)
    fetched = gee.fetch_gee(plan, fake, tmp_path)
    (query,) = fake.queries
    assert query.collection == "COPERNICUS/S2_SR_HARMONIZED"
    assert (query.start, query.end) == (date(2022, 9, 30), date(2023, 10, 1))
    assert (query.cloud_property, query.max_cloud_percent) == ("CLOUDY_PIXEL_PERCENTAGE", 60.0)
    assert query.sort_property == "CLOUDY_PIXEL_PERCENTAGE" and query.ascending
    (request,) = fake.requests
    assert request.bands == ("B4", "B3", "B2") and request.composite == "median"
    assert request.cloud_mask == "scl" and request.dtype == "uint16"
    assert len(request.image_ids) == 2
    assert fetched.imagery["stretch"] == "0..3000 -> 0..255, clipped"
    with rasterio.open(fetched.path) as ds:
        values = set(np.unique(ds.read(1)).tolist())
    assert values == {round(900 * 255 / 3000), 221}  # 2600 -> 221


def test_stretch_rule() -> None:
    raw = np.array([[[0, 1500, 3000, 9000]]], np.uint16)
    out = gee.COLLECTIONS[gee.SENTINEL2].to_uint8(raw)
    assert out.tolist() == [[[0, 128, 255, 255]]]
    assert gee.COLLECTIONS[gee.NAIP].to_uint8(np.array([[[7, 255]]], np.uint8)).tolist() == [
        [[7, 255]]
    ]


def test_masked_pixels_become_alpha(tmp_path: Path) -> None:
    def west_only(grid: gee.PixelGrid) -> np.ndarray:
        valid = np.zeros((grid.height, grid.width), np.uint8)
        valid[:, : grid.width // 2] = 1
        return valid

    fetched = gee.fetch_gee(_plan(size=64), FakeEarthEngine(valid=west_only), tmp_path)
    with rasterio.open(fetched.path) as ds:
        mask = ds.read_masks(1)
    assert mask[:, :32].min() == 255 and mask[:, 32:].max() == 0
    assert fetched.imagery["valid_fraction"] == 0.5


def test_no_imagery_is_404(tmp_path: Path) -> None:
    with pytest.raises(OutsideCoverageError) as err:
        gee.fetch_gee(_plan(), FakeEarthEngine(images=()), tmp_path)
    assert err.value.http_status == 404 and "S2_SR_HARMONIZED" in err.value.message
    cloudy = FakeEarthEngine(valid=lambda g: np.zeros((g.height, g.width), np.uint8))
    with pytest.raises(OutsideCoverageError):
        gee.fetch_gee(_plan(size=64), cloudy, tmp_path)


def test_planning_rejects_before_any_request() -> None:
    with pytest.raises(InvalidInputError, match="collection"):
        _plan("LANDSAT/LC09/C02/T1_L2")
    with pytest.raises(RequestTooLargeError):
        _plan(size=1024)
    with pytest.raises(InvalidInputError, match="start_date"):
        _plan(start=date(2024, 1, 2), end=date(2024, 1, 1))
    with pytest.raises(InvalidInputError, match="UTM"):
        _plan(lonlat=(0.0, 85.0))


@pytest.mark.parametrize(
    ("message", "error", "status"),
    [
        ("Too many concurrent aggregations.", RateLimitedError, 429),
        ("Quota exceeded for quota metric 'Requests'", RateLimitedError, 429),
        ("User memory limit exceeded.", RequestTooLargeError, 413),
        ("Computation timed out.", SourceUnavailableError, 503),
        ("Caller does not have required permission to use project x", CredentialsError, 503),
        ("ee.Initialize: no project found. Call with project=", CredentialsError, 503),
        ("Image.load: something odd", SourceUnavailableError, 503),
    ],
)
def test_earth_engine_errors_map_to_statuses(message, error, status) -> None:
    mapped = gee.classify_ee_error(RuntimeError(message))
    assert type(mapped) is error and mapped.http_status == status
    assert message not in mapped.message  # EE's text goes to the log only
    if status == 429:
        assert mapped.retry_after_s > 0


def test_inputs_validation() -> None:
    req = gee.parse_request(
        {"latitude": 39.7, "longitude": -105.0, "collection": gee.SENTINEL2, "scale": 10,
         "start_date": "2023-01-01", "end_date": "2023-12-31", "window_size": 256}
    )  # fmt: skip
    assert (req.collection, req.scale, req.window_size) == (gee.SENTINEL2, 10.0, 256)
    assert req.to_dict()["start_date"] == "2023-01-01"
    bad = [
        ({"latitude": 1, "longitude": 1, "collection": "LANDSAT/X"}, "'collection' must be one of"),
        ({"latitude": 1, "longitude": 1, "scale": 0.01}, "'scale' must be >= 0.25"),
        ({"latitude": 1, "longitude": 1, "scale": 500}, "'scale' must be <= 30"),
        ({"latitude": 1, "longitude": 1, "start_date": "1/2/2023"}, "YYYY-MM-DD"),
        ({"latitude": 1, "longitude": 1, "end_date": "2023-02-30"}, "'end_date' is not a valid"),
        ({"latitude": 1, "longitude": 1, "start_date": "2024-01-01", "end_date": "2023-01-01"},
         "must not be after"),
        ({"longitude": 1}, "'latitude' is required"),
        ({"latitude": 1, "longitude": 1, "bbox": {"bbox": [0, 0, 1, 1]}},
         "unknown input(s) 'bbox'"),
    ]  # fmt: skip
    for inputs, words in bad:
        with pytest.raises(InvalidInputError) as err:
            gee.parse_request(inputs)
        assert words in err.value.message, inputs


# -- credentials ------------------------------------------------------------------------------
def test_no_credentials_says_how_to_authenticate(tmp_path: Path) -> None:
    settings = gee.GeeSettings(user_credentials=tmp_path / "none")
    with pytest.raises(CredentialsError) as err:
        gee.resolve_credentials(settings)
    assert err.value.http_status == 503
    for words in ("earthengine authenticate", "SANCHARI_GEE_SERVICE_ACCOUNT_KEY", "PROJECT"):
        assert words in err.value.message


def test_service_account_and_user_credentials(tmp_path: Path) -> None:
    key = write_service_account_key(tmp_path / "key.json")
    creds = gee.resolve_credentials(gee.GeeSettings(service_account_key=key))
    assert (creds.kind, creds.project) == ("service_account", "fake-project")
    over = gee.resolve_credentials(gee.GeeSettings(service_account_key=key, project="mine"))
    assert over.project == "mine"

    user = tmp_path / "credentials"
    user.write_text(json.dumps({"refresh_token": SECRET}), encoding="utf-8")
    with pytest.raises(CredentialsError, match="SANCHARI_GEE_PROJECT"):
        gee.resolve_credentials(gee.GeeSettings(user_credentials=user))
    creds = gee.resolve_credentials(gee.GeeSettings(user_credentials=user, project="p"))
    assert (creds.kind, creds.project) == ("earthengine", "p")

    broken = tmp_path / "broken.json"
    broken.write_text(SECRET, encoding="utf-8")
    with pytest.raises(CredentialsError) as err:
        gee.resolve_credentials(gee.GeeSettings(service_account_key=broken))
    assert SECRET not in err.value.message and str(tmp_path) not in err.value.message


def test_settings_from_env_prefer_our_own_key() -> None:
    env = {
        "SANCHARI_GEE_SERVICE_ACCOUNT_KEY": "/keys/ours.json",
        "GOOGLE_APPLICATION_CREDENTIALS": "/keys/adc.json",
        "SANCHARI_GEE_PROJECT": "proj",
    }
    settings = gee.GeeSettings.from_env(env)
    assert settings.service_account_key == Path("/keys/ours.json") and settings.project == "proj"
    adc = gee.GeeSettings.from_env({"GOOGLE_APPLICATION_CREDENTIALS": "/keys/adc.json"})
    assert adc.service_account_key == Path("/keys/adc.json") and adc.project is None


def test_without_the_gee_extra_the_answer_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ee", None)  # import ee now fails, as without the extra
    key = write_service_account_key(tmp_path / "key.json")
    with pytest.raises(CredentialsError, match=r"pip install 'sanchari-processes\[gee\]'"):
        gee.resolve_credentials(gee.GeeSettings(service_account_key=key))
    with pytest.raises(CredentialsError):
        gee.import_ee()
