"""Planning (grid, dates, limits: offline) and fetching a chip into an RGB + alpha GeoTIFF."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import ColorInterp
from shapely.geometry import Polygon
from shapely.ops import unary_union

from sanchari_processes.errors import (
    InvalidInputError,
    OutsideCoverageError,
    RequestTooLargeError,
    SourceUnavailableError,
)
from sanchari_processes.sources.base import Imagery
from sanchari_processes.sources.gee.client import (
    EarthEngineClient,
    ImageInfo,
    ImageQuery,
    PixelRequest,
)
from sanchari_processes.sources.gee.collections import COLLECTIONS, CollectionProfile
from sanchari_processes.sources.gee.credentials import GeeSettings
from sanchari_processes.sources.gee.grid import PixelGrid, point_grid

#: Share of the window that counts as covered (footprints are polygons, edges are fuzzy).
_COVERED = 0.999

Progress = Callable[[float], None]


@dataclass(frozen=True)
class GeePlan:
    """A validated Earth Engine request: collection, dates (inclusive) and the exact grid."""

    collection: str
    longitude: float
    latitude: float
    grid: PixelGrid
    start: date
    end: date
    settings: GeeSettings = field(default_factory=GeeSettings)
    #: The Earth Engine client to use (default: :func:`connect` in the worker; tests fake it).
    client: EarthEngineClient | None = field(default=None, compare=False, repr=False)

    @property
    def pixels(self) -> int:
        return self.grid.width * self.grid.height

    @property
    def profile(self) -> CollectionProfile:
        return COLLECTIONS[self.collection]

    # -- the SourcePlan interface ----------------------------------------------------------
    needs_network = False

    def complete(self) -> GeePlan:
        return self

    def materialise(self, workdir: Path, progress: Progress) -> Imagery:
        """Fetch the chip (Earth Engine starts once per worker process)."""
        from sanchari_processes.sources.gee.api import connect

        fetched = fetch_gee(self, self.client or connect(self.settings), workdir, progress)
        return Imagery(
            fetched.path,
            self.collection,
            {"window": fetched.window, "imagery": fetched.imagery},
        )


def plan_gee(
    longitude: float,
    latitude: float,
    *,
    collection: str,
    scale_m: float,
    window_px: int,
    start: date | None,
    end: date | None,
    today: date,
    max_pixels: int,
    settings: GeeSettings,
) -> GeePlan:
    """Check the request and fix its grid and dates (400/413 before any job or network)."""
    if collection not in COLLECTIONS:
        raise InvalidInputError(
            f"input 'collection': must be one of {', '.join(COLLECTIONS)}, got {collection[:80]!r}"
        )
    if window_px * window_px > max_pixels:
        raise RequestTooLargeError(
            f"input 'window_size': {window_px} px squared is over the limit of {max_pixels} pixels"
        )
    if not -80.0 <= latitude <= 84.0:
        raise InvalidInputError("input 'latitude': must be within -80..84 (UTM grids)")
    end = end or today
    if start is None:
        profile = COLLECTIONS[collection]
        start = profile.earliest
        if profile.default_days is not None:
            start = max(start, end - timedelta(days=profile.default_days))
    if start > end:
        raise InvalidInputError("input 'start_date' must not be after 'end_date'")
    grid = point_grid(longitude, latitude, scale_m, window_px)
    return GeePlan(collection, longitude, latitude, grid, start, end, settings)


@dataclass(frozen=True)
class GeeImagery:
    """A fetched chip on disk, with what it is made of (for provenance)."""

    path: Path
    window: dict[str, Any]
    imagery: dict[str, Any]


def fetch_gee(
    plan: GeePlan, client: EarthEngineClient, workdir: Path, progress: Progress | None = None
) -> GeeImagery:
    """List the imagery, pick images, fetch the pixels tile by tile, write an RGBA GeoTIFF."""
    profile = plan.profile
    window = plan.grid.footprint_wgs84()
    found = client.list_images(
        ImageQuery(
            collection=profile.id,
            region=tuple(float(v) for v in window.bounds),  # type: ignore[arg-type]
            start=plan.start,
            end=plan.end + timedelta(days=1),
            cloud_property=profile.cloud_property,
            max_cloud_percent=profile.max_cloud_percent,
            sort_property=profile.sort_property,
            ascending=profile.ascending,
            limit=profile.limit,
        )
    )
    chosen = choose_images(profile, found, window)
    where = f"latitude {plan.latitude}, longitude {plan.longitude}"
    dates = f"between {plan.start.isoformat()} and {plan.end.isoformat()}"
    if not chosen:
        hint = f"; {profile.coverage_hint}" if profile.coverage_hint else ""
        raise OutsideCoverageError(
            f"no {profile.title} imagery ({profile.id}) at {where} {dates}{hint}"
        )
    ids = tuple(image.id for image in chosen)
    data = np.zeros((len(profile.bands) + 1, plan.grid.height, plan.grid.width), profile.dtype)
    tiles = list(plan.grid.tiles(plan.settings.tile_px))
    for index, (row, col, tile) in enumerate(tiles):
        pixels = client.compute_pixels(
            PixelRequest(
                ids, profile.bands, profile.composite, profile.dtype, tile, profile.cloud_mask
            )
        )
        expected = (len(profile.bands) + 1, tile.height, tile.width)
        if pixels.shape != expected:
            raise SourceUnavailableError(
                f"Earth Engine returned pixels of shape {pixels.shape}, expected {expected}"
            )
        data[:, row : row + tile.height, col : col + tile.width] = pixels
        if progress:
            progress((index + 1) / len(tiles))
    valid = data[-1] > 0
    if not valid.any():
        raise OutsideCoverageError(
            f"no usable (cloud-free) {profile.title} pixels at {where} {dates}"
        )
    rgb = profile.to_uint8(data[:-1])
    rgb[:, ~valid] = 0
    path = Path(workdir) / "gee.tif"
    write_chip(path, rgb, valid, plan.grid)
    imagery = {
        "collection": profile.id,
        "start_date": plan.start.isoformat(),
        "end_date": plan.end.isoformat(),
        "images": [{"id": image.id, "date": image.date} for image in chosen],
        "valid_fraction": round(float(valid.mean()), 4),
        **profile.describe(),
    }
    return GeeImagery(path, plan.grid.describe(), imagery)


def choose_images(
    profile: CollectionProfile, found: list[ImageInfo], window: Polygon
) -> list[ImageInfo]:
    """Which listed images make the chip.

    Mosaics (NAIP): newest first until the footprints cover the window — the most recent
    image(s) covering it. Medians (Sentinel-2): every listed scene (the listing already keeps
    the least cloudy ones).
    """
    touching = [i for i in found if i.footprint is None or i.footprint.intersects(window)]
    if profile.composite == "median":
        return touching
    chosen: list[ImageInfo] = []
    covered: Polygon | None = None
    for image in sorted(touching, key=lambda i: i.time, reverse=True):
        chosen.append(image)
        if image.footprint is None:
            break
        covered = image.footprint if covered is None else unary_union([covered, image.footprint])
        if covered.intersection(window).area >= _COVERED * window.area:
            break
    return chosen


def write_chip(path: Path, rgb: np.ndarray, valid: np.ndarray, grid: PixelGrid) -> Path:
    """An 8-bit RGB + alpha GeoTIFF on exactly ``grid``."""
    profile = {
        "driver": "GTiff",
        "height": grid.height,
        "width": grid.width,
        "count": 4,
        "dtype": "uint8",
        "crs": grid.crs_code,
        "transform": grid.transform,
        "photometric": "RGB",
        "compress": "deflate",
    }
    if grid.width >= 256 and grid.height >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(rgb, [1, 2, 3])
        dst.write(np.where(valid, 255, 0).astype(np.uint8), 4)
        dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    return path
