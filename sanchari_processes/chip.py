"""A georeferenced raster chip: pixels, affine transform and CRS travel together.

Modelled on rio-tiler's ``ImageData``: every stage that changes pixels (crop, resample, predict)
returns a new chip, so georeferencing can never drift away from the array it describes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from affine import Affine
from pyproj import CRS, Geod

_WGS84_GEOD = Geod(ellps="WGS84")


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
    """Mean ground size of one pixel in metres, at the centre of a raster of ``shape``.

    Projected CRSs use their linear unit; geographic CRSs are measured on the WGS84 ellipsoid at
    the raster's centre, so a 0.3 m EPSG:4326 scene reports ~0.3, not ~3e-6.
    """
    if crs.is_projected:
        unit = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
        xres = math.hypot(transform.a, transform.d)
        yres = math.hypot(transform.b, transform.e)
        return float((xres + yres) / 2.0 * unit)
    rows, cols = shape
    cx, cy = transform @ (cols / 2.0, rows / 2.0)
    x1, y1 = transform @ (cols / 2.0 + 1, rows / 2.0)
    x2, y2 = transform @ (cols / 2.0, rows / 2.0 + 1)
    _, _, dx = _WGS84_GEOD.inv(cx, cy, x1, y1)
    _, _, dy = _WGS84_GEOD.inv(cx, cy, x2, y2)
    return float((abs(dx) + abs(dy)) / 2.0)
