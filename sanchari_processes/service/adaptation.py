"""The ``road-model-adaptation`` processor: adapt the model to the user's region from the roads
they already have, as an asynchronous job whose result is a model of the models folder.

Imagery comes as ``road-extraction`` takes it (the catalogue by point, bbox or file name, a
GeoTIFF/COG or a STAC Item by reference: the same sources and inputs). Everything that can be
known before running is checked here, on the web thread, so it is a 4xx at once: the budget,
the GeoJSON, a base model or a name that is unknown or taken, and roads that do not overlap the
imagery's footprint (for remote imagery once its header is read, and for roads by reference
once fetched: both off the web threads, in planning; a failure there fails the job with its
4xx). What only the run can tell (too few labelled pixels where roads and imagery meet) fails
the job with the adaptation's own 400 message.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.inference.metadata import read_metadata
from sanchari_processes.inputs import InputSpec, validate
from sanchari_processes.results import MODEL_OUTPUTS
from sanchari_processes.service.adapt_inputs import (
    GEOJSON_FORMS,
    LINES,
    POLYGONS,
    Shapes,
    adaptation_inputs,
    check_overlap,
    fetch_geojson,
    geojson_input,
    imagery_bounds,
    parse_shapes,
)
from sanchari_processes.service.adapt_job import MODEL_ONLY, AdaptJob
from sanchari_processes.service.models import ModelStore, check_model_id, safe_id
from sanchari_processes.service.process import SanchariProcessor
from sanchari_processes.service.settings import AdaptationSettings, ProcessSettings
from sanchari_processes.sources.registry import choose, source_inputs

ADAPT_PROCESS_ID = "road-model-adaptation"


class ModelAdaptationProcessor(SanchariProcessor):
    """Adaptation over the road-extraction sources (state: the sources, the models folder)."""

    process_id = ADAPT_PROCESS_ID
    title = "Road model adaptation"
    summary = (
        "Adapts the road model to your region from the roads you already have (OpenStreetMap "
        "lines, lines drawn in QGIS, or corrected road-extraction output): the threshold is "
        "re-chosen for the region, then a fine-tune is kept only where it beats that on "
        "spatial blocks it did not train on. Imagery as road-extraction takes it. The result "
        "is a model id of the models folder (GET /models) with its card; pass it as 'model' "
        "to road-extraction. Asynchronous only."
    )
    keywords: ClassVar[list[str]] = ["adaptation", "fine-tuning", "calibration"]
    example: ClassVar[dict[str, Any]] = {
        "bbox": {"bbox": [2.2790, 48.9800, 2.2850, 48.9840]},
        # an object input as OGC API - Processes 1.0 has it: a qualified value
        "roads": {
            "value": {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {},
                        "geometry": {
                            "type": "LineString",
                            "coordinates": [[2.2795, 48.9810], [2.2845, 48.9830]],
                        },
                    }
                ],
            },
            "mediaType": "application/geo+json",
        },
        "minutes": 2,
    }
    default_sources = ("catalogue", "stac", "cog")
    outputs = MODEL_OUTPUTS
    job_control = ("async-execute", "dismiss")

    def read_settings(self, processor_def: dict) -> ProcessSettings:
        self.adaptation = AdaptationSettings.from_mapping(processor_def, self.default_sources)
        return self.adaptation.process

    @property
    def store(self) -> ModelStore:
        assert self.models is not None  # the settings require a models folder
        return self.models

    def process_inputs(self) -> dict[str, InputSpec]:
        defaults, cap = self.adaptation.defaults, self.adaptation.max_minutes
        return {**source_inputs(self.sources), **adaptation_inputs(defaults, cap)}

    def prepare(  # type: ignore[override]
        self,
        inputs: Any,
        job_id: str,
        job_dir: Path,
        outputs: tuple[tuple[str, str], ...] = MODEL_ONLY,
    ) -> AdaptJob:
        """Validate and plan (400/404/413/503 at once); remote parts wait for :meth:`complete`."""
        if isinstance(inputs, dict) and "roads" not in inputs:
            raise InvalidInputError(f"input 'roads' is required: your roads, as {GEOJSON_FORMS}")
        inputs = validate(inputs, self.validator)
        remote = self.settings.remote
        roads_in = geojson_input(inputs["roads"], "roads", remote)
        area_in = geojson_input(inputs["area"], "area", remote) if "area" in inputs else None
        roads = None if roads_in.value is None else parse_shapes(roads_in.value, "roads", LINES)
        area = None
        if area_in is not None and area_in.value is not None:
            area = parse_shapes(area_in.value, "area", POLYGONS)
        weights = self.settings.engine.weights
        if "model" in inputs:
            weights = self.model_weights(inputs["model"])
        model_id = self._model_id(inputs.get("name"), weights, job_id)
        defaults = self.adaptation.defaults
        config = replace(
            defaults,
            minutes=float(inputs.get("minutes", defaults.minutes)),
            finetune=bool(inputs.get("finetune", True)),
            road_width_m=float(inputs.get("road_width_m", defaults.road_width_m)),
        )
        plan = choose(self.sources, inputs).plan(inputs)
        if roads is not None:
            check_overlap(roads.bounds_lonlat("roads"), imagery_bounds(plan))
        self.store.sweep()
        return AdaptJob(
            job_id=job_id,
            process_id=self.process_id,
            parameters=copy.deepcopy(inputs),
            plan=plan,
            job_dir=job_dir,
            models_dir=self.store.root,
            model_id=model_id,
            weights=weights,
            config=config,
            engine=self.settings.engine,
            remote=remote,
            roads=roads,
            roads_href=roads_in.href,
            area=area,
            area_href=area_in.href if area_in is not None else None,
            outputs=outputs,
        )

    def _model_id(self, name: Any, weights: Path, job_id: str) -> str:
        """The requested name (400 when invalid or taken), else one made from the base's id."""
        if name is None:
            return f"{safe_id(read_metadata(weights).model_id)}-adapted-{job_id[:8]}"
        check_model_id(name, "input 'name'")
        if self.store.find(name) is not None:
            raise InvalidInputError(
                f"input 'name': the models folder already has a model {name!r}; choose "
                f"another name (or DELETE /models/{name} first)"
            )
        return str(name)

    def needs_network(self, job: AdaptJob) -> bool:  # type: ignore[override]
        return job.needs_network

    def complete(self, job: AdaptJob) -> AdaptJob:  # type: ignore[override]
        """Read remote headers and fetch roads/area by reference; then the overlap check."""
        if not job.needs_network:
            return job
        plan = job.plan.complete() if job.plan.needs_network else job.plan
        roads = job.roads or self._fetch(job.roads_href, "roads", LINES, job)
        area = job.area
        if area is None and job.area_href is not None:
            area = self._fetch(job.area_href, "area", POLYGONS, job)
        check_overlap(roads.bounds_lonlat("roads"), imagery_bounds(plan))
        return replace(job, plan=plan, roads=roads, area=area)

    @staticmethod
    def _fetch(href: str | None, what: str, kinds: tuple[str, ...], job: AdaptJob) -> Shapes:
        if href is None:
            raise InvalidInputError(f"input '{what}' is missing")
        return parse_shapes(fetch_geojson(href, what, job.remote), what, kinds)
