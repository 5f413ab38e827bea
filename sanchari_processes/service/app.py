"""The WSGI application: pygeoapi's OGC API - Processes endpoints, built from a config dict.

``pygeoapi.flask_app`` reads its configuration from the environment when imported and builds
one global app, which cannot be configured per test or per ``sanchari serve`` call. This
factory wires pygeoapi's request handlers (``pygeoapi.api``, ``pygeoapi.api.processes``, and
ours in :mod:`~sanchari_processes.service.handlers` where pygeoapi's fall short) to a fresh
Flask app with an explicit configuration. Every error is an OGC exception in JSON (405 with
``Allow``, 413 over the body limit); 503 and 429 answers carry ``Retry-After``.
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
from flask import Flask, Response, make_response, request, send_file
from pygeoapi.api import APIRequest, apply_gzip
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from sanchari_processes.errors import ModelMissingError, exception_type
from sanchari_processes.service import handlers, pages
from sanchari_processes.service.executors.base import Runner
from sanchari_processes.service.listing import list_jobs
from sanchari_processes.service.manager import SanchariManager
from sanchari_processes.service.models import ModelNotFoundError, ModelStore
from sanchari_processes.service.openapi import openapi_document
from sanchari_processes.service.requests import ResultFile
from sanchari_processes.service.settings import models_dir_of
from sanchari_processes.service.sync import CLIENT_GONE

LOGGER = logging.getLogger(__name__)

#: HTTP threads kept free of synchronous executions, for status and discovery requests.
RESERVED_THREADS = 2
#: ``sanchari serve``'s default number of HTTP threads.
DEFAULT_THREADS = 8
JSON_TYPE = "application/json"

Handler = Callable[..., tuple[dict, int, Any]]
_CODES = {
    400: "InvalidParameterValue",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "RequestTooLarge",
    431: "RequestTooLarge",
}


def sync_limit(threads: int) -> int:
    """Synchronous executions allowed at once with ``threads`` HTTP threads."""
    return max(1, threads - RESERVED_THREADS)


def create_app(
    config: dict,
    openapi: dict | None = None,
    *,
    runner: Runner | None = None,
    start: bool = True,
    threads: int = DEFAULT_THREADS,
) -> Flask:
    """A Flask app serving ``config``; with ``start`` its job manager is started.

    ``runner`` replaces the worker-side job function (tests use a slow stand-in). Without
    ``start`` nothing touches the jobs folder until ``manager.start()`` (the server first
    takes the folder's lock and binds its port).
    """
    if openapi is None:
        openapi = openapi_document(config)
    api = handlers.SanchariAPI(config, openapi)
    manager = api.manager
    if isinstance(manager, SanchariManager):
        manager.base_url = api.base_url
    if start and isinstance(manager, SanchariManager):
        manager.start(runner=runner, sync_limit=sync_limit(threads))
    static = Path(pygeoapi.__file__).parent / "static"
    app = Flask(__name__, static_folder=str(static), static_url_path="/static")
    app.url_map.strict_slashes = False
    app.register_blueprint(pages.blueprint)  # Leaflet and the job page's files, offline
    app.extensions["sanchari.api"] = api
    app.extensions["sanchari.manager"] = manager
    app.extensions["sanchari.runner"] = runner
    settings = getattr(manager, "settings", None)
    retry_after = getattr(settings, "retry_after_s", 30)
    app.config["MAX_CONTENT_LENGTH"] = getattr(settings, "max_body_bytes", 1024 * 1024)

    call = _caller(api)
    _process_routes(app, api, call)
    models_root = models_dir_of(config)
    if models_root is not None:
        _model_routes(app, ModelStore(models_root), api.base_url)

    _error_handlers(app, retry_after)
    return app


def _caller(api: handlers.SanchariAPI) -> Callable[..., Response]:
    """``call(handler, *args)``: a pygeoapi-style handler's answer as a Flask response."""

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

    return call


def _process_routes(app: Flask, api: handlers.SanchariAPI, call: Callable[..., Response]) -> None:
    """The OGC API - Processes endpoints: landing page, processes, jobs and their results."""

    @app.get("/")
    def landing_page() -> Response:
        return call(handlers.landing_page)

    @app.get("/openapi")
    def openapi_view() -> Response:
        return call(core_api.openapi_)

    @app.get("/conformance")
    def conformance() -> Response:
        return call(handlers.conformance)

    @app.get("/processes")
    @app.get("/processes/<process_id>")
    def processes(process_id: str | None = None) -> Response:
        return call(handlers.describe_processes, process_id)

    @app.post("/processes/<process_id>/execution")
    def execute(process_id: str) -> Response:
        gone = request.environ.get("waitress.client_disconnected")
        token = CLIENT_GONE.set(gone if callable(gone) else None)
        try:
            return call(handlers.execute, process_id)
        finally:
            CLIENT_GONE.reset(token)

    @app.get("/jobs")
    def jobs() -> Response:
        args = request.args.to_dict(flat=False)
        return call(lambda api_, req: list_jobs(api_, req, args))

    @app.route("/jobs/<job_id>", methods=["GET", "DELETE"])
    def job(job_id: str) -> Response:
        if request.method == "DELETE":
            return call(handlers.dismiss_job, job_id)
        return call(handlers.job_status, job_id)

    @app.get("/jobs/<job_id>/results")
    def results(job_id: str) -> Response:
        return call(handlers.job_results, job_id)

    @app.get("/jobs/<job_id>/results/<output_id>")
    def result_file(job_id: str, output_id: str) -> Response:
        """One output's file, with HTTP range requests (GDAL's /vsicurl/, QGIS); with
        ``f=html`` (only: a browser's ``Accept`` gets the file) the page of its job."""
        if request.args.get("f") == "html":
            return call(handlers.job_results, job_id)
        api_request = APIRequest.from_flask(request, api.locales)
        found = handlers.result_file(api, api_request, job_id, output_id)
        if not isinstance(found, ResultFile):
            headers, status, content = found
            response = make_response(content, status)
            response.headers = headers
            return response
        try:
            response = send_file(
                found.path, mimetype=found.media_type, conditional=True, max_age=0, etag=True
            )
        except FileNotFoundError:  # removed since it was looked up (dismissed, expired)
            return _exception_response(404, "NotFound", f"no output {output_id[:50]!r}")
        response.headers["Accept-Ranges"] = "bytes"
        response.headers["Content-Disposition"] = f'inline; filename="{found.path.name}"'
        return response


def _error_handlers(app: Flask, retry_after: int) -> None:
    """Every error as OGC exception JSON, and ``Retry-After`` on 429 and 503."""

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = _CODES.get(status, "InvalidRequest" if status < 500 else "NoApplicableCode")
        description = exc.description or exc.name
        if status == 413:
            description = (
                f"the request body is over the limit of {app.config['MAX_CONTENT_LENGTH']} bytes"
            )
        LOGGER.info("%d %s: %s %s", status, code, request.method, request.path[:200])
        response = _exception_response(status, code, description)
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        return response

    @app.errorhandler(Exception)
    def internal_error(exc: Exception) -> Response:
        LOGGER.exception("unhandled error on %s %s", request.method, request.path[:200])
        return _exception_response(500, "NoApplicableCode", "internal server error")

    @app.after_request
    def retry_hint(response: Response) -> Response:
        if response.status_code in (HTTPStatus.SERVICE_UNAVAILABLE, HTTPStatus.TOO_MANY_REQUESTS):
            response.headers.setdefault("Retry-After", str(retry_after))
        return response


def _model_routes(app: Flask, models: ModelStore, base_url: str) -> None:
    """``/models`` (list) and ``/models/{id}`` (GET: metadata and card; DELETE: 204)."""

    def links(model_id: str) -> list[dict[str, str]]:
        href = f"{base_url}/models/{model_id}"
        return [{"href": href, "rel": "self", "type": JSON_TYPE, "title": model_id}]

    @app.get("/models")
    def list_models() -> Response:
        found = [{**m, "links": links(m["id"])} for m in models.summaries()]
        self_link = {"href": f"{base_url}/models", "rel": "self", "type": JSON_TYPE}
        document = {"models": found, "numberMatched": len(found), "links": [self_link]}
        return Response(json.dumps(document), status=200, content_type=JSON_TYPE)

    @app.route("/models/<model_id>", methods=["GET", "DELETE"])
    def model(model_id: str) -> Response:
        try:
            if request.method == "DELETE":
                models.delete(model_id)
                return Response(status=204)
            document = models.read(model_id)
        except ModelNotFoundError as exc:
            return _exception_response(exc.http_status, exc.ogc_code, exc.message)
        except ModelMissingError as exc:
            LOGGER.warning("model %s cannot be read: %s", model_id, exc.message)
            message = f"model {model_id!r} cannot be read"
            return _exception_response(503, ModelMissingError.ogc_code, message)
        document["links"] = links(model_id)
        return Response(json.dumps(document), status=200, content_type=JSON_TYPE)


def _exception_response(status: int, code: str, description: str) -> Response:
    body = json.dumps({"type": exception_type(code), "code": code, "description": description})
    return Response(body, status=status, content_type="application/json")
