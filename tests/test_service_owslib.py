"""The real server (``sanchari serve``: waitress on 127.0.0.1) driven by OWSLib, an OGC client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml
from owslib.ogcapi.processes import Processes

from tests.service_fixtures import service_config, utm_point


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server_url(
    tmp_path_factory: pytest.TempPathFactory, catalogue_dir: Path, tiny_checkpoint: Path
) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("server")
    config = service_config(catalogue_dir, tmp / "jobs", tiny_checkpoint, workers=1)
    config_path = tmp / "pygeoapi-config.yml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable,
        "-m",
        "sanchari_processes.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--config",
        str(config_path),
    ]
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/processes", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp / "server.log").read_text())
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_owslib_list_describe_execute_poll_results(server_url: str) -> None:
    client = Processes(server_url)
    assert [p["id"] for p in client.processes()] == ["road-extraction", "road-extraction-gee"]
    desc = client.process("road-extraction")
    assert "latitude" in desc["inputs"]
    assert "collection" in client.process("road-extraction-gee")["inputs"]

    lon, lat = utm_point(128, 128)
    inputs = {"latitude": lat, "longitude": lon, "window_size": 96}
    result = client.execute("road-extraction", inputs)  # sync, response=document
    collection = result["roads"]["value"]
    assert collection["type"] == "FeatureCollection"
    assert collection["sanchari"]["window"]["width"] == 96

    status = client.execute("road-extraction", inputs, async_=True)
    job_url = client.response_headers["Location"]
    assert status["jobID"] == job_url.rsplit("/", 1)[-1]
    deadline = time.monotonic() + 60
    while status["status"] in ("accepted", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        status = requests.get(job_url, timeout=10).json()
    assert status["status"] == "successful"
    results = requests.get(f"{job_url}/results", timeout=10)
    assert results.headers["Content-Type"] == "application/geo+json"
    assert results.json()["sanchari"]["job"]["id"] == status["jobID"]

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
    assert requests.get(f"{server_url}/jobs", timeout=10).ok  # still serving
