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
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import pygeoapi.api as core_api
import pygeoapi.api.processes as processes_api
from pygeoapi.api import API, F_HTML, F_JSON, FORMAT_TYPES, APIRequest
from pygeoapi.process.base import JobNotFoundError
from pygeoapi.util import DATETIME_FORMAT, render_j2_template, to_json

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.service.store import STATUSES

LOGGER = logging.getLogger(__name__)

Answer = tuple[dict, int, Any]

#: Deepest nesting accepted in a request body (execute requests need 4).
MAX_DEPTH = 32
#: Longest integer literal accepted in a request body (digits).
MAX_INT_DIGITS = 20
#: Largest ``offset`` on ``/jobs`` (SQLite's integers are 64-bit; no store is this large).
MAX_OFFSET = 2**31 - 1
#: Paths this service answers (the landing page links to nothing else of ours).
SERVED = ("/", "/openapi", "/conformance", "/processes", "/jobs")


class SanchariAPI(API):
    """pygeoapi's API object, with errors logged as one line (tracebacks only for our 500s)."""

    def get_exception(
        self, status: int, headers: dict, format_: str | None, code: str, description: str
    ) -> Answer:
        level = logging.ERROR if int(status) >= 500 else logging.INFO
        LOGGER.log(level, "%d %s: %s", int(status), code, str(description)[:300])
        exception = {"code": code, "type": code, "description": description}
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
    if body.get("subscriber") is not None:
        return "callbacks ('subscriber') are not supported; poll /jobs/{jobId} instead"
    return None


def execute(api: API, request: APIRequest, process_id: str) -> Answer:
    """pygeoapi's execute, with the body checked first and a 201 answered with the job's
    status document; a sync answer carries no ``Location`` (sync jobs are not kept)."""
    if process_id not in api.manager.processes:
        return _error(api, request, 404, "NoSuchProcess", f"no process {process_id[:100]}")
    try:
        problem = body_problem(parse_body(request.data))
    except InvalidInputError as exc:
        problem = exc.message
    if problem:
        return _error(api, request, 400, "InvalidParameterValue", problem)
    headers, status, content = processes_api.execute_process(api, request, process_id)
    if status == HTTPStatus.CREATED and "Location" in headers:
        job_id = headers["Location"].rstrip("/").rsplit("/", 1)[-1]
        _, _, content = job_status(api, request, job_id)
        headers["Content-Type"] = FORMAT_TYPES[F_JSON]
    else:
        headers.pop("Location", None)
    return headers, status, content


# -- jobs --------------------------------------------------------------------------------------
def job_document(api: API, record: Mapping[str, Any]) -> dict[str, Any]:
    """An OGC ``statusInfo`` document (times left out until they happen)."""
    job_url = f"{api.base_url}/jobs/{record['identifier']}"
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
    doc["links"] = [
        {"href": job_url, "rel": "self", "type": FORMAT_TYPES[F_JSON], "title": "Job status"}
    ]
    if record["status"] == "successful":
        doc["links"].append(
            {
                "href": f"{job_url}/results",
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/results",
                "type": record.get("mimetype") or FORMAT_TYPES[F_JSON],
                "title": "Results of the job",
            }
        )
    return doc


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
    doc = job_document(api, record)
    if request.format == F_HTML:
        html_doc = {**doc, "started": doc.get("started", ""), "finished": doc.get("finished", "")}
        return headers, HTTPStatus.OK, _render(api, request, "jobs/job.html", {"jobs": html_doc})
    return headers, HTTPStatus.OK, to_json(doc, api.pretty_print)


def dismiss_job(api: API, request: APIRequest, job_id: str) -> Answer:
    """DELETE: stop and dismiss the job; answers its status document (404 when unknown)."""
    try:
        api.manager.delete_job(job_id)
    except JobNotFoundError:
        return _error(api, request, 404, "NoSuchJob", f"no job {job_id[:100]}")
    return job_status(api, request, job_id)


def _values(args: Mapping[str, Sequence[str]], name: str) -> list[str]:
    """A list query parameter, repeated or comma-separated."""
    return [v.strip() for raw in args.get(name, ()) for v in raw.split(",") if v.strip()]


def list_jobs(api: API, request: APIRequest, args: Mapping[str, Sequence[str]]) -> Answer:
    """``/jobs`` with ``limit``, ``offset`` and the ``status``/``type``/``processID`` filters."""
    headers = request.get_response_headers(**api.api_headers)
    try:
        limit = core_api.evaluate_limit(
            request.params.get("limit"), api.config["server"].get("limits", {}), {}
        )
    except ValueError as exc:
        return _error(api, request, 400, "InvalidParameterValue", str(exc))
    raw_offset = str(request.params.get("offset") or "0").strip()
    if not raw_offset.isdigit() or int(raw_offset) > MAX_OFFSET:
        return _error(api, request, 400, "InvalidParameterValue", f"offset must be 0..{MAX_OFFSET}")
    offset = int(raw_offset)
    statuses = _values(args, "status")
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        message = f"unknown status {unknown[0][:50]!r}; one of {', '.join(STATUSES)}"
        return _error(api, request, 400, "InvalidParameterValue", message)
    types = _values(args, "type")
    process_ids = _values(args, "processID")
    if types and "process" not in types:
        records, total = [], 0
    else:
        records, total = api.manager.store.list(
            limit=limit, offset=offset, statuses=statuses, process_ids=process_ids
        )
    jobs = [job_document(api, r) for r in records]
    query = "".join(
        f"&{name}={','.join(_values(args, name))}"
        for name in ("status", "type", "processID")
        if _values(args, name)
    )
    uri = f"{api.base_url}/jobs"
    links = [
        {"href": f"{uri}?f=json", "rel": "self", "type": FORMAT_TYPES[F_JSON], "title": "Jobs"},
        {
            "href": f"{uri}?f=html",
            "rel": "alternate",
            "type": FORMAT_TYPES[F_HTML],
            "title": "Jobs",
        },
    ]
    if offset > 0:
        prev = max(0, offset - limit)
        links.append({"href": f"{uri}?offset={prev}&limit={limit}{query}", "rel": "prev"})
    if offset + limit < total:
        links.append({"href": f"{uri}?offset={offset + limit}&limit={limit}{query}", "rel": "next"})
    for link in links[2:]:
        link.update(type=FORMAT_TYPES[F_JSON], title="Jobs")
    document = {"jobs": jobs, "links": links, "numberMatched": total, "numberReturned": len(jobs)}
    if request.format == F_HTML:
        html_jobs = [
            {**j, "started": j.get("started", ""), "finished": j.get("finished", "")} for j in jobs
        ]
        page = {"jobs": {"jobs": html_jobs, "links": links}, "offset": offset}
        return headers, HTTPStatus.OK, _render(api, request, "jobs/index.html", page)
    return headers, HTTPStatus.OK, to_json(document, api.pretty_print)


def job_results(api: API, request: APIRequest, job_id: str) -> Answer:
    """pygeoapi's results endpoint, but a failed job answers with its own error and status,
    an unknown or dismissed one with 404 ``NoSuchJob``."""
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
    return processes_api.get_job_result(api, request, job_id)


# -- discovery ---------------------------------------------------------------------------------
def landing_page(api: API, request: APIRequest) -> Answer:
    """pygeoapi's landing page, less its links to endpoints this service does not have."""
    headers, status, content = core_api.landing_page(api, request)
    if status != HTTPStatus.OK or request.format == F_HTML:
        return headers, status, content
    try:
        document = json.loads(content)
    except (TypeError, ValueError):
        return headers, status, content
    base = urlsplit(api.base_url).path.rstrip("/")
    kept = []
    for link in document.get("links", []):
        parts = urlsplit(str(link.get("href", "")))
        own = parts.netloc == urlsplit(api.base_url).netloc
        path = parts.path[len(base) :] if parts.path.startswith(base) else parts.path
        if not own or (path or "/") in SERVED:
            kept.append(link)
    document["links"] = kept
    return headers, status, to_json(document, api.pretty_print)
