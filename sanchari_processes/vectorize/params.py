"""The vectorizer's settings in pixels: :class:`VectorizeConfig` is in metres, the arrays are not.

Converting once, at the top, keeps every stage below a pure function of arrays and pixel
counts, and makes the defaults reproduce the V4 design's pixel values at 0.5 m.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sanchari_processes.config import VectorizeConfig
from sanchari_processes.errors import InvalidInputError

#: sknw stores pixel coordinates as int16, so a tile plus its halo (and sknw's own 1 px
#: padding) must stay below 2**15.
MAX_WINDOW_PX = 32766


@dataclass(frozen=True)
class PixelParams:
    """Every length of :class:`VectorizeConfig`, converted with the ground sample distance."""

    gsd_m: float
    threshold: float
    #: Holes of this many pixels or fewer are filled.
    fill_holes_px: int
    #: Objects of this many pixels or fewer are removed (config: smaller than ``min_object_m2``).
    min_object_px: int
    closing_radius_px: int
    spur_px: float
    self_loop_px: float
    bridge_max_px: float
    bridge_max_angle_deg: float
    simplify_px: float
    #: Mask areas deeper than this from their outline are wider than any road.
    max_half_width_px: float
    #: A dead end this close to the raster edge is a road leaving the image, not a gap.
    border_px: float
    tile_size: int
    tile_overlap: int

    @classmethod
    def from_config(cls, config: VectorizeConfig, gsd_m: float) -> PixelParams:
        """Convert metres to pixels at ``gsd_m`` metres per pixel."""
        if not (math.isfinite(gsd_m) and gsd_m > 0):
            raise InvalidInputError(f"ground sample distance must be positive, got {gsd_m!r}")
        if config.tile_size + 2 * config.tile_overlap > MAX_WINDOW_PX:
            raise InvalidInputError(
                f"tile_size + 2 * tile_overlap must be at most {MAX_WINDOW_PX} pixels"
            )
        area = gsd_m * gsd_m
        closing = round(config.closing_radius_m / gsd_m)
        return cls(
            gsd_m=gsd_m,
            threshold=config.threshold,
            fill_holes_px=math.floor(config.fill_holes_m2 / area + 1e-6),
            min_object_px=max(math.ceil(config.min_object_m2 / area - 1e-6) - 1, 0),
            closing_radius_px=closing,
            spur_px=config.spur_length_m / gsd_m,
            self_loop_px=config.self_loop_m / gsd_m,
            bridge_max_px=config.bridge_max_m / gsd_m,
            bridge_max_angle_deg=config.bridge_max_angle_deg,
            simplify_px=config.simplify_m / gsd_m,
            max_half_width_px=config.max_road_width_m / 2.0 / gsd_m,
            border_px=2.0 + closing,
            tile_size=config.tile_size,
            tile_overlap=config.tile_overlap,
        )
