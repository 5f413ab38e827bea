"""The service's OpenAPI document: self-contained, and listing only the endpoints it has.

pygeoapi's generator lists endpoints this service does not serve (``/collections``) and points
its ``$ref``s at schemas.opengis.net, so the document cannot be validated or fuzzed offline.
Here the OGC API - Processes Part 1 schemas the service answers with are bundled (the subset
it uses, written from the standard's schema files), each process's execute request carries
its real input schema, and pygeoapi contributes only the ``info`` and ``servers`` blocks.

Regenerate ``openapi.yml`` after changing ``pygeoapi-config.yml``::

    python -m sanchari_processes.service.openapi pygeoapi-config.yml -o openapi.yml
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml
from pygeoapi.openapi import get_oas
from pygeoapi.plugin import load_plugin

from sanchari_processes import __version__
from sanchari_processes.service.inputs import GEE_VALIDATION_SCHEMA, VALIDATION_SCHEMA
from sanchari_processes.service.jobs import RESULT_MIMETYPE
from sanchari_processes.service.process import GEE_PROCESS_ID, OUTPUT_ID, PROCESS_ID
from sanchari_processes.service.store import STATUSES

OPENAPI_MEDIA = "application/vnd.oai.openapi+json;version=3.0"
HTML = "text/html"
JSON = "application/json"
_ref = lambda name: {"$ref": f"#/components/schemas/{name}"}  # noqa: E731

#: The OGC API - Processes Part 1 (1.0) schemas the service's answers use.
SCHEMAS: dict[str, Any] = {
    "link": {
        "type": "object",
        "required": ["href"],
        "properties": {
            "href": {"type": "string"},
            "rel": {"type": "string"},
            "type": {"type": "string"},
            "hreflang": {"type": "string"},
            "title": {"type": "string"},
        },
    },
    "exception": {
        "type": "object",
        "description": "An OGC exception (RFC 7807 members); `code` repeats `type`.",
        "required": ["type"],
        "properties": {
            "type": {"type": "string"},
            "code": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "description": {"type": "string"},
            "instance": {"type": "string"},
        },
    },
    "landingPage": {
        "type": "object",
        "required": ["links"],
        "properties": {
            "title": {"type": "string"},
            "description": {"type": "string"},
            "links": {"type": "array", "items": _ref("link")},
        },
    },
    "confClasses": {
        "type": "object",
        "required": ["conformsTo"],
        "properties": {"conformsTo": {"type": "array", "items": {"type": "string"}}},
    },
    "processSummary": {
        "type": "object",
        "required": ["id", "version"],
        "properties": {
            "id": {"type": "string"},
            "version": {"type": "string"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "keywords": {"type": "array", "items": {"type": "string"}},
            "jobControlOptions": {
                "type": "array",
                "items": {"type": "string", "enum": ["sync-execute", "async-execute", "dismiss"]},
            },
            "outputTransmission": {
                "type": "array",
                "items": {"type": "string", "enum": ["value", "reference"]},
            },
            "links": {"type": "array", "items": _ref("link")},
        },
    },
    "processList": {
        "type": "object",
        "required": ["processes", "links"],
        "properties": {
            "processes": {"type": "array", "items": _ref("processSummary")},
            "links": {"type": "array", "items": _ref("link")},
        },
    },
    "process": {
        "allOf": [
            _ref("processSummary"),
            {
                "type": "object",
                "properties": {
                    "inputs": {"type": "object", "additionalProperties": {"type": "object"}},
                    "outputs": {"type": "object", "additionalProperties": {"type": "object"}},
                },
            },
        ]
    },
    "statusInfo": {
        "type": "object",
        "required": ["jobID", "status", "type"],
        "properties": {
            "processID": {"type": "string"},
            "type": {"type": "string", "enum": ["process"]},
            "jobID": {"type": "string"},
            "status": {"type": "string", "enum": list(STATUSES)},
            "message": {"type": "string"},
            "created": {"type": "string", "format": "date-time"},
            "started": {"type": "string", "format": "date-time"},
            "finished": {"type": "string", "format": "date-time"},
            "updated": {"type": "string", "format": "date-time"},
            "progress": {"type": "integer", "minimum": 0, "maximum": 100},
            "links": {"type": "array", "items": _ref("link")},
        },
    },
    "jobList": {
        "type": "object",
        "required": ["jobs", "links"],
        "properties": {
            "jobs": {"type": "array", "items": _ref("statusInfo")},
            "links": {"type": "array", "items": _ref("link")},
            "numberMatched": {"type": "integer", "minimum": 0},
            "numberReturned": {"type": "integer", "minimum": 0},
        },
    },
    "featureCollection": {
        "type": "object",
        "description": "GeoJSON FeatureCollection of road centrelines (EPSG:4326).",
        "required": ["type", "features"],
        "properties": {
            "type": {"type": "string", "enum": ["FeatureCollection"]},
            "features": {"type": "array", "items": {"type": "object"}},
            "sanchari": {"type": "object", "description": "provenance of the run"},
        },
    },
    "results": {
        "type": "object",
        "description": "The outputs as a document (`response: document`).",
        "required": [OUTPUT_ID],
        "properties": {
            OUTPUT_ID: {
                "type": "object",
                "required": ["value"],
                "properties": {
                    "value": _ref("featureCollection"),
                    "mediaType": {"type": "string"},
                },
            }
        },
    },
}

_EXCEPTION = {
    "application/json": {"schema": _ref("exception")},
    HTML: {"schema": {"type": "string"}},
}
RESPONSES: dict[str, Any] = {
    "default": {"description": "An OGC exception", "content": _EXCEPTION},
    "NotFound": {"description": "No such resource", "content": _EXCEPTION},
}

PARAMETERS: dict[str, Any] = {
    "f": {
        "name": "f",
        "in": "query",
        "required": False,
        "description": "Response format (default: JSON).",
        "schema": {"type": "string", "enum": ["json", "html"]},
        "style": "form",
        "explode": False,
    },
    "limit": {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "Items per page (larger values are cut to the server's maximum).",
        "schema": {"type": "integer", "minimum": 1},
        "style": "form",
        "explode": False,
    },
    "offset": {
        "name": "offset",
        "in": "query",
        "required": False,
        "description": "Index of the first item (jobs are listed newest first).",
        "schema": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
        "style": "form",
        "explode": False,
    },
    "status": {
        "name": "status",
        "in": "query",
        "required": False,
        "description": "Only jobs with one of these statuses.",
        "schema": {"type": "array", "items": {"type": "string", "enum": list(STATUSES)}},
        "style": "form",
        "explode": False,
    },
    "type": {
        "name": "type",
        "in": "query",
        "required": False,
        "description": "Only jobs of these types (this server has `process` jobs).",
        "schema": {"type": "array", "items": {"type": "string", "enum": ["process"]}},
        "style": "form",
        "explode": False,
    },
    "processID": {
        "name": "processID",
        "in": "query",
        "required": False,
        "description": "Only jobs of these processes.",
        "schema": {"type": "array", "items": {"type": "string"}},
        "style": "form",
        "explode": False,
    },
    "jobId": {
        "name": "jobId",
        "in": "path",
        "required": True,
        "description": "Job identifier",
        "schema": {"type": "string"},
    },
}


def _p(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/parameters/{name}"}


def _json_or_html(schema: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {JSON: {"schema": _ref(schema)}, HTML: {"schema": {"type": "string"}}},
    }


def _get(operation: str, summary: str, tag: str, responses: dict, params: list) -> dict:
    return {
        "get": {
            "operationId": operation,
            "summary": summary,
            "tags": [tag],
            "parameters": params,
            "responses": {**responses, "default": {"$ref": "#/components/responses/default"}},
        }
    }


def _execute_path(process_id: str, title: str, inputs: dict, example: dict | None) -> dict:
    body_schema = {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "inputs": copy.deepcopy(inputs),
            "outputs": {
                "type": "object",
                "properties": {
                    OUTPUT_ID: {
                        "type": "object",
                        "properties": {"transmissionMode": {"type": "string", "enum": ["value"]}},
                    }
                },
                "additionalProperties": False,
            },
            "response": {"type": "string", "enum": ["raw", "document"]},
        },
    }
    content: dict[str, Any] = {"schema": body_schema}
    if example:
        content["example"] = example
    error = {"$ref": "#/components/responses/default"}
    return {
        "post": {
            "operationId": f"execute-{process_id}",
            "summary": f"Run {title}",
            "description": "Synchronous by default (the GeoJSON comes back); with the header "
            "`Prefer: respond-async` a job is created (201 and its status document).",
            "tags": [process_id],
            "parameters": [
                {
                    "name": "Prefer",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "enum": ["respond-async", "wait"]},
                }
            ],
            "requestBody": {"required": True, "content": {JSON: content}},
            "responses": {
                "200": {
                    "description": "The roads (raw), or a results document",
                    "content": {
                        RESULT_MIMETYPE: {"schema": _ref("featureCollection")},
                        JSON: {"schema": _ref("results")},
                    },
                },
                "201": {
                    "description": "Job created (asynchronous execution)",
                    "headers": {"Location": {"schema": {"type": "string"}}},
                    "content": {JSON: {"schema": _ref("statusInfo")}},
                },
                **{code: error for code in ("400", "404", "413", "429", "503", "504")},
                "default": error,
            },
        }
    }


def _paths(processes: dict[str, dict]) -> dict[str, Any]:
    f = _p("f")
    paths: dict[str, Any] = {
        "/": _get(
            "getLandingPage",
            "Landing page",
            "server",
            {"200": _json_or_html("landingPage", "Landing page")},
            [f],
        ),
        "/openapi": _get(
            "getOpenapi",
            "This OpenAPI document",
            "server",
            {
                "200": {
                    "description": "The OpenAPI document",
                    "content": {
                        OPENAPI_MEDIA: {"schema": {"type": "object"}},
                        HTML: {"schema": {"type": "string"}},
                    },
                }
            },
            [f],
        ),
        "/conformance": _get(
            "getConformance",
            "Conformance classes",
            "server",
            {"200": _json_or_html("confClasses", "Conformance classes")},
            [f],
        ),
        "/processes": _get(
            "getProcesses",
            "Processes",
            "processes",
            {"200": _json_or_html("processList", "The processes")},
            [f, _p("limit")],
        ),
    }
    for process_id, meta in processes.items():
        paths[f"/processes/{process_id}"] = _get(
            f"describe-{process_id}",
            f"Description of {meta['title']}",
            process_id,
            {"200": _json_or_html("process", "The process description")},
            [f],
        )
        paths[f"/processes/{process_id}/execution"] = _execute_path(
            process_id, meta["title"], meta["schema"], meta.get("example")
        )
    job_params = [_p("jobId"), f]
    paths["/jobs"] = _get(
        "getJobs",
        "Jobs, newest first",
        "jobs",
        {"200": _json_or_html("jobList", "The jobs")},
        [_p("limit"), _p("offset"), _p("status"), _p("type"), _p("processID"), f],
    )
    status_doc = _json_or_html("statusInfo", "The job's status")
    paths["/jobs/{jobId}"] = {
        **_get(
            "getJob",
            "Job status",
            "jobs",
            {"200": status_doc, "404": {"$ref": "#/components/responses/NotFound"}},
            job_params,
        ),
        "delete": {
            "operationId": "dismissJob",
            "summary": "Stop the job and delete its results",
            "tags": ["jobs"],
            "parameters": job_params,
            "responses": {
                "200": status_doc,
                "404": {"$ref": "#/components/responses/NotFound"},
                "default": {"$ref": "#/components/responses/default"},
            },
        },
    }
    paths["/jobs/{jobId}/results"] = _get(
        "getJobResults",
        "Results of a successful job",
        "jobs",
        {
            "200": {
                "description": "The roads",
                "content": {RESULT_MIMETYPE: {"schema": _ref("featureCollection")}},
            },
            "404": {"$ref": "#/components/responses/NotFound"},
        },
        job_params,
    )
    return paths


_SCHEMAS_BY_PROCESS = {PROCESS_ID: VALIDATION_SCHEMA, GEE_PROCESS_ID: GEE_VALIDATION_SCHEMA}


def openapi_document(config: dict) -> dict[str, Any]:
    """The OpenAPI 3.0 document of the service ``config`` describes."""
    base = get_oas(config)
    processes: dict[str, dict] = {}
    for name, resource in config.get("resources", {}).items():
        if resource.get("type") != "process" or name.startswith("_"):
            continue
        processor = load_plugin("process", resource["processor"])
        metadata = processor.metadata
        schema = _SCHEMAS_BY_PROCESS.get(metadata["id"], {"type": "object"})
        processes[name] = {
            "title": metadata.get("title", name),
            "schema": schema,
            "example": metadata.get("example"),
        }
    tags = [{"name": "server"}, {"name": "processes"}, {"name": "jobs"}]
    tags += [{"name": name} for name in processes]
    return {
        "openapi": "3.0.2",
        "info": {**base["info"], "version": __version__},
        "servers": base["servers"],
        "tags": tags,
        "paths": _paths(processes),
        "components": {
            "schemas": copy.deepcopy(SCHEMAS),
            "responses": copy.deepcopy(RESPONSES),
            "parameters": copy.deepcopy(PARAMETERS),
        },
    }


def render(config: dict) -> str:
    """``openapi.yml``'s text: the document as YAML, keys sorted, no anchors."""

    class _NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return yaml.dump(
        openapi_document(config), Dumper=_NoAliases, sort_keys=True, allow_unicode=True, width=100
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the service's OpenAPI document.")
    parser.add_argument("config", type=Path, help="pygeoapi-config.yml")
    parser.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    from sanchari_processes.service.app import load_config

    text = render(load_config(args.config))
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
