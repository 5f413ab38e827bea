"""``road-extraction-gee`` through the real service: description, validation, credentials, and
jobs run by real workers and model over the fake Earth Engine (:mod:`tests.gee_fakes`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sanchari_processes.service.app import create_app
from tests.gee_fakes import (
    NO_IMAGERY_LON,
    RATE_LIMITED_LON,
    REFUSED_LON,
    SECRET,
    fake_gee_runner,
    write_service_account_key,
)
from tests.service_fixtures import service_config, wait_for_job

EXECUTE = "/processes/road-extraction-gee/execution"
ASYNC = {"Prefer": "respond-async"}
POINT = {"latitude": 39.7392, "longitude": -104.9903}


def test_listed_and_described(client: FlaskClient) -> None:
    ids = [p["id"] for p in client.get("/processes").get_json()["processes"]]
    assert "road-extraction-gee" in ids
    desc = client.get("/processes/road-extraction-gee").get_json()
    assert set(desc["inputs"]) == {
        "latitude",
        "longitude",
        "collection",
        "scale",
        "window_size",
        "start_date",
        "end_date",
        "threshold",
        "tta",
        "simplify_m",
        "model",
    }
    collection = desc["inputs"]["collection"]["schema"]
    assert collection["enum"] == ["USDA/NAIP/DOQQ", "COPERNICUS/S2_SR_HARMONIZED"]
    assert collection["default"] == "USDA/NAIP/DOQQ"
    assert desc["inputs"]["scale"]["schema"]["default"] == 1.0
    assert desc["inputs"]["latitude"]["minOccurs"] == 1
    assert "async-execute" in desc["jobControlOptions"]


@pytest.mark.parametrize("headers", [{}, ASYNC])
def test_without_credentials_503_says_how_to_authenticate(
    client: FlaskClient, headers: dict
) -> None:
    before = len(client.get("/jobs?limit=1000").get_json()["jobs"])
    r = client.post(EXECUTE, json={"inputs": POINT}, headers=headers)
    assert r.status_code == 503, r.get_data(as_text=True)
    body = r.get_json()
    assert body["code"] == "SourceUnavailable" and "Retry-After" in r.headers
    for words in ("earthengine authenticate", "SANCHARI_GEE_SERVICE_ACCOUNT_KEY"):
        assert words in body["description"]
    assert "Traceback" not in r.get_data(as_text=True)
    assert len(client.get("/jobs?limit=1000").get_json()["jobs"]) == before  # no job


@pytest.mark.parametrize(
    ("inputs", "words"),
    [
        ({**POINT, "collection": "LANDSAT/LC09/C02/T1_L2"}, "collection"),
        ({**POINT, "scale": 0}, "scale"),
        ({**POINT, "scale": 1000}, "scale"),
        ({**POINT, "start_date": "2024-13-01"}, "start_date"),
        ({**POINT, "start_date": "2024-02-01", "end_date": "2024-01-01"}, "start_date"),
        ({**POINT, "window_size": 10}, "window_size"),
        ({"latitude": 85.0, "longitude": 0.0}, "latitude"),
        ({"longitude": 0.0}, "latitude"),
        ({**POINT, "image": "utm.tif"}, "image"),
    ],
)
def test_bad_inputs_are_400_before_credentials(
    client: FlaskClient, inputs: dict, words: str
) -> None:
    r = client.post(EXECUTE, json={"inputs": inputs}, headers=ASYNC)
    assert r.status_code == 400, r.get_data(as_text=True)
    body = r.get_json()
    assert body["code"] == "InvalidParameterValue" and words in body["description"]


def test_too_large_is_413(client: FlaskClient) -> None:
    r = client.post(EXECUTE, json={"inputs": {**POINT, "window_size": 512}})
    assert r.status_code == 413


@pytest.fixture(scope="module")
def gee_client(
    tmp_path_factory: pytest.TempPathFactory, catalogue_dir: Path, tiny_checkpoint: Path
) -> Iterator[FlaskClient]:
    """A server whose Earth Engine has (fake) credentials and whose worker uses the fake."""
    tmp = tmp_path_factory.mktemp("gee")
    key = write_service_account_key(tmp / "key.json")
    config = service_config(
        catalogue_dir,
        tmp / "jobs",
        tiny_checkpoint,
        workers=1,
        gee={"service_account_key": str(key)},
    )
    app: Flask = create_app(config, runner=fake_gee_runner)
    yield app.test_client()
    app.extensions["sanchari.manager"].shutdown()


def test_execute_returns_roads_with_image_ids_and_dates(gee_client: FlaskClient) -> None:
    inputs = {**POINT, "window_size": 96, "scale": 1.0, "end_date": "2024-05-01"}
    r = gee_client.post(EXECUTE, json={"inputs": inputs, "outputs": {"roads": {}}})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.headers["Content-Type"] == "application/geo+json"
    collection = r.get_json()
    assert collection["type"] == "FeatureCollection"  # (the tiny model is untrained)
    meta = collection["sanchari"]
    images = meta["imagery"]["images"]
    assert [i["id"] for i in images] == ["USDA/NAIP/DOQQ/m_west_2022", "USDA/NAIP/DOQQ/m_full_2020"]
    assert [i["date"] for i in images] == ["2022-06-15", "2020-08-20"]
    assert meta["imagery"]["end_date"] == "2024-05-01"
    assert meta["window"]["crs"] == "EPSG:32613"
    assert (meta["window"]["width"], meta["window"]["height"]) == (96, 96)
    assert meta["source"]["name"] == "USDA/NAIP/DOQQ" and meta["source"]["crs"] == "EPSG:32613"
    assert meta["imagery"]["collection"] == "USDA/NAIP/DOQQ"
    assert meta["request"]["end_date"] == "2024-05-01"
    assert meta["job"]["process"] == "road-extraction-gee"
    assert SECRET not in r.get_data(as_text=True)


@pytest.mark.parametrize(
    ("longitude", "status", "code", "words"),
    [
        (NO_IMAGERY_LON, 404, "NotFound", "no NAIP imagery"),
        (RATE_LIMITED_LON, 429, "TooManyRequests", "retry later"),
        (REFUSED_LON, 503, "SourceUnavailable", "earthengine authenticate"),
    ],
)
def test_earth_engine_failures_keep_their_status(
    gee_client: FlaskClient, longitude: float, status: int, code: str, words: str
) -> None:
    r = gee_client.post(EXECUTE, json={"inputs": {"latitude": 40.0, "longitude": longitude}})
    assert r.status_code == status, r.get_data(as_text=True)
    body = r.get_json()
    assert body["code"] == code and words in body["description"]
    assert "Traceback" not in body["description"] and SECRET not in body["description"]
    if status in (429, 503):
        assert r.headers["Retry-After"] == "7"


def test_async_rate_limited_job_results_answer_429(gee_client: FlaskClient) -> None:
    inputs = {"latitude": 40.0, "longitude": RATE_LIMITED_LON}
    job_id = gee_client.post(EXECUTE, json={"inputs": inputs}, headers=ASYNC).get_json()["jobID"]
    assert wait_for_job(gee_client, job_id)["status"] == "failed"
    result = gee_client.get(f"/jobs/{job_id}/results")
    assert result.status_code == 429 and result.headers["Retry-After"] == "7"
