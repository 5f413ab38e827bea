"""The attacker's and careless user's table, retried: every row answers as it should.

Caller mistakes are 4xx OGC exceptions logged as one line; remote hrefs cannot reach internal
addresses; synchronous executions are bounded in time and stop with their client; finished
jobs expire. (Server-process behaviour, SIGKILL and a second server: test_server.py.)
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sanchari_processes.service.app import create_app
from tests.service_fixtures import (
    service_config,
    slow_runner,
    very_slow_runner,
    wait_for_job,
)

EXECUTE = "/processes/road-extraction/execution"
ASYNC = {"Prefer": "respond-async"}


def _post(client: FlaskClient, body: bytes | str, **kwargs: object) -> object:
    return client.post(EXECUTE, data=body, content_type="application/json", **kwargs)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"inputs": {"image": "\xff\xfe.tif"}}', "UTF-8"),
        ("[" * 5000 + "]" * 5000, "nested"),
        ('{"inputs": ' + "[" * 40 + "]" * 40 + "}", "nested"),
        ('{"inputs": {"latitude": 1' + "0" * 5000 + ', "longitude": 1}}', "digits"),
        ('{"inputs": {"bbox": {"bbox": [0, 0, 1' + "0" * 400 + ", 1]}}}", "digits"),
        ('{"inputs": {"latitude": 1e999, "longitude": 1}}', "range"),
        ('{"inputs": {"latitude": NaN, "longitude": 1}}', "NaN"),
        ('{"inputs": {"image": "\\ud800.tif"}}', "Unicode"),
        ('{"inputs": {"image": {"href": "\\udfff"}}}', "Unicode"),
        ('{"inputs": {"\\ud800": 1}}', "Unicode"),
        ("", "JSON"),
    ],
)
def test_malformed_bodies_are_400(client: FlaskClient, body: bytes | str, words: str) -> None:
    r = _post(client, body)
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    document = r.get_json()
    assert document["code"] == "InvalidParameterValue" and words in document["description"]


def test_file_names_with_nul_are_400(client: FlaskClient) -> None:
    r = client.post(EXECUTE, json={"inputs": {"image": "a\u0000.tif"}})
    assert r.status_code == 400


def test_body_over_limit_is_413(client: FlaskClient) -> None:
    r = _post(client, b'{"inputs": {"image": "' + b"a" * (2 * 1024 * 1024) + b'"}}')
    assert r.status_code == 413
    assert r.get_json()["code"] == "RequestTooLarge" and "bytes" in r.get_json()["description"]


@pytest.mark.parametrize(
    "query",
    ["offset=99999999999999999999999", "offset=-1", "offset=x", "limit=0", "status=done"],
)
def test_bad_job_list_queries_are_400(client: FlaskClient, query: str) -> None:
    r = client.get(f"/jobs?{query}")
    assert r.status_code == 400 and r.get_json()["code"] == "InvalidParameterValue"


def test_405_says_what_is_allowed(client: FlaskClient) -> None:
    r = client.put(EXECUTE)
    assert r.status_code == 405 and r.get_json()["code"] == "MethodNotAllowed"
    assert "POST" in r.headers["Allow"]
    assert set(client.patch("/jobs/x").headers["Allow"].split(", ")) >= {"GET", "DELETE"}


@pytest.mark.parametrize("path", ["/jobs/nope", "/jobs/nope/results"])
def test_unknown_job_is_no_such_job(client: FlaskClient, path: str) -> None:
    for method in ("GET", "DELETE") if path == "/jobs/nope" else ("GET",):
        r = client.open(path, method=method)
        assert r.status_code == 404 and r.get_json()["code"] == "NoSuchJob"


def test_job_filters_and_started_time(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path
) -> None:
    config = service_config(catalogue_dir, tmp_path / "jobs", tiny_checkpoint, workers=1)
    app = create_app(config, runner=slow_runner)
    try:
        client = app.test_client()
        body = {"inputs": {"image": "utm.tif"}}
        first = client.post(EXECUTE, json=body, headers=ASYNC).get_json()
        second = client.post(EXECUTE, json=body, headers=ASYNC).get_json()
        assert "started" not in first and first["status"] == "accepted"
        running = wait_for_job(client, first["jobID"], until=("running",))
        assert running["started"] >= running["created"]
        queued = client.get("/jobs?status=accepted").get_json()
        assert [j["jobID"] for j in queued["jobs"]] == [second["jobID"]]
        both = client.get("/jobs?status=accepted,running&type=process").get_json()
        assert {j["jobID"] for j in both["jobs"]} == {first["jobID"], second["jobID"]}
        assert client.get("/jobs?processID=road-extraction-gee").get_json()["jobs"] == []
        assert client.get("/jobs?type=other").get_json()["jobs"] == []
        page = client.get("/jobs?limit=1").get_json()
        assert page["numberMatched"] == 2 and [link["rel"] for link in page["links"]][-1] == "next"
        html = client.get(f"/jobs/{second['jobID']}?f=html")
        assert html.status_code == 200 and "text/html" in html.headers["Content-Type"]
        assert client.get("/jobs?f=html").status_code == 200
    finally:
        app.extensions["sanchari.manager"].shutdown()


def test_caller_mistakes_log_one_line(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for response in (
        client.get("/jobs/nope"),
        _post(client, b"\xff"),
        client.post(EXECUTE, json={"inputs": {"latitude": 91, "longitude": 0}}),
        client.get("/nowhere"),
    ):
        assert 400 <= response.status_code < 500
    assert caplog.records
    for record in caplog.records:
        assert record.exc_info is None and record.levelno < logging.ERROR, record.getMessage()


# -- remote imagery: the SSRF guard through the service --------------------------------------------
@pytest.fixture(scope="module")
def guarded_app(
    tmp_path_factory: pytest.TempPathFactory, catalogue_dir: Path, tiny_checkpoint: Path
) -> Iterator[Flask]:
    """The default remote settings: nothing but public addresses."""
    jobs = tmp_path_factory.mktemp("guarded")
    app = create_app(service_config(catalogue_dir, jobs, tiny_checkpoint, workers=1))
    yield app
    app.extensions["sanchari.manager"].shutdown()


@pytest.mark.parametrize(
    "href",
    [
        "http://127.0.0.1:{port}/utm.tif",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/utm.tif",
        "http://2130706433:{port}/utm.tif",
        "http://0x7f.1:{port}/utm.tif",
        "http://user:pw@127.0.0.1:{port}/utm.tif",
        "http://localhost:{port}/utm.tif",
    ],
)
@pytest.mark.parametrize("headers", [{}, ASYNC])
def test_internal_hrefs_are_refused(
    guarded_app: Flask, cog_server: str, href: str, headers: dict
) -> None:
    port = cog_server.rsplit(":", 1)[1]
    client = guarded_app.test_client()
    r = client.post(
        EXECUTE, json={"inputs": {"image": {"href": href.format(port=port)}}}, headers=headers
    )
    if r.status_code == 201:  # a name: refused once resolved, off the web thread
        status = wait_for_job(client, r.get_json()["jobID"], timeout=30)
        assert status["status"] == "failed" and "public" in status["message"]
        result = client.get(f"/jobs/{r.get_json()['jobID']}/results")
        assert result.status_code == 400
        return
    assert r.status_code == 400, r.get_data(as_text=True)
    assert "image" in r.get_json()["description"]


def test_allow_list_reaches_the_local_cog(client: FlaskClient, cog_server: str) -> None:
    """The shared app allows 127.0.0.1 (SANCHARI_REMOTE_ALLOW), so its own test server is read."""
    r = client.post(EXECUTE, json={"inputs": {"image": {"href": f"{cog_server}/utm.tif"}}})
    assert r.status_code == 200, r.get_data(as_text=True)


# -- synchronous executions: time limit, disconnects, thread reserve -----------------------------
def test_sync_time_limit_answers_504_and_stops_the_job(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path
) -> None:
    config = service_config(catalogue_dir, tmp_path / "jobs", tiny_checkpoint, workers=1)
    config["server"]["manager"]["sync_timeout_s"] = 1
    app = create_app(config, runner=very_slow_runner)
    try:
        client = app.test_client()
        started = time.monotonic()
        r = client.post(EXECUTE, json={"inputs": {"image": "utm.tif"}})
        assert r.status_code == 504 and r.get_json()["code"] == "SyncTimeout"
        assert "respond-async" in r.get_json()["description"]
        assert time.monotonic() - started < 15
        manager = app.extensions["sanchari.manager"]
        assert manager.store.list(include_sync=True)[1] == 0  # not kept
        assert not any((tmp_path / "jobs" / "jobs").glob("*"))
    finally:
        app.extensions["sanchari.manager"].shutdown()


def test_sync_job_stops_when_its_client_disconnects(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path
) -> None:
    import waitress.server

    config = service_config(catalogue_dir, tmp_path / "jobs", tiny_checkpoint, workers=1)
    app = create_app(config, runner=very_slow_runner)
    server = waitress.server.create_server(
        app, host="127.0.0.1", port=0, threads=4, channel_request_lookahead=1
    )
    port = server.socket.getsockname()[1]
    threading.Thread(target=server.run, daemon=True).start()
    manager = app.extensions["sanchari.manager"]
    try:
        body = json.dumps({"inputs": {"image": "utm.tif"}}).encode()
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(
            b"POST /processes/road-extraction/execution HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if manager.store.list(include_sync=True, statuses=["running"])[1]:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the sync job never started")
        sock.close()
        deadline = time.monotonic() + 10
        while manager.store.list(include_sync=True)[1] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert manager.store.list(include_sync=True)[1] == 0  # stopped and forgotten
    finally:
        server.close()
        manager.shutdown()


def test_sync_executions_beyond_the_cap_are_503(
    tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path
) -> None:
    config = service_config(catalogue_dir, tmp_path / "jobs", tiny_checkpoint, workers=1)
    app = create_app(config, runner=very_slow_runner, threads=3)  # one sync slot
    manager = app.extensions["sanchari.manager"]
    try:
        body = {"inputs": {"image": "utm.tif"}}
        first = threading.Thread(
            target=lambda: app.test_client().post(EXECUTE, json=body), daemon=True
        )
        first.start()
        deadline = time.monotonic() + 10
        while not manager.store.list(include_sync=True)[1] and time.monotonic() < deadline:
            time.sleep(0.05)
        r = app.test_client().post(EXECUTE, json=body)
        assert r.status_code == 503 and "respond-async" in r.get_json()["description"]
        assert "Retry-After" in r.headers
        assert app.test_client().post(EXECUTE, json=body, headers=ASYNC).status_code == 201
    finally:
        manager.shutdown()


# -- retention ------------------------------------------------------------------------------------
def test_finished_jobs_expire(tmp_path: Path, catalogue_dir: Path, tiny_checkpoint: Path) -> None:
    config = service_config(catalogue_dir, tmp_path / "jobs", tiny_checkpoint, workers=1)
    config["server"]["manager"]["job_retention_s"] = 1
    app = create_app(config, runner=slow_runner)
    try:
        client = app.test_client()
        job_id = client.post(EXECUTE, json={"inputs": {"image": "utm.tif"}}, headers=ASYNC)
        job_id = job_id.get_json()["jobID"]
        assert wait_for_job(client, job_id)["status"] == "successful"
        assert (tmp_path / "jobs" / "jobs" / job_id / "roads.geojson").is_file()
        deadline = time.monotonic() + 10
        while client.get(f"/jobs/{job_id}").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.get(f"/jobs/{job_id}").get_json()["code"] == "NoSuchJob"
        assert not (tmp_path / "jobs" / "jobs" / job_id).exists()
    finally:
        app.extensions["sanchari.manager"].shutdown()
