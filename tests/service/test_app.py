"""Every endpoint of the service through Flask's test client, with real workers and model."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from shapely.geometry import box, shape

from sanchari_processes.service.app import create_app
from sanchari_processes.service.store import StoreBusyError
from tests.service_fixtures import (
    crashing_runner,
    geo_point,
    service_config,
    slow_runner,
    utm_point,
    wait_for_job,
)

EXECUTE = "/processes/road-extraction/execution"
#: Ask for the roads only (without "outputs" every output comes back).
ROADS = {"outputs": {"roads": {}}}
ASYNC = {"Prefer": "respond-async"}


def _inside(collection: dict, bounds: tuple[float, float, float, float]) -> None:
    area = box(*bounds).buffer(1e-6)
    for feature in collection["features"]:
        assert area.contains(shape(feature["geometry"]))


def test_landing_conformance_and_process_list(client: FlaskClient) -> None:
    assert client.get("/").status_code == 200
    conformance = client.get("/conformance").get_json()["conformsTo"]
    assert any("ogcapi-processes-1/1.0/conf/core" in c for c in conformance)
    processes = client.get("/processes").get_json()["processes"]
    assert [p["id"] for p in processes] == [
        "road-extraction",
        "road-extraction-gee",
        "road-model-adaptation",
    ]


def test_describe_process(client: FlaskClient) -> None:
    desc = client.get("/processes/road-extraction").get_json()
    assert set(desc["inputs"]) == {
        "latitude",
        "longitude",
        "bbox",
        "image",
        "threshold",
        "tta",
        "window_size",
        "simplify_m",
        "model",
        "aoi",
        "imagery",
    }
    assert desc["inputs"]["latitude"]["schema"]["maximum"] == 90
    assert {"async-execute", "dismiss"} <= set(desc["jobControlOptions"])
    assert desc["outputTransmission"] == ["value", "reference"]
    assert set(desc["outputs"]) == {"roads", "mask", "probability", "preview"}
    roads = [s["contentMediaType"] for s in desc["outputs"]["roads"]["schema"]["oneOf"]]
    assert roads == [
        "application/geo+json",
        "application/geopackage+sqlite3",
        "application/flatgeobuf",
    ]
    mask = desc["outputs"]["mask"]["schema"]["contentMediaType"]
    assert mask == "image/tiff; application=geotiff; profile=cloud-optimized"
    assert client.get("/processes/nope").status_code == 404


@pytest.mark.parametrize(
    ("point", "crs_name"), [(utm_point(128, 128), "EPSG:32633"), (geo_point(128, 128), "EPSG:4326")]
)
def test_sync_execute_by_point(
    client: FlaskClient, point: tuple[float, float], crs_name: str
) -> None:
    lon, lat = point
    r = client.post(EXECUTE, json={"inputs": {"latitude": lat, "longitude": lon}, **ROADS})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.headers["Content-Type"] == "application/geo+json"
    collection = r.get_json()
    assert collection["type"] == "FeatureCollection"
    meta = collection["sanchari"]
    assert meta["model"]["id"] == "tiny-test" and len(meta["model"]["sha256"]) == 64
    assert meta["window"]["width"] == meta["window"]["height"] == 128
    assert meta["window"]["crs"] == crs_name
    assert meta["request"]["latitude"] == lat
    _inside(collection, meta["window"]["bounds_wgs84"])


def test_sync_document_response(client: FlaskClient) -> None:
    lon, lat = geo_point(64, 64)
    body = {
        "inputs": {"latitude": lat, "longitude": lon, "window_size": 64},
        "response": "document",
    }
    r = client.post(EXECUTE, json=body, headers={"Prefer": "wait"})
    assert r.status_code == 200
    assert r.get_json()["roads"]["value"]["type"] == "FeatureCollection"


def test_bbox_in_utm_and_image_by_name(client: FlaskClient) -> None:
    bbox = {"bbox": [500010, 4649700, 500090, 4649760], "crs": "EPSG:32633"}
    r = client.post(EXECUTE, json={"inputs": {"bbox": bbox, "threshold": 0.6}, **ROADS})
    assert r.status_code == 200, r.get_data(as_text=True)
    window = r.get_json()["sanchari"]["window"]
    assert (window["width"], window["height"]) == (160, 120)
    assert r.get_json()["sanchari"]["vectorize"]["threshold"] == 0.6
    r = client.post(EXECUTE, json={"inputs": {"image": {"href": "paris.tif"}}, **ROADS})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["sanchari"]["window"]["files"] == ["paris.tif"]


def test_async_job_life_cycle(client: FlaskClient) -> None:
    lon, lat = utm_point(100, 100)
    body = {"inputs": {"latitude": lat, "longitude": lon}, **ROADS}
    r = client.post(EXECUTE, json=body, headers=ASYNC)
    assert r.status_code == 201
    assert r.headers["Preference-Applied"] == "respond-async"
    job_id = r.get_json()["jobID"]
    assert r.headers["Location"].endswith(f"/jobs/{job_id}")
    assert r.get_json()["status"] in ("accepted", "running")
    status = wait_for_job(client, job_id)
    assert status["status"] == "successful" and status["progress"] == 100
    assert job_id in [j["jobID"] for j in client.get("/jobs").get_json()["jobs"]]
    result = client.get(f"/jobs/{job_id}/results")
    assert result.status_code == 200
    assert result.headers["Content-Type"] == "application/geo+json"
    assert result.get_json()["sanchari"]["job"]["id"] == job_id
    gone = client.delete(f"/jobs/{job_id}")
    assert gone.status_code == 200 and gone.get_json()["status"] == "dismissed"
    assert client.get(f"/jobs/{job_id}").get_json()["status"] == "dismissed"
    assert client.get(f"/jobs/{job_id}/results").status_code == 404
    assert client.get("/jobs/no-such-job").status_code == 404
    assert client.delete("/jobs/no-such-job").status_code == 404


def test_many_async_jobs_all_finish(client: FlaskClient) -> None:
    ids = []
    for i in range(4):
        lon, lat = utm_point(70 + 20 * i, 128)
        r = client.post(
            EXECUTE,
            json={"inputs": {"latitude": lat, "longitude": lon, "window_size": 64}, **ROADS},
            headers=ASYNC,
        )
        assert r.status_code == 201, r.get_data(as_text=True)
        ids.append(r.get_json()["jobID"])
    statuses = [wait_for_job(client, job_id)["status"] for job_id in ids]
    assert statuses == ["successful"] * 4
    listed = {j["jobID"] for j in client.get("/jobs?limit=1000").get_json()["jobs"]}
    assert set(ids) <= listed


def _bbox(minx: float, miny: float, maxx: float, maxy: float) -> dict:
    return {"bbox": [minx, miny, maxx, maxy]}


LON, LAT = utm_point(128, 128)
BAD_INPUTS = [
    ({"latitude": 91, "longitude": LON}, 400, "InvalidParameterValue", "latitude"),
    ({"latitude": LAT, "longitude": -181}, 400, "InvalidParameterValue", "longitude"),
    ({"latitude": "north", "longitude": LON}, 400, "InvalidParameterValue", "latitude"),
    ({"latitude": True, "longitude": LON}, 400, "InvalidParameterValue", "latitude"),
    ({"latitude": LAT}, 400, "InvalidParameterValue", "longitude"),
    (
        {"latitude": LAT, "longitude": LON, "threshold": 1.5},
        400,
        "InvalidParameterValue",
        "threshold",
    ),
    ({"latitude": LAT, "longitude": LON, "tta": "x8"}, 400, "InvalidParameterValue", "tta"),
    (
        {"latitude": LAT, "longitude": LON, "window_size": 10},
        400,
        "InvalidParameterValue",
        "window_size",
    ),
    ({"latitude": LAT, "longitude": LON, "colour": "red"}, 400, "InvalidParameterValue", "colour"),
    ({}, 400, "InvalidParameterValue", "exactly one"),
    (
        {"latitude": LAT, "longitude": LON, "bbox": _bbox(0, 0, 1, 1)},
        400,
        "InvalidParameterValue",
        "exactly one",
    ),
    ({"bbox": _bbox(2, 2, 1, 1)}, 400, "InvalidParameterValue", "bbox"),
    ({"bbox": {"bbox": [1, 2, 3]}}, 400, "InvalidParameterValue", "bbox"),
    ({"bbox": {"bbox": [0, 0, 1, 1], "crs": "EPSG:999999"}}, 400, "InvalidParameterValue", "crs"),
    ({"image": {"href": "/etc/passwd.tif"}}, 400, "InvalidParameterValue", "image"),
    ({"image": {"href": "../catalogue/utm.tif"}}, 400, "InvalidParameterValue", "image"),
    ({"image": {"href": "file:///tmp/utm.tif"}}, 400, "InvalidParameterValue", "image"),
    ({"image": {"href": "ftp://example.com/a.tif"}}, 400, "InvalidParameterValue", "image"),
    ({"image": {"href": "missing.tif"}}, 404, "NotFound", "missing.tif"),
    ({"latitude": 10.0, "longitude": 10.0}, 404, "NotFound", "no imagery"),
    ({"bbox": _bbox(-10, -10, -9, -9)}, 404, "NotFound", "no imagery"),
    (
        {"latitude": LAT, "longitude": LON, "window_size": 512},
        413,
        "RequestTooLarge",
        "window_size",
    ),
    ({"bbox": {"bbox": [499000, 4648000, 501000, 4651000], "crs": "EPSG:32633"}}, 200, "", ""),
]


@pytest.mark.parametrize(("inputs", "status", "code", "words"), BAD_INPUTS)
def test_bad_inputs(client: FlaskClient, inputs: dict, status: int, code: str, words: str) -> None:
    r = client.post(EXECUTE, json={"inputs": inputs}, headers=ASYNC)
    if status == 200:  # a bbox larger than the raster is clipped to the imagery, not refused
        assert r.status_code == 201
        return
    assert r.status_code == status, r.get_data(as_text=True)
    body = r.get_json()
    assert body["code"] == code and body["type"] == code
    assert words in body["description"]
    assert "Traceback" not in body["description"] and "/tmp" not in body["description"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("not json", 400),
        ("[1, 2]", 400),
        ('{"inputs": [1]}', 400),
        ('{"inputs": {"latitude": 1, "longitude": 1}, "response": "html"}', 400),
        ('{"inputs": {"latitude": 1, "longitude": 1}, "subscriber": {"successUri": "x"}}', 400),
        ('{"inputs": {"image": "utm.tif"}, "subscriber": {"failedUri": "https://x.org"}}', 400),
        ('{"inputs": {"image": "utm.tif"}, "subscriber": {"successUri": "http://10.0.0.1"}}', 400),
        ('{"inputs": {"image": "utm.tif"}, "outputs": {"roads": {"transmissionMode": "x"}}}', 400),
        ('{"inputs": {"image": "utm.tif"}, "outputs": {"lanes": {}}}', 400),
        (
            '{"inputs": {"image": "utm.tif"}, "outputs": {"roads": {"format": {"mediaType": 1}}}}',
            400,
        ),
        ('{"inputs": {"image": "utm.tif"}, "outputs": {"mask": {"format": "image/png"}}}', 400),
        (
            '{"inputs": {"image": "utm.tif"}, '
            '"outputs": {"mask": {"format": {"mediaType": "a/b"}}}}',
            400,
        ),
    ],
)
def test_bad_request_bodies(client: FlaskClient, body: str, status: int) -> None:
    r = client.post(EXECUTE, data=body, content_type="application/json")
    assert r.status_code == status
    assert r.get_json()["type"]


def test_unknown_routes_are_ogc_json(client: FlaskClient) -> None:
    r = client.get("/nowhere")
    assert r.status_code == 404 and r.get_json()["code"] == "NotFound"
    r = client.put("/processes/road-extraction/execution")
    assert r.status_code == 405 and r.get_json()["code"] == "MethodNotAllowed"


def test_model_missing_is_503_and_server_keeps_serving(tmp_path: Path, catalogue_dir: Path) -> None:
    config = service_config(
        catalogue_dir, tmp_path / "jobs", tmp_path / "none.safetensors", workers=1
    )
    app = create_app(config)
    try:
        client = app.test_client()
        lon, lat = utm_point(128, 128)
        r = client.post(EXECUTE, json={"inputs": {"latitude": lat, "longitude": lon}})
        assert r.status_code == 503
        assert r.get_json()["code"] == "ModelUnavailable"
        assert "Retry-After" in r.headers
        r = client.post(
            EXECUTE, json={"inputs": {"latitude": lat, "longitude": lon}}, headers=ASYNC
        )
        job_id = r.get_json()["jobID"]
        assert wait_for_job(client, job_id)["status"] == "failed"
        result = client.get(f"/jobs/{job_id}/results")
        assert result.status_code == 503 and result.get_json()["code"] == "ModelUnavailable"
        assert client.get("/processes").status_code == 200
    finally:
        app.extensions["sanchari.manager"].shutdown()


def test_shutdown_finishes_when_the_database_is_already_gone(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A database stopped before the server (PostgreSQL at the end of a deployment): the
    server still shuts down, with one warning instead of a traceback, and frees its folder."""
    config = service_config(catalogue_dir, tmp_path / "jobs", tiny_checkpoint, workers=1)
    app = create_app(config, runner=crashing_runner)
    manager = app.extensions["sanchari.manager"]

    def gone(owners: object) -> None:
        raise OSError("terminating connection due to administrator command")

    manager.store.forget_owners = gone
    manager.shutdown()
    assert "could not remove this server's heartbeat" in caplog.text
    again = create_app(config, runner=crashing_runner)  # the folder lock was released
    again.extensions["sanchari.manager"].shutdown()


def test_bug_in_job_is_500_without_internals(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path
) -> None:
    config = service_config(catalogue_dir, tmp_path / "jobs", tiny_checkpoint, workers=1)
    app = create_app(config, runner=crashing_runner)
    try:
        r = app.test_client().post(EXECUTE, json={"inputs": {"image": "utm.tif"}})
        assert r.status_code == 500
        text = r.get_data(as_text=True)
        assert "secret" not in text and "KeyError" not in text
    finally:
        app.extensions["sanchari.manager"].shutdown()


def test_queue_full_is_503_and_delete_stops_running_job(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path
) -> None:
    config = service_config(
        catalogue_dir, tmp_path / "jobs", tiny_checkpoint, workers=1, queue_size=1
    )
    app = create_app(config, runner=slow_runner)
    try:
        client = app.test_client()
        body = {"inputs": {"image": "utm.tif"}, **ROADS}
        running = client.post(EXECUTE, json=body, headers=ASYNC).get_json()["jobID"]
        queued = client.post(EXECUTE, json=body, headers=ASYNC).get_json()["jobID"]
        full = client.post(EXECUTE, json=body, headers=ASYNC)
        assert full.status_code == 503
        assert full.headers["Retry-After"] == "7"
        assert full.get_json()["code"] == "ServerBusy"
        status = wait_for_job(client, running, until=("running",))
        deadline = time.monotonic() + 10
        while status["progress"] < 10 and time.monotonic() < deadline:
            status = client.get(f"/jobs/{running}").get_json()
        assert 0 < status["progress"] < 100  # real, intermediate progress
        assert client.delete(f"/jobs/{queued}").status_code == 200
        assert client.delete(f"/jobs/{running}").status_code == 200
        job_dir = Path(config["server"]["manager"]["output_dir"]) / "jobs" / running
        time.sleep(2.5)  # longer than the slow job: it must not have finished
        assert client.get(f"/jobs/{running}").get_json()["status"] == "dismissed"
        assert not job_dir.exists()
        # The replacement worker takes new jobs.
        again = client.post(EXECUTE, json=body, headers=ASYNC).get_json()["jobID"]
        assert wait_for_job(client, again)["status"] == "successful"
    finally:
        app.extensions["sanchari.manager"].shutdown()


def test_restart_keeps_finished_requeues_queued_and_fails_running(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path
) -> None:
    config = service_config(catalogue_dir, tmp_path / "jobs", tiny_checkpoint, workers=1)
    jobs_dir = tmp_path / "jobs" / "jobs"
    app = create_app(config, runner=slow_runner)
    client = app.test_client()
    body = {"inputs": {"image": "utm.tif"}, **ROADS}
    done = client.post(EXECUTE, json=body, headers=ASYNC).get_json()["jobID"]
    assert wait_for_job(client, done)["status"] == "successful"
    cut = client.post(EXECUTE, json=body, headers=ASYNC).get_json()["jobID"]
    queued = client.post(EXECUTE, json=body, headers=ASYNC).get_json()["jobID"]
    wait_for_job(client, cut, until=("running",))
    assert client.get(f"/jobs/{queued}").get_json()["status"] == "accepted"
    assert "started" not in client.get(f"/jobs/{queued}").get_json()
    (jobs_dir / cut / "work").mkdir(parents=True, exist_ok=True)
    (jobs_dir / "orphan" / "work").mkdir(parents=True)
    app.extensions["sanchari.manager"].shutdown()

    app = create_app(config, runner=slow_runner)
    try:
        client = app.test_client()
        assert client.get(f"/jobs/{done}").get_json()["status"] == "successful"
        assert client.get(f"/jobs/{done}/results").get_json()["type"] == "FeatureCollection"
        interrupted = client.get(f"/jobs/{cut}").get_json()
        assert interrupted["status"] == "failed"
        assert "interrupted by a restart" in interrupted["message"]
        result = client.get(f"/jobs/{cut}/results")
        assert result.status_code == 410 and result.get_json()["code"] == "JobInterrupted"
        assert not (jobs_dir / cut).exists() and not (jobs_dir / "orphan").exists()
        again = wait_for_job(client, queued)
        assert again["status"] == "successful" and again["started"] >= again["created"]
    finally:
        app.extensions["sanchari.manager"].shutdown()
        shutil.rmtree(tmp_path / "jobs", ignore_errors=True)


def test_second_server_on_the_same_folder_changes_nothing(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path
) -> None:
    config = service_config(catalogue_dir, tmp_path / "jobs", tiny_checkpoint, workers=1)
    app = create_app(config, runner=slow_runner)
    try:
        client = app.test_client()
        body = {"inputs": {"image": "utm.tif"}, **ROADS}
        running = client.post(EXECUTE, json=body, headers=ASYNC)
        job_id = running.get_json()["jobID"]
        wait_for_job(client, job_id, until=("running",))
        with pytest.raises(StoreBusyError, match="another sanchari server"):
            create_app(config, runner=slow_runner)
        assert wait_for_job(client, job_id)["status"] == "successful"
        assert client.get(f"/jobs/{job_id}/results").status_code == 200
    finally:
        app.extensions["sanchari.manager"].shutdown()


def test_image_by_reference_over_http(client: FlaskClient, cog_server: str) -> None:
    href = f"{cog_server}/utm.tif"
    r = client.post(EXECUTE, json={"inputs": {"image": {"href": href}}, **ROADS})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["sanchari"]["window"]["href"] == href
    missing = client.post(EXECUTE, json={"inputs": {"image": {"href": f"{cog_server}/no.tif"}}})
    assert missing.status_code == 400 and "image" in missing.get_json()["description"]


def test_outputs_by_reference_with_a_relative_jobs_folder(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default jobs folder is relative (./sanchari-jobs): its files are still served."""
    monkeypatch.chdir(tmp_path)
    config = service_config(catalogue_dir, Path("jobs"), tiny_checkpoint, workers=1)
    app = create_app(config)
    try:
        client = app.test_client()
        body = {
            "inputs": {"image": "utm.tif"},
            "outputs": {"mask": {"transmissionMode": "reference"}},
        }
        r = client.post(EXECUTE, json=body)
        assert r.status_code == 204, r.get_data(as_text=True)
        href = r.headers["Link"].split(">")[0][1:]
        path = href.split("://", 1)[1].split("/", 1)[1]
        part = client.get(f"/{path}", headers={"Range": "bytes=0-9"})
        assert part.status_code == 206 and part.data[:2] in (b"II", b"MM")
    finally:
        app.extensions["sanchari.manager"].shutdown()
