"""A folder of GeoTIFFs as one imagery catalogue: find the imagery for a place, plan a window.

Each file is indexed once (CRS, grid, ground sample distance and footprint in EPSG:4326, via
pyproj) and re-indexed only when its size or modification time changes, so a request costs a
directory ``stat`` scan and an STRtree query, not a file open per GeoTIFF. Where several files
cover a place the finest resolution wins, then the newest file; the window's plan lists every
file it touches, on the best file's grid, and :mod:`sanchari_processes.sources.mosaic` reads it.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import rasterio
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from shapely.geometry import Point, Polygon, box
from shapely.strtree import STRtree

from sanchari_processes.chip import pixel_size_m
from sanchari_processes.errors import (
    InvalidInputError,
    OutsideCoverageError,
    RequestTooLargeError,
)
from sanchari_processes.inputs import (
    BBOX,
    IMAGE,
    InputSpec,
    image_data,
    image_href,
    parse_bbox,
    parse_crs,
    point_inputs,
    window_input,
)
from sanchari_processes.sources.base import SourceSettings
from sanchari_processes.sources.mosaic import WindowPlan, grid_bounds

LOGGER = logging.getLogger(__name__)

SUFFIXES = (".tif", ".tiff")
WGS84 = CRS.from_epsg(4326)
#: Points per edge when footprints are reprojected (keeps curved UTM edges honest).
_DENSIFY = 21


@dataclass(frozen=True)
class CatalogueEntry:
    """One indexed GeoTIFF: its grid, resolution and footprint in EPSG:4326."""

    path: Path
    crs_wkt: str
    transform: Affine
    width: int
    height: int
    count: int
    gsd_m: float
    mtime_ns: int
    size: int
    footprint: Polygon

    @property
    def crs(self) -> CRS:
        return CRS.from_wkt(self.crs_wkt)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in the file's CRS."""
        return grid_bounds(self.transform, self.width, self.height)

    def rank(self) -> tuple[float, int]:
        """Sort key: finest resolution first, then newest."""
        return (round(self.gsd_m, 6), -self.mtime_ns)


class Catalogue:
    """The GeoTIFFs under ``root``, indexed by footprint (thread-safe; state: the index)."""

    def __init__(self, root: Path, *, rescan_s: float = 2.0) -> None:
        self.root = Path(root)
        self.rescan_s = rescan_s
        self._entries: dict[Path, CatalogueEntry] = {}
        self._order: list[CatalogueEntry] = []
        self._tree: STRtree | None = None
        self._lock = threading.Lock()
        self._scanned_at = -math.inf

    # -- index ----------------------------------------------------------------------------------
    def refresh(self, force: bool = False) -> None:
        """Re-index new or changed files and forget removed ones (a ``stat`` scan)."""
        with self._lock:
            if not force and time.monotonic() - self._scanned_at < self.rescan_s:
                return
            found = _scan(self.root)
            changed = set(self._entries) - set(found)
            for path in changed:
                del self._entries[path]
            for path, stat in found.items():
                old = self._entries.get(path)
                if old and (old.mtime_ns, old.size) == (stat.st_mtime_ns, stat.st_size):
                    continue
                entry = _index_file(path, stat)
                changed.add(path)
                if entry is None:
                    self._entries.pop(path, None)
                else:
                    self._entries[path] = entry
            if changed or self._tree is None:
                self._order = sorted(self._entries.values(), key=lambda e: str(e.path))
                footprints = [e.footprint for e in self._order]
                self._tree = STRtree(footprints) if footprints else None
            self._scanned_at = time.monotonic()

    def entries(self) -> list[CatalogueEntry]:
        self.refresh()
        return list(self._order)

    def intersecting(self, geometry: shapely.Geometry) -> list[CatalogueEntry]:
        """Entries whose footprint intersects ``geometry`` (EPSG:4326), best first."""
        self.refresh()
        with self._lock:
            if self._tree is None:
                return []
            hits = self._tree.query(geometry, predicate="intersects")
            found = [self._order[int(i)] for i in hits]
        return sorted(found, key=CatalogueEntry.rank)

    # -- planning -------------------------------------------------------------------------------
    def plan_point(
        self, longitude: float, latitude: float, window_px: int, max_pixels: int
    ) -> WindowPlan:
        """A ``window_px`` square centred on the point, on the best covering file's grid."""
        if window_px * window_px > max_pixels:
            raise RequestTooLargeError(
                f"input 'window_size': {window_px} px squared is over the limit of "
                f"{max_pixels} pixels"
            )
        candidates = self.intersecting(Point(longitude, latitude))
        if not candidates:
            raise OutsideCoverageError(
                f"no imagery in the catalogue covers latitude {latitude}, longitude {longitude}"
            )
        best = candidates[0]
        to_native = Transformer.from_crs(WGS84, best.crs, always_xy=True)
        x, y = to_native.transform(longitude, latitude)
        col, row = ~best.transform @ (x, y)
        c0 = math.floor(col - window_px / 2)
        r0 = math.floor(row - window_px / 2)
        return self._plan_window(best, c0, r0, c0 + window_px, r0 + window_px, max_pixels)

    def plan_bbox(
        self, bbox: tuple[float, float, float, float], crs: CRS, max_pixels: int
    ) -> WindowPlan:
        """The catalogue imagery inside ``bbox`` (``minx, miny, maxx, maxy`` in ``crs``)."""
        to_wgs84 = Transformer.from_crs(crs, WGS84, always_xy=True)
        area = _reproject_polygon(box(*bbox), to_wgs84)
        candidates = self.intersecting(area)
        if not candidates:
            raise OutsideCoverageError("no imagery in the catalogue intersects the bbox")
        best = candidates[0]
        to_native = Transformer.from_crs(crs, best.crs, always_xy=True)
        left, bottom, right, top = to_native.transform_bounds(*bbox, densify_pts=_DENSIFY)
        inverse = ~best.transform
        cols, rows = zip(
            *(inverse @ xy for xy in ((left, top), (right, top), (left, bottom), (right, bottom))),
            strict=True,
        )
        c0, c1 = math.floor(min(cols)), math.ceil(max(cols))
        r0, r1 = math.floor(min(rows)), math.ceil(max(rows))
        return self._plan_window(best, c0, r0, c1, r1, max_pixels)

    def plan_file(self, name: str, max_pixels: int) -> WindowPlan:
        """A whole catalogue file named relative to the catalogue root (no ``..``)."""
        path = self.resolve_name(name)
        self.refresh()
        entry = self._entries.get(path)
        if entry is None:
            self.refresh(force=True)
            entry = self._entries.get(path)
        if entry is None:
            raise InvalidInputError(f"input 'image': {name} is not a georeferenced GeoTIFF")
        if entry.width * entry.height > max_pixels:
            raise RequestTooLargeError(
                f"input 'image': {name} has {entry.width * entry.height} pixels, over the limit "
                f"of {max_pixels}"
            )
        return WindowPlan(
            sources=(path,),
            crs_wkt=entry.crs_wkt,
            transform=entry.transform,
            width=entry.width,
            height=entry.height,
            bounds_wgs84=tuple(entry.footprint.bounds),
            whole_file=True,
            root=self.root,
        )

    def resolve_name(self, name: str) -> Path:
        """``name`` as a file inside the catalogue, or a 400 naming the ``image`` input."""
        pure = PurePosixPath(name.replace("\\", "/"))
        if not name or pure.is_absolute() or ".." in pure.parts or ":" in name or "\x00" in name:
            raise InvalidInputError(
                "input 'image': href must be an http(s) URL or a file name inside the catalogue"
            )
        if pure.suffix.lower() not in SUFFIXES:
            raise InvalidInputError("input 'image': only GeoTIFF files (.tif, .tiff) are served")
        root = self.root.resolve()
        path = (root / pure).resolve()
        if not path.is_relative_to(root):
            raise InvalidInputError("input 'image': href points outside the catalogue")
        if not path.is_file():
            raise OutsideCoverageError(f"input 'image': no file {name} in the catalogue")
        return path

    def _plan_window(
        self, best: CatalogueEntry, c0: int, r0: int, c1: int, r1: int, max_pixels: int
    ) -> WindowPlan:
        """Clip a window of ``best``'s grid to the imagery it touches; list those files."""
        window_transform = best.transform @ Affine.translation(c0, r0)
        left, bottom, right, top = grid_bounds(window_transform, c1 - c0, r1 - r0)
        to_wgs84 = Transformer.from_crs(best.crs, WGS84, always_xy=True)
        window_area = _reproject_polygon(box(left, bottom, right, top), to_wgs84)
        sources = [e for e in self.intersecting(window_area) if e.count == best.count]
        if best not in sources:
            sources.insert(0, best)
        # Clip the window to the union of the sources' extents (in best's grid, whole pixels).
        inverse = ~best.transform
        extent_cols: list[float] = []
        extent_rows: list[float] = []
        for entry in sources:
            to_best = Transformer.from_crs(entry.crs, best.crs, always_xy=True)
            bounds = to_best.transform_bounds(*entry.bounds, densify_pts=_DENSIFY)
            for xy in ((bounds[0], bounds[3]), (bounds[2], bounds[1])):
                col, row = inverse @ xy
                extent_cols.append(col)
                extent_rows.append(row)
        c0 = max(c0, math.floor(min(extent_cols) + 1e-6))
        r0 = max(r0, math.floor(min(extent_rows) + 1e-6))
        c1 = min(c1, math.ceil(max(extent_cols) - 1e-6))
        r1 = min(r1, math.ceil(max(extent_rows) - 1e-6))
        if c1 <= c0 or r1 <= r0:
            raise OutsideCoverageError("no imagery in the catalogue covers the requested window")
        width, height = c1 - c0, r1 - r0
        if width * height > max_pixels:
            raise RequestTooLargeError(
                f"the requested area is {width} x {height} pixels, over the limit of "
                f"{max_pixels} pixels"
            )
        transform = best.transform @ Affine.translation(c0, r0)
        clipped = _reproject_polygon(box(*grid_bounds(transform, width, height)), to_wgs84)
        used = [e for e in sources if e is best or e.footprint.intersects(clipped)]
        return WindowPlan(
            sources=tuple(e.path for e in used),
            crs_wkt=best.crs_wkt,
            transform=transform,
            width=width,
            height=height,
            bounds_wgs84=_four(clipped.bounds),
            root=self.root,
        )


#: The ``image`` input: every form a source of ``road-extraction`` reads.
IMAGE_INPUT = InputSpec(
    "Image by reference",
    'A GeoTIFF/COG passed by reference, {"href": "https://…/scene.tif"} (read with HTTP '
    'range requests), a STAC Item, {"href": "https://…/items/ID", "type": '
    '"application/geo+json"} (its RGB or visual asset is read), or the name of a file in the '
    "server's catalogue. With 'bbox', only the part of a remote image inside it is read. A "
    "georeferenced GeoTIFF may also be sent in the request as base64 text, bare or as "
    '{"value": "…", "mediaType": "image/tiff; application=geotiff", "encoding": "base64"} '
    "(within the request body limit).",
    {"type": "string", "contentEncoding": "binary", "contentMediaType": "image/tiff"},
    accepts=IMAGE,
)
BBOX_INPUT = InputSpec(
    "Bounding box",
    "Area to map: [minx, miny, maxx, maxy] in x/y (longitude/latitude) order, in CRS84 unless "
    "'crs' names another CRS (e.g. EPSG:32633). Cut from the catalogue, or from a remote "
    "'image' when one is given.",
    BBOX,
)
_ONE_SOURCE = "give exactly one imagery source: 'latitude' + 'longitude', 'bbox' or 'image'"


class CatalogueSource:
    """The server's GeoTIFF folder: a point window, a bbox, or a named file (state: index)."""

    name = "catalogue"

    def __init__(self, settings: SourceSettings) -> None:
        self.settings = settings
        self.catalogue = Catalogue(settings.geotiff_dir)

    def inputs(self) -> dict[str, InputSpec]:
        size = self.settings.default_window_size
        return {
            **point_inputs(),
            "bbox": BBOX_INPUT,
            "image": IMAGE_INPUT,
            **window_input(
                f"Side of the square window cut around latitude/longitude, in source pixels "
                f"(default {size}; window_size squared may not exceed "
                f"{self.settings.max_pixels} pixels).",
                size,
            ),
        }

    def accepts(self, inputs: Mapping[str, Any]) -> bool:
        """Everything but a remote ``image`` or one sent as data (mistakes are this source's
        to explain)."""
        if image_data(inputs) is not None:
            return False
        href, _ = image_href(inputs)
        return href is None or not _is_url(href)

    def plan(self, inputs: Mapping[str, Any]) -> WindowPlan:
        given = [k for k in ("latitude", "longitude", "bbox", "image") if k in inputs]
        point = {"latitude", "longitude"} & set(given)
        if len(point) == 1:
            missing = ({"latitude", "longitude"} - point).pop()
            raise InvalidInputError(f"input '{missing}' is required with '{point.pop()}'")
        if len(given) - (1 if point else 0) != 1:
            raise InvalidInputError(_ONE_SOURCE)
        if "window_size" in inputs and not point:
            raise InvalidInputError(
                "input 'window_size' applies to latitude/longitude requests only"
            )
        limit = self.settings.max_pixels
        href, _ = image_href(inputs)
        if href is not None:
            return self.catalogue.plan_file(href, limit)
        if "bbox" in inputs:
            bbox, crs = parse_bbox(inputs)
            return self.catalogue.plan_bbox(bbox, parse_crs(crs), limit)
        size = int(inputs.get("window_size") or self.settings.default_window_size)
        return self.catalogue.plan_point(
            float(inputs["longitude"]), float(inputs["latitude"]), size, limit
        )


def _is_url(href: str) -> bool:
    return href.split(":", 1)[0].lower() in ("http", "https")


def _scan(root: Path) -> dict[Path, os.stat_result]:
    """Every GeoTIFF under ``root`` (recursively) with its ``stat``; none if ``root`` is absent."""
    found: dict[Path, os.stat_result] = {}
    if not root.is_dir():
        return found
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.lower().endswith(SUFFIXES) and not name.startswith("."):
                path = (Path(dirpath) / name).resolve()
                try:
                    found[path] = path.stat()
                except OSError:
                    continue
    return found


def _index_file(path: Path, stat: os.stat_result) -> CatalogueEntry | None:
    """Read one file's header; ``None`` (with a log line) when it cannot be served."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                if ds.crs is None:
                    LOGGER.warning("catalogue: %s has no CRS; skipped", path.name)
                    return None
                if ds.transform.b or ds.transform.d:
                    LOGGER.warning("catalogue: %s is rotated; skipped", path.name)
                    return None
                crs = CRS.from_user_input(ds.crs)
                transform, width, height, count = ds.transform, ds.width, ds.height, ds.count
    except RasterioIOError as exc:
        LOGGER.warning("catalogue: cannot read %s: %s", path.name, exc)
        return None
    to_wgs84 = Transformer.from_crs(crs, WGS84, always_xy=True)
    footprint = _reproject_polygon(box(*grid_bounds(transform, width, height)), to_wgs84)
    return CatalogueEntry(
        path=path,
        crs_wkt=crs.to_wkt(),
        transform=transform,
        width=width,
        height=height,
        count=count,
        gsd_m=pixel_size_m(transform, crs, (height, width)),
        mtime_ns=stat.st_mtime_ns,
        size=stat.st_size,
        footprint=footprint,
    )


def _reproject_polygon(polygon: Polygon, transformer: Transformer) -> Polygon:
    """``polygon`` densified along its edges and reprojected."""
    minx, miny, maxx, maxy = polygon.bounds
    step = max(maxx - minx, maxy - miny) / _DENSIFY or 1.0
    dense = shapely.segmentize(polygon, step)
    coords = np.asarray(dense.exterior.coords)
    xs, ys = transformer.transform(coords[:, 0], coords[:, 1])
    return Polygon(np.column_stack([xs, ys]))


def _four(bounds: tuple[float, ...]) -> tuple[float, float, float, float]:
    """A shapely ``bounds`` tuple as plain floats (west, south, east, north)."""
    west, south, east, north = (float(v) for v in bounds)
    return west, south, east, north
