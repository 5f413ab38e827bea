"""The one seam to Earth Engine: what SANCHARi asks for, and the client protocol tests fake."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, Protocol

import numpy as np
from shapely.geometry import Polygon

from sanchari_processes.sources.gee.grid import PixelGrid


@dataclass(frozen=True)
class ImageQuery:
    """List the images of ``collection`` touching ``region`` (lon/lat) from ``start`` up to,
    not including, ``end``."""

    collection: str
    region: tuple[float, float, float, float]
    start: date
    end: date
    cloud_property: str | None = None
    max_cloud_percent: float | None = None
    sort_property: str = "system:time_start"
    ascending: bool = False
    limit: int = 64


@dataclass(frozen=True)
class ImageInfo:
    """One listed image: its asset id, acquisition time and footprint (lon/lat)."""

    id: str
    time: datetime
    footprint: Polygon | None = None
    cloud_percent: float | None = None

    @property
    def date(self) -> str:
        return self.time.date().isoformat()


@dataclass(frozen=True)
class PixelRequest:
    """Pixels of a composite of ``image_ids`` on ``grid``: ``bands`` then a 0/1 valid band."""

    image_ids: tuple[str, ...]
    bands: tuple[str, ...]
    composite: Literal["mosaic", "median"]
    dtype: Literal["uint8", "uint16"]
    grid: PixelGrid
    cloud_mask: Literal["scl"] | None = None


class EarthEngineClient(Protocol):
    """The Earth Engine calls SANCHARi makes (the seam tests replace).

    Implementations raise :class:`SanchariError` subclasses: 429 for quota and rate limits,
    503 (:class:`CredentialsError`) for refused credentials, 503 when EE is unreachable.
    """

    def list_images(self, query: ImageQuery) -> list[ImageInfo]: ...

    def compute_pixels(self, request: PixelRequest) -> np.ndarray:
        """``(len(bands) + 1, height, width)`` array of ``request.dtype``."""
        ...
