"""OGC API - Processes Part 1 (1.0) to the letter, jobs: executions in every mode and answer
form, inputs (inline, by reference, binary, bounding box, qualified objects), job status and
results, the exceptions, callbacks and dismissal; then the end of the walk (see
``test_conformance.py``): every abstract test of every declared class is checked here or there,
and every answer seen is described in the OpenAPI document.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
import requests

import tests.service.test_conformance  # noqa: F401 - its checks, for the end of the walk
from tests.conformance_fixtures import (
    CHECKS,
    JSON,
    Client,
    checks,
    links,
    parts,
    request_body,
)
from tests.ogc_material import EXCEPTIONS, MATERIAL, abstract_tests

pytestmark = pytest.mark.skipif(
    MATERIAL is None,
    reason="the OGC API - Processes 1.0 material is not here (set SANCHARI_OGC_SHARED)",
)
RESULTS_REL = "http://www.opengis.net/def/rel/ogc/1.0/results"


def _async(ogc: Client, process: str, body: dict) -> str:
    answer = ogc.execute(process, body, prefer="respond-async")
    status = ogc.check(answer, "statusInfo.yaml", 201)
    assert answer.headers["Location"].endswith(f"/jobs/{status['jobID']}")
    assert answer.headers.get("Preference-Applied") == "respond-async"
    return status["jobID"]


def _raw(ogc: Client, process: str, job: str | None, body: dict) -> requests.Response:
    """The answer a raw request gets: synchronously, or the async job's results."""
    if job is None:
        return ogc.execute(process, body)
    assert ogc.wait(job)["status"] == "successful"
    return ogc.call("GET", f"/jobs/{job}/results")


def _check_answers(ogc: Client, process: str, description: dict, job_mode: bool) -> None:
    """Each combination of ``response``, transmission modes and output count, answered as
    the standard says (sync: the execution; async: the job's results)."""
    outputs = list(description["outputs"])
    extra = "preview" if "preview" in outputs else outputs[-1]
    cases = {
        "raw-value-one": {"roads": {"transmissionMode": "value"}},
        "raw-value-multi": {"roads": {}, extra: {}},
        "raw-ref": {
            "roads": {"transmissionMode": "reference"},
            extra: {"transmissionMode": "reference"},
        },
        "raw-mixed-multi": {"roads": {}, extra: {"transmissionMode": "reference"}},
    }
    for name, wanted in cases.items():
        body = {**request_body(description), "outputs": wanted, "response": "raw"}
        job = _async(ogc, process, body) if job_mode else None
        answer = _raw(ogc, process, job, body)
        if name == "raw-value-one":
            assert answer.status_code == 200, name
            assert answer.headers["Content-Type"] == "application/geo+json"
            assert answer.json()["type"] == "FeatureCollection"
        elif name == "raw-ref":
            assert answer.status_code == 204 and not answer.content, name
            found = {
                link.get("title"): link["url"]
                for link in links(answer)
                if link["rel"] == RESULTS_REL
            }
            assert set(found) == set(wanted), found
            for url in found.values():
                assert ogc.call("GET", url).status_code == 200
        else:
            assert answer.status_code == 200, name
            assert answer.headers["Content-Type"].startswith("multipart/related")
            found = parts(answer)
            assert set(found) == set(wanted), name
            for output, spec in wanted.items():
                part = found[output]
                if spec.get("transmissionMode") == "reference":
                    assert part.get_payload(decode=True) == b"", output  # empty, and where it is
                    assert ogc.call("GET", part["Content-Location"]).status_code == 200
                else:
                    assert part.get_payload(decode=True), output
        if not job_mode and name in ("raw-ref", "raw-mixed-multi"):  # a job is kept: monitor
            monitor = [link["url"] for link in links(answer) if link["rel"] == "monitor"]
            assert (
                len(monitor) == 1
                and ogc.json(monitor[0], "statusInfo.yaml")["status"] == "successful"
            )
    for refs in (False, True):
        mode = "reference" if refs else "value"
        wanted = {key: {"transmissionMode": mode} for key in ("roads", extra)}
        body = {**request_body(description), "outputs": wanted, "response": "document"}
        job = _async(ogc, process, body) if job_mode else None
        answer = _raw(ogc, process, job, body)
        document = ogc.check(answer, "results.yaml", 200)
        assert set(document) == set(wanted)
        for output, member in document.items():
            assert ("href" in member) == refs, output
            if refs:
                assert ogc.call("GET", member["href"]).status_code == 200
            elif description["outputs"][output]["schema"].get("contentEncoding") == "binary":
                assert member["encoding"] == "base64" and base64.b64decode(member["value"])


@checks(
    "/conf/core/job-creation-op",
    "/conf/core/job-creation-request",
    "/conf/core/job-creation-default-execution-mode",
    "/conf/core/job-creation-default-outputs",
    "/conf/core/job-creation-input-inline",
    "/conf/core/job-creation-sync-document",
    "/conf/core/job-creation-sync-raw-value-one",
    "/conf/core/job-creation-sync-raw-value-multi",
    "/conf/core/job-creation-sync-raw-ref",
    "/conf/core/job-creation-sync-raw-mixed-multi",
    "/conf/core/job-results-sync",
)
def test_synchronous_executions(ogc: Client, ogc_processes: dict[str, dict]) -> None:
    for process, description in ogc_processes.items():
        assert "sync-execute" in description["jobControlOptions"]
        every = ogc.execute(process, request_body(description))  # no outputs: all of them
        assert every.status_code == 200 and set(parts(every)) == set(description["outputs"])
        _check_answers(ogc, process, description, job_mode=False)


@checks(
    "/conf/core/job-creation-success-async",
    "/conf/core/job-creation-auto-execution-mode",
    "/conf/core/job-op",
    "/conf/core/job-success",
    "/conf/core/job-results",
    "/conf/core/job-results-async-document",
    "/conf/core/job-results-async-raw-value-one",
    "/conf/core/job-results-async-raw-value-multi",
    "/conf/core/job-results-async-raw-ref",
    "/conf/core/job-results-async-raw-mixed-multi",
)
def test_asynchronous_executions(ogc: Client, ogc_processes: dict[str, dict]) -> None:
    for process, description in ogc_processes.items():
        assert "async-execute" in description["jobControlOptions"]
        _check_answers(ogc, process, description, job_mode=True)


def _inputs_of(description: dict, test: Any) -> list[str]:
    return [name for name, item in description["inputs"].items() if test(item["schema"])]


@checks(
    "/conf/core/job-creation-inputs",
    "/conf/core/job-creation-input-ref",
    "/conf/core/job-creation-input-inline-binary",
    "/conf/core/job-creation-input-inline-bbox",
    "/conf/core/job-creation-input-inline-object",
    "/conf/core/job-creation-input-inline-mixed",
    "/conf/core/job-creation-input-array",
    "/conf/core/job-creation-input-validation",
)
def test_inputs(ogc: Client, ogc_processes: dict[str, dict], loopback: dict) -> None:
    scene = loopback["scene"].read_bytes()
    text = base64.b64encode(scene).decode("ascii")
    for process, description in ogc_processes.items():
        binary = _inputs_of(description, lambda s: s.get("contentEncoding") == "binary")
        bbox = _inputs_of(description, lambda s: s.get("format") == "ogc-bbox")
        objects = _inputs_of(description, lambda s: s.get("type") == "object")
        assert not _inputs_of(description, lambda s: "oneOf" in s)  # no mixed input here
        assert all(item["maxOccurs"] == 1 for item in description["inputs"].values())  # no array
        example = description["example"]["inputs"]
        requests_ = []
        for name in binary:  # by reference, then inline as base64, bare and qualified
            requests_ += [
                {name: {"href": f"{loopback['url']}/scene.tif", "type": "image/tiff"}},
                {name: text},
                {
                    name: {
                        "value": text,
                        "mediaType": "image/tiff; application=geotiff",
                        "encoding": "base64",
                    }
                },
            ]
        lon, lat = example.get("longitude"), example.get("latitude")
        for name in bbox if lon is not None else []:
            box = {"bbox": [lon - 0.0004, lat - 0.0004, lon + 0.0004, lat + 0.0004]}
            requests_ += [{name: box}]
            if name in objects:  # an object input as a qualified value; its value may not
                # be a bbox.yaml instance (CRS84), or it matches two branches of inputValue.yaml
                value = {**box, "crs": "http://www.opengis.net/def/crs/EPSG/0/4326"}
                requests_ += [{name: {"value": value, "mediaType": JSON}}]
        assert not binary or requests_, "a binary input is sent in every form"
        for inputs in requests_:
            body = {
                "inputs": {**inputs, "tta": "none"},
                "outputs": {"roads": {}},
                "response": "document",
            }
            answer = ogc.execute(process, body)
            roads = ogc.check(answer, "results.yaml", 200)["roads"]["value"]
            assert roads["type"] == "FeatureCollection", inputs
        for bad in ({"tta": "sideways"}, {"threshold": 2}, {"no_such_input": 1}):
            body = {"inputs": {**example, **bad}}
            error = ogc.check(ogc.execute(process, body), "exception.yaml", 400)
            assert next(iter(bad)) in error["description"]  # the input is named


@checks(
    "/conf/core/job-exception-no-such-job",
    "/conf/core/job-results-failed",
    "/conf/core/job-results-exception-results-not-ready",
)
def test_job_exceptions(ogc: Client, ogc_processes: dict[str, dict], loopback: dict) -> None:
    unknown = str(uuid.uuid4())
    for path in (f"/jobs/{unknown}", f"/jobs/{unknown}/results"):
        body = ogc.json(path, "exception.yaml", 404)
        assert body["type"] == EXCEPTIONS + "no-such-job"
        ogc.html(path, status=404)
    process, description = next(iter(ogc_processes.items()))
    if "image" in description["inputs"]:  # a job that fails: its image is not a raster
        body = {"inputs": {"image": {"href": f"{loopback['url']}/broken.tif"}}}
        job = _async(ogc, process, body)
        assert ogc.wait(job)["status"] == "failed"
        error = ogc.json(f"/jobs/{job}/results", "exception.yaml", 400)
        assert error["type"] == "InvalidParameterValue" and "image" in error["description"]
    assert _not_ready(ogc, process, description)


def _not_ready(ogc: Client, process: str, description: dict) -> bool:
    """Results asked for while the job is queued or running: 404, result-not-ready."""
    body = {
        **request_body(description, roads={}),
        "inputs": {**description["example"]["inputs"], "tta": "d4"},
    }
    for _ in range(5):  # the last of a few jobs queues behind the others
        jobs = [_async(ogc, process, body) for _ in range(3)]
        answer = ogc.call("GET", f"/jobs/{jobs[-1]}/results", headers={"Accept": JSON})
        live = ogc.json(f"/jobs/{jobs[-1]}", "statusInfo.yaml")["status"] in ("accepted", "running")
        for job in jobs:
            ogc.call("DELETE", f"/jobs/{job}")
        if answer.status_code == 404:
            error = ogc.check(answer, "exception.yaml", 404)
            assert error["type"] == EXCEPTIONS + "result-not-ready"
            return True
        assert not live, answer.text
    return False


@checks("/conf/callback/job-callback")
def test_callbacks(ogc: Client, ogc_processes: dict[str, dict], loopback: dict) -> None:
    receiver = loopback["callbacks"]
    process, description = next(iter(ogc_processes.items()))
    url = f"{receiver.url}/{uuid.uuid4().hex}"
    # successUrl too: the 1.0 subscriber.yaml requires that spelling
    subscriber = {
        "successUri": f"{url}/ok",
        "successUrl": f"{url}/ok",
        "inProgressUri": f"{url}/run",
    }
    body = {**request_body(description, roads={}), "subscriber": subscriber}
    job = _async(ogc, process, body)
    delivered = receiver.wait_for(f"{url.split(receiver.url)[1]}/ok")
    assert delivered, "no results at the subscriber's successUri"
    assert not ogc.schemas.errors("results.yaml", delivered[0])
    assert delivered[0]["roads"]["value"]["sanchari"]["job"]["id"] == job
    for status in receiver.bodies(f"{url.split(receiver.url)[1]}/run"):
        assert not ogc.schemas.errors("statusInfo.yaml", status)


@checks("/conf/dismiss/job-dismiss-op", "/conf/dismiss/job-dismiss-success")
def test_dismiss(ogc: Client, ogc_processes: dict[str, dict]) -> None:
    process, description = next(iter(ogc_processes.items()))
    body = {
        **request_body(description, roads={}),
        "inputs": {**description["example"]["inputs"], "tta": "d4"},
    }
    job = _async(ogc, process, body)
    answer = ogc.call("DELETE", f"/jobs/{job}", headers={"Accept": JSON})
    assert ogc.check(answer, "statusInfo.yaml", 200)["status"] == "dismissed"
    assert ogc.json(f"/jobs/{job}", "statusInfo.yaml")["status"] == "dismissed"
    ogc.json(f"/jobs/{job}/results", "exception.yaml", 404)


# -- the end of the walk -----------------------------------------------------------------------
@checks(
    "/conf/oas30/completeness",
    "/conf/oas30/exceptions-codes",
    "/conf/oas30/oas-impl",
    "/conf/oas30/security",
)
def test_openapi_describes_every_answer_seen(ogc: Client, ogc_jobs: list[dict]) -> None:
    """Every (operation, status) the walk saw is in the document; every operation of the
    document was answered (not 404/405); no authentication is used, none is declared."""
    document = ogc.operations.document
    assert "security" not in document and "securitySchemes" not in document.get("components", {})
    job = ogc_jobs[0]["jobID"]
    values = {"{processId}": ogc_jobs[0]["processID"], "{jobId}": job, "{outputId}": "roads"}
    for method, path, _ in ogc.operations.get_operations():
        if method == "delete":
            continue  # dismissing is walked above
        concrete = path
        for key, value in values.items():
            concrete = concrete.replace(key, value)
        body = {"inputs": {}} if method == "post" else None
        answer = ogc.call(method.upper(), concrete, json=body)
        assert answer.status_code not in (401, 403, 405, 501), (method, path)
        # no adapted model exists on this server: its path answers its documented 404
        assert answer.status_code != 404 or "{modelId}" in path, (method, path)
    assert not ogc.operations.undocumented(), ogc.operations.undocumented()
    seen = {status for statuses in ogc.operations.seen.values() for status in statuses}
    assert not seen & {401, 403}


def test_every_abstract_test_of_the_declared_classes_is_checked(ogc: Client) -> None:
    """The classes ``/conformance`` declares, each abstract test of each, and the test here
    that checks it: none is left out."""
    assert MATERIAL is not None
    declared = ogc.json("/conformance", "confClasses.yaml")["conformsTo"]
    suite = abstract_tests(MATERIAL)
    missing: list[str] = []
    for uri in declared:
        tests = suite.get(uri)
        assert tests is not None, f"{uri} is not a class of OGC API - Processes 1.0"
        missing += [f"{t.label} ({t.file})" for t in tests if t.label not in CHECKS]
    assert not missing, "abstract tests of declared classes not checked:\n" + "\n".join(missing)
    report = {uri: sorted({t.label for t in suite[uri]}) for uri in declared}
    print(json.dumps({"declared": report, "checked_by": CHECKS}, indent=1))
