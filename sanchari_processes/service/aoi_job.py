"""``road-extraction`` over an area of interest: the ``aoi`` input, its plan and its job.

An ``aoi`` (a GeoJSON Polygon, MultiPolygon, Feature or FeatureCollection, in WGS 84) is
planned against the server's GeoTIFF catalogue in the web process (its blocks, which scenes
each reads; 400/404/413 before any job exists), or against the ``imagery`` input: a STAC
ItemCollection sent in the request (planned there too), or a STAC API search or ItemCollection
by reference, whose form is checked there and which is read, off the web threads, by
:meth:`StacAoiPlan.complete` (as a remote STAC Item is; its 4xx then fails the job). It runs as
an :class:`AoiJob`: the blocks of
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

from sanchari_processes.config import MAX_STAC_ITEMS
from sanchari_processes.errors import InvalidInputError, RequestTooLargeError, SanchariError
from sanchari_processes.inputs import IMAGE_REF, InputSpec, RequestOptions
from sanchari_processes.results import GPKG, MANIFEST, OUTPUTS
from sanchari_processes.service.settings import EngineSettings
from sanchari_processes.sources.settings import RemoteSettings

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
    "longitude/latitude) to map from the server's GeoTIFF catalogue, or from the STAC "
    "source that 'imagery' names: cut into blocks of "
    f"{BLOCK_M:g} m on the UTM grid of its centroid, read from every scene that covers "
    "them, and stitched into one set of lines. Replaces latitude/longitude, bbox and image; "
    f"up to {MAX_AOI_KM2:g} km² with imagery. Run it asynchronously (Prefer: respond-async); "
    "the job's status counts the blocks done. It produces the roads only, in the format "
    "'outputs' asks for: a GeoPackage or FlatGeobuf (by reference) for a large area, GeoJSON "
    "for a small one.",
    {"type": "object", "contentMediaType": "application/geo+json", **_GEOJSON_TYPES},
    accepts={"type": "object", **_GEOJSON_TYPES},
)
#: Most Items an ItemCollection sent as ``imagery`` may hold (as many as a search may find).
MAX_IMAGERY_ITEMS = MAX_STAC_ITEMS
_ITEM_COLLECTION: dict[str, Any] = {
    "type": "object",
    "required": ["type", "features"],
    "properties": {
        "type": {"enum": ["FeatureCollection"]},
        "features": {"type": "array", "maxItems": MAX_IMAGERY_ITEMS},
    },
}
IMAGERY_INPUT = InputSpec(
    "Imagery of the area",
    "With 'aoi' only: the scenes to map it from instead of the server's catalogue. A STAC API "
    'item search by reference, {"href": "https://host/v1/search?collections=C&datetime=D1/D2"} '
    "(a GET search URL ending in /search: the area's bounding box is added; collections, "
    f"datetime, ids and limit are passed on; at most {MAX_IMAGERY_ITEMS} Items may match), a "
    'STAC ItemCollection by reference, {"href": "https://…/items.json"}, or an ItemCollection '
    "sent in the request. Each Item's visual (or red, green, blue) asset is read as a COG by "
    "HTTP range requests, through the server's address guard. A search or a collection by "
    "reference is read once the job is accepted: a bad one fails the job with its 4xx.",
    {"type": "object", "contentMediaType": "application/geo+json"},
    accepts={"oneOf": [IMAGE_REF, _ITEM_COLLECTION]},
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
    #: The address guard's settings for remote scenes (STAC assets).
    remote: RemoteSettings | None = None

    @property
    def result_path(self) -> Path:
        fmt = OUTPUTS["roads"].format_for(self.media_type)
        return self.job_dir / fmt.file_name


@dataclass(frozen=True)
class StacAoiPlan:
    """An area over a STAC source by reference: :meth:`complete` reads it and plans the blocks."""

    href: str
    area: Any  # shapely geometry, EPSG:4326
    gsd_m: float
    remote: RemoteSettings

    needs_network = True

    def complete(self) -> Any:
        from sanchari_processes.aoi.scenes import items_scenes, search_scenes
        from sanchari_processes.aoi.stac_api import fetch_item_collection, is_search_url

        try:
            if is_search_url(self.href):
                scenes = search_scenes(self.href, self.area, self.remote)
            else:
                items = fetch_item_collection(self.href, self.remote)
                scenes = items_scenes(
                    items, self.href, "the ItemCollection", self.remote, local=False
                )
        except SanchariError as exc:
            raise type(exc)(f"input 'imagery': {exc.message}") from None
        return _plan(self.area, scenes, self.gsd_m)


def plan_aoi_job(
    inputs: Mapping[str, Any],
    catalogue: Any,
    engine: EngineSettings,
    outputs: tuple[tuple[str, str], ...],
    remote: RemoteSettings | None = None,
) -> tuple[Any, str]:
    """The AOI's plan over ``imagery`` or ``catalogue`` and the roads' media type (400/404/413
    otherwise; a :class:`StacAoiPlan` when the imagery is still to be read)."""
    from sanchari_processes.aoi import Scene
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
    gsd = read_metadata(engine.weights).gsd_m
    if "imagery" in inputs:
        return _stac_plan(inputs["imagery"], area, gsd, remote or RemoteSettings()), media
    if catalogue is None:
        raise InvalidInputError(
            "input 'aoi': this process has no GeoTIFF catalogue to read; name the scenes with "
            "'imagery'"
        )
    entries = catalogue.intersecting(area)
    scenes = [Scene(str(e.path), e.footprint, None, e.gsd_m) for e in entries]
    if not scenes:
        raise _outside()
    return _plan(area, scenes, gsd), media


def _stac_plan(imagery: Any, area: Any, gsd: float, remote: RemoteSettings) -> Any:
    """The plan over an ItemCollection sent in the request, or a :class:`StacAoiPlan`."""
    from sanchari_processes.aoi.scenes import items_scenes, parse_item_collection
    from sanchari_processes.aoi.stac_api import check_search_url, is_search_url
    from sanchari_processes.sources.remote import check_href

    try:
        if "href" not in imagery:
            items = parse_item_collection(imagery, "the ItemCollection")
            scenes = items_scenes(items, "", "the ItemCollection", remote, local=False)
            return _plan(area, scenes, gsd)
        href = imagery["href"]
        if is_search_url(href):
            check_search_url(href, remote)
        else:
            check_href(href, remote)
    except SanchariError as exc:
        message = exc.message.removeprefix("input 'image': ")
        raise type(exc)(f"input 'imagery': {message}") from None
    return StacAoiPlan(href, area, gsd, remote)


def _plan(area: Any, scenes: list[Any], gsd: float) -> Any:
    """The blocks over ``scenes`` (400 when none meets the area, 413 over the limit)."""
    from sanchari_processes.aoi import plan_aoi

    try:
        plan = plan_aoi(area, scenes, gsd, block_m=BLOCK_M)
    except InvalidInputError as exc:
        raise InvalidInputError(f"input 'aoi': {exc.message}") from None
    if plan.km2 > MAX_AOI_KM2:
        raise RequestTooLargeError(
            f"input 'aoi': {plan.km2:.1f} km² with imagery, over the limit of {MAX_AOI_KM2:g} km²"
        )
    return plan


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
            resume=True, remote=job.remote, progress=report,
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
