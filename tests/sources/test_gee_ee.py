"""The real Earth Engine client against the real ``ee`` library, offline.

``ee`` is initialised the way its own test helper does (the algorithm list it ships, no
network); its two network calls, ``ee.data.computeValue`` and ``ee.data.computePixels``, are
replaced by recorders, so these tests see the serialised expressions SANCHARi would send.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sanchari_processes.errors import CredentialsError, RateLimitedError
from sanchari_processes.sources import gee
from tests.gee_fakes import SECRET, write_service_account_key

ee = pytest.importorskip("ee")
apitestcase = pytest.importorskip("ee.apitestcase")


@pytest.fixture()
def offline_ee(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list]]:
    """``ee`` initialised offline; yields the recorded computeValue / computePixels calls."""
    try:
        apitestcase.GetAlgorithms()
    except OSError:
        pytest.skip("this earthengine-api ships no algorithm list")
    calls: dict[str, list] = {"value": [], "pixels": []}
    answers: dict[str, Any] = {"value": [], "pixels": None}

    def compute_value(obj: Any) -> Any:
        calls["value"].append(json.loads(obj.serialize()))
        if isinstance(answers["value"], Exception):
            raise answers["value"]
        return answers["value"]

    def compute_pixels(params: dict) -> Any:
        calls["pixels"].append(
            {**params, "expression": json.loads(params["expression"].serialize())}
        )
        if isinstance(answers["pixels"], Exception):
            raise answers["pixels"]
        return answers["pixels"]

    ee.Reset()
    monkeypatch.setattr(ee.data, "_install_cloud_api_resource", lambda: None)
    monkeypatch.setattr(ee.data, "getAlgorithms", apitestcase.GetAlgorithms)
    monkeypatch.setattr(ee.deprecation, "_FetchDataCatalogStac", lambda: {})
    ee.Initialize(None, "", project="test-project")
    monkeypatch.setattr(ee.data, "computeValue", compute_value)
    monkeypatch.setattr(ee.data, "computePixels", compute_pixels)
    calls["answers"] = answers  # type: ignore[assignment]
    yield calls
    ee.Reset()


def _invocations(node: Any) -> list[str]:
    """Every functionName in a serialised expression."""
    found: list[str] = []
    if isinstance(node, dict):
        if "functionName" in node:
            found.append(node["functionName"])
        for value in node.values():
            found += _invocations(value)
    elif isinstance(node, list):
        for value in node:
            found += _invocations(value)
    return found


def test_listing_asks_for_collection_region_dates_and_clouds(offline_ee) -> None:
    footprint = {"type": "LinearRing", "coordinates": [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]}
    offline_ee["answers"]["value"] = [
        ["COPERNICUS/S2_SR_HARMONIZED/A", 1688169600000, footprint, 4.5],
        ["COPERNICUS/S2_SR_HARMONIZED/B", 1690848000000, None, 20.0],
    ]
    query = gee.ImageQuery(
        collection=gee.SENTINEL2,
        region=(-105.0, 39.7, -104.9, 39.8),
        start=date(2023, 1, 1),
        end=date(2024, 1, 1),
        cloud_property="CLOUDY_PIXEL_PERCENTAGE",
        max_cloud_percent=60.0,
        sort_property="CLOUDY_PIXEL_PERCENTAGE",
        ascending=True,
        limit=64,
    )
    found = gee.EarthEngineApi(ee).list_images(query)
    assert [i.id for i in found] == [
        "COPERNICUS/S2_SR_HARMONIZED/A",
        "COPERNICUS/S2_SR_HARMONIZED/B",
    ]
    assert found[0].date == "2023-07-01" and found[0].cloud_percent == 4.5
    assert found[0].footprint is not None and found[0].footprint.area == 1.0
    assert found[1].footprint is None

    (sent,) = offline_ee["value"]
    text = json.dumps(sent)
    names = _invocations(sent)
    assert "COPERNICUS/S2_SR_HARMONIZED" in text
    assert "ImageCollection.load" in names and "Collection.filter" in names
    assert "Filter.intersects" in names and "Filter.dateRangeContains" in names
    assert "2023-01-01" in text and "2024-01-01" in text  # the date filter, end exclusive
    assert "Filter.not" in names and "Filter.greaterThan" in names  # how ee writes lte
    assert "CLOUDY_PIXEL_PERCENTAGE" in text and "60" in text
    assert "-105" in text and "39.8" in text  # the window's region
    assert "Collection.limit" in names


def test_pixels_ask_for_ids_bands_composite_and_exact_grid(offline_ee) -> None:
    grid = gee.point_grid(-104.99, 39.74, 10.0, 4)
    names = ["B4", "B3", "B2", "valid"]
    structured = np.zeros((4, 4), dtype=[(n, "<u2") for n in names])
    for i, name in enumerate(names):
        structured[name] = i + 1
    offline_ee["answers"]["pixels"] = structured
    request = gee.PixelRequest(
        image_ids=("COPERNICUS/S2_SR_HARMONIZED/A", "COPERNICUS/S2_SR_HARMONIZED/B"),
        bands=("B4", "B3", "B2"),
        composite="median",
        dtype="uint16",
        grid=grid,
        cloud_mask="scl",
    )
    pixels = gee.EarthEngineApi(ee).compute_pixels(request)
    assert pixels.shape == (4, 4, 4) and pixels.dtype == np.uint16
    assert [int(b[0, 0]) for b in pixels] == [1, 2, 3, 4]

    (sent,) = offline_ee["pixels"]
    assert sent["fileFormat"] == "NUMPY_NDARRAY"
    assert sent["grid"] == grid.to_ee() and sent["grid"]["crsCode"] == "EPSG:32613"
    text = json.dumps(sent["expression"])
    called = _invocations(sent["expression"])
    assert "COPERNICUS/S2_SR_HARMONIZED/A" in text and "COPERNICUS/S2_SR_HARMONIZED/B" in text
    assert "SCL" in text and "Image.remap" in called and "Image.updateMask" in called
    assert "ImageCollection.fromImages" in called and "reduce.median" in called
    assert "ImageCollection.mosaic" not in called
    assert "B4" in text and "B2" in text and "Image.resample" in called
    assert "Image.toUint16" in called and "Image.addBands" in called  # bands + valid


def test_naip_pixels_are_a_mosaic(offline_ee) -> None:
    structured = np.zeros((2, 2), dtype=[(n, "u1") for n in ("R", "G", "B", "valid")])
    offline_ee["answers"]["pixels"] = structured
    request = gee.PixelRequest(
        ("USDA/NAIP/DOQQ/m_1",), ("R", "G", "B"), "mosaic", "uint8", gee.point_grid(-105, 40, 1, 2)
    )
    assert gee.EarthEngineApi(ee).compute_pixels(request).shape == (4, 2, 2)
    called = _invocations(offline_ee["pixels"][0]["expression"])
    assert "ImageCollection.mosaic" in called and "Image.remap" not in called


def test_rate_limit_from_earth_engine_is_429(offline_ee) -> None:
    offline_ee["answers"]["pixels"] = ee.EEException("Too many concurrent aggregations.")
    request = gee.PixelRequest(
        ("USDA/NAIP/DOQQ/m_1",), ("R", "G", "B"), "mosaic", "uint8", gee.point_grid(-105, 40, 1, 2)
    )
    with pytest.raises(RateLimitedError) as err:
        gee.EarthEngineApi(ee).compute_pixels(request)
    assert err.value.http_status == 429


def test_connect_initialises_once_with_the_service_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = write_service_account_key(tmp_path / "key.json")
    seen: list[dict] = []
    monkeypatch.setattr(
        ee, "ServiceAccountCredentials", lambda email, key_file: {"key_file": key_file}
    )
    monkeypatch.setattr(ee, "Initialize", lambda **kwargs: seen.append(kwargs))
    monkeypatch.setattr(ee.data, "setDeadline", lambda ms: None)
    settings = gee.GeeSettings(service_account_key=key, api_url="https://ee.example")
    gee.connect.cache_clear()
    try:
        first = gee.connect(settings)
        assert gee.connect(settings) is first  # once per process
    finally:
        gee.connect.cache_clear()
    assert seen == [
        {
            "credentials": {"key_file": str(key)},
            "project": "fake-project",
            "url": "https://ee.example",
        }
    ]


def test_refused_credentials_are_503_without_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    user = tmp_path / "credentials"
    user.write_text(json.dumps({"refresh_token": SECRET, "project": "p"}), encoding="utf-8")

    def refuse(**kwargs: Any) -> None:
        assert kwargs["credentials"].refresh_token == SECRET and kwargs["project"] == "p"
        raise ee.EEException("Please authorize access to your Earth Engine account")

    monkeypatch.setattr(ee, "Initialize", refuse)
    gee.connect.cache_clear()
    with pytest.raises(CredentialsError) as err:
        gee.connect(gee.GeeSettings(user_credentials=user))
    assert err.value.http_status == 503 and "earthengine authenticate" in err.value.message
    assert SECRET not in err.value.message and SECRET not in caplog.text
