"""The user's roads as training labels on the model's grid: road, background, or ignored.

Roads come as centrelines (any vector format GDAL reads, any CRS; an OpenStreetMap extract or
lines drawn in QGIS) or as a road mask raster. Lines are burnt with a road width and an ignored
band on each side (widths are uncertain, so the edge teaches nothing); a mask keeps its own
widths and gets the same ignored band. Inside the *area* where the roads are complete every
other pixel is background; outside it nothing is taught.

Everything is done in the grid's pixel space: the model grid has square ground pixels, so a
width in metres is a width in pixels even over EPSG:4326 imagery.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from rasterio.enums import Resampling
from rasterio.features import rasterize
from rasterio.warp import reproject
from scipy import ndimage

from sanchari_processes.adapt.config import (
    DEFAULT_AREA_MARGIN_M,
    DEFAULT_IGNORE_M,
    DEFAULT_ROAD_WIDTH_M,
)
from sanchari_processes.errors import InvalidInputError

ROAD, BACKGROUND, IGNORE = 1, 0, 255
#: Suffixes read as a road mask raster rather than as vector lines.
RASTER_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".vrt", ".img", ".jp2")


@dataclass(frozen=True)
class Grid:
    """A raster grid: shape, pixel-to-CRS transform, CRS and ground metres per pixel."""

    shape: tuple[int, int]
    transform: Affine
    crs: CRS | None
    gsd_m: float


@dataclass(frozen=True)
class Roads:
    """Road centrelines (in ``crs``) or a road mask with its own grid."""

    lines: tuple[shapely.Geometry, ...] = ()
    crs: CRS | None = None
    mask: np.ndarray | None = None
    mask_grid: Grid | None = None

    @property
    def is_mask(self) -> bool:
        return self.mask is not None


def read_roads(path: Path, what: str = "roads") -> Roads:
    """Roads from a vector file (lines) or a raster (a road mask, road where > 0)."""
    if path.suffix.lower() in RASTER_SUFFIXES:
        return _read_mask(path)
    import pyogrio

    try:
        meta, _, wkb, _ = pyogrio.raw.read(path)
    except Exception as exc:  # pyogrio raises its own DataSourceError family
        raise InvalidInputError(f"{what}: cannot read {path.name}: {_first_line(exc)}") from None
    geoms = tuple(g for g in shapely.from_wkb(wkb) if g is not None and not g.is_empty)
    if not geoms:
        raise InvalidInputError(f"{what}: no geometry in {path.name}")
    return Roads(lines=geoms, crs=_crs(meta.get("crs"), path.name))


def roads_from_geojson(collection: Any) -> Roads:
    """Roads from a GeoJSON FeatureCollection or geometry (RFC 7946: longitude, latitude)."""
    if not isinstance(collection, dict):
        raise InvalidInputError("roads: expected a GeoJSON object")
    if collection.get("type") == "FeatureCollection":
        items = [f.get("geometry") for f in collection.get("features") or [] if f]
    elif collection.get("type") == "Feature":
        items = [collection.get("geometry")]
    else:
        items = [collection]
    try:
        geoms = tuple(shapely.geometry.shape(g) for g in items if g)
    except (AttributeError, TypeError, ValueError, shapely.errors.GEOSException) as exc:
        raise InvalidInputError(f"roads: not valid GeoJSON geometry ({exc})") from None
    lines = tuple(g for g in geoms if not g.is_empty)
    if not lines:
        raise InvalidInputError("roads: no line in the GeoJSON")
    return Roads(lines=lines, crs=CRS.from_epsg(4326))


def read_area(path: Path) -> tuple[tuple[shapely.Geometry, ...], CRS | None]:
    """Polygons where the roads are complete (any vector format, any CRS)."""
    roads = read_roads(path, "area")
    if roads.is_mask:
        raise InvalidInputError("area: expected polygons in a vector file, not a raster")
    return roads.lines, roads.crs


def label_grid(
    roads: Roads,
    grid: Grid,
    valid: np.ndarray,
    *,
    road_width_m: float = DEFAULT_ROAD_WIDTH_M,
    ignore_m: float = DEFAULT_IGNORE_M,
    area: tuple[tuple[shapely.Geometry, ...], CRS | None] | None = None,
    area_margin_m: float = DEFAULT_AREA_MARGIN_M,
) -> np.ndarray:
    """``(H, W)`` uint8 labels on ``grid``: :data:`ROAD`, :data:`BACKGROUND` or :data:`IGNORE`."""
    if not road_width_m > 0 or not ignore_m >= 0:
        raise InvalidInputError("need a road width > 0 m and an ignored band >= 0 m")
    band_px = ignore_m / grid.gsd_m
    extent = np.ones(grid.shape, bool)
    if roads.is_mask:
        road, extent = _mask_on_grid(roads, grid)
    else:
        lines = _to_pixels(roads.lines, roads.crs, grid, "roads")
        road = _burn(shapely.buffer(lines, road_width_m / grid.gsd_m / 2), grid.shape)
    if area is not None:
        in_area = _burn(_to_pixels(area[0], area[1], grid, "area"), grid.shape) & extent
    elif roads.is_mask:
        in_area = extent
    else:
        hull = shapely.convex_hull(shapely.union_all(lines))
        in_area = _burn(hull.buffer(area_margin_m / grid.gsd_m), grid.shape)
    band = round(band_px)  # scipy dilates until nothing changes when given 0 iterations
    uncertain = ndimage.binary_dilation(road, iterations=band) & ~road if band else road & False
    labels = np.full(grid.shape, IGNORE, np.uint8)
    labels[in_area] = BACKGROUND
    labels[in_area & road] = ROAD
    labels[uncertain | ~valid] = IGNORE
    return labels


def _to_pixels(
    geoms: tuple[shapely.Geometry, ...], crs: CRS | None, grid: Grid, what: str
) -> np.ndarray:
    """Geometries in ``crs`` as pixel (column, row) coordinates of ``grid``."""
    if not geoms:
        raise InvalidInputError(f"{what}: no geometry")
    array = np.asarray(geoms, dtype=object)
    if grid.crs is not None and crs is not None and CRS(crs) != grid.crs:
        to_grid = Transformer.from_crs(crs, grid.crs, always_xy=True)
        array = shapely.transform(array, lambda xy: np.column_stack(to_grid.transform(*xy.T)))
    inverse = ~grid.transform
    a, b, c, d, e, f = inverse.a, inverse.b, inverse.c, inverse.d, inverse.e, inverse.f

    def to_pixel(xy: np.ndarray) -> np.ndarray:
        x, y = xy[:, 0], xy[:, 1]
        return np.column_stack([a * x + b * y + c, d * x + e * y + f])

    pixels = shapely.transform(array, to_pixel)
    if not np.isfinite(shapely.bounds(pixels)).all():
        raise InvalidInputError(f"{what}: coordinates cannot be placed on the imagery")
    return pixels


def _burn(shapes: Any, shape: tuple[int, int]) -> np.ndarray:
    """True inside ``shapes`` (pixel coordinates)."""
    items = [(g, 1) for g in np.atleast_1d(shapes) if g is not None and not g.is_empty]
    if not items:
        return np.zeros(shape, bool)
    return rasterize(items, out_shape=shape, transform=Affine.identity(), dtype=np.uint8) > 0


def _mask_on_grid(roads: Roads, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """``(road, extent)`` of a mask raster on ``grid`` (nearest neighbour; same grid: as is)."""
    assert roads.mask is not None and roads.mask_grid is not None
    source = roads.mask_grid
    if source.crs is None or grid.crs is None:
        if source.shape != grid.shape:
            # plain images: the mask covers the image, at its own pixel size
            road = _resize_nearest(roads.mask > 0, grid.shape)
            return road, np.ones(grid.shape, bool)
        return roads.mask > 0, np.ones(grid.shape, bool)
    out = np.full(grid.shape, 255, np.uint8)
    reproject(
        (roads.mask > 0).astype(np.uint8),
        out,
        src_transform=source.transform,
        src_crs=source.crs,
        dst_transform=grid.transform,
        dst_crs=grid.crs,
        src_nodata=255,
        dst_nodata=255,
        resampling=Resampling.nearest,
    )
    return out == 1, out != 255


def _resize_nearest(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    rows = (np.arange(shape[0]) * mask.shape[0] / shape[0]).astype(int)
    cols = (np.arange(shape[1]) * mask.shape[1] / shape[1]).astype(int)
    return mask[rows[:, None], cols[None, :]]


def _read_mask(path: Path) -> Roads:
    try:
        with rasterio.open(path) as ds:
            mask = ds.read(1)
            crs = CRS(ds.crs) if ds.crs else None
            grid = Grid((ds.height, ds.width), ds.transform, crs, abs(ds.transform.a) or 1.0)
    except rasterio.errors.RasterioIOError as exc:
        raise InvalidInputError(f"roads: cannot read {path.name}: {_first_line(exc)}") from None
    return Roads(mask=mask, mask_grid=grid, crs=crs)


def _crs(text: str | None, name: str) -> CRS:
    """The file's CRS; a file without one is read as longitude/latitude (as GeoJSON is)."""
    if not text:
        return CRS.from_epsg(4326)
    try:
        return CRS(text)
    except CRSError as exc:
        raise InvalidInputError(f"{name}: its CRS cannot be read ({exc})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
