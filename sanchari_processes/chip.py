"""A georeferenced raster chip: pixels, affine transform and CRS travel together.

Modelled on rio-tiler's ``ImageData``: every stage that changes pixels (crop, resample, predict)
returns a new chip, so georeferencing can never drift away from the array it describes.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np
from affine import Affine
from pyproj import CRS, Geod, Transformer
from pyproj.exceptions import ProjError

_WGS84_GEOD = Geod(ellps="WGS84")
#: Pixels between the points measured around the centre (long enough for float precision).
_MEASURE_STEP_PX = 16


@dataclass(frozen=True)
class GeoChip:
    """Pixels with their georeferencing.

    ``data`` is ``(bands, height, width)`` for imagery or ``(height, width)`` for a single band
    (probability, mask). ``crs`` is ``None`` for plain images without georeferencing, in which
    case ``transform`` is the identity and coordinates are pixel coordinates. ``valid`` is an
    optional ``(height, width)`` boolean mask, ``True`` where the source has data.
    """

    data: np.ndarray
    transform: Affine
    crs: CRS | None
    valid: np.ndarray | None = None

    @property
    def height(self) -> int:
        return int(self.data.shape[-2])

    @property
    def width(self) -> int:
        return int(self.data.shape[-1])

    @property
    def is_georeferenced(self) -> bool:
        return self.crs is not None

    def gsd_m(self) -> float | None:
        """Ground sample distance in metres (``None`` without georeferencing)."""
        if self.crs is None:
            return None
        return pixel_size_m(self.transform, self.crs, (self.height, self.width))

    def with_data(self, data: np.ndarray, valid: np.ndarray | None = None) -> GeoChip:
        """Same georeferencing, new pixels of the same height and width."""
        if data.shape[-2:] != self.data.shape[-2:]:
            raise ValueError(f"shape {data.shape} does not match chip {self.data.shape}")
        return replace(self, data=data, valid=self.valid if valid is None else valid)


def pixel_size_m(transform: Affine, crs: CRS, shape: tuple[int, int]) -> float:
    """Mean ground size of one pixel in metres at the centre of a raster of ``shape``."""
    x_m, y_m = pixel_sizes_m(transform, crs, shape)
    return (x_m + y_m) / 2.0


def pixel_sizes_m(transform: Affine, crs: CRS, shape: tuple[int, int]) -> tuple[float, float]:
    """Ground size of one pixel along x and y in metres, on the ellipsoid at the centre.

    A projected CRS's linear unit is not a ground metre: Web Mercator stretches it by 1/cos(lat)
    (1.52x at 49 N) and every projection has a scale factor. So the centre pixel's neighbours are
    taken to longitude/latitude and the geodesic distance between them is measured, for projected
    and geographic CRSs alike (a 0.3 m EPSG:4326 scene reports ~0.3, not ~3e-6). The two axes
    differ where degrees are equal steps (EPSG:4326 at 49 N: x is 0.66 of y on the ground).
    """
    rows, cols = shape
    step = _MEASURE_STEP_PX
    cx, cy = cols / 2.0, rows / 2.0
    pixels = [(cx - step / 2, cy), (cx + step / 2, cy), (cx, cy - step / 2), (cx, cy + step / 2)]
    xs, ys = zip(*(transform * p for p in pixels), strict=True)
    try:
        lons, lats = _to_lonlat(crs).transform(xs, ys, errcheck=True)
        geod = crs.get_geod() or _WGS84_GEOD
        _, _, dx = geod.inv(lons[0], lats[0], lons[1], lats[1])
        _, _, dy = geod.inv(lons[2], lats[2], lons[3], lats[3])
        sizes = (abs(dx) / step, abs(dy) / step)
    except (ProjError, ValueError):
        sizes = (math.nan, math.nan)
    if all(math.isfinite(s) and s > 0 for s in sizes):
        return (float(sizes[0]), float(sizes[1]))
    # A CRS without a datum (engineering, local): its linear unit is all there is.
    unit = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return (
        float(math.hypot(transform.a, transform.d) * unit),
        float(math.hypot(transform.b, transform.e) * unit),
    )


@functools.lru_cache(maxsize=32)
def _to_lonlat(crs: CRS) -> Transformer:
    """CRS -> its own geographic CRS (lon/lat order); cached, building one costs milliseconds."""
    return Transformer.from_crs(crs, crs.geodetic_crs or CRS.from_epsg(4326), always_xy=True)
