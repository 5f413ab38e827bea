"""A small OGC API - Processes client on the standard library (QGIS's Python has no extras).

One job: POST the execute request asynchronously, poll ``/jobs/{id}`` (progress 0-100 to a
callback), DELETE it when the user cancels, then download the outputs by reference (roads) or
read them by value (an adapted model's record).
"""

import json
import time
import urllib.error
import urllib.request

PROCESS = "road-extraction"
ADAPT_PROCESS = "road-model-adaptation"
COG = "image/tiff; application=geotiff; profile=cloud-optimized"
GPKG = "application/geopackage+sqlite3"


class ServiceError(Exception):
    """The server refused or failed the job; the message is the server's description."""


class Cancelled(Exception):
    """The user cancelled; the job was dismissed on the server."""


def _call(method, url, body=None, timeout=60):
    data = None if body is None else json.dumps(body).encode("utf-8")
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
        headers["Prefer"] = "respond-async"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            message = json.loads(raw.decode("utf-8")).get("description") or raw[:300]
        except (ValueError, AttributeError):
            message = raw[:300]
        raise ServiceError(f"HTTP {exc.code}: {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ServiceError(f"cannot reach the SANCHARi server at {url}: {exc}") from None


def execution_body(inputs, mask=False, probability=False):
    """The execute request: roads as GeoPackage by reference, the COGs when asked."""
    outputs = {"roads": {"transmissionMode": "reference", "format": {"mediaType": GPKG}}}
    if mask:
        outputs["mask"] = {"transmissionMode": "reference"}
    if probability:
        outputs["probability"] = {"transmissionMode": "reference"}
    return {"inputs": inputs, "outputs": outputs, "response": "document"}


def run_job(server, body, progress, cancelled, poll_s=0.5, timeout_s=3600, process=PROCESS):
    """Run one job; returns ``(job_url, {output id: href})``.

    ``progress(percent, message)`` is called as the job runs; when ``cancelled()`` turns true
    the job is dismissed (DELETE) and :class:`Cancelled` raised.
    """
    job_url, results = run_to_results(server, body, progress, cancelled, poll_s, timeout_s, process)
    return job_url, {key: value["href"] for key, value in results.items() if "href" in value}


def run_adaptation(server, inputs, progress, cancelled, poll_s=0.5, timeout_s=3 * 3600):
    """Adapt the server's model (road-model-adaptation); returns ``(job_url, model record)``:
    the record has the model's ``id``, ``parent``, ``verdict``, ``threshold`` and ``card``."""
    body = {"inputs": inputs, "outputs": {"model": {}}, "response": "document"}
    job_url, results = run_to_results(
        server, body, progress, cancelled, poll_s, timeout_s, ADAPT_PROCESS
    )
    return job_url, results["model"]["value"]


def run_to_results(server, body, progress, cancelled, poll_s, timeout_s, process):
    """Run one job of ``process`` to its results document (``response: document``)."""
    server = server.rstrip("/")
    _status, raw = _call("POST", f"{server}/processes/{process}/execution", body)
    job = json.loads(raw.decode("utf-8"))
    job_url = f"{server}/jobs/{job['jobID']}"
    deadline = time.monotonic() + timeout_s
    while job["status"] in ("accepted", "running"):
        if cancelled():
            _call("DELETE", job_url)
            raise Cancelled(f"job {job['jobID']} dismissed")
        if time.monotonic() > deadline:
            _call("DELETE", job_url)
            raise ServiceError(f"job {job['jobID']} took longer than {timeout_s} s")
        time.sleep(poll_s)
        job = json.loads(_call("GET", job_url)[1].decode("utf-8"))
        progress(int(job.get("progress") or 0), job.get("message") or "")
    if job["status"] != "successful":
        raise ServiceError(f"job {job['status']}: {job.get('message')}")
    return job_url, json.loads(_call("GET", f"{job_url}/results")[1].decode("utf-8"))


def download(url, path, timeout=300):
    """Save ``url`` to ``path`` (streamed)."""
    request = urllib.request.Request(url)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(path, "wb") as out:
            while True:
                chunk = response.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        raise ServiceError(f"cannot download {url}: {exc}") from None
    return path
