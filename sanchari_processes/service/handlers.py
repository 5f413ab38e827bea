"""Request handlers that replace or wrap pygeoapi's where a caller's mistake must stay a 4xx.

pygeoapi's handlers parse bodies and query values loosely (a non-UTF-8 body, a 5000-digit
number, JSON nested thousands deep or a 23-digit ``offset`` end in a 500), answer an unknown job
with ``InvalidParameterValue``, ignore the ``status``/``type``/``processID`` filters of
``/jobs`` and sort jobs by a start time that queued jobs do not have. These handlers keep
pygeoapi's API object, response formats and templates, and check everything first.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import pygeoapi.api as core_api
import pygeoapi.api.processes as processes_api
from pygeoapi.api import API, F_HTML, F_JSON, FORMAT_TYPES, APIRequest
from pygeoapi.process.base import (
    JobNotFoundError,
    JobResultNotFoundError,
    UnknownProcessError,
)
from pygeoapi.util import DATETIME_FORMAT, render_j2_template, to_json

from sanchari_processes.errors import InvalidInputError, SanchariError, exception_type
from sanchari_processes.results import OUTPUTS
from sanchari_processes.service.listing import process_list
from sanchari_processes.service.pages import job_page
from sanchari_processes.service.requests import Answer as ExecAnswer
from sanchari_processes.service.requests import parse_execution
from sanchari_processes.service.status import job_document

LOGGER = logging.getLogger(__name__)

Answer = tuple[dict, int, Any]

#: Deepest nesting accepted in a request body (execute requests need 4).
MAX_DEPTH = 32
#: Longest integer literal accepted in a request body (digits).
MAX_INT_DIGITS = 20
#: Paths this service answers (the landing page links to nothing else of ours).
SERVED = ("/", "/openapi", "/conformance", "/processes", "/jobs")
CONFORMANCE_REL = "http://www.opengis.net/def/rel/ogc/1.0/conformance"


class SanchariAPI(API):
    """pygeoapi's API object, with errors logged as one line (tracebacks only for our 500s)."""

    def get_exception(
        self, status: int, headers: dict, format_: str | None, code: str, description: str
    ) -> Answer:
        level = logging.ERROR if int(status) >= 500 else logging.INFO
        LOGGER.log(level, "%d %s: %s", int(status), code, str(description)[:300])
        exception = {"type": exception_type(code), "code": code, "description": description}
        if format_ == F_HTML:
            headers["Content-Type"] = FORMAT_TYPES[F_HTML]
            content = render_j2_template(
                self.tpl_config, self.config["server"]["templates"], "exception.html", exception
            )
        else:
            headers["Content-Type"] = FORMAT_TYPES[F_JSON]
            content = to_json(exception, self.pretty_print)
        return headers, status, content


def _error(api: API, request: APIRequest, status: int, code: str, message: str) -> Answer:
    headers = request.get_response_headers(**api.api_headers)
    return api.get_exception(HTTPStatus(status), headers, request.format, code, message)


# -- request bodies ----------------------------------------------------------------------------
def parse_body(data: bytes | str | None) -> Any:
    """A request body as JSON, or a 400 saying what is wrong with it.

    UTF-8 only; no ``NaN``/``Infinity``; integers of at most :data:`MAX_INT_DIGITS` digits,
    finite floats; nesting at most :data:`MAX_DEPTH`; no lone surrogates in strings or keys.
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInputError("the request body is not UTF-8 text") from None
    try:
        body = json.loads(
            data or "", parse_int=_parse_int, parse_float=_parse_float, parse_constant=_no_constant
        )
    except RecursionError:
        raise InvalidInputError("the request body is nested too deeply") from None
    except ValueError as exc:
        reason = str(exc).split(":")[0] if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise InvalidInputError(f"the request body is not valid JSON ({reason})") from None
    _check_tree(body)
    return body


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number is out of range")
    return value


def _no_constant(text: str) -> None:
    raise ValueError(f"{text} is not a JSON number")


def _check_tree(body: Any) -> None:
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise InvalidInputError("the request body is nested too deeply")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _check_text(key)
                stack.append((item, depth + 1))


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError("the request body has a string that is not valid Unicode") from None


def body_problem(body: Any) -> str | None:
    """What is wrong with the shape of an execute request, if anything."""
    if not isinstance(body, dict):
        return "the request body must be a JSON object with 'inputs'"
    if "inputs" not in body:
        return "missing 'inputs'"
    if not isinstance(body["inputs"], dict):
        return "'inputs' must be a JSON object"
    return None


def execute(api: API, request: APIRequest, process_id: str) -> Answer:
    """Run a process: the body checked first; async answers 201 with the job's status document
    and ``Location``, sync answers with the results as the request asked for them
    (:mod:`~sanchari_processes.service.requests`), without ``Location`` (sync jobs are not
    kept, unless an output is by reference or HTML is asked for, which answers the job's page:
    then a ``Link`` with ``rel="monitor"`` names the job)."""
    manager = api.manager
    if process_id not in manager.processes:
        return _error(api, request, 404, "NoSuchProcess", f"no process {process_id[:100]}")
    try:
        body = parse_body(request.data)
        problem = body_problem(body)
        if problem:
            raise InvalidInputError(problem)
        outputs = getattr(manager.get_processor(process_id), "outputs", None) or OUTPUTS
        execution = parse_execution(body, manager.settings.callbacks, outputs)
    except InvalidInputError as exc:
        return _error(api, request, 400, "InvalidParameterValue", exc.message)
    except SanchariError as exc:
        return _error(api, request, exc.http_status, exc.ogc_code, exc.message)
    prefer = str(request.headers.get("Prefer", "")).lower()
    async_ = "respond-async" in prefer
    html = request.format == F_HTML  # a person: the job's page, so the job is kept
    try:
        outcome = manager.run(process_id, body["inputs"], execution, async_=async_, keep=html)
    except SanchariError as exc:
        return _error(api, request, exc.http_status, exc.ogc_code, exc.message)
    except UnknownProcessError:
        return _error(api, request, 404, "NoSuchProcess", f"no process {process_id[:100]}")
    headers = request.get_response_headers(**api.api_headers)
    if outcome.accepted:
        headers["Location"] = f"{api.base_url}/jobs/{outcome.job_id}"
        if async_:  # an async-only process runs so unasked: no preference was applied
            headers["Preference-Applied"] = "respond-async"
        status_headers, _, content = job_status(api, request, outcome.job_id)
        headers["Content-Type"] = status_headers["Content-Type"]
        return headers, HTTPStatus.CREATED, content
    assert outcome.answer is not None
    if "wait" in prefer:
        headers["Preference-Applied"] = "wait"
    if html:
        page_headers, status, content = job_status(api, request, outcome.job_id)
        headers["Content-Type"] = page_headers["Content-Type"]
    else:
        headers, status, content = _answer(headers, outcome.answer)
    if execution.by_reference or html:  # the job is kept: say where it is
        monitor = f'<{api.base_url}/jobs/{outcome.job_id}>; rel="monitor"'
        headers["Link"] = ", ".join(filter(None, (headers.get("Link"), monitor)))
    return headers, status, content


def _answer(headers: dict, answer: ExecAnswer) -> Answer:
    headers.pop("Content-Type", None)
    headers.update(answer.headers)
    return headers, HTTPStatus(answer.status), answer.body


# -- jobs --------------------------------------------------------------------------------------
def _render(api: API, request: APIRequest, template: str, data: dict) -> str:
    data["now"] = datetime.now(UTC).strftime(DATETIME_FORMAT)
    return render_j2_template(
        api.tpl_config, api.config["server"]["templates"], template, data, request.locale
    )


def job_status(api: API, request: APIRequest, job_id: str) -> Answer:
    headers = request.get_response_headers(**api.api_headers)
    try:
        record = api.manager.get_job(job_id)
    except JobNotFoundError:
        return _error(api, request, 404, "NoSuchJob", f"no job {job_id[:100]}")
    if request.format == F_HTML:  # the job, and its roads on a map once it succeeded
        headers["Content-Type"] = FORMAT_TYPES[F_HTML]
        return headers, HTTPStatus.OK, job_page(api.base_url, record)
    return headers, HTTPStatus.OK, to_json(job_document(api.base_url, record), api.pretty_print)


def dismiss_job(api: API, request: APIRequest, job_id: str) -> Answer:
    """DELETE: stop and dismiss the job; answers its status document (404 when unknown)."""
    try:
        api.manager.delete_job(job_id)
    except JobNotFoundError:
        return _error(api, request, 404, "NoSuchJob", f"no job {job_id[:100]}")
    return job_status(api, request, job_id)


def job_results(api: API, request: APIRequest, job_id: str) -> Answer:
    """The results as the execute request asked for them (in HTML: the job's page with its
    map); a failed job answers with its own error and status, an unknown or dismissed one with
    404 ``NoSuchJob``, one still queued or running with 404 ``ResultNotReady``."""
    record = _final_record(api, request, job_id)
    if not isinstance(record, dict):
        return record
    headers = request.get_response_headers(**api.api_headers)
    if request.format == F_HTML:  # the results page: the roads on a map, every output
        headers["Content-Type"] = FORMAT_TYPES[F_HTML]
        return headers, HTTPStatus.OK, job_page(api.base_url, record)
    try:
        return _answer(headers, api.manager.results(job_id))
    except JobResultNotFoundError:
        return _error(api, request, 404, "NoSuchJob", f"no results for job {job_id[:100]}")


def _final_record(api: API, request: APIRequest, job_id: str) -> dict | Answer:
    """A job's record, or the error its results answer with (unknown, dismissed, failed)."""
    try:
        record = api.manager.get_job(job_id)
    except JobNotFoundError:
        return _error(api, request, 404, "NoSuchJob", f"no job {job_id[:100]}")
    if record["status"] == "dismissed":
        return _error(api, request, 404, "NoSuchJob", "job dismissed")
    if record["status"] == "failed":
        error = record.get("error") or {
            "status": 500,
            "code": "NoApplicableCode",
            "message": "job failed",
        }
        return _error(api, request, int(error["status"]), error["code"], error["message"])
    if record["status"] != "successful":
        message = f"job {job_id[:100]} is {record['status']}: results are not ready"
        return _error(api, request, 404, "ResultNotReady", message)
    return record


def result_file(api: API, request: APIRequest, job_id: str, output_id: str) -> Any:
    """One output's file (``/jobs/{id}/results/{output}``) for Flask to send with ranges, or
    the error to answer with."""
    record = _final_record(api, request, job_id)
    if not isinstance(record, dict):
        return record
    try:
        return api.manager.result_file(job_id, output_id)
    except JobResultNotFoundError:
        message = f"job {job_id[:100]} has no output {output_id[:50]!r}"
        return _error(api, request, 404, "NotFound", message)


def _json_document(request: APIRequest, status: int, content: Any) -> Any:
    """pygeoapi's successful JSON answer, parsed to be amended; ``None`` when it is to be passed
    on as it is (an error, HTML, or not JSON)."""
    if status != HTTPStatus.OK or request.format == F_HTML:
        return None
    try:
        return json.loads(content)
    except (TypeError, ValueError):
        return None


# -- discovery of processes -------------------------------------------------------------------
def describe_processes(api: API, request: APIRequest, process_id: str | None = None) -> Answer:
    """pygeoapi's process list/description, with each process's own job control options and
    output transmission modes (pygeoapi overwrites them with sync/async and value only)."""
    if process_id is None:
        return process_list(api, request)
    headers, status, content = processes_api.describe_processes(api, request, process_id)
    document = _json_document(request, status, content)
    if document is None:
        return headers, status, content
    for described in document.get("processes", [document]):
        key = described.get("id")
        if key not in api.manager.processes:
            continue
        own = api.manager.get_processor(key).metadata
        for member in ("jobControlOptions", "outputTransmission"):
            if member in own:
                described[member] = own[member]
    return headers, status, to_json(document, api.pretty_print)


# -- conformance -------------------------------------------------------------------------------
#: What this service implements of OGC API - Processes Part 1 (1.0), each tested.
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/ogc-process-description",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/job-list",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/callback",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/dismiss",
)


def conformance(api: API, request: APIRequest) -> Answer:
    """``/conformance``: exactly the classes above (pygeoapi's list names classes of
    collections and features this service does not serve)."""
    headers = request.get_response_headers(**api.api_headers)
    document = {"conformsTo": list(CONFORMANCE)}
    if request.format == F_HTML:
        return headers, HTTPStatus.OK, _render(api, request, "conformance.html", document)
    return headers, HTTPStatus.OK, to_json(document, api.pretty_print)


# -- discovery ---------------------------------------------------------------------------------
def landing_page(api: API, request: APIRequest) -> Answer:
    """pygeoapi's landing page, less its links to endpoints this service does not have."""
    headers, status, content = core_api.landing_page(api, request)
    document = _json_document(request, status, content)
    if document is None:
        return headers, status, content
    base = urlsplit(api.base_url).path.rstrip("/")
    kept = []
    for link in document.get("links", []):
        parts = urlsplit(str(link.get("href", "")))
        own = parts.netloc == urlsplit(api.base_url).netloc
        path = parts.path[len(base) :] if parts.path.startswith(base) else parts.path
        if not own or (path or "/") in SERVED:
            kept.append(link)
    for at, link in enumerate(list(kept)):  # the standard's relation, beside the short one
        if link.get("rel") == "conformance":
            kept.insert(at + 1, {**link, "rel": CONFORMANCE_REL})
            break
    document["links"] = kept
    return headers, status, to_json(document, api.pretty_print)
