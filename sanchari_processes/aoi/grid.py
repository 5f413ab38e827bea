"""The area of interest and the one model grid its blocks are cut on.

The grid is a lattice of square blocks in one projected CRS (by default the UTM zone of the
AOI's centroid), at the model's ground sample distance, anchored at the CRS origin: block
``(ix, iy)`` covers ``x in [ix*B, (ix+1)*B)`` and ``y in [iy*B, (iy+1)*B)`` (its *core*, half
open), so the same AOI always gives the same blocks, a resumed run finds its blocks by name, and
neighbouring cores tile the plane without overlap. Each block is read and predicted with a
margin around its core (the model's and the vectorizer's context); only the lines inside its
core are kept (:mod:`.stitch`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import Polygon, box, shape
from shapely.geometry.base import BaseGeometry

from sanchari_processes.errors import InvalidInputError

WGS84 = CRS.from_epsg(4326)
#: Names of the GeoJSON default CRS in a legacy ``crs`` member.
_CRS84 = ("urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:OGC::CRS84", "EPSG:4326")
#: Largest AOI GeoJSON read (bytes).
MAX_AOI_BYTES = 20 * 1024 * 1024
#: Points per edge when boxes are reprojected (keeps curved edges honest).
_DENSIFY = 21


@dataclass(frozen=True)
class Grid:
    """The model grid: a CRS, a pixel size (the model's GSD) and the block lattice."""

    crs_wkt: str
    gsd_m: float
    #: Core side of a block, in grid pixels.
    block_px: int
    #: Context read around each core, in grid pixels.
    margin_px: int

    @property
    def crs(self) -> CRS:
        return CRS.from_wkt(self.crs_wkt)

    @property
    def block_m(self) -> float:
        return self.block_px * self.gsd_m

    @property
    def margin_m(self) -> float:
        return self.margin_px * self.gsd_m

    @property
    def window_px(self) -> int:
        """Side of the window read for a block: its core plus the margin on every side."""
        return self.block_px + 2 * self.margin_px

    def core(self, ix: int, iy: int) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` of block ``(ix, iy)``'s core."""
        b = self.block_m
        return (ix * b, iy * b, (ix + 1) * b, (iy + 1) * b)

    def window_transform(self, ix: int, iy: int) -> Affine:
        """The affine of block ``(ix, iy)``'s window (core plus margin), north up."""
        left, _, _, top = self.core(ix, iy)
        m = self.margin_m
        return Affine(self.gsd_m, 0.0, left - m, 0.0, -self.gsd_m, top + m)

    def window_bounds(self, ix: int, iy: int) -> tuple[float, float, float, float]:
        left, bottom, right, top = self.core(ix, iy)
        m = self.margin_m
        return (left - m, bottom - m, right + m, top + m)

    def describe(self) -> dict[str, Any]:
        return {
            "crs": self.crs.to_string(),
            "gsd_m": self.gsd_m,
            "block_px": self.block_px,
            "margin_px": self.margin_px,
        }


@dataclass(frozen=True)
class BlockRef:
    """One block of the lattice: its indices and the part of the AOI its core holds."""

    ix: int
    iy: int
    #: ``core ∩ AOI`` in the grid's CRS: what this block's lines are clipped to.
    area: Polygon
    #: Indices into the run's scene list (best first) that cover the block's window.
    scenes: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        """A stable file-name-safe id (``x123_y-45``)."""
        return f"x{self.ix}_y{self.iy}"

    @property
    def km2(self) -> float:
        return float(self.area.area) / 1e6


def utm_crs(longitude: float, latitude: float) -> CRS:
    """The WGS 84 / UTM zone CRS holding a point (north or south by its latitude)."""
    zone = min(60, max(1, math.floor((longitude + 180.0) / 6.0) + 1))
    return CRS.from_epsg((32600 if latitude >= 0 else 32700) + zone)


def parse_crs(text: str) -> CRS:
    """A CRS from user text (``EPSG:32633``, WKT, …), or one clear error."""
    try:
        crs = CRS.from_user_input(text)
    except CRSError:
        raise InvalidInputError(f"unknown CRS: {text!r}") from None
    if not crs.is_projected:
        raise InvalidInputError(f"the grid CRS must be projected (metres), not {crs.name}")
    return crs


def make_grid(
    aoi: BaseGeometry, gsd_m: float, block_m: float, margin_m: float, crs: CRS | None = None
) -> Grid:
    """The grid for ``aoi`` (EPSG:4326): ``crs`` or the UTM zone of its centroid."""
    if not (math.isfinite(gsd_m) and gsd_m > 0):
        raise InvalidInputError("the model's ground sample distance must be positive")
    block_px = round(block_m / gsd_m)
    if block_px < 16:
        raise InvalidInputError(f"blocks of {block_m} m are too small (at least {16 * gsd_m} m)")
    if not margin_m >= 0:
        raise InvalidInputError("the block margin must be >= 0 m")
    if crs is None:
        centre = aoi.centroid
        crs = utm_crs(centre.x, centre.y)
    return Grid(crs.to_wkt(), float(gsd_m), block_px, math.ceil(margin_m / gsd_m - 1e-9))


def to_grid(geometry: BaseGeometry, grid: Grid) -> BaseGeometry:
    """``geometry`` (EPSG:4326) in the grid's CRS, its edges densified first."""
    transformer = Transformer.from_crs(WGS84, grid.crs, always_xy=True)
    return reproject(geometry, transformer)


def reproject(geometry: BaseGeometry, transformer: Transformer) -> BaseGeometry:
    """``geometry`` densified along its edges and reprojected; infinite results are an error."""
    minx, miny, maxx, maxy = geometry.bounds
    step = max(maxx - minx, maxy - miny) / _DENSIFY or 1.0
    dense = shapely.segmentize(geometry, step)

    def move(coords: np.ndarray) -> np.ndarray:
        xs, ys = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([xs, ys])

    moved = shapely.transform(dense, move)
    if not np.isfinite(shapely.get_coordinates(moved)).all():
        raise InvalidInputError("the area of interest lies outside the grid CRS's valid area")
    return moved


def plan_blocks(area: BaseGeometry, grid: Grid, footprints: list[BaseGeometry]) -> list[BlockRef]:
    """The blocks whose core meets ``area`` (grid CRS) where a scene has imagery.

    ``footprints`` are the scenes' footprints in the grid CRS, best first; each block lists
    the scenes that meet its *window* (the margin reads imagery too).
    """
    b = grid.block_m
    minx, miny, maxx, maxy = area.bounds
    tree = shapely.STRtree(footprints) if footprints else None
    shapely.prepare(area)
    blocks = []
    for iy in range(math.floor(miny / b), math.ceil(maxy / b)):
        for ix in range(math.floor(minx / b), math.ceil(maxx / b)):
            core = box(*grid.core(ix, iy))
            if not area.intersects(core):
                continue
            part = area.intersection(core)
            if part.area <= 0 or tree is None:
                continue
            seen = tree.query(box(*grid.window_bounds(ix, iy)), predicate="intersects")
            if not len(seen) or not any(footprints[int(i)].intersects(part) for i in seen):
                continue
            blocks.append(BlockRef(ix, iy, _polygonal(part), tuple(sorted(int(i) for i in seen))))
    return blocks


def _polygonal(geometry: BaseGeometry) -> Polygon:
    """The polygonal part of an intersection (lines and points of a touching edge dropped)."""
    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry  # type: ignore[return-value]
    parts = [
        g for g in getattr(geometry, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon")
    ]
    return shapely.union_all(parts)  # type: ignore[return-value]


def load_aoi(path: Path) -> BaseGeometry:
    """The AOI polygon(s) of a GeoJSON file, in EPSG:4326; one clear error when unusable.

    A Polygon or MultiPolygon, bare, as a Feature or as a FeatureCollection (unioned). GeoJSON
    is longitude/latitude (RFC 7946); a legacy ``crs`` member naming another CRS is honoured.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"AOI file not found: {path}")
    if path.stat().st_size > MAX_AOI_BYTES:
        raise InvalidInputError(f"the AOI file is over {MAX_AOI_BYTES // 2**20} MiB: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"the AOI is not valid GeoJSON ({path.name}: {exc})") from None
    return aoi_from_geojson(data, path.name)


def aoi_from_geojson(data: Any, what: str = "the AOI") -> BaseGeometry:
    """:func:`load_aoi` on parsed GeoJSON (the service's ``aoi`` input too)."""
    if not isinstance(data, dict) or "type" not in data:
        raise InvalidInputError(f"{what}: not a GeoJSON object")
    crs = _legacy_crs(data, what)
    if data["type"] == "FeatureCollection":
        geometries = [_geometry(f, what) for f in data.get("features") or []]
        if not geometries:
            raise InvalidInputError(f"{what}: the FeatureCollection has no features")
    elif data["type"] == "Feature":
        geometries = [_geometry(data, what)]
    else:
        geometries = [_shape(data, what)]
    for geometry in geometries:
        if geometry.geom_type not in ("Polygon", "MultiPolygon"):
            raise InvalidInputError(
                f"{what}: a {geometry.geom_type} is not an area (need a Polygon)"
            )
        if not geometry.is_valid:
            reason = shapely.is_valid_reason(geometry)
            raise InvalidInputError(f"{what}: the polygon is not valid ({reason})")
    aoi = shapely.union_all(geometries)
    if crs is not None:
        aoi = reproject(aoi, Transformer.from_crs(crs, WGS84, always_xy=True))
    minx, miny, maxx, maxy = aoi.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise InvalidInputError(
            f"{what}: coordinates are not longitude/latitude (GeoJSON is in WGS 84, x = longitude)"
        )
    if aoi.is_empty or aoi.area <= 0:
        raise InvalidInputError(f"{what}: the polygon has no area")
    return aoi


def _legacy_crs(data: dict, what: str) -> CRS | None:
    member = data.get("crs")
    if member is None:
        return None
    name = member.get("properties", {}).get("name") if isinstance(member, dict) else None
    if not isinstance(name, str):
        raise InvalidInputError(f"{what}: the 'crs' member has no name")
    if name in _CRS84:
        return None
    try:
        return CRS.from_user_input(name)
    except CRSError:
        raise InvalidInputError(f"{what}: unknown CRS {name!r}") from None


def _geometry(feature: Any, what: str) -> BaseGeometry:
    if not isinstance(feature, dict) or not isinstance(feature.get("geometry"), dict):
        raise InvalidInputError(f"{what}: a feature has no geometry")
    return _shape(feature["geometry"], what)


def _shape(geometry: dict, what: str) -> BaseGeometry:
    try:
        return shape(geometry)
    except (
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        shapely.errors.GEOSException,
    ):
        raise InvalidInputError(f"{what}: not a valid GeoJSON geometry") from None
