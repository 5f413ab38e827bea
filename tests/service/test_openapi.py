"""openapi.yml is the service's own document for pygeoapi-config.yml: self-contained (every
``$ref`` local), valid OpenAPI 3.0, and listing exactly the endpoints the app serves."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from sanchari_processes.service.openapi import render
from sanchari_processes.service.settings import load_config
from sanchari_processes.settings import DEFAULT_CONFIG

ROOT = DEFAULT_CONFIG.parent
ENV = (
    "SANCHARI_GEOTIFF_DIR",
    "SANCHARI_WEIGHTS",
    "SANCHARI_JOBS_DIR",
    "SANCHARI_WORKERS",
    "SANCHARI_QUEUE_SIZE",
    "SANCHARI_MAX_PIXELS",
    "SANCHARI_DEVICE",
    "SANCHARI_SYNC_TIMEOUT",
    "SANCHARI_JOB_RETENTION",
    "SANCHARI_MAX_JOBS",
    "SANCHARI_MAX_BODY",
    "SANCHARI_REMOTE_ALLOW",
    "SANCHARI_REMOTE_TIMEOUT",
    "SANCHARI_REMOTE_CONCURRENCY",
    "SANCHARI_MODELS_DIR",
    "SANCHARI_ADAPT_MAX_MINUTES",
)


def test_openapi_yml_matches_config(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    current = (ROOT / "openapi.yml").read_text(encoding="utf-8")
    assert current == render(load_config(DEFAULT_CONFIG)), (
        "openapi.yml is stale: run `python -m sanchari_processes.service.openapi "
        "pygeoapi-config.yml -o openapi.yml`"
    )


def test_document_is_valid_and_self_contained() -> None:
    text = (ROOT / "openapi.yml").read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    validate(document)
    refs = re.findall(r"\$ref: (\S+)", text)
    assert refs and all(ref.strip("'\"").startswith("#/") for ref in refs)
    assert "schemas.opengis.net" not in text


def test_served_document_lists_only_served_endpoints(client: FlaskClient) -> None:
    r = client.get("/openapi?f=json")
    assert r.status_code == 200
    document = json.loads(r.get_data(as_text=True))
    validate(document)
    paths = set(document["paths"])
    assert "/collections" not in paths
    assert {"/", "/jobs", "/jobs/{jobId}", "/jobs/{jobId}/results"} <= paths
    assert "/processes/{processId}" in paths and "/processes/road-extraction" not in paths
    assert {"/models", "/models/{modelId}", "/processes/{processId}/execution"} <= paths
    for path, item in document["paths"].items():
        concrete = (
            path.replace("{jobId}", "no-such-job")
            .replace("{processId}", "road-extraction")
            .replace("{modelId}", "no-such-model")
        )
        for method in item:
            answer = client.open(concrete, method=method.upper(), json={"inputs": {}})
            unknown = "jobId" in path or "modelId" in path
            assert answer.status_code not in (404, 405) or unknown, (method, path)
    unknown_process = client.get("/processes/no-such-process").get_json()  # a documented 404
    assert unknown_process["type"].endswith("/no-such-process")
    jobs = {p["name"] for p in document["paths"]["/jobs"]["get"]["parameters"] if "name" in p}
    references = {
        p["$ref"].rsplit("/", 1)[1]
        for p in document["paths"]["/jobs"]["get"]["parameters"]
        if "$ref" in p
    }
    assert {"datetime", "minDuration", "maxDuration"} <= jobs | references
    links = client.get("/").get_json()["links"]
    assert not [link for link in links if "collections" in link["href"]]
