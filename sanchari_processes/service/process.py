"""The pygeoapi processors: describe the processes, validate and plan jobs.

``road-extraction`` reads the GeoTIFF catalogue or a GeoTIFF by reference;
``road-extraction-gee`` reads Google Earth Engine. Both plan a :class:`RoadJob` for the same
workers and engine.

Validation and planning (which catalogue files, which window, how many pixels) happen here, in
the web process and before any job exists, so a bad request is a 4xx at once rather than a
failed job later. The engine itself runs in the manager's worker processes
(:mod:`sanchari_processes.service.manager`); :meth:`RoadExtractionProcessor.execute` runs it
in-process only when the processor is used under a stock pygeoapi manager.
"""

from __future__ import annotations

import copy
import logging
import tempfile
from dataclasses import replace
from datetime import date
from http import HTTPStatus
from pathlib import Path
from typing import Any

from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError

from sanchari_processes import __version__
from sanchari_processes.errors import InternalError, SanchariError
from sanchari_processes.service.config import GeeProcessSettings, ProcessSettings
from sanchari_processes.service.inputs import (
    RoadRequest,
    gee_process_inputs,
    parse_crs,
    parse_gee_inputs,
    parse_inputs,
    process_inputs,
)
from sanchari_processes.service.jobs import RESULT_MIMETYPE, RoadJob, run_road_job
from sanchari_processes.sources.catalogue import Catalogue, WindowPlan
from sanchari_processes.sources.gee import NAIP, plan_gee, resolve_credentials
from sanchari_processes.sources.remote import (
    RemoteHref,
    RemoteRaster,
    check_href,
    is_http_url,
    probe_remote,
)

LOGGER = logging.getLogger(__name__)

PROCESS_ID = "road-extraction"
GEE_PROCESS_ID = "road-extraction-gee"
OUTPUT_ID = "roads"


def process_metadata(settings: ProcessSettings) -> dict[str, Any]:
    """The OGC process description (pygeoapi adds links and job control options)."""
    return _description(
        PROCESS_ID,
        "Road extraction",
        "Extracts road centrelines from satellite or aerial imagery with a "
        "segmentation model and returns them as a GeoJSON FeatureCollection (EPSG:4326). "
        "Imagery comes from the server's GeoTIFF catalogue (a latitude/longitude window or a "
        "bbox) or from a GeoTIFF/COG passed by reference.",
        keywords=["segmentation", "remote sensing"],
        inputs=process_inputs(settings.max_pixels, settings.default_window_size),
        provenance="source files, window",
        example={"latitude": 48.9819, "longitude": 2.2821, "window_size": 512, "tta": "none"},
    )


def gee_process_metadata(settings: GeeProcessSettings) -> dict[str, Any]:
    """The OGC description of ``road-extraction-gee``."""
    return _description(
        GEE_PROCESS_ID,
        "Road extraction from Google Earth Engine imagery",
        "Extracts road centrelines around a point from NAIP (contiguous US, "
        "~0.6 m) or Sentinel-2 (global, 10 m) imagery fetched from Google Earth Engine on the "
        "local UTM grid, and returns them as a GeoJSON FeatureCollection (EPSG:4326).",
        keywords=["Earth Engine", "NAIP", "Sentinel-2"],
        inputs=gee_process_inputs(settings.max_pixels, settings.default_window_size),
        provenance="Earth Engine image ids and dates, grid",
        example={"latitude": 39.7392, "longitude": -104.9903, "collection": NAIP, "scale": 1.0},
    )


def _description(
    process_id: str,
    title: str,
    description: str,
    *,
    keywords: list[str],
    inputs: dict[str, Any],
    provenance: str,
    example: dict[str, Any],
) -> dict[str, Any]:
    """What both process descriptions share: job control, the ``roads`` output."""
    return {
        "version": __version__,
        "id": process_id,
        "title": title,
        "description": description,
        "jobControlOptions": ["sync-execute", "async-execute"],
        "outputTransmission": ["value"],
        "keywords": ["roads", "centrelines", "GeoJSON", *keywords],
        "links": [],
        "inputs": inputs,
        "outputs": {
            OUTPUT_ID: {
                "title": "Road centrelines",
                "description": "GeoJSON FeatureCollection of road centrelines (EPSG:4326) with "
                f"the run's provenance (model id and checksum, {provenance}, options) "
                "in its 'sanchari' member.",
                "schema": {"type": "object", "contentMediaType": RESULT_MIMETYPE},
            }
        },
        "example": {"inputs": example},
    }


class SanchariProcessorError(ProcessorExecuteError):
    """A :class:`SanchariError` as pygeoapi's error type, keeping its HTTP status and code."""

    def __init__(self, error: SanchariError) -> None:
        super().__init__(user_msg=error.message)
        self.http_status_code = HTTPStatus(error.http_status)
        self.ogc_exception_code = error.ogc_code


class SanchariProcessor(BaseProcessor):
    """What both processes share: in-process execution of a job :meth:`prepare` plans.

    Planning has two steps: :meth:`prepare` (no network: safe on a web thread) and, when
    :meth:`needs_network` says so, :meth:`complete` (reads remote headers: run it elsewhere).
    """

    #: Planning threads that may use the network at once (the cap on remote header reads).
    network_slots: int = 1

    def prepare(self, inputs: Any, job_id: str, job_dir: Path) -> RoadJob:
        raise NotImplementedError

    def needs_network(self, job: RoadJob) -> bool:
        return False

    def complete(self, job: RoadJob) -> RoadJob:
        """The job with its plan finished (blocking network reads); 4xx errors as usual."""
        return job

    def execute(self, data: dict, outputs: dict | None = None) -> tuple[str, Any]:
        """In-process execution, for stock pygeoapi managers (ours uses worker processes)."""
        import json

        try:
            with tempfile.TemporaryDirectory(prefix="sanchari-job-") as tmp:
                job = self.complete(self.prepare(data, "inline", Path(tmp)))
                path = run_road_job(job, lambda _fraction: None)
                return RESULT_MIMETYPE, json.loads(path.read_text(encoding="utf-8"))
        except SanchariError as exc:
            raise SanchariProcessorError(exc) from None
        except Exception:
            LOGGER.exception("%s failed", self.metadata.get("id"))
            raise SanchariProcessorError(InternalError("internal error")) from None


class RoadExtractionProcessor(SanchariProcessor):
    """Road extraction over the GeoTIFF catalogue (state: the catalogue index)."""

    def __init__(self, processor_def: dict) -> None:
        self.settings = ProcessSettings.from_mapping(processor_def)
        super().__init__(processor_def, copy.deepcopy(process_metadata(self.settings)))
        self.catalogue = Catalogue(self.settings.geotiff_dir)
        self.network_slots = self.settings.remote.concurrency

    def prepare(self, inputs: Any, job_id: str, job_dir: Path) -> RoadJob:
        """Validate ``inputs`` and plan the job (raises 400/404/413 :class:`SanchariError`).

        A remote ``image`` is only checked for form here; :meth:`complete` reads its header.
        """
        request = parse_inputs(inputs)
        return RoadJob(
            job_id=job_id,
            process_id=PROCESS_ID,
            request=request,
            plan=self.plan(request),
            engine=self.settings.engine,
            job_dir=job_dir,
            catalogue_root=self.settings.geotiff_dir,
            remote=self.settings.remote,
        )

    def needs_network(self, job: RoadJob) -> bool:
        return isinstance(job.plan, RemoteHref)

    def complete(self, job: RoadJob) -> RoadJob:
        if not isinstance(job.plan, RemoteHref):
            return job
        raster = probe_remote(job.plan.href, self.settings.max_pixels, self.settings.remote)
        return replace(job, plan=raster)

    def plan(self, request: RoadRequest) -> WindowPlan | RemoteHref | RemoteRaster:
        limit = self.settings.max_pixels
        if request.image is not None:
            if is_http_url(request.image):
                return check_href(request.image, self.settings.remote)
            return self.catalogue.plan_file(request.image, limit)
        if request.bbox is not None:
            return self.catalogue.plan_bbox(request.bbox, parse_crs(request.bbox_crs), limit)
        size = request.window_size or self.settings.default_window_size
        assert request.longitude is not None and request.latitude is not None
        return self.catalogue.plan_point(request.longitude, request.latitude, size, limit)

    def __repr__(self) -> str:
        return f"<RoadExtractionProcessor> {self.settings.geotiff_dir}"


class GeeRoadExtractionProcessor(SanchariProcessor):
    """Road extraction over Google Earth Engine imagery (state: none; EE starts in workers)."""

    def __init__(self, processor_def: dict) -> None:
        self.settings = GeeProcessSettings.from_mapping(processor_def)
        super().__init__(processor_def, copy.deepcopy(gee_process_metadata(self.settings)))

    def prepare(self, inputs: Any, job_id: str, job_dir: Path) -> RoadJob:
        """Validate and plan (400/413), and check credentials exist (503) — all offline."""
        request = parse_gee_inputs(inputs)
        plan = plan_gee(
            request.longitude,
            request.latitude,
            collection=request.collection,
            scale_m=request.scale,
            window_px=request.window_size or self.settings.default_window_size,
            start=request.start_date,
            end=request.end_date,
            today=date.today(),
            max_pixels=self.settings.max_pixels,
            settings=self.settings.gee,
        )
        resolve_credentials(self.settings.gee)
        return RoadJob(
            job_id=job_id,
            process_id=GEE_PROCESS_ID,
            request=request,
            plan=plan,
            engine=self.settings.engine,
            job_dir=job_dir,
        )

    def __repr__(self) -> str:
        return "<GeeRoadExtractionProcessor>"
