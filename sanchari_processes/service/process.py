"""The pygeoapi processors: describe the processes, validate and plan jobs.

A processor is a list of imagery sources (:mod:`sanchari_processes.sources.registry`, named in
its ``pygeoapi-config.yml`` block) plus the engine options. ``road-extraction`` reads the
GeoTIFF catalogue, a STAC Item or a GeoTIFF/COG by reference; ``road-extraction-gee`` reads
Google Earth Engine. Both plan a :class:`RoadJob` for the same workers and engine, with the
same outputs (:data:`sanchari_processes.results.OUTPUTS`).

Validation and planning (which source, which files or grid, how many pixels) happen here, in
the web process and before any job exists, so a bad request is a 4xx at once rather than a
failed job later. The engine itself runs in the manager's worker processes
(:mod:`sanchari_processes.service.manager`); :meth:`SanchariProcessor.execute` runs it
in-process only when the processor is used under a stock pygeoapi manager.
"""

from __future__ import annotations

import copy
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from http import HTTPStatus
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError

from sanchari_processes import __version__
from sanchari_processes.errors import InternalError, InvalidInputError, SanchariError
from sanchari_processes.inputs import (
    InputSpec,
    RequestOptions,
    engine_inputs,
    make_validator,
    validate,
)
from sanchari_processes.results import OUTPUTS, OutputKind
from sanchari_processes.service.aoi_job import AOI_INPUT, IMAGERY_INPUT, AoiJob, plan_aoi_job
from sanchari_processes.service.jobs import ROADS_ONLY, RoadJob
from sanchari_processes.service.models import MODEL_ID_PATTERN, ModelStore, check_model_id
from sanchari_processes.service.settings import ProcessSettings
from sanchari_processes.sources.catalogue import CatalogueSource
from sanchari_processes.sources.gee import NAIP
from sanchari_processes.sources.registry import build_sources, choose, source_inputs
from sanchari_processes.sources.upload import recorded

LOGGER = logging.getLogger(__name__)
#: A planned job of a road process: one raster, or an area of interest in blocks.
Job = TypeVar("Job", RoadJob, AoiJob)

PROCESS_ID = "road-extraction"
GEE_PROCESS_ID = "road-extraction-gee"
OUTPUT_ID = "roads"
#: The ``model`` input of a road process with a models folder.
MODEL_INPUT = InputSpec(
    "Model",
    "Id of a model of the server's models folder (an adapted model: road-model-adaptation "
    "makes them, GET /models lists them). Default: the server's model.",
    {"type": "string", "pattern": MODEL_ID_PATTERN},
    accepts={"type": "string"},
)


class SanchariProcessorError(ProcessorExecuteError):
    """A :class:`SanchariError` as pygeoapi's error type, keeping its HTTP status and code."""

    def __init__(self, error: SanchariError) -> None:
        super().__init__(user_msg=error.message)
        self.http_status_code = HTTPStatus(error.http_status)
        self.ogc_exception_code = error.ogc_code


class SanchariProcessor(BaseProcessor):
    """A process over some imagery sources (state: the sources, e.g. the catalogue index).

    Planning has two steps: :meth:`prepare` (no network: safe on a web thread) and, when
    :meth:`needs_network` says so, :meth:`complete` (reads remote headers: run it elsewhere).
    """

    process_id: ClassVar[str]
    title: ClassVar[str]
    summary: ClassVar[str]
    keywords: ClassVar[list[str]]
    example: ClassVar[dict[str, Any]]
    default_sources: ClassVar[tuple[str, ...]]
    #: The process's outputs (the execute request's ``outputs`` are checked against them).
    outputs: ClassVar[Mapping[str, OutputKind]] = OUTPUTS
    job_control: ClassVar[tuple[str, ...]] = ("sync-execute", "async-execute", "dismiss")

    def __init__(self, processor_def: dict) -> None:
        self.settings = self.read_settings(processor_def)
        self.sources = build_sources(self.settings.sources, self.settings.source_settings())
        #: The models folder, when configured (a ``model`` input picks one of its models).
        self.models = ModelStore(self.settings.models_dir) if self.settings.models_dir else None
        self.inputs = self.process_inputs()
        self.validator = make_validator(self.inputs)
        #: Planning threads that may use the network at once (the cap on remote header reads).
        self.network_slots = self.settings.remote.concurrency
        super().__init__(processor_def, copy.deepcopy(self.describe()))

    def read_settings(self, processor_def: dict) -> ProcessSettings:
        """The processor block of ``pygeoapi-config.yml``, parsed."""
        return ProcessSettings.from_mapping(processor_def, self.default_sources)

    def process_inputs(self) -> dict[str, InputSpec]:
        """The imagery sources' inputs, ``aoi`` with a catalogue or STAC (and ``imagery`` with
        STAC), the engine options and, with a models folder, ``model``."""
        inputs = {**source_inputs(self.sources), **engine_inputs()}
        names = {s.name for s in self.sources}
        if names & {"catalogue", "stac"}:
            inputs["aoi"] = AOI_INPUT
        if "stac" in names:
            inputs["imagery"] = IMAGERY_INPUT
        if self.models is not None:
            inputs["model"] = MODEL_INPUT
        return inputs

    @property
    def async_only(self) -> bool:
        return "sync-execute" not in self.job_control

    def describe(self) -> dict[str, Any]:
        """The OGC process description (pygeoapi adds links and job control options)."""
        return {
            "version": __version__,
            "id": self.process_id,
            "title": self.title,
            "description": self.summary,
            "jobControlOptions": list(self.job_control),
            "outputTransmission": ["value", "reference"],
            "keywords": ["roads", "centrelines", "GeoJSON", *self.keywords],
            "links": [],
            "inputs": {name: spec.describe() for name, spec in self.inputs.items()},
            "outputs": {key: kind.describe() for key, kind in self.outputs.items()},
            "example": {"inputs": self.example, "outputs": {next(iter(self.outputs)): {}}},
        }

    def model_weights(self, model_id: Any, what: str = "model") -> Path:
        """The folder of model ``model_id`` of the models folder (400 when unknown)."""
        check_model_id(model_id, f"input '{what}'")
        found = self.models.find(model_id) if self.models is not None else None
        if found is None:
            raise InvalidInputError(
                f"input '{what}': no model {model_id!r} in the models folder (GET /models "
                "lists them)"
            )
        return found

    @property
    def validation_schema(self) -> dict[str, Any]:
        """The JSON schema an execute request's ``inputs`` must meet."""
        return self.validator.schema  # type: ignore[return-value]

    def prepare(
        self,
        inputs: Any,
        job_id: str,
        job_dir: Path,
        outputs: tuple[tuple[str, str], ...] = ROADS_ONLY,
    ) -> RoadJob | AoiJob:
        """Validate ``inputs`` and plan the job (raises 400/404/413/503 :class:`SanchariError`).

        A remote ``image`` is only checked for form here; :meth:`complete` reads its header.
        An image sent in the request is decoded, checked and written into ``job_dir``.
        """
        inputs = validate(inputs, self.validator)
        engine = self.settings.engine
        if "model" in inputs:
            engine = replace(engine, weights=self.model_weights(inputs["model"]))
        # what every job records, whichever kind it is
        common: dict[str, Any] = {
            "job_id": job_id,
            "process_id": self.process_id,
            "parameters": copy.deepcopy(recorded(inputs)),
            "options": RequestOptions.parse(inputs),
            "engine": engine,
            "job_dir": job_dir,
        }
        if "aoi" in inputs:
            return self._prepare_aoi(inputs, outputs, common)
        if "imagery" in inputs:
            raise InvalidInputError("input 'imagery' applies with 'aoi' only")
        source = choose(self.sources, inputs)
        plan = source.plan(inputs)
        stage = getattr(plan, "stage", None)
        if stage is not None:  # data sent in the request: into the job's folder
            plan = stage(job_dir)
        return RoadJob(plan=plan, outputs=outputs, **common)

    def _prepare_aoi(
        self,
        inputs: dict[str, Any],
        outputs: tuple[tuple[str, str], ...],
        common: dict[str, Any],
    ) -> AoiJob:
        """An ``aoi`` request: its blocks over the catalogue (see :mod:`.aoi_job`)."""
        catalogue = next(
            (s.catalogue for s in self.sources if isinstance(s, CatalogueSource)), None
        )
        remote = self.settings.remote
        plan, media = plan_aoi_job(inputs, catalogue, common["engine"], outputs, remote)
        return AoiJob(plan=plan, media_type=media, remote=remote, **common)

    def needs_network(self, job: RoadJob | AoiJob) -> bool:
        return bool(getattr(job.plan, "needs_network", False))

    def complete(self, job: Job) -> Job:
        """The job with its plan finished (blocking network reads); 4xx errors as usual."""
        if not getattr(job.plan, "needs_network", False):
            return job
        return replace(job, plan=job.plan.complete())

    def execute(self, data: dict, outputs: dict | None = None) -> tuple[str, Any]:
        """In-process execution, for stock pygeoapi managers (ours uses worker processes)."""
        import json

        from sanchari_processes.service.jobs import run_service_job

        try:
            with tempfile.TemporaryDirectory(prefix="sanchari-job-") as tmp:
                job = self.prepare(data, "inline", Path(tmp))
                if isinstance(job, AoiJob):
                    raise InvalidInputError("input 'aoi': areas run as jobs of the SANCHARi server")
                path = run_service_job(self.complete(job), lambda *_: None)
                media = next(iter(self.outputs.values())).default.media_type
                return media, json.loads(path.read_text(encoding="utf-8"))
        except SanchariError as exc:
            raise SanchariProcessorError(exc) from None
        except Exception:
            LOGGER.exception("%s failed", self.metadata.get("id"))
            raise SanchariProcessorError(InternalError("internal error")) from None

    def __repr__(self) -> str:
        return f"<{type(self).__name__}> {', '.join(s.name for s in self.sources)}"


class RoadExtractionProcessor(SanchariProcessor):
    """Road extraction over the GeoTIFF catalogue, STAC Items and COGs by reference."""

    process_id = PROCESS_ID
    title = "Road extraction"
    summary = (
        "Extracts road centrelines from satellite or aerial imagery with a segmentation model "
        "and returns them as GeoJSON, GeoPackage or FlatGeobuf (EPSG:4326), with the road mask "
        "and probability as Cloud-Optimized GeoTIFFs and a PNG preview on request. Imagery "
        "comes from the server's GeoTIFF catalogue (a latitude/longitude window, a bbox or a "
        "file name), from a STAC Item (its RGB or visual asset) or from a GeoTIFF/COG passed by "
        "reference."
    )
    keywords: ClassVar[list[str]] = ["segmentation", "remote sensing", "STAC", "COG"]
    example: ClassVar[dict[str, Any]] = {
        "latitude": 48.9819,
        "longitude": 2.2821,
        "window_size": 512,
        "tta": "none",
    }
    default_sources = ("catalogue", "stac", "cog", "upload")


class GeeRoadExtractionProcessor(SanchariProcessor):
    """Road extraction over Google Earth Engine imagery (state: none; EE starts in workers)."""

    process_id = GEE_PROCESS_ID
    title = "Road extraction from Google Earth Engine imagery"
    summary = (
        "Extracts road centrelines around a point from NAIP (contiguous US, ~0.6 m) or "
        "Sentinel-2 (global, 10 m) imagery fetched from Google Earth Engine on the local UTM "
        "grid, with the same outputs as road-extraction."
    )
    keywords: ClassVar[list[str]] = ["Earth Engine", "NAIP", "Sentinel-2"]
    example: ClassVar[dict[str, Any]] = {
        "latitude": 39.7392,
        "longitude": -104.9903,
        "collection": NAIP,
        "scale": 1.0,
    }
    default_sources = ("gee",)
