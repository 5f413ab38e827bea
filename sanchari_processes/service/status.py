"""A job's OGC ``statusInfo`` document (the status endpoint, job lists and callbacks), and a
failed job's error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sanchari_processes.errors import JobNotFoundError, SanchariError
from sanchari_processes.service.executors.base import JobFailure

JSON = "application/json"
RESULTS_REL = "http://www.opengis.net/def/rel/ogc/1.0/results"


def job_document(base_url: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """An OGC ``statusInfo`` document (times left out until they happen)."""
    job_url = f"{base_url}/jobs/{record['identifier']}"
    doc: dict[str, Any] = {
        "type": "process",
        "processID": record["process_id"],
        "jobID": record["identifier"],
        "status": record["status"],
        "message": record["message"] or "",
        "progress": int(record["progress"] or 0),
        "parameters": record.get("parameters"),
    }
    for key in ("created", "started", "finished", "updated"):
        if record.get(key):
            doc[key] = record[key]
    doc["links"] = [{"href": job_url, "rel": "self", "type": JSON, "title": "Job status"}]
    if record["status"] == "successful":
        doc["links"].append(
            {
                "href": f"{job_url}/results",
                "rel": RESULTS_REL,
                "title": "Results of the job",
            }
        )
    return doc


def failure_error(record: Mapping[str, Any]) -> SanchariError:
    """The stored failure of a job as the error its execute request answers with."""
    if record["status"] == "dismissed":
        return JobNotFoundError("the job was dismissed before it finished")
    failure = record.get("error") or JobFailure.internal().to_dict()
    error = SanchariError(failure["message"])
    error.ogc_code = failure["code"]
    error.http_status = int(failure["status"])
    return error
