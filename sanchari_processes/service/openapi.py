"""The service's OpenAPI document: self-contained, and listing only the endpoints it has.

pygeoapi's generator lists endpoints this service does not serve (``/collections``) and points
its ``$ref``s at schemas.opengis.net, so the document cannot be validated or fuzzed offline.
Here the OGC API - Processes Part 1 schemas the service answers with are bundled (the subset
it uses, written from the standard's schema files, in ``openapi_schemas.yaml`` beside this
module), each process's execute request carries its real input schema, and pygeoapi contributes
only the ``info`` and ``servers`` blocks.

Regenerate ``openapi.yml`` after changing ``pygeoapi-config.yml``::

    python -m sanchari_processes.service.openapi pygeoapi-config.yml -o openapi.yml
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pygeoapi.openapi import get_oas
from pygeoapi.plugin import load_plugin

from sanchari_processes import __version__
from sanchari_processes.results import ALL_OUTPUTS, OUTPUTS, OutputKind
from sanchari_processes.service.jobs import RESULT_MIMETYPE
from sanchari_processes.service.settings import models_dir_of
from sanchari_processes.service.store import STATUSES

OPENAPI_MEDIA = "application/vnd.oai.openapi+json;version=3.0"
HTML = "text/html"
JSON = "application/json"
_ref = lambda name: {"$ref": f"#/components/schemas/{name}"}  # noqa: E731

#: The static schemas, responses and parameters: a data file of this package.
COMPONENTS_FILE = "openapi_schemas.yaml"


def components() -> dict[str, Any]:
    """``components`` of the document: the OGC API - Processes Part 1 (1.0) schemas the
    service's answers use (:data:`COMPONENTS_FILE`), with the job statuses and output ids."""
    path = resources.files("sanchari_processes.service") / COMPONENTS_FILE
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["schemas"]["statusInfo"]["properties"]["status"]["enum"] = list(STATUSES)
    data["parameters"]["status"]["schema"]["items"]["enum"] = list(STATUSES)
    data["parameters"]["outputId"]["schema"]["enum"] = list(ALL_OUTPUTS)
    return data


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


def _execute_body(inputs: dict, outputs: Mapping[str, OutputKind] = OUTPUTS) -> dict[str, Any]:
    """The execute request of a process with these inputs (its real input schema)."""
    return {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "inputs": copy.deepcopy(inputs),
            "outputs": {
                "type": "object",
                "description": "Outputs to return (default: all, by value).",
                "properties": {
                    key: {
                        "type": "object",
                        "properties": {
                            "transmissionMode": {"type": "string", "enum": ["value", "reference"]},
                            "format": {
                                "type": "object",
                                "properties": {
                                    "mediaType": {
                                        "type": "string",
                                        "enum": [f.media_type for f in kind.formats],
                                    }
                                },
                            },
                        },
                        "additionalProperties": False,
                    }
                    for key, kind in outputs.items()
                },
                "additionalProperties": False,
            },
            "response": {"type": "string", "enum": ["raw", "document"]},
            "subscriber": _ref("subscriber"),
        },
    }


def _execute_path(processes: dict[str, dict]) -> dict:
    """``/processes/{processId}/execution``: the body is one of the processes' requests."""
    bodies = [_ref(f"execute-{process_id}") for process_id in processes]
    schema = bodies[0] if len(bodies) == 1 else {"anyOf": bodies or [{"type": "object"}]}
    content: dict[str, Any] = {"schema": schema}
    examples = {
        key: {"value": meta["example"]} for key, meta in processes.items() if meta["example"]
    }
    if examples:
        content["examples"] = examples
    error = {"$ref": "#/components/responses/default"}
    return {
        "post": {
            "operationId": "execute",
            "summary": "Run a process",
            "description": "Synchronous by default (the results come back as `response` and "
            "`outputs` ask; when an output is by reference the job is kept and a `Link` header "
            'with `rel="monitor"` names it); with the header `Prefer: respond-async` a job is '
            "created (201 and its status document). The body follows the process's own input "
            "schema (`execute-PROCESS` in the components). Asked for HTML (`f=html`), the answer "
            "is the job's page, and the job is kept.",
            "tags": ["processes"],
            "parameters": [
                _p("processId"),
                _p("f"),
                {
                    "name": "Prefer",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "enum": ["respond-async", "wait"]},
                },
            ],
            "requestBody": {"required": True, "content": {JSON: content}},
            "responses": {
                "200": _results_200(html=True),
                "204": _results_204(),
                "201": {
                    "description": "Job created (asynchronous execution)",
                    "headers": {"Location": {"schema": {"type": "string"}}},
                    "content": {
                        JSON: {"schema": _ref("statusInfo")},
                        HTML: {"schema": {"type": "string"}},
                    },
                },
                **{code: error for code in ("400", "404", "413", "429", "503", "504")},
                "default": error,
            },
        }
    }


def _paths(processes: dict[str, dict]) -> dict[str, Any]:
    """Every path of the service but the models' (:func:`_model_paths`)."""
    return {**_server_paths(processes), **_job_paths()}


def _server_paths(processes: dict[str, dict]) -> dict[str, Any]:
    """The landing page, this document, conformance, and the processes with their execution."""
    f = _p("f")
    return {
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
            [f, _p("limit"), _p("offset")],
        ),
        "/processes/{processId}": _get(
            "describeProcess",
            "Description of a process",
            "processes",
            {
                "200": _json_or_html("process", "The process description"),
                "404": {"$ref": "#/components/responses/NotFound"},
            },
            [_p("processId"), f],
        ),
        "/processes/{processId}/execution": _execute_path(processes),
    }


def _job_paths() -> dict[str, Any]:
    """The jobs: list, status, dismissal, results and each output."""
    f = _p("f")
    job_params = [_p("jobId"), f]
    paths: dict[str, Any] = {}
    paths["/jobs"] = _get(
        "getJobs",
        "Jobs, newest first",
        "jobs",
        {"200": _json_or_html("jobList", "The jobs")},
        [
            _p("limit"),
            _p("offset"),
            _p("status"),
            _p("type"),
            _p("processID"),
            _p("datetime"),
            _p("minDuration"),
            _p("maxDuration"),
            f,
        ],
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
        "Results of a successful job, as its execute request asked for them (in HTML: a "
        "page with the roads on a map)",
        "jobs",
        {
            "200": _results_200(html=True),
            "204": _results_204(),
            "404": {"$ref": "#/components/responses/NotFound"},
        },
        job_params,
    )
    paths["/jobs/{jobId}/results/{outputId}"] = _get(
        "getJobResult",
        "One output of a successful job as a file (supports HTTP range requests); with "
        "`f=html`, the page of its job",
        "jobs",
        {
            "200": {
                "description": "The output",
                "content": {**_file_content(), HTML: {"schema": {"type": "string"}}},
            },
            "206": {
                "description": "Part of the output (a range request)",
                "content": _file_content(),
            },
            "404": {"$ref": "#/components/responses/NotFound"},
        },
        [_p("jobId"), _p("outputId"), f],
    )
    return paths


def _model_paths() -> dict[str, Any]:
    """``/models`` and ``/models/{modelId}`` (served when a models folder is configured)."""
    not_found = {"$ref": "#/components/responses/NotFound"}
    error = {"$ref": "#/components/responses/default"}
    model = {
        "get": {
            "operationId": "getModel",
            "summary": "A model of the models folder: its metadata and card",
            "tags": ["models"],
            "parameters": [_p("modelId")],
            "responses": {
                "200": {
                    "description": "The model",
                    "content": {JSON: {"schema": _ref("modelInfo")}},
                },
                "404": not_found,
                "503": error,
                "default": error,
            },
        },
        "delete": {
            "operationId": "deleteModel",
            "summary": "Delete a model of the models folder",
            "tags": ["models"],
            "parameters": [_p("modelId")],
            "responses": {"204": {"description": "Deleted"}, "404": not_found, "default": error},
        },
    }
    listing = {
        "get": {
            "operationId": "getModels",
            "summary": "The models of the models folder (adapted models)",
            "tags": ["models"],
            "parameters": [],
            "responses": {
                "200": {
                    "description": "The models",
                    "content": {JSON: {"schema": _ref("modelList")}},
                },
                "default": error,
            },
        }
    }
    return {"/models": listing, "/models/{modelId}": model}


def _file_content() -> dict[str, Any]:
    types = {fmt.media_type for kind in ALL_OUTPUTS.values() for fmt in kind.formats}
    return {media: {"schema": {"type": "string", "format": "binary"}} for media in sorted(types)}


def _results_200(html: bool = False) -> dict[str, Any]:
    # an adaptation's results document holds its model's record
    results = {"oneOf": [_ref("results"), _ref("adaptedModel")]}
    content = {
        RESULT_MIMETYPE: {"schema": _ref("featureCollection")},
        JSON: {"schema": results},
        "multipart/related": {"schema": {"type": "string", "format": "binary"}},
    }
    if html:
        content[HTML] = {"schema": {"type": "string"}}
    for media, schema in _file_content().items():
        content.setdefault(media, schema)
    return {
        "description": "The results: a results document (`response: document`), one output "
        "itself (`raw`, one output by value) or every output as a part of multipart/related",
        "content": content,
    }


def _results_204() -> dict[str, Any]:
    return {
        "description": "`raw` with every output by reference: one `Link` header per output",
        "headers": {"Link": {"schema": {"type": "string"}}},
    }


def openapi_document(config: dict) -> dict[str, Any]:
    """The OpenAPI 3.0 document of the service ``config`` describes."""
    base = get_oas(config)
    processes: dict[str, dict] = {}
    for name, resource in config.get("resources", {}).items():
        if resource.get("type") != "process" or name.startswith("_"):
            continue
        processor = load_plugin("process", resource["processor"])
        metadata = processor.metadata
        schema = getattr(processor, "validation_schema", {"type": "object"})
        processes[name] = {
            "title": metadata.get("title", name),
            "schema": schema,
            "example": metadata.get("example"),
            "outputs": getattr(processor, "outputs", OUTPUTS),
        }
    parts = components()
    for name, meta in processes.items():
        parts["schemas"][f"execute-{name}"] = {
            **_execute_body(meta["schema"], meta["outputs"]),
            "description": f"An execute request of {name} ({meta['title']}).",
        }
    parts["parameters"]["processId"]["examples"] = {name: {"value": name} for name in processes}
    limits = config.get("server", {}).get("limits", {})
    parts["parameters"]["limit"]["schema"].update(
        default=int(limits.get("default_items", 10)), maximum=int(limits.get("max_items", 10))
    )
    tags = [{"name": "server"}, {"name": "processes"}, {"name": "jobs"}]
    models = bool(models_dir_of(config))
    if models:
        tags.append({"name": "models"})
    return {
        "openapi": "3.0.2",
        "info": {**base["info"], "version": __version__},
        "servers": base["servers"],
        "tags": tags,
        "paths": {**_paths(processes), **(_model_paths() if models else {})},
        "components": parts,
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
    from sanchari_processes.service.settings import load_config

    text = render(load_config(args.config))
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
