"""The WSGI application: pygeoapi's OGC API - Processes endpoints, built from a config dict.

``pygeoapi.flask_app`` reads its configuration from the environment when imported and builds
one global app, which cannot be configured per test or per ``sanchari serve`` call. This
factory wires the same pygeoapi request handlers (``pygeoapi.api`` and ``pygeoapi.api.processes``)
to a fresh Flask app with an explicit configuration, and fixes what pygeoapi leaves to the
host: failed jobs' results answer with their own error, an async 201 carries the job status
document, every error is an OGC exception in JSON, and 503 and 429 answers carry
``Retry-After``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pygeoapi
import pygeoapi.api as core_api
import pygeoapi.api.processes as processes_api
from flask import Flask, Response, make_response, request
from pygeoapi.api import API, APIRequest, apply_gzip
from pygeoapi.openapi import get_oas
from pygeoapi.process.base import JobNotFoundError
from pygeoapi.util import yaml_load
from werkzeug.exceptions import HTTPException

from sanchari_processes.service.executor import Runner
from sanchari_processes.service.manager import SanchariManager

LOGGER = logging.getLogger(__name__)

#: The repository's configuration (used when ``--config`` is not given).
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "pygeoapi-config.yml"

Handler = Callable[..., tuple[dict, int, Any]]


def load_config(path: Path) -> dict:
    """Read ``pygeoapi-config.yml`` with pygeoapi's loader (``${VAR:-default}`` expanded)."""
    with open(path, encoding="utf-8") as fh:
        return yaml_load(fh)


def create_app(config: dict, openapi: dict | None = None, *, runner: Runner | None = None) -> Flask:
    """A Flask app serving ``config``; its job manager is started (workers spawned).

    ``runner`` replaces the worker-side job function (tests use a slow stand-in).
    """
    if openapi is None:
        openapi = get_oas(config)
    api = API(config, openapi)
    manager = api.manager
    if isinstance(manager, SanchariManager):
        manager.start(runner=runner)
    static = Path(pygeoapi.__file__).parent / "static"
    app = Flask(__name__, static_folder=str(static), static_url_path="/static")
    app.url_map.strict_slashes = False
    app.extensions["sanchari.api"] = api
    app.extensions["sanchari.manager"] = manager
    retry_after = getattr(getattr(manager, "settings", None), "retry_after_s", 30)

    def call(handler: Handler, *args: Any) -> Response:
        api_request = APIRequest.from_flask(request, api.locales)
        if not api_request.is_valid():
            headers, status, content = api.get_format_exception(api_request)
        else:
            headers, status, content = handler(api, api_request, *args)
            content = apply_gzip(headers, content)
        response = make_response(content, status)
        if headers:
            response.headers = headers
        return response

    @app.get("/")
    def landing_page() -> Response:
        return call(core_api.landing_page)

    @app.get("/openapi")
    def openapi_document() -> Response:
        return call(core_api.openapi_)

    @app.get("/conformance")
    def conformance() -> Response:
        return call(core_api.conformance)

    @app.get("/processes")
    @app.get("/processes/<process_id>")
    def processes(process_id: str | None = None) -> Response:
        return call(processes_api.describe_processes, process_id)

    @app.post("/processes/<process_id>/execution")
    def execute(process_id: str) -> Response:
        return call(_execute, process_id)

    @app.get("/jobs")
    def jobs() -> Response:
        return call(processes_api.get_jobs)

    @app.route("/jobs/<job_id>", methods=["GET", "DELETE"])
    def job(job_id: str) -> Response:
        if request.method == "DELETE":
            response = call(processes_api.delete_job, job_id)
            response.headers["Content-Type"] = "application/json"
            return response
        return call(processes_api.get_jobs, job_id)

    @app.get("/jobs/<job_id>/results")
    def results(job_id: str) -> Response:
        return call(_job_results, job_id)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.code or 500, "InvalidRequest")
        return _exception_response(exc.code or 500, code, exc.description or exc.name)

    @app.errorhandler(Exception)
    def internal_error(exc: Exception) -> Response:
        LOGGER.exception("unhandled error on %s %s", request.method, request.path)
        return _exception_response(500, "NoApplicableCode", "internal server error")

    @app.after_request
    def retry_hint(response: Response) -> Response:
        if response.status_code in (HTTPStatus.SERVICE_UNAVAILABLE, HTTPStatus.TOO_MANY_REQUESTS):
            response.headers.setdefault("Retry-After", str(retry_after))
        return response

    return app


def _execute(api: API, api_request: APIRequest, process_id: str) -> tuple[dict, int, Any]:
    """pygeoapi's execute, with the request body's shape checked first (not a 500 on a list)
    and a 201 answered with the job's status document instead of an empty body."""
    problem = _body_problem(api_request.data)
    if problem:
        headers = api_request.get_response_headers(**api.api_headers)
        return api.get_exception(
            HTTPStatus.BAD_REQUEST, headers, api_request.format, "InvalidParameterValue", problem
        )
    headers, status, content = processes_api.execute_process(api, api_request, process_id)
    if status == HTTPStatus.CREATED and "Location" in headers:
        job_id = headers["Location"].rstrip("/").rsplit("/", 1)[-1]
        _, _, content = processes_api.get_jobs(api, api_request, job_id)
        headers["Content-Type"] = "application/json"
    return headers, status, content


def _body_problem(data: bytes | str | None) -> str | None:
    if not data:
        return None  # pygeoapi answers "missing request data"
    try:
        body = json.loads(data)
    except (ValueError, TypeError):
        return None  # pygeoapi answers "invalid request data"
    if not isinstance(body, dict):
        return "the request body must be a JSON object with 'inputs'"
    if "inputs" in body and not isinstance(body["inputs"], dict):
        return "'inputs' must be a JSON object"
    if body.get("subscriber") is not None:
        return "callbacks ('subscriber') are not supported; poll /jobs/{jobId} instead"
    if "inputs" not in body:
        return "missing 'inputs'"
    return None


def _job_results(api: API, api_request: APIRequest, job_id: str) -> tuple[dict, int, Any]:
    """pygeoapi's results endpoint, but a failed job answers with its own error and status,
    and a dismissed one with 404 (pygeoapi answers 400 / 500 for those)."""
    headers = api_request.get_response_headers(**api.api_headers)
    try:
        record = api.manager.get_job(job_id)
    except JobNotFoundError:
        return api.get_exception(
            HTTPStatus.NOT_FOUND, headers, api_request.format, "NoSuchJob", f"no job {job_id}"
        )
    if record["status"] == "dismissed":
        return api.get_exception(
            HTTPStatus.NOT_FOUND, headers, api_request.format, "NoSuchJob", "job dismissed"
        )
    if record["status"] == "failed":
        error = record.get("error") or {
            "status": 500,
            "code": "NoApplicableCode",
            "message": "job failed",
        }
        return api.get_exception(
            HTTPStatus(int(error["status"])),
            headers,
            api_request.format,
            error["code"],
            error["message"],
        )
    return processes_api.get_job_result(api, api_request, job_id)


def _exception_response(status: int, code: str, description: str) -> Response:
    body = json.dumps({"type": code, "code": code, "description": description})
    return Response(body, status=status, content_type="application/json")
