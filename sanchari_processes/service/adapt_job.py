"""One model-adaptation job as it runs on a worker: get the imagery, adapt, publish the model.

An :class:`AdaptJob` is everything a worker needs (picklable, like a road job: it goes to a
local worker process or a Dask worker). :func:`run_adapt_job` materialises the imagery into the
job's folder as a road job does, runs :func:`sanchari_processes.adapt.run.adapt` into a staging
folder inside the models folder with the job's progress, renames the whole model into place,
and writes the job's one output, ``model`` (the model's record, JSON).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sanchari_processes.adapt.config import AdaptConfig
from sanchari_processes.results import JSON, MANIFEST, MODEL_OUTPUTS
from sanchari_processes.service.adapt_inputs import Shapes
from sanchari_processes.service.models import CARD, ModelStore, jsonable
from sanchari_processes.service.settings import EngineSettings
from sanchari_processes.sources.base import SourcePlan
from sanchari_processes.sources.remote import RemoteSettings

#: The job's one output, as the execute request's ``outputs`` name it.
MODEL_ONLY = (("model", JSON),)
RESULT_NAME = MODEL_OUTPUTS["model"].default.file_name
#: Share of the job's progress spent reading the imagery; the adaptation has the rest.
_READ = 0.05
READING = "Reading imagery"


@dataclass(frozen=True)
class AdaptJob:
    """A planned adaptation: imagery plan, the user's roads (and area), the base model's
    weights, the adaptation's config, the id the model gets, and where it goes."""

    job_id: str
    process_id: str
    parameters: dict[str, Any]
    plan: SourcePlan
    job_dir: Path
    models_dir: Path
    model_id: str
    weights: Path
    config: AdaptConfig
    engine: EngineSettings
    remote: RemoteSettings
    #: ``None`` until fetched from ``roads_href`` (planning reads it off the web threads).
    roads: Shapes | None = None
    roads_href: str | None = None
    area: Shapes | None = None
    area_href: str | None = None
    outputs: tuple[tuple[str, str], ...] = MODEL_ONLY

    @property
    def needs_network(self) -> bool:
        return (
            self.plan.needs_network
            or self.roads is None
            or (self.area_href is not None and self.area is None)
        )

    @property
    def result_path(self) -> Path:
        return self.job_dir / RESULT_NAME


def run_adapt_job(job: AdaptJob, progress: Any) -> Path:
    """Adapt, publish the model in the models folder, write ``model.json``; its path."""
    from sanchari_processes.adapt.labels import Roads
    from sanchari_processes.adapt.run import adapt
    from sanchari_processes.results.files import write_json_atomic

    if job.roads is None:  # planning fetches them; a job is never queued without
        raise RuntimeError("adaptation job without its roads")
    workdir = job.job_dir / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    store = ModelStore(job.models_dir)
    staging: Path | None = None
    try:
        imagery = job.plan.materialise(workdir, lambda f: progress(_READ * f, READING))
        progress(_READ, "Labelling your roads")
        staging = store.staging(job.job_id)

        def tell(fraction: float, stage: str) -> None:
            progress(_READ + (0.99 - _READ) * fraction, stage[:1].upper() + stage[1:])

        adapted = adapt(
            [imagery.path],
            Roads(lines=job.roads.geoms, crs=job.roads.crs),
            staging,
            weights=job.weights,
            config=job.config,
            area=None if job.area is None else (job.area.geoms, job.area.crs),
            name=job.model_id,
            progress=tell,
            inference=job.engine.inference,
            cache_dir=job.engine.cache_dir,
        )
        folder = store.publish(staging, adapted.model_id)
        staging = None
        record = model_record(adapted.model_id, adapted.report, folder)
        record["imagery"] = {"name": imagery.name, **imagery.provenance}
        write_json_atomic(jsonable(record), job.result_path)
        write_json_atomic(
            {"model": {"file": RESULT_NAME, "mediaType": JSON}}, job.job_dir / MANIFEST
        )
        progress(1.0, "Model written")
        return job.result_path
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def model_record(model_id: str, report: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The ``model`` output: id, parent id, verdict, threshold, the report and the card."""
    try:
        card = (folder / CARD).read_text(encoding="utf-8")
    except OSError:
        card = ""
    return {
        "id": model_id,
        "parent": report["parent"]["model_id"],
        "verdict": report["verdict"],
        "threshold": report["threshold"],
        "report": report,
        "card": card,
    }
