"""Each row OGC API - Processes 1.0 once found wanting here, checked through the app: the
exception types, the landing page's conformance link, ``rel="monitor"``, images sent as base64,
qualified object values, the job list's ``datetime`` and run-time filters, the process list's
pages, the ``started`` of a failed job. (The standard's own walk: ``test_conformance*.py``.)
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from flask.testing import FlaskClient

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.service.jobfilters import parse_filters
from tests.service_fixtures import utm_point, wait_for_job
from tests.synthetic import road_image, write_geotiff

EXECUTE = "/processes/road-extraction/execution"
ASYNC = {"Prefer": "respond-async"}
TYPES = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/processes/nope", "no-such-process"),
        ("/jobs/nope", "no-such-job"),
        ("/jobs/nope/results", "no-such-job"),
    ],
)
def test_exception_types_are_the_standards(client: FlaskClient, path: str, kind: str) -> None:
    r = client.get(path)
    body = r.get_json()
    assert r.status_code == 404 and body["type"] == TYPES + kind
    assert body["code"] in ("NoSuchProcess", "NoSuchJob")  # the short name stays in code
    assert client.post("/processes/nope/execution", json={"inputs": {}}).get_json()["type"] == (
        TYPES + "no-such-process"
    )


def test_results_of_a_queued_job_are_not_ready(client: FlaskClient) -> None:
    lon, lat = utm_point(128, 128)
    body = {"inputs": {"latitude": lat, "longitude": lon, "tta": "d4"}, "outputs": {"roads": {}}}
    ids = [client.post(EXECUTE, json=body, headers=ASYNC).get_json()["jobID"] for _ in range(4)]
    r = client.get(f"/jobs/{ids[-1]}/results")
    if r.status_code == 404:
        assert r.get_json()["type"] == TYPES + "result-not-ready"
    for job_id in ids:
        client.delete(f"/jobs/{job_id}")
    assert r.status_code == 404, "the last of four jobs on two workers had finished already"


def test_landing_page_links_the_conformance_by_both_relations(client: FlaskClient) -> None:
    rels = [link["rel"] for link in client.get("/").get_json()["links"]]
    assert "conformance" in rels
    assert "http://www.opengis.net/def/rel/ogc/1.0/conformance" in rels


def test_a_sync_job_kept_for_a_reference_is_named_by_a_monitor_link(client: FlaskClient) -> None:
    body = {"inputs": {"image": "utm.tif"}, "outputs": {"roads": {"transmissionMode": "reference"}}}
    r = client.post(EXECUTE, json=body)
    assert r.status_code == 204
    links = {part.split(";")[1].strip(): part for part in r.headers["Link"].split(", ")}
    monitor = links['rel="monitor"'].split(";")[0].strip("<>")
    assert client.get(monitor).get_json()["status"] == "successful"
    by_value = client.post(EXECUTE, json={"inputs": {"image": "utm.tif"}, "outputs": {"roads": {}}})
    assert "Link" not in by_value.headers  # not kept, nothing to monitor


def _geotiff(tmp_path: Path, **kwargs: object) -> str:
    path = write_geotiff(tmp_path / "sent.tif", road_image(96, 96), **kwargs)  # type: ignore[arg-type]
    return base64.b64encode(path.read_bytes()).decode("ascii")


def test_image_sent_as_base64_bare_and_qualified(client: FlaskClient, tmp_path: Path) -> None:
    data = _geotiff(tmp_path)
    forms = [
        data,
        "\n".join(data[i : i + 76] for i in range(0, len(data), 76)),  # MIME line breaks
        {"value": data, "mediaType": "image/tiff; application=geotiff", "encoding": "base64"},
    ]
    for image in forms:
        body = {"inputs": {"image": image}, "outputs": {"roads": {}}, "response": "document"}
        r = client.post(EXECUTE, json=body)
        assert r.status_code == 200, r.get_data(as_text=True)
        provenance = r.get_json()["roads"]["value"]["sanchari"]
        assert provenance["request"]["image"]["bytes"] == len(base64.b64decode(data))
        assert "value" not in provenance["request"]["image"]  # no megabytes of base64 kept
    job = client.post(EXECUTE, json={"inputs": {"image": data}}, headers=ASYNC).get_json()
    status = wait_for_job(client, job["jobID"])
    assert status["status"] == "successful"
    assert set(status["parameters"]["image"]) == {"mediaType", "encoding", "bytes", "sha256"}


@pytest.mark.parametrize(
    ("image", "status", "words"),
    [
        ("abcd", 400, "not a raster"),
        ("abc", 400, "base64"),
        ("ab$d", 400, "base64"),
        (base64.b64encode(b"%PDF-1.4 not an image").decode(), 400, "not a raster"),
        ({"value": "QUJD", "encoding": "base32"}, 400, "image"),
    ],
)
def test_bad_image_data_is_400(client: FlaskClient, image: object, status: int, words: str) -> None:
    r = client.post(EXECUTE, json={"inputs": {"image": image}})
    assert r.status_code == status and words in r.get_json()["description"]


def test_image_data_must_be_a_georeferenced_geotiff_within_the_limits(
    client: FlaskClient, tmp_path: Path
) -> None:
    r = client.post(EXECUTE, json={"inputs": {"image": _geotiff(tmp_path, crs=None)}})
    assert r.status_code == 400 and "georeferencing" in r.get_json()["description"]
    big = write_geotiff(tmp_path / "big.tif", np.zeros((3, 300, 300), np.uint8))
    text = base64.b64encode(big.read_bytes()).decode()
    r = client.post(EXECUTE, json={"inputs": {"image": text}})
    assert r.status_code == 413  # the test service allows 256 x 256 pixels
    r = client.post(EXECUTE, json={"inputs": {"image": _geotiff(tmp_path), "window_size": 64}})
    assert r.status_code == 400 and "window_size" in r.get_json()["description"]


def test_object_inputs_as_qualified_values(client: FlaskClient) -> None:
    west, north = utm_point(100, 100)
    east, south = utm_point(140, 140)
    box = {"bbox": [west, south, east, north]}
    for value in (box, {"value": box, "mediaType": "application/json"}, {"value": box}):
        body = {"inputs": {"bbox": value}, "outputs": {"roads": {}}}
        r = client.post(EXECUTE, json=body)
        assert r.status_code == 200, r.get_data(as_text=True)
        assert r.get_json()["sanchari"]["request"] == {"bbox": box}
    wrong = {"value": box, "mediaType": "text/xml"}
    assert client.post(EXECUTE, json={"inputs": {"bbox": wrong}}).status_code == 400


def test_a_failed_job_has_started(client: FlaskClient, cog_server: str) -> None:
    """A job that fails before a worker takes it (its remote image is not a raster)."""
    body = {"inputs": {"image": {"href": f"{cog_server}/missing.tif"}}}
    job = client.post(EXECUTE, json=body, headers=ASYNC).get_json()
    status = wait_for_job(client, job["jobID"])
    assert status["status"] == "failed" and status["started"] <= status["finished"]
    assert client.get(f"/jobs/{job['jobID']}/results").status_code == 400


def test_process_list_pages(client: FlaskClient) -> None:
    every = [p["id"] for p in client.get("/processes").get_json()["processes"]]
    assert {"road-extraction", "road-extraction-gee", "road-model-adaptation"} <= set(every)
    pages, url = [], "/processes?limit=1"
    for _ in range(len(every)):  # one process a page, each page linking the next
        page = client.get(url).get_json()
        assert len(page["processes"]) == 1
        pages.append(page)
        after = [link["href"] for link in page["links"] if link["rel"] == "next"]
        if not after:
            break
        url = after[0].replace("http://localhost:5000", "")
    assert [p["processes"][0]["id"] for p in pages] == every
    assert not [link for link in pages[-1]["links"] if link["rel"] == "next"]
    assert [link["rel"] for link in pages[-1]["links"]][-1] == "prev"
    assert client.get("/processes?offset=x").status_code == 400


def test_job_list_by_creation_and_run_time(client: FlaskClient) -> None:
    job = client.post(EXECUTE, json={"inputs": {"image": "utm.tif"}}, headers=ASYNC).get_json()
    done = wait_for_job(client, job["jobID"])
    created = done["created"]

    def ids(query: str) -> set[str]:
        r = client.get(f"/jobs?{query}&limit=1000")
        assert r.status_code == 200, r.get_data(as_text=True)
        return {j["jobID"] for j in r.get_json()["jobs"]}

    for query in (created, created[:19] + "Z", f"{created}/..", f"../{created}", f"/{created}"):
        assert job["jobID"] in ids(f"datetime={query}"), query
    assert job["jobID"] not in ids("datetime=2001-01-01T00:00:00Z/2001-12-31T23:59:59+02:00")
    assert job["jobID"] in ids("minDuration=0&maxDuration=3600")
    assert job["jobID"] not in ids("minDuration=3600")
    page = client.get(f"/jobs?datetime={created}/..&limit=1").get_json()
    assert all("datetime=" in link["href"] for link in page["links"])


@pytest.mark.parametrize(
    "query",
    [
        {"datetime": ["tomorrow"]},
        {"datetime": ["2024-01-01T00:00:00"]},  # RFC 3339 needs a time zone
        {"datetime": ["../.."]},
        {"datetime": ["2024-02-01T00:00:00Z/2024-01-01T00:00:00Z"]},
        {"datetime": ["2024-13-01T00:00:00Z"]},
        {"minDuration": ["1.5"]},
        {"maxDuration": ["-3"]},
    ],
)
def test_bad_job_filters_are_400(query: dict) -> None:
    with pytest.raises(InvalidInputError):
        parse_filters(query)


def test_job_filters_understood() -> None:
    instant = parse_filters({"datetime": ["2024-05-01T12:00:00.5+02:00"]})
    assert (instant.created_from, instant.created_to) == (
        "2024-05-01T10:00:00.500000Z",
        "2024-05-01T10:00:00.599999Z",
    )
    assert parse_filters({"datetime": ["2024-05-01T12:00:00Z/"]}).created_to is None
    durations = parse_filters({"minDuration": ["3,7"], "maxDuration": ["60", "30"]})
    assert (durations.min_duration, durations.max_duration) == (7, 30)
