"""``road-extraction`` over an area of interest: an async job over the catalogue in blocks,
its progress in the status, the stitched GeoPackage by reference; clear 4xx for bad areas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyogrio
import pytest
from flask.testing import FlaskClient

from sanchari_processes.service import aoi_job
from tests.service_fixtures import utm_point, wait_for_job
from tests.stac_api_fixtures import stac_api

EXECUTE = "/processes/road-extraction/execution"
ASYNC = {"Prefer": "respond-async"}
GPKG = "application/geopackage+sqlite3"
ROADS_GPKG = {"roads": {"format": {"mediaType": GPKG}, "transmissionMode": "reference"}}


def polygon(c0: float, r0: float, c1: float, r1: float) -> dict:
    """A GeoJSON Polygon over pixels of the catalogue's UTM scene."""
    ring = [utm_point(c, r) for c, r in ((c0, r0), (c1, r0), (c1, r1), (c0, r1), (c0, r0))]
    return {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """48 m blocks: the 128 m scene is a few blocks (planning runs in this process)."""
    monkeypatch.setattr(aoi_job, "BLOCK_M", 48.0)


def test_an_aoi_runs_as_a_job_and_returns_a_geopackage(client: FlaskClient) -> None:
    describe = client.get("/processes/road-extraction").get_json()
    assert "aoi" in describe["inputs"]
    body = {"inputs": {"aoi": polygon(10, 10, 240, 240)}, "outputs": ROADS_GPKG}
    r = client.post(EXECUTE, json=body, headers=ASYNC)
    assert r.status_code == 201, r.get_data(as_text=True)
    job_id = r.get_json()["jobID"]
    progress = []
    status = wait_for_job(client, job_id, timeout=5, until=("running", "successful"))
    while status["status"] not in ("successful", "failed"):
        progress.append(status.get("message", ""))
        status = wait_for_job(client, job_id, timeout=0.2)
    assert status["status"] == "successful", status
    assert status["progress"] == 100
    assert any(m.startswith("Blocks done:") for m in progress) or not progress
    result = client.get(f"/jobs/{job_id}/results")
    assert result.status_code == 204 and f'type="{GPKG}"' in result.headers["Link"]
    href = result.headers["Link"].split(">")[0][1:]
    fetched = client.get(href.split("localhost:5000", 1)[1])
    assert fetched.status_code == 200 and fetched.data[:15] == b"SQLite format 3"
    folder = Path(client.application.extensions["sanchari.manager"].job_dir(job_id))
    gpkg = folder / "roads.gpkg"
    info = pyogrio.read_info(gpkg)
    assert info["crs"] == "EPSG:4326" and info["geometry_type"] == "LineString"
    blocks = list((folder / "roads.gpkg.blocks").glob("x*.json"))
    assert len(blocks) >= 4  # the area ran in blocks, each recorded


@pytest.mark.parametrize(
    ("inputs", "outputs", "status", "words"),
    [
        ({"aoi": {"type": "Point", "coordinates": [15, 42]}}, ROADS_GPKG, 400, "'aoi.type'"),
        (
            {"aoi": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}},
            ROADS_GPKG,
            400,
            "not valid",
        ),
        ({"aoi": polygon(10, 10, 100, 100), "latitude": 42.0}, ROADS_GPKG, 400, "'latitude'"),
        (
            {"aoi": {"type": "Polygon", "coordinates": [[[0, 0], [0.1, 0], [0.1, 0.1], [0, 0]]]}},
            ROADS_GPKG,
            404,
            "no imagery",
        ),
        ({"aoi": polygon(10, 10, 100, 100)}, None, 400, "roads only"),
    ],
)
def test_bad_areas_are_clear_4xx(
    client: FlaskClient, inputs: dict, outputs: dict | None, status: int, words: str
) -> None:
    body: dict = {"inputs": inputs}
    if outputs is not None:
        body["outputs"] = outputs
    r = client.post(EXECUTE, json=body, headers=ASYNC)
    assert r.status_code == status, r.get_data(as_text=True)
    assert words in r.get_json()["description"]


def test_an_area_over_the_limit_is_413(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aoi_job, "MAX_AOI_KM2", 0.001)
    body = {"inputs": {"aoi": polygon(10, 10, 240, 240)}, "outputs": ROADS_GPKG}
    r = client.post(EXECUTE, json=body, headers=ASYNC)
    assert r.status_code == 413 and "km²" in r.get_json()["description"]


def test_an_aoi_job_on_the_dask_executor_spreads_its_blocks(
    tmp_path: Path,
    catalogue_dir: Path,
    tiny_checkpoint: Path,
    dask_scheduler: str,
    dask_client: Any,
) -> None:
    from distributed import get_task_stream

    from sanchari_processes.service.app import create_app
    from tests.service_fixtures import service_config

    config = service_config(catalogue_dir, tmp_path / "jobs", tiny_checkpoint, workers=1)
    config["server"]["manager"].update(dask_scheduler=dask_scheduler)
    app = create_app(config)
    try:
        client = app.test_client()
        body = {"inputs": {"aoi": polygon(10, 10, 240, 240)}, "outputs": ROADS_GPKG}
        with get_task_stream(dask_client) as stream:
            r = client.post(EXECUTE, json=body, headers=ASYNC)
            assert r.status_code == 201, r.get_data(as_text=True)
            job_id = r.get_json()["jobID"]
            status = wait_for_job(client, job_id, timeout=180)
        assert status["status"] == "successful", status
        blocks = [t for t in stream.data if str(t["key"]).startswith("run_block")]
        assert len(blocks) >= 4  # each block a task of its own, from the job's task
        folder = Path(app.extensions["sanchari.manager"].job_dir(job_id))
        assert pyogrio.read_info(folder / "roads.gpkg")["crs"] == "EPSG:4326"
        assert len(list((folder / "roads.gpkg.blocks").glob("x*.json"))) >= 4
    finally:
        app.extensions["sanchari.manager"].shutdown()


def _finish(client: FlaskClient, body: dict) -> dict:
    r = client.post(EXECUTE, json=body, headers=ASYNC)
    assert r.status_code == 201, r.get_data(as_text=True)
    return wait_for_job(client, r.get_json()["jobID"], timeout=60)


def test_an_aoi_over_a_stac_api_search_or_an_item_collection(
    client: FlaskClient, catalogue_dir: Path
) -> None:
    describe = client.get("/processes/road-extraction").get_json()
    assert "imagery" in describe["inputs"]
    area = polygon(10, 10, 240, 240)
    with stac_api(catalogue_dir) as (url, api):
        search = {"href": f"{url}/search?collections=scenes"}
        status = _finish(
            client, {"inputs": {"aoi": area, "imagery": search}, "outputs": ROADS_GPKG}
        )
        assert status["status"] == "successful", status
        assert any(p.startswith("/search?") and "bbox=" in p for p in api.requests)
        assert any(p.startswith("/cogs/utm.tif") for p in api.requests)  # only the scene met
        assert not any(p.startswith("/cogs/paris.tif") for p in api.requests)
        inline = {"type": "FeatureCollection", "features": api.items}
        api.requests.clear()
        status = _finish(
            client, {"inputs": {"aoi": area, "imagery": inline}, "outputs": ROADS_GPKG}
        )
        assert status["status"] == "successful", status
        assert api.requests and not any(p.startswith("/search") for p in api.requests)
        static = {"href": f"{url}/collection.json"}
        status = _finish(
            client, {"inputs": {"aoi": area, "imagery": static}, "outputs": ROADS_GPKG}
        )
        assert status["status"] == "successful", status
        assert "/collection.json" in api.requests
        # read once the job is accepted: a search that finds nothing fails the job with a 400
        empty = {"href": f"{url}/search?collections=other"}
        status = _finish(client, {"inputs": {"aoi": area, "imagery": empty}, "outputs": ROADS_GPKG})
    assert status["status"] == "failed" and "no items over the area" in status["message"]


def _local_asset(items: list[dict], folder: Path) -> dict:
    item = json.loads(json.dumps(items[0]))
    item["assets"]["visual"]["href"] = str(folder / "utm.tif")
    return {"type": "FeatureCollection", "features": [item]}


@pytest.mark.parametrize(
    ("imagery", "aoi", "words"),
    [
        ({"href": "http://127.0.0.1:9/search"}, False, "applies with 'aoi' only"),
        ({"href": "http://127.0.0.1:9/search?bbox=1,2,3,4"}, True, "parameter 'bbox'"),
        ({"href": "http://10.0.0.1/v1/search"}, True, "not a public internet address"),
        ({"href": "file:///etc/passwd"}, True, "only http(s) URLs"),
        ({"type": "FeatureCollection", "features": [{"type": "Feature"}]}, True, "ItemCollection"),
        (None, True, "not at an http(s) URL"),
        ({"href": "x", "features": []}, True, "'imagery'"),
    ],
)
def test_bad_imagery_is_a_400(
    client: FlaskClient, catalogue_dir: Path, imagery: dict | None, aoi: bool, words: str
) -> None:
    if imagery is None:  # an Item whose asset is a file on the server
        with stac_api(catalogue_dir) as (_, api):
            imagery = _local_asset(api.items, catalogue_dir)
    inputs: dict = {"imagery": imagery}
    if aoi:
        inputs["aoi"] = polygon(10, 10, 240, 240)
    r = client.post(EXECUTE, json={"inputs": inputs, "outputs": ROADS_GPKG}, headers=ASYNC)
    assert r.status_code == 400, r.get_data(as_text=True)
    assert words in r.get_json()["description"]
