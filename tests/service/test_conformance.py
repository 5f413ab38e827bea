"""OGC API - Processes Part 1 (1.0) to the letter, discovery and job lists: the standard's own
abstract tests, walked over HTTP against a live ``sanchari serve``, every JSON answer validated
against the official schemas (:mod:`tests.ogc_material`, :mod:`tests.conformance_fixtures`).

Jobs, executions, callbacks and dismissal are in ``test_conformance_jobs.py``, which ends the
walk: every abstract test of every class declared at ``/conformance`` is checked, every answer
seen is described in the OpenAPI document. Skipped without the official material
(``$SANCHARI_OGC_SHARED`` or ``../shared/ogcapi-processes-1.0``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from openapi_spec_validator import validate as validate_openapi

from tests.conformance_fixtures import JSON, Client, checks, request_body
from tests.ogc_material import CONFORMANCE_REL, EXCEPTIONS, MATERIAL

pytestmark = pytest.mark.skipif(
    MATERIAL is None,
    reason="the OGC API - Processes 1.0 material is not here (set SANCHARI_OGC_SHARED)",
)
CORE = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core"


# -- discovery -----------------------------------------------------------------------------------
@checks("/conf/core/landingpage-op", "/conf/core/landingpage-success")
def test_landing_page(ogc: Client) -> None:
    page = ogc.json("/", "landingPage.yaml")
    rels = {link.get("rel") for link in page["links"]}
    assert {"service-desc", "service-doc"} & rels and CONFORMANCE_REL in rels
    assert {"processes", "http://www.opengis.net/def/rel/ogc/1.0/processes"} & rels
    ogc.html("/")


@checks(
    "/conf/core/api-definition-op",
    "/conf/core/api-definition-success",
    "/conf/oas30/oas-definition-1",
    "/conf/oas30/oas-definition-2",
)
def test_api_definition(ogc: Client) -> None:
    links = ogc.json("/", None)["links"]
    desc = [link for link in links if link.get("rel") == "service-desc"]
    doc = [link for link in links if link.get("rel") == "service-doc"]
    assert desc and doc
    for link in desc:
        response = ogc.call("GET", link["href"])
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/vnd.oai.openapi+json;version=3.0"
        assert link["type"] == response.headers["Content-Type"]
        validate_openapi(response.json())
    for link in doc:
        response = ogc.call("GET", link["href"])
        assert response.status_code == 200 and response.headers["Content-Type"].startswith(
            "text/html"
        )


@checks("/conf/core/conformance-op", "/conf/core/conformance-success", "/conf/core/http")
def test_conformance_declaration(ogc: Client) -> None:
    links = [link for link in ogc.json("/", None)["links"] if link["rel"] == CONFORMANCE_REL]
    for href in [link["href"] for link in links] + ["/conformance"]:
        declared = ogc.json(href, "confClasses.yaml")["conformsTo"]
        assert CORE in declared
    ogc.html("/conformance")


@checks(
    "/conf/core/process-list",
    "/conf/core/process-list-success",
    "/conf/core/pl-limit-definition",
    "/conf/core/pl-limit-response",
    "/conf/core/pl-links",
)
def test_process_list(ogc: Client) -> None:
    listed = ogc.json("/processes", "processList.yaml")
    rels = {(link["rel"], link.get("type")) for link in listed["links"]}
    assert ("self", JSON) in rels and ("alternate", "text/html") in rels
    limit = ogc.operations.parameter("/processes", "limit")
    assert limit and limit["in"] == "query" and not limit.get("required")
    assert limit["schema"]["type"] == "integer" and limit["schema"]["minimum"] == 1
    one = ogc.json("/processes", "processList.yaml", params={"limit": 1})
    assert len(one["processes"]) == 1
    if len(listed["processes"]) > 1:  # the next page is linked, and is the next process
        after = [link["href"] for link in one["links"] if link["rel"] == "next"]
        second = ogc.json(after[0], "processList.yaml")["processes"]
        assert [p["id"] for p in second] == [listed["processes"][1]["id"]]
    most = limit["schema"].get("maximum")
    if most:
        many = ogc.json("/processes", "processList.yaml", params={"limit": most + 100})
        assert len(many["processes"]) <= most
    ogc.html("/processes")


@checks(
    "/conf/core/process",
    "/conf/core/process-success",
    "/conf/ogc-process-description/json-encoding",
    "/conf/ogc-process-description/inputs-def",
    "/conf/ogc-process-description/input-def",
    "/conf/ogc-process-description/input-mixed-type",
    "/conf/ogc-process-description/outputs-def",
    "/conf/ogc-process-description/output-def",
    "/conf/ogc-process-description/output-mixed-type",
)
def test_process_descriptions(ogc: Client) -> None:
    schemas = ogc.schemas
    for summary in ogc.json("/processes", None)["processes"]:
        described = ogc.json(f"/processes/{summary['id']}", "process.yaml")
        for kind, definition in (("inputs", "inputDescription.yaml"), ("outputs", None)):
            for name, item in described[kind].items():
                definition = definition or "outputDescription.yaml"
                assert not schemas.errors(definition, item), (
                    name,
                    schemas.errors(definition, item),
                )
                assert not schemas.errors("schema.yaml", item["schema"]), name
                for branch in item["schema"].get("oneOf", []):  # of mixed type
                    assert not schemas.errors("schema.yaml", branch), name
        ogc.html(f"/processes/{summary['id']}")


@checks("/conf/core/process-exception-no-such-process")
def test_no_such_process(ogc: Client) -> None:
    for path in ("/processes/no-such-process", "/processes/no-such-process/execution"):
        method = "POST" if path.endswith("execution") else "GET"
        response = ogc.call(method, path, json={"inputs": {}}, headers={"Accept": JSON})
        body = ogc.check(response, "exception.yaml", 404)
        assert body["type"] == EXCEPTIONS + "no-such-process"
    ogc.html("/processes/no-such-process", status=404)


# -- the job list ------------------------------------------------------------------------------
def _parameter(ogc: Client, name: str) -> dict:
    parameter = ogc.operations.parameter("/jobs", name)
    assert parameter and parameter["in"] == "query" and not parameter.get("required"), name
    return parameter


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@checks(
    "/conf/job-list/job-list-op",
    "/conf/job-list/job-list-success",
    "/conf/job-list/links",
    "/conf/job-list/processID-mandatory",
    "/conf/job-list/limit-definition",
    "/conf/job-list/limit-response",
)
def test_job_list(ogc: Client, ogc_jobs: list[dict]) -> None:
    listed = ogc.json("/jobs", "jobList.yaml")
    rels = {(link["rel"], link.get("type")) for link in listed["links"]}
    assert ("self", JSON) in rels and ("alternate", "text/html") in rels
    assert all("processID" in job for job in listed["jobs"])
    limit = _parameter(ogc, "limit")["schema"]
    assert limit["type"] == "integer" and limit["minimum"] == 1
    one = ogc.json("/jobs", "jobList.yaml", params={"limit": 1})
    assert len(one["jobs"]) == 1
    after = [link["href"] for link in one["links"] if link["rel"] == "next"]
    second = ogc.json(after[0], "jobList.yaml")["jobs"]
    assert second and second[0]["jobID"] != one["jobs"][0]["jobID"]
    if limit.get("maximum"):
        many = ogc.json("/jobs", "jobList.yaml", params={"limit": limit["maximum"] + 100})
        assert len(many["jobs"]) <= limit["maximum"]
    ogc.html("/jobs")


@checks(
    "/conf/job-list/status-definition",
    "/conf/job-list/status-response",
    "/conf/job-list/type-definition",
    "/conf/job-list/type-response",
    "/conf/job-list/processID-definition",
    "/conf/job-list/processID-response",
)
def test_job_list_filters(ogc: Client, ogc_jobs: list[dict]) -> None:
    status = _parameter(ogc, "status")["schema"]
    assert status["type"] == "array" and set(status["items"]["enum"]) == {
        "accepted",
        "running",
        "successful",
        "failed",
        "dismissed",
    }
    assert _parameter(ogc, "type")["schema"]["items"]["enum"] == ["process"]
    assert _parameter(ogc, "processID")["schema"]["items"]["type"] == "string"
    for wanted in (["successful"], ["successful", "failed"]):
        jobs = ogc.json("/jobs", "jobList.yaml", params={"status": ",".join(wanted)})["jobs"]
        assert jobs and all(job["status"] in wanted for job in jobs)
    jobs = ogc.json("/jobs", "jobList.yaml", params={"type": "process"})["jobs"]
    assert jobs and all(job["type"] == "process" for job in jobs)
    process = ogc_jobs[0]["processID"]
    jobs = ogc.json("/jobs", "jobList.yaml", params={"processID": process})["jobs"]
    assert jobs and all(job["processID"] == process for job in jobs)
    assert ogc.json("/jobs", "jobList.yaml", params={"processID": "no-such"})["jobs"] == []
    ogc.json("/jobs", "exception.yaml", 400, params={"status": "asleep"})


@checks("/conf/job-list/datetime-definition", "/conf/job-list/datetime-response")
def test_job_list_by_creation_time(ogc: Client, ogc_jobs: list[dict]) -> None:
    assert _parameter(ogc, "datetime")["schema"]["type"] == "string"
    job = ogc_jobs[0]
    created = _stamp(job["created"])
    hour = timedelta(hours=1)
    iso = lambda moment: moment.astimezone(UTC).isoformat().replace("+00:00", "Z")  # noqa: E731
    cases = {
        job["created"]: (created, created),
        f"{job['created']}/..": (created, None),
        f"../{job['created']}": (None, created),
        f"{iso(created - hour)}/{iso(created + hour)}": (created - hour, created + hour),
        f"/{iso(created + hour)}": (None, created + hour),
    }
    for query, (start, end) in cases.items():
        listed = ogc.json("/jobs", "jobList.yaml", params={"datetime": query, "limit": 1000})
        found = listed["jobs"]
        assert job["jobID"] in {j["jobID"] for j in found}, query
        for other in found:
            moment = _stamp(other["created"])
            assert (start is None or moment >= start) and (end is None or moment <= end), query
    past = f"../{iso(created - hour)}"
    assert job["jobID"] not in {
        j["jobID"] for j in ogc.json("/jobs", None, params={"datetime": past})["jobs"]
    }
    for bad in ("yesterday", "../..", f"{iso(created + hour)}/{iso(created)}"):
        ogc.json("/jobs", "exception.yaml", 400, params={"datetime": bad})


@checks("/conf/job-list/duration-definition", "/conf/job-list/duration-response")
def test_job_list_by_run_time(ogc: Client, ogc_jobs: list[dict]) -> None:
    for name in ("minDuration", "maxDuration"):  # as the requirement's fragments say
        schema = _parameter(ogc, name)["schema"]
        assert schema["type"] == "array" and schema["items"]["type"] == "integer"
    now = datetime.now(UTC)

    def durations(**query: int) -> dict[str, float]:
        jobs = ogc.json("/jobs", "jobList.yaml", params={**query, "limit": 1000})["jobs"]
        found = {}
        for job in jobs:
            assert job["status"] != "accepted" and job.get("started"), job
            end = _stamp(job["finished"]) if job.get("finished") else now
            found[job["jobID"]] = (end - _stamp(job["started"])).total_seconds()
        return found

    ours = {
        job["jobID"]: (_stamp(job["finished"]) - _stamp(job["started"])).total_seconds()
        for job in ogc_jobs
    }
    slowest = max(ours.values())
    assert set(ours) <= set(durations(minDuration=0))
    assert all(seconds >= 3600 for seconds in durations(minDuration=3600).values())
    short = durations(maxDuration=int(slowest) + 1)
    assert set(ours) <= set(short) and all(s <= int(slowest) + 1 for s in short.values())
    both = durations(minDuration=0, maxDuration=int(slowest) + 1)
    assert set(ours) <= set(both)
    ogc.json("/jobs", "exception.yaml", 400, params={"minDuration": "-1"})


# -- media types -----------------------------------------------------------------------------
@checks("/conf/json/definition")
def test_json_everywhere(ogc: Client, ogc_processes: dict, ogc_jobs: list[dict]) -> None:
    process = next(iter(ogc_processes))
    job = ogc_jobs[0]["jobID"]
    for path in ("/", "/conformance", "/processes", f"/processes/{process}", f"/jobs/{job}"):
        ogc.json(path, None)
    body = request_body(ogc_processes[process], roads={})
    body["response"] = "document"
    ogc.check(ogc.execute(process, body), "results.yaml", 200)
    ogc.check(ogc.execute(process, body, prefer="respond-async"), "statusInfo.yaml", 201)


@checks("/conf/html/definition", "/conf/html/content")
def test_html_everywhere(ogc: Client, ogc_processes: dict, ogc_jobs: list[dict]) -> None:
    """Every GET operation of the document that takes ``f``, asked for HTML, is an HTML page;
    a job's page shows every member of its status document and every link as ``<a>``."""
    process = next(iter(ogc_processes))
    job = ogc_jobs[0]["jobID"]
    values = {"{processId}": process, "{jobId}": job, "{outputId}": "roads"}
    for method, path, operation in ogc.operations.get_operations():
        names = {ogc.operations.resolve(p).get("name") for p in operation.get("parameters", [])}
        if method != "get" or "f" not in names:
            continue
        concrete = path
        for key, value in values.items():
            concrete = concrete.replace(key, value)
        ogc.html(concrete)
    response = ogc.call("GET", f"/jobs/{job}/results", headers={"Accept": "text/html"})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    answer = ogc.call(
        "POST",
        f"/processes/{process}/execution",
        params={"f": "html"},
        json=request_body(ogc_processes[process], roads={}),
    )
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/html")
    status = ogc.json(f"/jobs/{job}", "statusInfo.yaml")
    page = ogc.html(f"/jobs/{job}")
    for key, value in status.items():
        if key not in ("links", "parameters"):
            assert page.shows(value), key
    for link in status["links"]:
        assert link["href"] in page.anchors, link
    for output in ("roads",):
        assert f"{ogc.url}/jobs/{job}/results/{output}".replace(ogc.url, "") in " ".join(
            a.replace(ogc.url, "") for a in page.anchors
        )
    assert requests.get(f"{ogc.url}/static/sanchari/leaflet/leaflet.js", timeout=30).ok
