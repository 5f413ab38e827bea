"""One road-extraction job as it runs in a worker process: get the imagery, run the engine.

A :class:`RoadJob` is everything a worker needs (picklable, so it can cross a process
boundary, or later a network one); :func:`run_road_job` turns it into result files in the
job's directory, reporting real progress from the engine as it goes. The imagery comes from the
job's source plan (:mod:`sanchari_processes.sources`), which writes or finds a raster the one
engine reads. The GeoJSON roads are always written (they are the job's ``location``); the other
requested outputs are written beside them and listed in ``results.json``.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sanchari_processes.inputs import RequestOptions
from sanchari_processes.results import ALL_OUTPUTS, GEOJSON, MANIFEST, OUTPUTS
from sanchari_processes.service.requests import ResultFile
from sanchari_processes.service.settings import EngineSettings
from sanchari_processes.sources.base import SourcePlan

LOGGER = logging.getLogger(__name__)

RESULT_NAME = "roads.geojson"
RESULT_MIMETYPE = GEOJSON
#: Shares of the job's progress: reading imagery, the model, vectorizing, writing.
_READ, _MODEL, _VECTOR = 0.05, 0.80, 0.13
#: The stages a job reports with its progress (shown as the job's status message).
READING, MODEL, VECTORIZING, WRITING = (
    "Reading imagery",
    "Running the model",
    "Vectorizing roads",
    "Writing results",
)
#: What a job writes when the request does not say: the roads as GeoJSON.
ROADS_ONLY = (("roads", GEOJSON),)

Progress = Callable[..., None]


@dataclass(frozen=True)
class RoadJob:
    """A planned job: the request's inputs and options, what to read, which model, where to
    write, and which outputs in which formats (output id, media type)."""

    job_id: str
    process_id: str
    parameters: dict[str, Any]
    options: RequestOptions
    plan: SourcePlan
    engine: EngineSettings
    job_dir: Path
    outputs: tuple[tuple[str, str], ...] = ROADS_ONLY
    #: Whether to write the imagery for the job's HTML map (jobs that are kept).
    backdrop: bool = False

    @property
    def result_path(self) -> Path:
        return self.job_dir / RESULT_NAME


def run_service_job(job: Any, progress: Progress) -> Path:
    """The executors' runner: a job of any process (an adaptation, or roads) to its result."""
    from sanchari_processes.service.adapt_job import AdaptJob, run_adapt_job
    from sanchari_processes.service.aoi_job import AoiJob, run_aoi_job

    if isinstance(job, AdaptJob):
        return run_adapt_job(job, progress)
    if isinstance(job, AoiJob):
        return run_aoi_job(job, progress)
    return run_road_job(job, progress)


def run_road_job(job: RoadJob, progress: Progress) -> Path:
    """Run the engine for ``job``; returns the GeoJSON path (scratch files are removed)."""
    from sanchari_processes.engine.cluster import worker_blocks
    from sanchari_processes.engine.run import run_source, several_blocks
    from sanchari_processes.results.files import write_json_atomic
    from sanchari_processes.sources import open_raster

    workdir = job.job_dir / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        imagery = job.plan.materialise(workdir, lambda f: progress(_READ * f, READING))
        progress(_READ, MODEL)
        options = job.engine.options(job.options)
        engine = _engine(job, options)
        threshold = engine.vectorize.threshold
        wanted = dict(job.outputs)
        files: dict[str, tuple[str, str]] = {}

        def keep(prob: Any) -> None:
            files.update(_write_rasters(wanted, prob, threshold, job.job_dir, workdir))

        with (
            open_raster(imagery.path, len(engine.metadata.bands)) as source,
            worker_blocks(options, several_blocks(source, engine.predictor)) as blocks,
        ):
            collection = run_source(
                source,
                engine.predictor,
                engine.vectorize,
                workdir,
                model_progress=lambda f: progress(_READ + _MODEL * f, MODEL),
                vector_progress=lambda f: progress(_READ + _MODEL + _VECTOR * f, VECTORIZING),
                keep=keep,
                blocks=blocks,
            )
            if "preview" in wanted:
                from sanchari_processes.results.preview import render_preview

                render_preview(
                    source, collection, job.job_dir / OUTPUTS["preview"].default.file_name
                )
                files["preview"] = (OUTPUTS["preview"].default.file_name, wanted["preview"])
            if job.backdrop:
                _write_backdrop(source, job.job_dir)
        progress(_READ + _MODEL + _VECTOR, WRITING)
        record = collection["sanchari"]
        record["source"]["name"] = imagery.name
        record.update(imagery.provenance)
        record["request"] = job.parameters
        record["job"] = {"id": job.job_id, "process": job.process_id}
        write_json_atomic(collection, job.result_path)
        files.update(_write_roads(wanted.get("roads"), collection, job.job_dir))
        write_json_atomic(
            {key: {"file": name, "mediaType": media} for key, (name, media) in files.items()},
            job.job_dir / MANIFEST,
        )
        progress(1.0, WRITING)
        return job.result_path
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _engine(job: RoadJob, options: Any) -> Any:
    """The job's engine; a model of the models folder deleted since the job was accepted is
    the request's mistake, named as such (not the server's missing weights)."""
    from sanchari_processes.engine.build import build_engine
    from sanchari_processes.errors import InvalidInputError, ModelMissingError

    try:
        return build_engine(options)
    except ModelMissingError:
        if "model" not in job.parameters:
            raise
        raise InvalidInputError(
            f"input 'model': model {job.parameters['model']!r} is no longer in the models "
            "folder (it was deleted after the job was accepted)"
        ) from None


def _write_backdrop(source: Any, job_dir: Path) -> None:
    """The imagery of the job's HTML map; a job never fails for want of its picture."""
    from sanchari_processes.results.backdrop import write_backdrop

    try:
        write_backdrop(source, job_dir)
    except Exception:  # the map falls back to the preview, or the roads alone
        LOGGER.warning("no map imagery for job %s", job_dir.name, exc_info=True)


def _write_rasters(
    wanted: dict[str, str], prob: Any, threshold: float, job_dir: Path, workdir: Path
) -> dict[str, tuple[str, str]]:
    """The mask and probability COGs, when asked for (while the probability map exists)."""
    from sanchari_processes.results.cog import write_mask_cog, write_probability_cog

    written = {}
    if "mask" in wanted:
        name = OUTPUTS["mask"].default.file_name
        write_mask_cog(prob, job_dir / name, threshold, workdir)
        written["mask"] = (name, wanted["mask"])
    if "probability" in wanted:
        name = OUTPUTS["probability"].default.file_name
        write_probability_cog(prob, job_dir / name, workdir)
        written["probability"] = (name, wanted["probability"])
    return written


def _write_roads(
    media_type: str | None, collection: dict[str, Any], job_dir: Path
) -> dict[str, tuple[str, str]]:
    """The roads in the requested format (GeoJSON is already written)."""
    if media_type is None:
        return {}
    fmt = OUTPUTS["roads"].format_for(media_type)
    if fmt.media_type != GEOJSON:
        from sanchari_processes.results.vector import write_lines

        write_lines(collection, job_dir / fmt.file_name)
    return {"roads": (fmt.file_name, fmt.media_type)}


def read_manifest(location: Path) -> dict[str, dict[str, str]]:
    """A finished job's files by output id (a job without a manifest has GeoJSON roads)."""
    path = Path(location).parent / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"roads": {"file": Path(location).name, "mediaType": RESULT_MIMETYPE}}


def result_files(location: Path) -> dict[str, ResultFile]:
    """A successful job's output files by output id (``location``: its main result file)."""
    location = Path(location).absolute()  # a relative jobs folder is the CWD's
    return {
        key: ResultFile(location.parent / entry["file"], entry["mediaType"])
        for key, entry in read_manifest(location).items()
        if key in ALL_OUTPUTS and "/" not in entry["file"]
    }
