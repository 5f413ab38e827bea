"""The two lists of the service, ``/processes`` and ``/jobs``: pages, filters and links.

Both take ``limit`` (the server's ``limits``: default and maximum) and ``offset``, and link the
next and previous pages (``rel="next"``/``"prev"``) besides ``self`` and ``alternate``.
pygeoapi's process list has no ``offset`` (so no way to the next page) and its job list ignores
every filter; ``/jobs`` here filters by ``status``, ``type``, ``processID``, ``datetime``
(creation time) and ``minDuration``/``maxDuration`` (run time,
:mod:`~sanchari_processes.service.jobfilters`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import pygeoapi.api as core_api
from pygeoapi import l10n
from pygeoapi.api import API, F_HTML, F_JSON, FORMAT_TYPES, APIRequest
from pygeoapi.util import DATETIME_FORMAT, render_j2_template, to_json

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.service.jobfilters import parse_filters
from sanchari_processes.service.status import job_document
from sanchari_processes.service.store import STATUSES

Answer = tuple[dict, int, Any]
JSON, HTML = FORMAT_TYPES[F_JSON], FORMAT_TYPES[F_HTML]
#: Largest ``offset`` (SQLite's integers are 64-bit; no list is this long).
MAX_OFFSET = 2**31 - 1
EXECUTE_REL = "http://www.opengis.net/def/rel/ogc/1.0/execute"
JOB_LIST_REL = "http://www.opengis.net/def/rel/ogc/1.0/job-list"


@dataclass(frozen=True)
class Page:
    """Which items of a list a request wants."""

    limit: int
    offset: int

    @classmethod
    def parse(cls, api: API, request: APIRequest) -> Page:
        """``limit`` (cut to the server's maximum) and ``offset``; 400 when malformed."""
        try:
            limit = core_api.evaluate_limit(
                request.params.get("limit"), api.config["server"].get("limits", {}), {}
            )
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from None
        raw_offset = str(request.params.get("offset") or "0").strip()
        if not raw_offset.isdigit() or int(raw_offset) > MAX_OFFSET:
            raise InvalidInputError(f"offset must be 0..{MAX_OFFSET}")
        return cls(limit, int(raw_offset))

    def links(self, uri: str, total: int, query: str, title: str) -> list[dict[str, str]]:
        """``self`` and ``alternate`` (JSON, HTML) of this page, then ``prev``/``next``."""
        here = f"offset={self.offset}&limit={self.limit}{query}"
        links = [
            {"href": f"{uri}?f=json&{here}", "rel": "self", "type": JSON, "title": title},
            {"href": f"{uri}?f=html&{here}", "rel": "alternate", "type": HTML, "title": title},
        ]
        if self.offset > 0:
            prev = max(0, self.offset - self.limit)
            links.append({"href": f"{uri}?offset={prev}&limit={self.limit}{query}", "rel": "prev"})
        if self.offset + self.limit < total:
            after = self.offset + self.limit
            links.append({"href": f"{uri}?offset={after}&limit={self.limit}{query}", "rel": "next"})
        for link in links[2:]:
            link.update(type=JSON, title=title)
        return links


def _error(api: API, request: APIRequest, message: str) -> Answer:
    headers = request.get_response_headers(**api.api_headers)
    return api.get_exception(
        HTTPStatus.BAD_REQUEST, headers, request.format, "InvalidParameterValue", message
    )


def _render(api: API, request: APIRequest, template: str, data: dict) -> str:
    data["now"] = datetime.now(UTC).strftime(DATETIME_FORMAT)
    return render_j2_template(
        api.tpl_config, api.config["server"]["templates"], template, data, request.locale
    )


# -- processes ---------------------------------------------------------------------------------
def process_list(api: API, request: APIRequest) -> Answer:
    """``/processes``: a page of process summaries, each with its own job control options."""
    headers = request.get_response_headers(**api.api_headers)
    try:
        page = Page.parse(api, request)
    except InvalidInputError as exc:
        return _error(api, request, exc.message)
    keys = list(api.manager.processes)
    chosen = keys[page.offset : page.offset + page.limit]
    uri = f"{api.base_url}/processes"
    document = {
        "processes": [_summary(api, request, key) for key in chosen],
        "links": page.links(uri, len(keys), "", "Processes"),
    }
    if request.format == F_HTML:
        return headers, HTTPStatus.OK, _render(api, request, "processes/index.html", document)
    return headers, HTTPStatus.OK, to_json(document, api.pretty_print)


def _summary(api: API, request: APIRequest, key: str) -> dict[str, Any]:
    """A process summary: its description less inputs, outputs and example, with links."""
    metadata = api.manager.get_processor(key).metadata
    summary = l10n.translate_struct(copy.deepcopy(metadata), request.locale)
    for member in ("inputs", "outputs", "example"):
        summary.pop(member, None)
    summary["id"] = key
    url = f"{api.base_url}/processes/{key}"
    summary["links"] = [
        *summary.get("links", []),
        {"href": f"{url}?f=json", "rel": "self", "type": JSON, "title": "Process description"},
        {"href": f"{url}?f=html", "rel": "alternate", "type": HTML, "title": "As HTML"},
        {"href": f"{url}/execution", "rel": EXECUTE_REL, "type": JSON, "title": "Execute"},
        {
            "href": f"{api.base_url}/jobs?processID={key}",
            "rel": JOB_LIST_REL,
            "type": JSON,
            "title": "Jobs of this process",
        },
    ]
    return summary


# -- jobs --------------------------------------------------------------------------------------
def _values(args: Mapping[str, Sequence[str]], name: str) -> list[str]:
    """A list query parameter, repeated or comma-separated."""
    return [v.strip() for raw in args.get(name, ()) for v in raw.split(",") if v.strip()]


def list_jobs(api: API, request: APIRequest, args: Mapping[str, Sequence[str]]) -> Answer:
    """``/jobs``: newest first, with ``limit``, ``offset`` and the job-list filters."""
    headers = request.get_response_headers(**api.api_headers)
    try:
        page = Page.parse(api, request)
        filters = parse_filters(args)
        statuses = _values(args, "status")
        unknown = [s for s in statuses if s not in STATUSES]
        if unknown:
            raise InvalidInputError(
                f"unknown status {unknown[0][:50]!r}; one of {', '.join(STATUSES)}"
            )
    except InvalidInputError as exc:
        return _error(api, request, exc.message)
    types = _values(args, "type")
    process_ids = _values(args, "processID")
    if types and "process" not in types:
        records, total = [], 0
    else:
        records, total = api.manager.store.list(
            limit=page.limit,
            offset=page.offset,
            statuses=statuses,
            process_ids=process_ids,
            created=(filters.created_from, filters.created_to),
            durations=(filters.min_duration, filters.max_duration) if filters.by_duration else None,
        )
    jobs = [job_document(api.base_url, r) for r in records]
    query = "".join(
        f"&{name}={','.join(_values(args, name))}"
        for name in ("status", "type", "processID")
        if _values(args, name)
    )
    links = page.links(f"{api.base_url}/jobs", total, query + filters.query(), "Jobs")
    document = {"jobs": jobs, "links": links, "numberMatched": total, "numberReturned": len(jobs)}
    if request.format == F_HTML:
        html_jobs = [
            {**j, "started": j.get("started", ""), "finished": j.get("finished", "")} for j in jobs
        ]
        data = {"jobs": {"jobs": html_jobs, "links": links}, "offset": page.offset}
        return headers, HTTPStatus.OK, _render(api, request, "jobs/index.html", data)
    return headers, HTTPStatus.OK, to_json(document, api.pretty_print)
