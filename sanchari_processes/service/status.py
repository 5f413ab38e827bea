"""A job's OGC ``statusInfo`` document (the status endpoint, job lists and callbacks)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
