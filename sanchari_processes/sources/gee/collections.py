"""Earth Engine collections SANCHARi reads, and how each becomes an 8-bit RGB chip.

- ``USDA/NAIP/DOQQ``: bands R, G, B (8-bit, used as is). Images touching the window are taken
  newest first until their footprints cover it; they are mosaicked newest on top.
- ``COPERNICUS/S2_SR_HARMONIZED``: scenes with CLOUDY_PIXEL_PERCENTAGE <= 60 (the 64 least
  cloudy), each cloud-masked with its Scene Classification Layer (SCL: no data, saturated,
  cloud shadow, medium/high-probability cloud and cirrus are masked), then the per-pixel median
  of B4, B3, B2. Surface reflectance x 10000 in 0..3000 maps linearly to 0..255, clipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

NAIP = "USDA/NAIP/DOQQ"
SENTINEL2 = "COPERNICUS/S2_SR_HARMONIZED"
#: Sane bounds of the chip's pixel size (the model is trained near 0.5 m; Sentinel-2 is 10 m).
MIN_SCALE_M, MAX_SCALE_M = 0.25, 30.0


@dataclass(frozen=True)
class CollectionProfile:
    """How one Earth Engine collection becomes an 8-bit RGB chip."""

    id: str
    title: str
    bands: tuple[str, str, str]
    composite: Literal["mosaic", "median"]
    dtype: Literal["uint8", "uint16"]
    #: Raw values ``low..high`` map linearly to 0..255 (clipped); ``None``: already 8-bit.
    stretch: tuple[float, float] | None
    #: First acquisitions in the collection: the default start date, unless ``default_days``.
    earliest: date
    #: Default start, in days before the end date (``None``: from ``earliest``).
    default_days: int | None = None
    cloud_mask: Literal["scl"] | None = None
    cloud_property: str | None = None
    max_cloud_percent: float | None = None
    #: Listing order and size: newest first (mosaics) or least cloudy first (medians).
    sort_property: str = "system:time_start"
    ascending: bool = False
    limit: int = 64
    coverage_hint: str = ""

    def describe(self) -> dict[str, Any]:
        """The imagery rule, for provenance."""
        return {
            "bands": list(self.bands),
            "composite": self.composite,
            "cloud_mask": "SCL" if self.cloud_mask == "scl" else None,
            "stretch": (
                f"{self.stretch[0]:g}..{self.stretch[1]:g} -> 0..255, clipped"
                if self.stretch
                else None
            ),
        }

    def to_uint8(self, data: np.ndarray) -> np.ndarray:
        """Raw band values as 0..255 bytes, by the collection's documented rule."""
        if self.stretch is None:
            return np.clip(data, 0, 255).astype(np.uint8)
        low, high = self.stretch
        scaled = (data.astype(np.float32) - low) * (255.0 / (high - low))
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


COLLECTIONS: Mapping[str, CollectionProfile] = MappingProxyType(
    {
        NAIP: CollectionProfile(
            id=NAIP,
            title="NAIP",
            bands=("R", "G", "B"),
            composite="mosaic",
            dtype="uint8",
            stretch=None,
            earliest=date(2002, 1, 1),
            limit=48,
            coverage_hint="NAIP covers the contiguous United States; for other places use "
            f"collection {SENTINEL2}",
        ),
        SENTINEL2: CollectionProfile(
            id=SENTINEL2,
            title="Sentinel-2",
            bands=("B4", "B3", "B2"),
            composite="median",
            dtype="uint16",
            stretch=(0.0, 3000.0),
            earliest=date(2017, 3, 28),
            default_days=365,
            cloud_mask="scl",
            cloud_property="CLOUDY_PIXEL_PERCENTAGE",
            max_cloud_percent=60.0,
            sort_property="CLOUDY_PIXEL_PERCENTAGE",
            ascending=True,
            limit=64,
            coverage_hint="try a longer date range",
        ),
    }
)
#: Scene Classification Layer classes kept: dark area, vegetation, bare soil, water,
#: unclassified, snow (masked: no data, saturated, cloud shadow, clouds, cirrus).
SCL_CLEAR = (2, 4, 5, 6, 7, 11)
