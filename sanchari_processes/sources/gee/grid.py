"""The pixel grid a chip is asked for: the local UTM zone, centred on the point."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from affine import Affine
from pyproj import CRS, Transformer
from shapely.geometry import Polygon, box

_WGS84 = CRS.from_epsg(4326)


@dataclass(frozen=True)
class PixelGrid:
    """A north-up pixel grid: what we ask Earth Engine for, and how the chip is georeferenced."""

    crs_code: str
    transform: Affine
    width: int
    height: int

    @property
    def crs(self) -> CRS:
        return CRS.from_user_input(self.crs_code)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        x0, y0 = self.transform * (0, 0)
        x1, y1 = self.transform * (self.width, self.height)
        return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))

    def footprint_wgs84(self) -> Polygon:
        """The grid's extent in longitude/latitude (edges densified)."""
        to_wgs84 = Transformer.from_crs(self.crs, _WGS84, always_xy=True)
        return box(*to_wgs84.transform_bounds(*self.bounds, densify_pts=21))

    def to_ee(self) -> dict[str, Any]:
        """The ``grid`` of an Earth Engine ``computePixels`` request."""
        t = self.transform
        return {
            "dimensions": {"width": self.width, "height": self.height},
            "affineTransform": {
                "scaleX": t.a,
                "shearX": t.b,
                "translateX": t.c,
                "shearY": t.d,
                "scaleY": t.e,
                "translateY": t.f,
            },
            "crsCode": self.crs_code,
        }

    def tiles(self, size: int) -> Iterator[tuple[int, int, PixelGrid]]:
        """``(row, col, sub-grid)`` tiles of at most ``size`` x ``size`` pixels."""
        for row in range(0, self.height, size):
            for col in range(0, self.width, size):
                yield (
                    row,
                    col,
                    PixelGrid(
                        self.crs_code,
                        self.transform * Affine.translation(col, row),
                        min(size, self.width - col),
                        min(size, self.height - row),
                    ),
                )

    def describe(self) -> dict[str, Any]:
        return {
            "crs": self.crs_code,
            "transform": list(self.transform)[:6],
            "bounds": list(self.bounds),
            "bounds_wgs84": [float(v) for v in self.footprint_wgs84().bounds],
            "width": self.width,
            "height": self.height,
            "scale_m": abs(self.transform.a),
        }


def utm_epsg(longitude: float, latitude: float) -> int:
    """EPSG code of the WGS 84 UTM zone holding the point (plain 6-degree zones)."""
    zone = min(60, math.floor((longitude + 180.0) / 6.0) + 1)
    return (32600 if latitude >= 0 else 32700) + zone


def point_grid(longitude: float, latitude: float, scale_m: float, size: int) -> PixelGrid:
    """A ``size`` x ``size`` grid of ``scale_m`` pixels in the local UTM zone, centred on the
    point, its corner snapped to whole multiples of ``scale_m`` (repeat requests align)."""
    epsg = utm_epsg(longitude, latitude)
    x, y = Transformer.from_crs(_WGS84, CRS.from_epsg(epsg), always_xy=True).transform(
        longitude, latitude
    )
    half = size * scale_m / 2.0
    x0 = round((x - half) / scale_m) * scale_m
    y0 = round((y + half) / scale_m) * scale_m
    return PixelGrid(f"EPSG:{epsg}", Affine(scale_m, 0.0, x0, 0.0, -scale_m, y0), size, size)
