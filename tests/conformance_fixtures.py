"""The conformance walk's client and live server (tests/service/test_conformance*.py).

:class:`Client` talks to the server under test and records every answer against its OpenAPI
document; :func:`checks` marks a test as the check of some abstract tests. The server is
``sanchari serve`` started as the docs say (the shipped configuration and demo catalogue) with
the tiny test model and ``SANCHARI_REMOTE_ALLOW=127.0.0.1`` (an input by reference and the
callbacks reach listeners on this machine), or the one at ``SANCHARI_CONFORMANCE_URL``.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import requests

from sanchari_processes.settings import DEFAULT_CONFIG
from tests.ogc_material import MATERIAL, Operations, Page, Schemas
from tests.server_process import serving
from tests.service_fixtures import CallbackReceiver, static_server
from tests.synthetic import road_image, write_geotiff

REPO = DEFAULT_CONFIG.parent
JSON = "application/json"
#: Abstract tests by label -> the test here that checks them.
CHECKS: dict[str, str] = {}


def checks(*labels: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Mark a test as the check of these abstract tests."""

    def register(test: Callable[..., None]) -> Callable[..., None]:
        for label in labels:
            CHECKS[label] = test.__name__
        return test

    return register


class Client:
    """HTTP to the server under test: every answer is recorded against the OpenAPI document."""

    def __init__(self, url: str, schemas: Schemas) -> None:
        self.url = url.rstrip("/")
        self.schemas = schemas
        self.session = requests.Session()
        document = self.session.get(f"{self.url}/openapi", params={"f": "json"}, timeout=30)
        self.operations = Operations(document.json())

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else f"{self.url}{path}"
        kwargs.setdefault("timeout", 120)
        response = self.session.request(method, url, **kwargs)
        local = url[len(self.url) :].split("?", 1)[0] or "/"
        self.operations.record(method, local, response.status_code)
        assert response.raw.version == 11, "not HTTP/1.1"  # /conf/core/http
        return response

    def json(self, path: str, schema: str | None, status: int = 200, **kw: Any) -> Any:
        """GET ``path`` as JSON: the status, the media type, and the body against ``schema``."""
        headers = {"Accept": JSON, **kw.pop("headers", {})}
        response = self.call("GET", path, headers=headers, **kw)
        return self.check(response, schema, status)

    def check(self, response: requests.Response, schema: str | None, status: int) -> Any:
        assert response.status_code == status, (response.url, response.text[:500])
        assert response.headers["Content-Type"].split(";")[0] == JSON, response.url
        body = response.json()
        if schema:
            assert not self.schemas.errors(schema, body), self.schemas.errors(schema, body)
        return body

    def html(self, path: str, status: int = 200, **kw: Any) -> Page:
        response = self.call("GET", path, params={"f": "html", **kw.pop("params", {})}, **kw)
        assert response.status_code == status, (path, response.status_code)
        assert response.headers["Content-Type"].startswith("text/html"), path
        page = Page(response.text)
        assert page.html5, path
        return page

    def execute(self, process: str, body: dict, *, prefer: str | None = None) -> requests.Response:
        """POST an execute request (checked first against execute.yaml)."""
        assert not self.schemas.errors("execute.yaml", body), self.schemas.errors(
            "execute.yaml", body
        )
        headers = {"Prefer": prefer} if prefer else {}
        return self.call("POST", f"/processes/{process}/execution", json=body, headers=headers)

    def wait(self, job: str, timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            status = self.json(f"/jobs/{job}", "statusInfo.yaml")
            if status["status"] not in ("accepted", "running") or time.monotonic() > deadline:
                return status
            time.sleep(0.2)


# -- the server, its inputs and what it offers -------------------------------------------------
@pytest.fixture(scope="session")
def loopback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Listeners on 127.0.0.1: a GeoTIFF and a file that is not one, and a callback receiver."""
    folder = tmp_path_factory.mktemp("loopback")
    write_geotiff(folder / "scene.tif", road_image(128, 128))
    (folder / "broken.tif").write_bytes(b"not a raster at all")
    receiver = CallbackReceiver()
    with static_server(folder) as url:
        yield {"url": url, "scene": folder / "scene.tif", "callbacks": receiver}
    receiver.close()


@pytest.fixture(scope="session")
def ogc(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Iterator[Client]:
    assert MATERIAL is not None
    schemas = Schemas(MATERIAL)
    external = os.environ.get("SANCHARI_CONFORMANCE_URL")
    if external:
        yield Client(external, schemas)
        return
    folder = tmp_path_factory.mktemp("conformance")
    config = folder / "pygeoapi-config.yml"
    config.write_text(DEFAULT_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    env = {
        "SANCHARI_GEOTIFF_DIR": str(REPO / "geotiffs"),
        "SANCHARI_JOBS_DIR": str(folder / "jobs"),
        "SANCHARI_WEIGHTS": str(tiny_checkpoint),
        "SANCHARI_BACKEND": "torch",
        "SANCHARI_REMOTE_ALLOW": "127.0.0.1",
    }
    with serving(config, env=env) as (_, url):
        yield Client(url, schemas)


@pytest.fixture(scope="session")
def ogc_processes(ogc: Client) -> dict[str, dict]:
    """The description of every process that runs here: its example executes (a process
    whose source is not configured, Earth Engine without credentials, answers 503)."""
    listed = ogc.json("/processes", "processList.yaml")["processes"]
    found = {}
    for summary in listed:
        description = ogc.json(f"/processes/{summary['id']}", "process.yaml")
        first_output = next(iter(description["outputs"]))
        example = {"inputs": description["example"]["inputs"], "outputs": {first_output: {}}}
        if "sync-execute" not in description["jobControlOptions"]:
            # asynchronous only (an adaptation): its example creates a job, dismissed at once
            answer = ogc.execute(summary["id"], example, prefer="respond-async")
            ogc.check(answer, "statusInfo.yaml", 201)
            assert ogc.call("DELETE", answer.headers["Location"]).status_code == 200
            continue
        answer = ogc.execute(summary["id"], example)
        if answer.status_code == 503:
            assert answer.headers.get("Retry-After"), "a process that cannot run says when"
            continue
        assert answer.status_code == 200, answer.text[:500]
        found[summary["id"]] = description
    assert found, "no process runs on this server"
    return found


def request_body(description: dict, **outputs: dict) -> dict:
    body = {"inputs": copy.deepcopy(description["example"]["inputs"])}
    if outputs:
        body["outputs"] = outputs
    return body


def parts(response: requests.Response) -> dict[str, Any]:
    head = f"Content-Type: {response.headers['Content-Type']}\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + response.content)
    assert message.is_multipart(), response.headers["Content-Type"]
    return {part["Content-ID"].strip("<>"): part for part in message.iter_parts()}


def links(response: requests.Response) -> list[dict[str, str]]:
    return requests.utils.parse_header_links(response.headers.get("Link", ""))


@pytest.fixture(scope="session")
def ogc_jobs(ogc: Client, ogc_processes: dict[str, dict]) -> list[dict]:
    """Two finished async jobs of the first process that runs (their status documents)."""
    process, description = next(iter(ogc_processes.items()))
    jobs = []
    for _ in range(2):
        answer = ogc.execute(process, request_body(description, roads={}), prefer="respond-async")
        assert answer.status_code == 201, answer.text[:500]
        jobs.append(answer.json()["jobID"])
    done = [ogc.wait(job) for job in jobs]
    assert [d["status"] for d in done] == ["successful", "successful"], done
    return done
