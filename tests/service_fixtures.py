"""Fixtures for the web-service tests (import them into a test module to use them).

Rasters are tiny (128-256 px) and the model runs with 64 px patches, so a real job takes well
under a second once a worker has loaded the model; the shared app keeps two warm workers.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import http.server
import io
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from affine import Affine
from flask import Flask
from flask.testing import FlaskClient
from pyproj import Transformer

from sanchari_processes.service.app import create_app
from sanchari_processes.service.executors.base import JobFailure
from sanchari_processes.service.settings import load_config
from sanchari_processes.settings import DEFAULT_CONFIG
from tests.synthetic import road_image, write_geotiff

#: The UTM test scene: 256 x 256 px at 0.5 m, top-left corner (500000, 4649776) in EPSG:32633.
UTM_ORIGIN = (500000.0, 4649776.0)
#: The EPSG:4326 test scene: 256 x 256 px of 5e-6 degrees, over Paris.
GEO_ORIGIN = (2.35, 48.86)
GEO_RES = 5e-6


def utm_point(col: float, row: float) -> tuple[float, float]:
    """(longitude, latitude) of a pixel of the UTM scene."""
    x, y = UTM_ORIGIN[0] + col * 0.5, UTM_ORIGIN[1] - row * 0.5
    return Transformer.from_crs(32633, 4326, always_xy=True).transform(x, y)


def geo_point(col: float, row: float) -> tuple[float, float]:
    return GEO_ORIGIN[0] + col * GEO_RES, GEO_ORIGIN[1] - row * GEO_RES


#: A few seconds' adaptation of the tiny model: 3 fine-tuning steps of two 64 px crops per fold.
FAST_ADAPTATION = {"steps": 3, "crop": 64, "batch": 2, "block_m": 32.0}


def make_catalogue(root: Path) -> Path:
    """A catalogue with one UTM scene and one EPSG:4326 scene."""
    root.mkdir(parents=True, exist_ok=True)
    write_geotiff(root / "utm.tif", road_image(256, 256))
    geo = Affine(GEO_RES, 0, GEO_ORIGIN[0], 0, -GEO_RES, GEO_ORIGIN[1])
    write_geotiff(root / "paris.tif", road_image(256, 256, seed=1), crs="EPSG:4326", transform=geo)
    return root


def service_config(
    catalogue: Path,
    jobs: Path,
    weights: Path,
    *,
    workers: int = 2,
    queue_size: int = 8,
    gee: dict | None = None,
    adapt: dict | None = None,
    **proc: Any,
) -> dict:
    """The repository's pygeoapi config, pointed at test folders, with tiny patches.

    Earth Engine has no credentials unless ``gee`` gives some (whatever the environment says).
    Models go to ``JOBS-models`` beside the jobs folder; adaptations are tiny
    (:data:`FAST_ADAPTATION`, updated with ``adapt``).
    """
    config = copy.deepcopy(load_config(DEFAULT_CONFIG))
    config["server"]["manager"].update(
        output_dir=str(jobs),
        connection=str(jobs / "jobs.sqlite3"),
        workers=workers,
        queue_size=queue_size,
        threads_per_worker=1,
        retry_after_s=7,
    )
    engine = {
        "weights": str(weights),
        "device": "cpu",
        "default_window_size": 128,
        "max_pixels": 256 * 256,
        "inference": {
            "patch_size": 64,
            "stride": 32,
            "batch_size": 8,
            "tta": "none",
            "stream_window": 128,
        },
    }
    models = jobs.with_name(f"{jobs.name}-models")
    processor = config["resources"]["road-extraction"]["processor"]
    processor.update(geotiff_dir=str(catalogue), models_dir=str(models), **copy.deepcopy(engine))
    processor.update(proc)
    adaptation = config["resources"]["road-model-adaptation"]["processor"]
    adaptation.update(geotiff_dir=str(catalogue), models_dir=str(models), **copy.deepcopy(engine))
    adaptation["adaptation"] = {**FAST_ADAPTATION, **(adapt or {})}
    adaptation.update(proc)
    gee_processor = config["resources"]["road-extraction-gee"]["processor"]
    gee_processor.update(models_dir=str(models), **copy.deepcopy(engine))
    gee_processor["gee"] = {
        "project": "",
        "service_account_key": "",
        "application_credentials": "",
        "user_credentials": str(jobs / "no-earthengine-credentials"),
        "api_url": "",
        "tile_px": 64,
        **(gee or {}),
    }
    return config


def slow_runner(job: Any, progress: Callable[[float], None]) -> Path:
    """A stand-in for the engine: 20 progress steps of 0.1 s, then an empty FeatureCollection."""
    for step in range(20):
        progress(step / 20)
        time.sleep(0.1)
    job.job_dir.mkdir(parents=True, exist_ok=True)
    path = job.job_dir / "roads.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    return path


def crashing_runner(job: Any, progress: Callable[[float], None]) -> Path:
    """A runner with a bug (its text must not reach the caller)."""
    raise KeyError("/secret/path/internal detail")


def wait_for_job(
    client: FlaskClient, job_id: str, timeout: float = 60.0, until: tuple[str, ...] = ()
) -> dict:
    """Poll ``/jobs/{id}`` until the job is final (or in one of ``until``)."""
    final = until or ("successful", "failed", "dismissed")
    deadline = time.monotonic() + timeout
    while True:
        status = client.get(f"/jobs/{job_id}").get_json()
        if status["status"] in final or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


@pytest.fixture(scope="session")
def catalogue_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_catalogue(tmp_path_factory.mktemp("catalogue"))


@pytest.fixture(scope="session")
def service_app(
    tmp_path_factory: pytest.TempPathFactory, catalogue_dir: Path, tiny_checkpoint: Path
) -> Iterator[Flask]:
    """One app with two warm workers, shared by the endpoint tests."""
    jobs = tmp_path_factory.mktemp("jobs")
    # The COG server of these tests listens on 127.0.0.1, which the default refuses.
    app = create_app(service_config(catalogue_dir, jobs, tiny_checkpoint, remote_allow="127.0.0.1"))
    yield app
    app.extensions["sanchari.manager"].shutdown()


@pytest.fixture()
def client(service_app: Flask) -> FlaskClient:
    return service_app.test_client()


def dying_runner(job: Any, progress: Callable[[float], None]) -> Path:
    """A worker that dies mid-job (as on an out-of-memory kill)."""

    progress(0.5)
    os._exit(9)


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single-range ``Range`` support, as /vsicurl/ expects of a COG host."""

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if not match or not path.is_file():
            return super().send_head()
        data = path.read_bytes()
        start = int(match.group(1))
        end = min(int(match.group(2) or len(data) - 1), len(data) - 1)
        self.send_response(206)
        self.send_header("Content-Type", "image/tiff")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        return io.BytesIO(data[start : end + 1])


@contextlib.contextmanager
def static_server(folder: Path) -> Iterator[str]:
    """An http server on 127.0.0.1 serving ``folder`` with range requests; yields its URL."""
    handler = functools.partial(_RangeHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def cog_server(catalogue_dir: Path) -> Iterator[str]:
    """An http server on 127.0.0.1 serving the catalogue folder with range requests."""
    with static_server(catalogue_dir) as url:
        yield url


class CallbackReceiver:
    """An http server on 127.0.0.1 that records the JSON POSTed to it, by path."""

    def __init__(self, status: int = 200) -> None:
        self.received: list[tuple[str, Any]] = []
        self.status = status
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.received.append((self.path, json.loads(body or b"null")))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self, path: str) -> list[Any]:
        return [body for where, body in list(self.received) if where == path]

    def wait_for(self, path: str, timeout: float = 60.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while not self.bodies(path) and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.bodies(path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def very_slow_runner(job: Any, progress: Callable[[float], None]) -> Path:
    """A job that takes a minute (for time limits and disconnects)."""
    for step in range(600):
        progress(step / 600)
        time.sleep(0.1)
    return slow_runner(job, progress)


def ticking_runner(job: Any, progress: Callable[..., None]) -> Path:
    """A 4 s job in stages that counts its steps in ``JOB_DIR.ticks`` and its runs in
    ``JOB_DIR.runs``, beside its folder (dismissing a job removes its folder, not these)."""
    job.job_dir.mkdir(parents=True, exist_ok=True)
    ticks = job.job_dir.with_name(f"{job.job_dir.name}.ticks")
    with job.job_dir.with_name(f"{job.job_dir.name}.runs").open("a") as runs:
        runs.write("run\n")
    for step in range(40):
        progress(step / 40, "Counting" if step < 20 else "Counting again")
        ticks.write_text(str(step + 1))
        time.sleep(0.1)
    return slow_runner(job, lambda *_: None)


def late_road_runner(job: Any, progress: Callable[..., None]) -> Path:
    """The service's real runner after 3 s of waiting in steps (a window to disturb the job
    in); counts its runs in ``JOB_DIR.runs`` beside the job's folder."""
    from sanchari_processes.service.jobs import run_service_job

    job.job_dir.mkdir(parents=True, exist_ok=True)
    with job.job_dir.with_name(f"{job.job_dir.name}.runs").open("a") as runs:
        runs.write("run\n")
    for step in range(30):
        progress(step / 1000, "Counting")
        time.sleep(0.1)
    return run_service_job(job, progress)


@dataclass(frozen=True)
class FakeJob:
    """What a job executor needs of a job: its id and work folder."""

    job_id: str
    job_dir: Path


class Recorder:
    """Collects a job executor's events: ``(kind, job_id, value)``; progress values are
    ``(fraction, stage)``."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, Any]] = []
        self.done = threading.Event()

    def job_started(self, job_id: str) -> None:
        self.events.append(("started", job_id, None))

    def job_progress(self, job_id: str, fraction: float, stage: str | None = None) -> None:
        self.events.append(("progress", job_id, (fraction, stage)))

    def job_succeeded(self, job_id: str, location: Path) -> None:
        self.events.append(("succeeded", job_id, location))
        self.done.set()

    def job_failed(self, job_id: str, failure: JobFailure) -> None:
        self.events.append(("failed", job_id, failure))
        self.done.set()

    def job_waiting(self, job_id: str, message: str) -> None:
        self.events.append(("waiting", job_id, message))

    def job_lost(self, job_id: str, attempts: int) -> None:
        self.events.append(("lost", job_id, attempts))
        self.done.set()

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.events if kind != "progress"]

    def wait_started(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while "started" not in self.kinds():
            assert time.monotonic() < deadline, self.events
            time.sleep(0.05)
