"""One road-extraction job as it runs in a worker process: get the imagery, run the engine.

A :class:`RoadJob` is everything a worker needs (picklable, so it can cross a process
boundary, or later a network one); :func:`run_road_job` turns it into a GeoJSON file in the
job's directory, reporting real progress from the engine as it goes. The imagery is a window of
the catalogue, a remote GeoTIFF, or an Earth Engine chip; each becomes a local GeoTIFF that the
one engine reads.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sanchari_processes.build import build_engine
from sanchari_processes.service.config import EngineSettings
from sanchari_processes.service.inputs import GeeRoadRequest, RoadRequest
from sanchari_processes.sources.catalogue import WindowPlan, materialise
from sanchari_processes.sources.gee import EarthEngineClient, GeePlan, connect, fetch_gee
from sanchari_processes.sources.remote import (
    RemoteHref,
    RemoteRaster,
    RemoteSettings,
    fetch_remote,
)

RESULT_NAME = "roads.geojson"
RESULT_MIMETYPE = "application/geo+json"
#: Shares of the job's progress: reading imagery, the model, vectorizing, writing.
_READ, _MODEL, _VECTOR = 0.05, 0.80, 0.13

Progress = Callable[[float], None]


@dataclass(frozen=True)
class RoadJob:
    """A planned job: validated request, what to read, which model, where to write."""

    job_id: str
    process_id: str
    request: RoadRequest | GeeRoadRequest
    plan: WindowPlan | RemoteHref | RemoteRaster | GeePlan
    engine: EngineSettings
    job_dir: Path
    catalogue_root: Path | None = None
    remote: RemoteSettings | None = None

    @property
    def result_path(self) -> Path:
        return self.job_dir / RESULT_NAME


def run_road_job(
    job: RoadJob, progress: Progress, *, gee_client: EarthEngineClient | None = None
) -> Path:
    """Run the engine for ``job``; returns the GeoJSON path (scratch files are removed).

    ``gee_client`` replaces the Earth Engine connection (tests pass a fake).
    """
    from sanchari_processes.engine import run_source
    from sanchari_processes.output import write_json_atomic
    from sanchari_processes.sources import open_raster

    workdir = job.job_dir / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        raster, name, extra = _imagery(job, workdir, gee_client, lambda f: progress(_READ * f))
        progress(_READ)
        engine = build_engine(job.engine.options(job.request))
        with open_raster(raster, len(engine.metadata.bands)) as source:
            collection = run_source(
                source,
                engine.predictor,
                engine.vectorize,
                workdir,
                model_progress=lambda f: progress(_READ + _MODEL * f),
                vector_progress=lambda f: progress(_READ + _MODEL + _VECTOR * f),
            )
        record = collection["sanchari"]
        record["source"]["name"] = name
        record.update(extra)
        record["request"] = job.request.to_dict()
        record["job"] = {"id": job.job_id, "process": job.process_id}
        write_json_atomic(collection, job.result_path)
        progress(1.0)
        return job.result_path
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _imagery(
    job: RoadJob, workdir: Path, gee_client: EarthEngineClient | None, progress: Progress
) -> tuple[Path, str, dict[str, Any]]:
    """The job's imagery as a local GeoTIFF, its name and its provenance members."""
    plan = job.plan
    if isinstance(plan, GeePlan):
        fetched = fetch_gee(plan, gee_client or connect(plan.settings), workdir, progress)
        return fetched.path, plan.collection, {"window": fetched.window, "imagery": fetched.imagery}
    if isinstance(plan, RemoteRaster):
        raster = fetch_remote(plan, workdir, job.remote or RemoteSettings())
        return raster, plan.href, {"window": plan.describe()}
    window = plan.describe(job.catalogue_root)
    return materialise(plan, workdir), ", ".join(window["files"]), {"window": window}
