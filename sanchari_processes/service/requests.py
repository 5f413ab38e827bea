"""How an execute request wants its results, and the answer that gives them back.

OGC API - Processes Part 1 (1.0), core: an execute request may name ``outputs`` (each with a
``transmissionMode``, ``value`` or ``reference``, and a ``format``), a ``response`` (``raw`` or
``document``) and a ``subscriber`` (callback URLs). Without ``outputs`` every output of the
process is returned, by value. The answer (sync execution, or ``/jobs/{id}/results``):

- ``document``: 200, a JSON results document; each output inline (JSON for GeoJSON, base64
  text with ``encoding`` for binary formats) or as a link ``{"href", "type", "rel", "title"}``;
- ``raw`` with one output by value: 200, the output itself with its media type;
- ``raw`` with every output by reference: 204, one ``Link`` header per output;
- ``raw`` otherwise: 200, ``multipart/related``, one part per output (``Content-ID`` the output
  id; a reference is an empty part whose ``Content-Location`` is the output's URL).

References point at ``/jobs/{id}/results/{output}``, which serves the file with its media type
and HTTP range requests.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.netguard import NetPolicy, check_url
from sanchari_processes.results import ALL_OUTPUTS, GEOJSON, JSON, OUTPUTS, OutputKind

RESULTS_REL = "http://www.opengis.net/def/rel/ogc/1.0/results"
MODES = ("value", "reference")
RESPONSES = ("raw", "document")


@dataclass(frozen=True)
class OutputRequest:
    """One requested output: its id, media type and transmission mode."""

    id: str
    media_type: str
    reference: bool = False


@dataclass(frozen=True)
class Subscriber:
    """Callback URLs (each checked by the address guard when given)."""

    success_uri: str | None = None
    in_progress_uri: str | None = None
    failed_uri: str | None = None

    def to_dict(self) -> dict[str, str]:
        keys = {
            "successUri": self.success_uri,
            "inProgressUri": self.in_progress_uri,
            "failedUri": self.failed_uri,
        }
        return {k: v for k, v in keys.items() if v}


@dataclass(frozen=True)
class Execution:
    """Everything an execute request says besides its inputs."""

    outputs: tuple[OutputRequest, ...]
    response: str = "raw"
    subscriber: Subscriber | None = None

    @property
    def by_reference(self) -> bool:
        return any(o.reference for o in self.outputs)

    def files(self) -> tuple[tuple[str, str], ...]:
        """What the job must write: (output id, media type)."""
        return tuple((o.id, o.media_type) for o in self.outputs)

    def to_dict(self) -> dict[str, Any]:
        """The request's own members, as a client would send them (for the job store)."""
        doc: dict[str, Any] = {
            "outputs": {
                o.id: {
                    "transmissionMode": "reference" if o.reference else "value",
                    "format": {"mediaType": o.media_type},
                }
                for o in self.outputs
            },
            "response": self.response,
        }
        if self.subscriber is not None:
            doc["subscriber"] = self.subscriber.to_dict()
        return doc


def parse_execution(
    body: Mapping[str, Any],
    policy: NetPolicy,
    outputs: Mapping[str, OutputKind] = OUTPUTS,
) -> Execution:
    """``outputs``, ``response`` and ``subscriber`` of an execute request (400 when wrong);
    ``outputs``: the process's table of outputs."""
    response = body.get("response", "raw")
    if response not in RESPONSES:
        raise InvalidInputError("'response' must be 'raw' or 'document'")
    return Execution(
        outputs=_parse_outputs(body.get("outputs"), outputs),
        response=response,
        subscriber=_parse_subscriber(body.get("subscriber"), policy),
    )


def pygeoapi_body(outputs: dict | None, response: str | None, subscriber: Any) -> dict[str, Any]:
    """The execute request body of pygeoapi's ``execute_process`` arguments."""
    body: dict[str, Any] = {"outputs": outputs, "response": response}
    if subscriber is not None:
        body["subscriber"] = {
            "successUri": subscriber.success_uri,
            "inProgressUri": subscriber.in_progress_uri,
            "failedUri": subscriber.failed_uri,
        }
        body["subscriber"] = {k: v for k, v in body["subscriber"].items() if v}
    return body


def _parse_outputs(outputs: Any, table: Mapping[str, OutputKind]) -> tuple[OutputRequest, ...]:
    if outputs is None or outputs == {}:
        return tuple(OutputRequest(key, kind.default.media_type) for key, kind in table.items())
    if not isinstance(outputs, dict):
        raise InvalidInputError("'outputs' must be an object keyed by output id")
    parsed = []
    for key, spec in outputs.items():
        if key not in table:
            raise InvalidInputError(
                f"unknown output '{str(key)[:50]}'; the process has {', '.join(table)}"
            )
        spec = spec if spec is not None else {}
        if not isinstance(spec, dict):
            raise InvalidInputError(f"output '{key}' must be an object")
        unknown = sorted(set(spec) - {"transmissionMode", "format"})
        if unknown:
            raise InvalidInputError(f"output '{key}': unknown member(s) {', '.join(unknown)}")
        mode = spec.get("transmissionMode", "value")
        if mode not in MODES:
            raise InvalidInputError(
                f"output '{key}': transmissionMode must be 'value' or 'reference'"
            )
        fmt = spec.get("format") or {}
        if not isinstance(fmt, dict) or not isinstance(fmt.get("mediaType", ""), str):
            raise InvalidInputError(f'output \'{key}\': format must be {{"mediaType": "..."}}')
        media = table[key].format_for(fmt.get("mediaType")).media_type
        parsed.append(OutputRequest(key, media, mode == "reference"))
    return tuple(parsed)


def _parse_subscriber(subscriber: Any, policy: NetPolicy) -> Subscriber | None:
    if subscriber is None:
        return None
    if not isinstance(subscriber, dict):
        raise InvalidInputError("'subscriber' must be an object of callback URLs")
    if "successUrl" in subscriber:  # the spelling the 1.0 schema (subscriber.yaml) requires
        subscriber = dict(subscriber)
        alias = subscriber.pop("successUrl")
        if subscriber.setdefault("successUri", alias) != alias:
            raise InvalidInputError("'subscriber': successUrl and successUri differ")
    names = {"successUri": "success_uri", "inProgressUri": "in_progress_uri"}
    names["failedUri"] = "failed_uri"
    unknown = sorted(set(subscriber) - set(names))
    if unknown:
        raise InvalidInputError(f"'subscriber': unknown member(s) {', '.join(unknown)[:100]}")
    if "successUri" not in subscriber:
        raise InvalidInputError("'subscriber' needs 'successUri'")
    values = {}
    for key, field_name in names.items():
        uri = subscriber.get(key)
        if uri is None:
            continue
        if not isinstance(uri, str) or not uri or len(uri) > 2048:
            raise InvalidInputError(f"'subscriber.{key}' must be a URL")
        try:
            check_url(uri, policy)
        except InvalidInputError as exc:
            raise InvalidInputError(f"'subscriber.{key}': {exc.message}") from None
        values[field_name] = uri
    return Subscriber(**values)


def execution_from_dict(data: Mapping[str, Any] | None, policy: NetPolicy) -> Execution:
    """A stored :meth:`Execution.to_dict` back (jobs stored before it had roads only); it was
    checked against its process's outputs when stored, so any process's output is read."""
    if not data:
        return Execution(outputs=(OutputRequest("roads", GEOJSON),))
    return parse_execution(data, policy, ALL_OUTPUTS)


def stored_request(stored: Any, policy: NetPolicy) -> tuple[Any, Execution]:
    """A stored job's inputs and how it wants its results (older records: inputs only)."""
    if isinstance(stored, dict) and set(stored) == {"inputs", "execution"}:
        return stored["inputs"], execution_from_dict(stored["execution"], policy)
    return stored, execution_from_dict(None, policy)


# -- answers -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, headers and body."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class ResultFile:
    """One written output: its file and media type."""

    path: Path
    media_type: str


def output_url(base_url: str, job_id: str, output_id: str) -> str:
    return f"{base_url}/jobs/{job_id}/results/{output_id}"


def results_document(
    execution: Execution, files: Mapping[str, ResultFile], base_url: str, job_id: str
) -> dict[str, Any]:
    """The JSON results document (``response: document``, and success callbacks)."""
    document: dict[str, Any] = {}
    for out in execution.outputs:
        result = files[out.id]
        if out.reference:
            document[out.id] = _link(base_url, job_id, out.id, result.media_type)
        elif result.media_type in (GEOJSON, JSON):
            value = json.loads(result.path.read_text(encoding="utf-8"))
            # no "bbox" member here: with one, the value is also a bbox.yaml instance, and the
            # 1.0 results.yaml (a oneOf) then rejects the document (the file keeps it)
            value.pop("bbox", None)
            document[out.id] = {"value": value, "mediaType": result.media_type}
        else:
            text = base64.b64encode(result.path.read_bytes()).decode("ascii")
            document[out.id] = {
                "value": text,
                "mediaType": result.media_type,
                "encoding": "base64",
            }
    return document


def _link(base_url: str, job_id: str, output_id: str, media_type: str) -> dict[str, str]:
    return {
        "href": output_url(base_url, job_id, output_id),
        "rel": RESULTS_REL,
        "type": media_type,
        "title": output_id,
    }


def results_answer(
    execution: Execution, files: Mapping[str, ResultFile], base_url: str, job_id: str
) -> Answer:
    """The answer to a sync execution or to ``GET /jobs/{id}/results`` (see the module doc)."""
    missing = [o.id for o in execution.outputs if o.id not in files]
    if missing:
        raise FileNotFoundError(f"outputs not written: {', '.join(missing)}")
    if execution.response == "document":
        document = results_document(execution, files, base_url, job_id)
        body = json.dumps(document, separators=(",", ":")).encode()
        return Answer(200, {"Content-Type": "application/json"}, body)
    outputs = execution.outputs
    if all(o.reference for o in outputs):
        links = []
        for out in outputs:
            link = _link(base_url, job_id, out.id, files[out.id].media_type)
            links.append(
                f'<{link["href"]}>; rel="{RESULTS_REL}"; type="{link["type"]}"; title="{out.id}"'
            )
        return Answer(204, {"Link": ", ".join(links)}, b"")
    if len(outputs) == 1:
        result = files[outputs[0].id]
        return Answer(200, {"Content-Type": result.media_type}, result.path.read_bytes())
    return _multipart(execution, files, base_url, job_id)


def _multipart(
    execution: Execution, files: Mapping[str, ResultFile], base_url: str, job_id: str
) -> Answer:
    """``multipart/related`` (RFC 2387), one part per output, in the requested order."""
    # the same job answers with the same bytes (a digest, so no output can contain it by chance)
    boundary = "sanchari-" + hashlib.sha256(f"{job_id}:{execution}".encode()).hexdigest()[:32]
    chunks: list[bytes] = []
    for out in execution.outputs:
        result = files[out.id]
        if out.reference:  # an empty part; where the output is, in Content-Location
            url = output_url(base_url, job_id, out.id)
            head = f"Content-Type: {result.media_type}\r\nContent-Location: {url}"
            data = b""
        else:
            head = f"Content-Type: {result.media_type}"
            data = result.path.read_bytes()
        chunks.append(
            f"--{boundary}\r\n{head}\r\nContent-ID: <{out.id}>\r\n\r\n".encode() + data + b"\r\n"
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    media = f'multipart/related; boundary="{boundary}"; type="{execution.outputs[0].media_type}"'
    return Answer(200, {"Content-Type": media}, b"".join(chunks))
