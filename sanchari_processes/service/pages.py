"""A job's HTML page (``/jobs/{id}`` and ``/jobs/{id}/results`` asked for as HTML): its status
and, once it succeeded, its roads on a map over the imagery, with a legend and a download link
for every output.

The page stands alone: its map is Leaflet, served by this service from the package's static
files (:data:`blueprint`, ``/static/sanchari/…``), never from a CDN, so it works offline. The
roads (the job's GeoJSON) and the imagery come inside the page: the picture the job made for
its map (:mod:`sanchari_processes.results.backdrop`, on the map's own grid), else the job's
``preview`` placed by the imagery's bounds, else the roads alone on a plain ground. A page of a
job still queued or running reloads itself every few seconds.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from flask import Blueprint
from jinja2 import Environment, PackageLoader, select_autoescape

from sanchari_processes.results import OUTPUTS
from sanchari_processes.results.backdrop import BACKDROP_IMAGE, BACKDROP_INFO
from sanchari_processes.service.jobs import result_files
from sanchari_processes.service.requests import output_url
from sanchari_processes.service.status import job_document
from sanchari_processes.service.store import LIVE

#: The package's static files (Leaflet, the page's script and style) at ``/static/sanchari``.
blueprint = Blueprint(
    "sanchari_static", __name__, static_folder="static", static_url_path="/static/sanchari"
)
_TEMPLATES = Environment(
    loader=PackageLoader("sanchari_processes.service", "templates"),
    autoescape=select_autoescape(["html"]),
)
#: Seconds between reloads of the page of a job still queued or running.
REFRESH_S = 3


def job_page(base_url: str, record: dict[str, Any]) -> str:
    """The HTML page of the job ``record`` (a store record)."""
    doc = job_document(base_url, record)
    job_url = f"{base_url}/jobs/{doc['jobID']}"
    context: dict[str, Any] = {
        "job": doc,
        "static": f"{base_url}/static/sanchari",
        "base_url": base_url,
        "job_url": job_url,
        "refresh": REFRESH_S if doc["status"] in LIVE else None,
        "parameters": json.dumps(doc.get("parameters"), indent=2, ensure_ascii=False),
        "error": record.get("error") if doc["status"] == "failed" else None,
        "outputs": [],
        "map": None,
    }
    location = record.get("location")
    if doc["status"] == "successful" and location:
        files = result_files(Path(location))
        context["outputs"] = _outputs(base_url, doc["jobID"], files)
        context["map"] = _map_data(Path(location), files, base_url, doc["jobID"])
    return _TEMPLATES.get_template("job.html").render(**context)


def _outputs(base_url: str, job_id: str, files: dict) -> list[dict[str, Any]]:
    """Every output the job wrote: title, media type, size and its URL."""
    found = []
    for key, result in files.items():
        try:
            size = result.path.stat().st_size
        except OSError:
            continue
        found.append(
            {
                "id": key,
                "title": OUTPUTS[key].title,
                "media_type": result.media_type,
                "size": _size(size),
                "href": output_url(base_url, job_id, key),
                "file": result.path.name,
            }
        )
    return found


def _size(size: int) -> str:
    for unit in ("bytes", "kB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return str(size)


def _map_data(location: Path, files: dict, base_url: str, job_id: str) -> dict[str, Any]:
    """What the map draws: the roads and the imagery under them (``None`` when unknown)."""
    try:
        collection = json.loads(location.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        collection = {"type": "FeatureCollection", "features": []}
    provenance = collection.pop("sanchari", None) or {}
    folder = location.parent
    imagery = None
    try:
        info = json.loads((folder / BACKDROP_INFO).read_text(encoding="utf-8"))
        picture = base64.b64encode((folder / BACKDROP_IMAGE).read_bytes()).decode("ascii")
        imagery = {"url": f"data:image/png;base64,{picture}", "bounds": info["bounds"]}
        imagery["title"] = "Imagery"
    except (OSError, ValueError, KeyError):
        bounds = (provenance.get("window") or {}).get("bounds_wgs84")
        if "preview" in files and bounds and len(bounds) == 4:
            west, south, east, north = bounds
            imagery = {
                "url": output_url(base_url, job_id, "preview"),
                "bounds": [[south, west], [north, east]],
                "title": "Preview (imagery with the roads drawn in)",
            }
    length_m = sum(
        float((f.get("properties") or {}).get("length_m") or 0)
        for f in collection.get("features", [])
    )
    return {
        "roads": collection,
        "imagery": imagery,
        "segments": len(collection.get("features", [])),
        "length_km": round(length_m / 1000, 2),
        "model": (provenance.get("model") or {}).get("id"),
    }


def script_json(data: Any) -> str:
    """JSON safe inside a ``<script>`` element (``<``, ``>`` and ``&`` as JSON escapes)."""
    text = json.dumps(data, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_TEMPLATES.filters["script_json"] = script_json
