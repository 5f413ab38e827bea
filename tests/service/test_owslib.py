"""The real server (``sanchari serve``: waitress on 127.0.0.1) driven by OGC clients.

OWSLib for discovery, execution and conformance; GDAL (``/vsicurl/``, through rasterio and
pyogrio) opens outputs by reference; a callback receiver and a static STAC/COG host are local
HTTP servers the tests start. 127.0.0.1 is allow-listed explicitly (the default refuses it).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pyogrio
import pytest
import rasterio
import requests
from owslib.ogcapi.processes import Processes
from rio_cogeo.cogeo import cog_validate

from tests.server_process import running_server
from tests.service_fixtures import CallbackReceiver, service_config, static_server, utm_point

COG = "image/tiff; application=geotiff; profile=cloud-optimized"
CONF = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/"


@pytest.fixture(scope="module")
def server_url(
    tmp_path_factory: pytest.TempPathFactory, catalogue_dir: Path, tiny_checkpoint: Path
) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("server")
    config = service_config(
        catalogue_dir, tmp / "jobs", tiny_checkpoint, workers=1, remote_allow="127.0.0.1"
    )
    config["server"]["manager"].update(remote_allow="127.0.0.1", callback_retries=2)
    with running_server(config, tmp) as (_proc, url):
        yield url


def _wait(job_url: str, timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = requests.get(job_url, timeout=10).json()
        if status["status"] not in ("accepted", "running") or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def test_owslib_list_describe_execute_poll_results(server_url: str) -> None:
    client = Processes(server_url)
    assert [p["id"] for p in client.processes()] == [
        "road-extraction",
        "road-extraction-gee",
        "road-model-adaptation",
    ]
    desc = client.process("road-extraction")
    assert "latitude" in desc["inputs"] and set(desc["outputs"]) >= {"roads", "mask"}
    assert "collection" in client.process("road-extraction-gee")["inputs"]

    lon, lat = utm_point(128, 128)
    inputs = {"latitude": lat, "longitude": lon, "window_size": 96}
    result = client.execute("road-extraction", inputs)  # sync, response=document, all outputs
    collection = result["roads"]["value"]
    assert collection["type"] == "FeatureCollection"
    assert collection["sanchari"]["window"]["width"] == 96
    assert result["mask"]["mediaType"] == COG and result["mask"]["encoding"] == "base64"
    assert result["preview"]["mediaType"] == "image/png"

    roads_only = {"roads": {}}
    status = client.execute("road-extraction", inputs, outputs=roads_only, async_=True)
    job_url = client.response_headers["Location"]
    assert status["jobID"] == job_url.rsplit("/", 1)[-1]
    assert _wait(job_url)["status"] == "successful"
    results = requests.get(f"{job_url}/results", timeout=10)  # response=document, as asked
    assert results.headers["Content-Type"] == "application/json"
    assert results.json()["roads"]["value"]["sanchari"]["job"]["id"] == status["jobID"]
    file = requests.get(f"{job_url}/results/roads", timeout=10)
    assert file.headers["Content-Type"] == "application/geo+json"
    assert file.json()["type"] == "FeatureCollection"

    bad = requests.post(
        f"{server_url}/processes/road-extraction/execution",
        json={"inputs": {"latitude": 95, "longitude": 0}},
        timeout=10,
    )
    assert bad.status_code == 400 and bad.json()["code"] == "InvalidParameterValue"
    no_ee = requests.post(  # this server has no Earth Engine credentials
        f"{server_url}/processes/road-extraction-gee/execution",
        json={"inputs": {"latitude": 39.74, "longitude": -104.99}},
        timeout=10,
    )
    assert no_ee.status_code == 503 and "Retry-After" in no_ee.headers
    assert "earthengine authenticate" in no_ee.json()["description"]


def test_conformance_lists_exactly_what_works(server_url: str) -> None:
    classes = Processes(server_url).conformance()["conformsTo"]
    expected = {"core", "ogc-process-description", "json", "html", "oas30", "job-list"}
    expected |= {"callback", "dismiss"}
    assert set(classes) == {CONF + name for name in expected}
    # html: every resource renders as HTML
    for path in ("/", "/conformance", "/processes", "/processes/road-extraction", "/jobs"):
        page = requests.get(f"{server_url}{path}?f=html", timeout=10)
        assert page.ok and page.headers["Content-Type"].startswith("text/html"), path
    # oas30
    assert requests.get(f"{server_url}/openapi?f=json", timeout=10).json()["openapi"] >= "3.0"


@pytest.mark.filterwarnings("ignore:File /vsicurl/.*non conformant file extension")
def test_outputs_by_reference_open_in_gdal(server_url: str, tmp_path: Path) -> None:
    client = Processes(server_url)
    lon, lat = utm_point(128, 128)
    outputs = {
        "roads": {
            "transmissionMode": "reference",
            "format": {"mediaType": "application/geopackage+sqlite3"},
        },
        "mask": {"transmissionMode": "reference"},
        "probability": {"transmissionMode": "reference"},
    }
    inputs = {"latitude": lat, "longitude": lon, "window_size": 128}
    status = client.execute("road-extraction", inputs, outputs=outputs, async_=True)
    job_url = client.response_headers["Location"]
    assert _wait(job_url)["status"] == "successful"
    links = requests.get(f"{job_url}/results", timeout=10).json()
    assert links["mask"]["href"] == f"{job_url}/results/mask" and links["mask"]["type"] == COG

    mask_url = links["mask"]["href"]
    valid, errors, _warnings = cog_validate(mask_url, quiet=True)
    assert valid, errors
    with rasterio.open(f"/vsicurl/{mask_url}") as mask:
        assert (mask.width, mask.height) == (128, 128) and mask.crs.to_epsg() == 32633
        assert set(mask.read(1).ravel().tolist()) <= {0, 255}
    with rasterio.open(f"/vsicurl/{links['probability']['href']}") as prob:
        data = prob.read(1)
        assert prob.dtypes[0] == "float32" and 0.0 <= data.min() <= data.max() <= 1.0
    info = pyogrio.read_info(f"/vsicurl/{links['roads']['href']}")
    assert info["geometry_type"] == "LineString" and info["crs"] == "EPSG:4326"
    assert "length_m" in list(info["fields"])

    part = requests.get(mask_url, headers={"Range": "bytes=0-15"}, timeout=10)
    assert part.status_code == 206 and part.headers["Content-Range"].startswith("bytes 0-15/")
    assert len(part.content) == 16 and part.content[:2] in (b"II", b"MM")
    assert requests.head(mask_url, timeout=10).headers["Accept-Ranges"] == "bytes"
    assert requests.get(f"{job_url}/results/nope", timeout=10).status_code == 404
    assert requests.delete(job_url, timeout=10).ok
    assert requests.get(mask_url, timeout=10).status_code == 404
    assert status["jobID"] in job_url


def test_raw_answers_follow_the_standard(server_url: str) -> None:
    execute = f"{server_url}/processes/road-extraction/execution"
    lon, lat = utm_point(100, 100)
    inputs = {"latitude": lat, "longitude": lon, "window_size": 64}
    refs = {
        "roads": {"transmissionMode": "reference"},
        "preview": {"transmissionMode": "reference"},
    }
    r = requests.post(execute, json={"inputs": inputs, "outputs": refs}, timeout=60)
    assert r.status_code == 204 and not r.content
    links = requests.utils.parse_header_links(r.headers["Link"])
    by_title = {link["title"]: link for link in links if link["rel"] != "monitor"}
    assert set(by_title) == {"roads", "preview"}
    monitor = [link["url"] for link in links if link["rel"] == "monitor"]
    assert by_title["preview"]["type"] == "image/png"
    png = requests.get(by_title["preview"]["url"], timeout=10)
    assert png.headers["Content-Type"] == "image/png" and png.content[:4] == b"\x89PNG"
    kept = by_title["roads"]["url"].rsplit("/results/", 1)[0]  # a sync job kept for its links
    assert monitor == [kept] and requests.get(kept, timeout=10).json()["status"] == "successful"

    mixed = {"roads": {}, "mask": {"transmissionMode": "reference"}}
    r = requests.post(execute, json={"inputs": inputs, "outputs": mixed}, timeout=60)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("multipart/related")
    assert b"Content-ID: <roads>" in r.content and b"Content-ID: <mask>" in r.content
    monitor = requests.utils.parse_header_links(r.headers["Link"])
    assert [link["rel"] for link in monitor] == ["monitor"]  # the job kept for its reference
    head, body = r.content.split(b"Content-ID: <mask>\r\n\r\n", 1)
    assert body.startswith(b"\r\n--")  # a reference part is empty, and says where it is
    location = f"Content-Location: {monitor[0]['url']}/results/mask\r\n".encode()
    assert location in head.rsplit(b"\r\n--", 1)[1]

    fgb = {"roads": {"format": {"mediaType": "application/flatgeobuf"}}}
    r = requests.post(execute, json={"inputs": inputs, "outputs": fgb}, timeout=60)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/flatgeobuf"
    assert r.content[:3] == b"fgb"


def test_callbacks_arrive_and_never_hold_a_job(server_url: str, tmp_path: Path) -> None:
    receiver = CallbackReceiver()
    try:
        execute = f"{server_url}/processes/road-extraction/execution"
        lon, lat = utm_point(128, 128)
        subscriber = {
            "successUri": f"{receiver.url}/ok",
            "inProgressUri": f"{receiver.url}/progress",
            "failedUri": f"{receiver.url}/failed",
        }
        body = {
            "inputs": {"latitude": lat, "longitude": lon, "window_size": 96},
            "outputs": {"roads": {}},
            "subscriber": subscriber,
        }
        r = requests.post(execute, json=body, headers={"Prefer": "respond-async"}, timeout=10)
        job_id = r.json()["jobID"]
        done = receiver.wait_for("/ok")
        assert done and done[0]["roads"]["value"]["sanchari"]["job"]["id"] == job_id
        progress = receiver.bodies("/progress")
        assert progress and progress[0]["jobID"] == job_id

        failing = {
            "inputs": {"image": f"{receiver.url}/missing.tif"},  # answers POST only: no raster
            "outputs": {"roads": {}},
            "subscriber": subscriber,
        }
        r = requests.post(execute, json=failing, headers={"Prefer": "respond-async"}, timeout=10)
        failed = receiver.wait_for("/failed")
        assert failed and failed[0]["jobID"] == r.json()["jobID"]
        assert failed[0]["code"] == "InvalidParameterValue" and failed[0]["status"] == 400

        private = {**body, "subscriber": {"successUri": "http://10.1.2.3/cb"}}
        refused = requests.post(execute, json=private, timeout=10)
        assert refused.status_code == 400 and "public" in refused.json()["description"]
    finally:
        receiver.close()


def _stac_item(asset_href: str, **asset: object) -> dict:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": ["https://stac-extensions.github.io/eo/v1.1.0/schema.json"],
        "id": "utm-scene",
        "collection": "test-scenes",
        "geometry": None,
        "properties": {"datetime": "2024-05-01T10:00:00Z"},
        "links": [],
        "assets": {
            "thumbnail": {"href": "thumb.png", "type": "image/png", "roles": ["thumbnail"]},
            "image": {"href": asset_href, "type": COG, **asset},
        },
    }


def test_stac_item_href_runs_on_its_rgb_asset(
    server_url: str, catalogue_dir: Path, tmp_path: Path
) -> None:
    static = tmp_path / "stac"
    (static / "items").mkdir(parents=True)
    shutil.copyfile(catalogue_dir / "utm.tif", static / "scene.tif")
    bands = [{"name": n, "common_name": n} for n in ("red", "green", "blue")]
    item = _stac_item("../scene.tif", roles=["data"], **{"eo:bands": bands})
    (static / "items" / "utm-scene").write_text(json.dumps(item))
    (static / "bare.json").write_text(json.dumps(_stac_item("scene.tif", roles=["data"])))
    execute = f"{server_url}/processes/road-extraction/execution"
    with static_server(static) as host:
        item_url = f"{host}/items/utm-scene"  # a STAC API item link: no suffix, no type
        window = [*utm_point(20, 120), *utm_point(120, 20)]
        body = {
            "inputs": {"image": {"href": item_url}, "bbox": {"bbox": window}},
            "outputs": {"roads": {}},
        }
        r = requests.post(execute, json=body, timeout=60)
        assert r.status_code == 200, r.text
        record = r.json()["sanchari"]
        assert record["stac"]["item"] == item_url and record["stac"]["asset"] == "image"
        assert record["stac"]["asset_href"] == f"{host}/scene.tif"
        assert record["stac"]["datetime"] == "2024-05-01T10:00:00Z"
        assert record["derived_from"][0]["href"] == item_url
        assert record["window"]["width"] < 256 and record["window"]["window"]["source_width"] == 256
        assert record["model"]["sha256"] and record["request"]["image"]["href"] == item_url

        typed = {"href": f"{host}/bare.json", "type": "application/geo+json"}
        r = requests.post(execute, json={"inputs": {"image": typed}}, timeout=60)
        assert r.status_code == 400 and "no asset" in r.json()["description"]
