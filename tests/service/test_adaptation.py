"""road-model-adaptation through the web API, with real workers and the tiny model: adapt,
list, extract with the adapted model, adapt it again, delete it; the 4xx found at submission,
the failures found while running, and dismissing a running adaptation."""

from __future__ import annotations

import copy
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.service.app import create_app
from sanchari_processes.service.jobs import run_road_job
from tests.adapt.conftest import road_lines_lonlat
from tests.service_fixtures import service_config, static_server, utm_point, wait_for_job

ADAPT = "/processes/road-model-adaptation/execution"
EXTRACT = "/processes/road-extraction/execution"
ROADS = road_lines_lonlat()  # the two roads of the catalogue's utm.tif
BODY: dict[str, Any] = {"inputs": {"image": "utm.tif", "roads": ROADS, "minutes": 0.5}}


def _adapt(client: FlaskClient, **inputs: Any) -> dict:
    """Submit an adaptation (no Prefer header: the process is async-only) and wait for it."""
    body = copy.deepcopy(BODY)
    body["inputs"].update(inputs)
    r = client.post(ADAPT, json=body)
    assert r.status_code == 201, r.get_data(as_text=True)
    assert "Preference-Applied" not in r.headers
    assert r.headers["Location"].endswith(f"/jobs/{r.get_json()['jobID']}")
    return wait_for_job(client, r.get_json()["jobID"], timeout=180)


def _models_dir(app: Flask) -> Path:
    jobs = Path(app.extensions["sanchari.manager"].settings.store_dir)
    return jobs.with_name(f"{jobs.name}-models")


def test_the_process_is_described_as_async_only(client: FlaskClient) -> None:
    ids = [p["id"] for p in client.get("/processes").get_json()["processes"]]
    assert "road-model-adaptation" in ids
    desc = client.get("/processes/road-model-adaptation").get_json()
    assert desc["jobControlOptions"] == ["async-execute", "dismiss"]
    assert set(desc["outputs"]) == {"model"}
    assert {"roads", "area", "minutes", "finetune", "road_width_m", "name", "model"} <= set(
        desc["inputs"]
    )
    assert {"image", "bbox", "latitude", "longitude"} <= set(desc["inputs"])
    assert desc["inputs"]["roads"]["minOccurs"] == 1
    assert desc["inputs"]["minutes"]["schema"]["minimum"] == 0.5
    assert desc["inputs"]["minutes"]["schema"]["maximum"] == 10
    extraction = client.get("/processes/road-extraction").get_json()
    assert "model" in extraction["inputs"]


def test_adapt_extract_with_the_model_adapt_again_and_delete(
    client: FlaskClient, service_app: Flask
) -> None:
    status = _adapt(client, name="utm-round-1")
    assert status["status"] == "successful", status
    assert status["progress"] == 100
    result = client.get(f"/jobs/{status['jobID']}/results")
    assert result.status_code == 200 and result.headers["Content-Type"] == "application/json"
    model = result.get_json()
    assert model["id"] == "utm-round-1" and model["parent"] == "tiny-test"
    assert model["verdict"].split(":")[0] in {"adapted", "recalibrated"}
    assert 0 <= model["threshold"] <= 1 and "out of fold" in model["card"]
    assert model["report"]["cross_validation"]["steps"] == [3, 3]  # the test's tiny budget
    assert model["imagery"]["window"]["files"] == ["utm.tif"]
    document = client.get(f"/jobs/{status['jobID']}/results/model").get_json()
    assert document["id"] == "utm-round-1"

    listed = {m["id"]: m for m in client.get("/models").get_json()["models"]}
    assert listed["utm-round-1"]["parent"] == "tiny-test"
    assert listed["utm-round-1"]["threshold"] == model["threshold"]
    assert {"verdict", "created", "links"} <= set(listed["utm-round-1"])
    one = client.get("/models/utm-round-1").get_json()
    assert one["card"] == model["card"] and one["metadata"]["model_id"] == "utm-round-1"
    assert not [p for p in _models_dir(service_app).iterdir() if p.name.startswith(".")]

    # road-extraction with the adapted model: its id and parent in the provenance
    lon, lat = utm_point(128, 128)
    inputs = {"latitude": lat, "longitude": lon, "window_size": 96, "model": "utm-round-1"}
    roads = client.post(EXTRACT, json={"inputs": inputs, "outputs": {"roads": {}}})
    assert roads.status_code == 200, roads.get_data(as_text=True)
    record = roads.get_json()["sanchari"]
    assert record["model"]["id"] == "utm-round-1"
    assert record["model"]["parent"]["model_id"] == "tiny-test"
    assert record["request"]["model"] == "utm-round-1"

    # the next round adapts the adapted model (e.g. with corrected roads)
    again = _adapt(client, model="utm-round-1", name="utm-round-2", finetune=False)
    assert again["status"] == "successful", again
    second = client.get(f"/jobs/{again['jobID']}/results").get_json()
    assert second["parent"] == "utm-round-1" and second["verdict"].startswith("recalibrated")

    for model_id in ("utm-round-1", "utm-round-2"):
        assert client.delete(f"/models/{model_id}").status_code == 204
        gone = client.get(f"/models/{model_id}")
        assert gone.status_code == 404 and gone.get_json()["code"] == "NoSuchModel"
    assert client.delete("/models/utm-round-1").status_code == 404
    assert "utm-round-1" not in [m["id"] for m in client.get("/models").get_json()["models"]]
    refused = client.post(EXTRACT, json={"inputs": inputs})
    assert (
        refused.status_code == 400 and "no model 'utm-round-1'" in refused.get_json()["description"]
    )


def test_roads_as_a_qualified_value_or_by_reference(client: FlaskClient, tmp_path: Path) -> None:
    qualified = {"value": ROADS, "mediaType": "application/geo+json"}
    status = _adapt(client, roads=qualified, finetune=False, name="utm-qualified")
    assert status["status"] == "successful", status
    (tmp_path / "roads.geojson").write_text(json.dumps(ROADS))
    with static_server(tmp_path) as url:
        by_ref = _adapt(client, roads={"href": f"{url}/roads.geojson"}, finetune=False)
        missing = _adapt(client, roads={"href": f"{url}/nope.geojson"}, finetune=False)
    assert by_ref["status"] == "successful", by_ref
    model = client.get(f"/jobs/{by_ref['jobID']}/results").get_json()
    assert model["id"].startswith("tiny-test-adapted-")  # a name made up for it
    assert missing["status"] == "failed" and "HTTP 404" in missing["message"]
    results = client.get(f"/jobs/{missing['jobID']}/results")
    assert results.status_code == 400
    for model_id in ("utm-qualified", model["id"]):
        assert client.delete(f"/models/{model_id}").status_code == 204


FAR = {"type": "LineString", "coordinates": [[100.0, 10.0], [100.01, 10.01]]}


@pytest.mark.parametrize(
    ("inputs", "words"),
    [
        ({"minutes": 0.1}, "input 'minutes' must be >= 0.5"),
        ({"minutes": 11}, "input 'minutes' must be <= 10"),
        ({"road_width_m": 0}, "input 'road_width_m' must be >= 0.5"),
        ({"roads": "roads.geojson"}, "input 'roads' must be of type object"),
        ({"roads": {"type": "FeatureCollection"}}, "needs 'features'"),
        (
            {"roads": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}},
            "expected LineString or MultiLineString, got Polygon",
        ),
        ({"roads": {"type": "LineString", "coordinates": [[500, 0], [501, 1]]}}, "out of range"),
        ({"roads": {"type": "LineString", "coordinates": [[0, 0]]}}, "not a valid GeoJSON"),
        (
            {"roads": {**ROADS, "crs": {"type": "name", "properties": {"name": "EPSG:99999"}}}},
            "its CRS cannot be read",
        ),
        ({"roads": FAR}, "input 'roads' does not overlap the imagery"),
        ({"roads": {"value": FAR, "mediaType": "text/csv"}}, "mediaType must be"),
        ({"roads": {"href": "file:///etc/passwd"}}, "href must be an http(s) URL"),
        (
            {"area": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}},
            "expected Polygon or MultiPolygon",
        ),
        ({"model": "no-such-model"}, "input 'model': no model 'no-such-model'"),
        ({"model": "../weights"}, "input 'model' must be a model id"),
        ({"name": "../evil"}, "input 'name' must be a model id"),
        ({"name": "x" * 65}, "input 'name' must be a model id"),
        ({"name": "taken"}, "already has a model 'taken'"),
        ({"finetune": "yes"}, "input 'finetune' must be of type boolean"),
        ({"surprise": 1}, "unknown input(s) 'surprise'"),
    ],
)
def test_mistakes_are_400_at_submission(
    client: FlaskClient, service_app: Flask, tiny_checkpoint: Path, inputs: dict, words: str
) -> None:
    taken = _models_dir(service_app) / "taken"
    taken.mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny_checkpoint, taken / "taken.safetensors")
    shutil.copy(tiny_checkpoint.with_suffix(".json"), taken / "taken.json")
    body = copy.deepcopy(BODY)
    body["inputs"].update(inputs)
    r = client.post(ADAPT, json=body, headers={"Prefer": "respond-async"})
    assert r.status_code == 400, r.get_data(as_text=True)
    assert words in r.get_json()["description"]


def test_other_mistakes(client: FlaskClient) -> None:
    no_roads = client.post(ADAPT, json={"inputs": {"image": "utm.tif"}})
    assert no_roads.status_code == 400 and "'roads'" in no_roads.get_json()["description"]
    no_imagery = client.post(ADAPT, json={"inputs": {"roads": ROADS}})
    assert no_imagery.status_code == 400 and "imagery" in no_imagery.get_json()["description"]
    wrong_output = client.post(ADAPT, json={**BODY, "outputs": {"roads": {}}})
    assert (
        wrong_output.status_code == 400
        and "the process has model" in wrong_output.get_json()["description"]
    )
    bad_model = client.post(EXTRACT, json={"inputs": {"image": "utm.tif", "model": "a/b"}})
    assert bad_model.status_code == 400 and "model id" in bad_model.get_json()["description"]


def test_what_only_running_can_tell_fails_the_job_with_its_400(
    client: FlaskClient, cog_server: str
) -> None:
    lon0, lat0 = utm_point(20, 20)
    lon1, lat1 = utm_point(22, 20)
    stub = {"type": "LineString", "coordinates": [[lon0, lat0], [lon1, lat1]]}
    status = _adapt(client, roads=stub)
    assert status["status"] == "failed" and "too few labelled pixels" in status["message"]
    results = client.get(f"/jobs/{status['jobID']}/results")
    assert (
        results.status_code == 400
        and "too few labelled pixels" in results.get_json()["description"]
    )
    # remote imagery's footprint is known once its header is read, off the web thread
    remote = client.post(
        ADAPT, json={"inputs": {"image": {"href": f"{cog_server}/paris.tif"}, "roads": ROADS}}
    )
    assert remote.status_code == 201
    failed = wait_for_job(client, remote.get_json()["jobID"], timeout=60)
    assert failed["status"] == "failed" and "does not overlap the imagery" in failed["message"]


def test_dismissing_a_running_adaptation_stops_it(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path
) -> None:
    """A fine-tune with a long step budget runs until dismissed; then nothing is published."""
    config = service_config(
        catalogue_dir, tmp_path / "jobs", tiny_checkpoint, workers=1, adapt={"steps": 10**6}
    )
    app = create_app(config)
    try:
        client = app.test_client()
        r = client.post(ADAPT, json=BODY, headers={"Prefer": "respond-async"})
        assert r.status_code == 201 and r.headers["Preference-Applied"] == "respond-async"
        job_id = r.get_json()["jobID"]
        deadline = time.monotonic() + 120
        status = client.get(f"/jobs/{job_id}").get_json()
        while not status["message"].startswith("Fine-tune") and time.monotonic() < deadline:
            time.sleep(0.1)
            status = client.get(f"/jobs/{job_id}").get_json()
        assert status["status"] == "running" and status["message"].startswith("Fine-tune"), status
        gone = client.delete(f"/jobs/{job_id}")
        assert gone.status_code == 200 and gone.get_json()["status"] == "dismissed"
        time.sleep(1.0)
        assert client.get(f"/jobs/{job_id}").get_json()["status"] == "dismissed"
        assert client.get("/models").get_json()["models"] == []
        assert not (tmp_path / "jobs" / "jobs" / job_id).exists()
    finally:
        app.extensions["sanchari.manager"].shutdown()


def test_adaptation_on_a_dask_cluster(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path, dask_scheduler: str
) -> None:
    """The job runs on a Dask worker like a road job; a dismissed one stops where it runs."""
    config = service_config(catalogue_dir, tmp_path / "jobs", tiny_checkpoint, workers=1)
    config["server"]["manager"]["dask_scheduler"] = dask_scheduler
    app = create_app(config)
    try:
        client = app.test_client()
        status = _adapt(client, name="on-dask", finetune=False)
        assert status["status"] == "successful", status
        assert client.get("/models/on-dask").status_code == 200
    finally:
        app.extensions["sanchari.manager"].shutdown()
    long = service_config(
        catalogue_dir, tmp_path / "jobs2", tiny_checkpoint, workers=1, adapt={"steps": 10**6}
    )
    long["server"]["manager"]["dask_scheduler"] = dask_scheduler
    app = create_app(long)
    try:
        client = app.test_client()
        job_id = client.post(ADAPT, json=BODY).get_json()["jobID"]
        deadline = time.monotonic() + 120
        status = client.get(f"/jobs/{job_id}").get_json()
        while not status["message"].startswith("Fine-tune") and time.monotonic() < deadline:
            time.sleep(0.2)
            status = client.get(f"/jobs/{job_id}").get_json()
        assert status["message"].startswith("Fine-tune"), status
        assert client.delete(f"/jobs/{job_id}").get_json()["status"] == "dismissed"
        staging = _models_dir(app) / f".staging-{job_id}"
        deadline = time.monotonic() + 30
        while staging.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not staging.exists()  # the task stopped at its next step and cleaned up
        assert client.get("/models").get_json()["models"] == []
    finally:
        app.extensions["sanchari.manager"].shutdown()


def test_a_model_deleted_after_its_job_was_accepted_fails_the_job_with_a_400(
    service_app: Flask, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    folder = _models_dir(service_app) / "short-lived"
    folder.mkdir(parents=True)
    shutil.copy(tiny_checkpoint, folder / "short-lived.safetensors")
    shutil.copy(tiny_checkpoint.with_suffix(".json"), folder / "short-lived.json")
    processor = service_app.extensions["sanchari.manager"].get_processor("road-extraction")
    inputs = {"image": "utm.tif", "model": "short-lived", "tta": "none"}
    job = processor.prepare(inputs, "job", tmp_path / "job")
    assert job.engine.weights == folder
    shutil.rmtree(folder)
    with pytest.raises(InvalidInputError, match="no longer in the models folder"):
        run_road_job(job, lambda *_: None)
