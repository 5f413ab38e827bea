"""``road-extraction`` over an area of interest: the ``aoi`` input, its plan and its job.

An ``aoi`` (a GeoJSON Polygon, MultiPolygon, Feature or FeatureCollection, in WGS 84) is
planned against the server's GeoTIFF catalogue in the web process (its blocks, which scenes
each reads; 400/404/413 before any job exists) and runs as an :class:`AoiJob`: the blocks of
:mod:`sanchari_processes.aoi`, here or, in a job on a Dask worker, spread over the whole cluster
(the job's task secedes while it waits, as :func:`~sanchari_processes.engine.cluster.worker_blocks`
does). Progress is the blocks done (and km²) in the job's status; the result is the stitched
lines in the requested format (a GeoPackage by reference for a district). The record of
finished blocks lies in the job's folder, so a job run again (after a restart) skips the
blocks it had finished.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sanchari_processes.errors import InvalidInputError, RequestTooLargeError
from sanchari_processes.inputs import InputSpec, RequestOptions
from sanchari_processes.results import GPKG, MANIFEST, OUTPUTS
from sanchari_processes.service.settings import EngineSettings

#: Largest AOI one job maps (km² of blocks holding imagery).
MAX_AOI_KM2 = 100.0
#: Block core side of service AOI runs (metres).
BLOCK_M = 1024.0
#: Imagery inputs an ``aoi`` replaces.
_OTHER_IMAGERY = ("latitude", "longitude", "bbox", "image", "window_size")

_GEOJSON_TYPES: dict[str, Any] = {
    "required": ["type"],
    "properties": {"type": {"enum": ["Polygon", "MultiPolygon", "Feature", "FeatureCollection"]}},
}
AOI_INPUT = InputSpec(
    "Area of interest",
    "A GeoJSON Polygon or MultiPolygon (bare, a Feature or a FeatureCollection; WGS 84 "
    "longitude/latitude) to map from the server's GeoTIFF catalogue: cut into blocks of "
    f"{BLOCK_M:g} m on the UTM grid of its centroid, read from every scene that covers "
    "them, and stitched into one set of lines. Replaces latitude/longitude, bbox and image; "
    f"up to {MAX_AOI_KM2:g} km² with imagery. Run it asynchronously (Prefer: respond-async); "
    "the job's status counts the blocks done. It produces the roads only, in the format "
    "'outputs' asks for: a GeoPackage or FlatGeobuf (by reference) for a large area, GeoJSON "
    "for a small one.",
    {"type": "object", "contentMediaType": "application/geo+json", **_GEOJSON_TYPES},
    accepts={"type": "object", **_GEOJSON_TYPES},
)


@dataclass(frozen=True)
class AoiJob:
    """A planned AOI job: the plan of blocks, the engine, where and in which format to write."""

    job_id: str
    process_id: str
    parameters: dict[str, Any]
    options: RequestOptions
    plan: Any  # sanchari_processes.aoi.AoiPlan (imported lazily: the web process plans it)
    engine: EngineSettings
    job_dir: Path
    media_type: str = GPKG
    backdrop: bool = False

    @property
    def result_path(self) -> Path:
        fmt = OUTPUTS["roads"].format_for(self.media_type)
        return self.job_dir / fmt.file_name


def plan_aoi_job(
    inputs: Mapping[str, Any],
    catalogue: Any,
    engine: EngineSettings,
    outputs: tuple[tuple[str, str], ...],
) -> tuple[Any, str]:
    """The AOI's plan over ``catalogue`` and the roads' media type (400/404/413 otherwise)."""
    from sanchari_processes.aoi import Scene, plan_aoi
    from sanchari_processes.aoi.grid import aoi_from_geojson
    from sanchari_processes.inference.checkpoint import read_metadata

    given = [name for name in _OTHER_IMAGERY if name in inputs]
    if given:
        raise InvalidInputError(f"input '{given[0]}' does not apply with 'aoi'")
    wanted = dict(outputs)
    if set(wanted) != {"roads"}:
        raise InvalidInputError(
            'an \'aoi\' produces the roads only: ask for them alone ("outputs": {"roads": '
            '{"format": {"mediaType": "application/geopackage+sqlite3"}}})'
        )
    media = OUTPUTS["roads"].format_for(wanted["roads"]).media_type
    area = aoi_from_geojson(inputs["aoi"], "input 'aoi'")
    if catalogue is None:
        raise InvalidInputError("input 'aoi': this process has no GeoTIFF catalogue to read")
    entries = catalogue.intersecting(area)
    scenes = [Scene(str(e.path), e.footprint, None, e.gsd_m) for e in entries]
    if not scenes:
        raise _outside()
    gsd = read_metadata(engine.weights).gsd_m
    try:
        plan = plan_aoi(area, scenes, gsd, block_m=BLOCK_M)
    except InvalidInputError as exc:
        raise InvalidInputError(f"input 'aoi': {exc.message}") from None
    if plan.km2 > MAX_AOI_KM2:
        raise RequestTooLargeError(
            f"input 'aoi': {plan.km2:.1f} km² with imagery, over the limit of {MAX_AOI_KM2:g} km²"
        )
    return plan, media


def _outside() -> Exception:
    from sanchari_processes.errors import OutsideCoverageError

    return OutsideCoverageError("input 'aoi': no imagery in the catalogue overlaps the area")


def run_aoi_job(job: AoiJob, progress: Any) -> Path:
    """Run the job's blocks (on the cluster when in a Dask worker), write the stitched roads."""
    from sanchari_processes.aoi import run_aoi
    from sanchari_processes.engine.build import build_engine
    from sanchari_processes.results.files import write_json_atomic

    options = job.engine.options(job.options)
    path = job.result_path

    def report(done: int, total: int, km2: float) -> None:
        progress(0.95 * done / max(total, 1), f"Blocks done: {done} of {total} ({km2:.2f} km²)")

    progress(0.0, f"Blocks done: 0 of {len(job.plan.blocks)}")
    with _cluster() as client:
        engine = None if client is not None else build_engine(options)
        sha = engine.metadata.weights_sha256 if engine is not None else _sha(options.weights)
        run_aoi(
            job.plan, path, options, model_sha=sha, engine=engine, client=client,
            resume=True, progress=report,
        )  # fmt: skip
    write_json_atomic(
        {"roads": {"file": path.name, "mediaType": job.media_type}}, job.job_dir / MANIFEST
    )
    progress(1.0, "Writing results")
    return path


def _sha(weights: Path) -> str:
    from sanchari_processes.inference.checkpoint import read_metadata

    return read_metadata(weights).weights_sha256


@contextlib.contextmanager
def _cluster() -> Iterator[Any]:
    """A client of the cluster when running in a Dask worker (seceded while it waits)."""
    try:
        from distributed import get_worker, worker_client

        get_worker()
    except (ImportError, ValueError):
        yield None
        return
    with worker_client() as client:
        yield client
