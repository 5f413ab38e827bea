"""A fake Earth Engine at the :class:`EarthEngineClient` seam, for tests without a network.

It records every listing and pixel request, and renders pixels from *world* coordinates (a
lattice of roads every 40 m in the grid's CRS), so a chip assembled from tiles, or put on the
wrong grid, does not match a chip rendered in one piece.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from shapely.geometry import box

from sanchari_processes.sources.gee import (
    ImageInfo,
    ImageQuery,
    PixelGrid,
    PixelRequest,
    classify_ee_error,
)

#: Longitudes that make :func:`fake_gee_runner`'s Earth Engine misbehave (service tests).
NO_IMAGERY_LON = -101.5
RATE_LIMITED_LON = -102.5
REFUSED_LON = -103.5
#: A fake key's secret: it must never appear in any answer or log line.
SECRET = "FAKE-PRIVATE-KEY-MATERIAL-0123456789"


@dataclass(frozen=True)
class FakeImage:
    """An image the fake lists: ``part`` of the queried region it covers ("all" or "west")."""

    id: str
    day: str
    part: str = "all"
    cloud: float | None = None


NAIP_IMAGES = (
    FakeImage("USDA/NAIP/DOQQ/m_old_2018", "2018-07-01"),
    FakeImage("USDA/NAIP/DOQQ/m_west_2022", "2022-06-15", part="west"),
    FakeImage("USDA/NAIP/DOQQ/m_full_2020", "2020-08-20"),
)
S2_IMAGES = (
    FakeImage("COPERNICUS/S2_SR_HARMONIZED/20230601T_T13SDD", "2023-06-01", cloud=3.0),
    FakeImage("COPERNICUS/S2_SR_HARMONIZED/20230711T_T13SDD", "2023-07-11", cloud=12.5),
)


def render(grid: PixelGrid, dtype: str, n_bands: int) -> np.ndarray:
    """Bands of a road lattice at pixel centres in world coordinates, then a valid band."""
    t = grid.transform
    xs = t.c + (np.arange(grid.width) + 0.5) * t.a
    ys = t.f + (np.arange(grid.height) + 0.5) * t.e
    road = (np.mod(xs[None, :], 40.0) < 6.0) | (np.mod(ys[:, None], 40.0) < 6.0)
    low, high = (90, 190) if dtype == "uint8" else (900, 2600)
    value = np.where(road, high, low).astype(dtype)
    return np.stack([value] * n_bands + [np.ones_like(value)])


class FakeEarthEngine:
    """Records what SANCHARi asks for and answers from ``images`` (state: the records)."""

    def __init__(
        self,
        images: tuple[FakeImage, ...] = NAIP_IMAGES,
        *,
        error: str | None = None,
        valid: Callable[[PixelGrid], np.ndarray] | None = None,
    ) -> None:
        self.images = images
        self.error = error
        self.valid = valid
        self.queries: list[ImageQuery] = []
        self.requests: list[PixelRequest] = []

    def list_images(self, query: ImageQuery) -> list[ImageInfo]:
        self.queries.append(query)
        if self.error:
            raise classify_ee_error(RuntimeError(self.error))
        minx, miny, maxx, maxy = query.region
        found = []
        for image in self.images:
            east = maxx if image.part == "all" else (minx + maxx) / 2
            found.append(
                ImageInfo(
                    id=image.id,
                    time=datetime.fromisoformat(image.day).replace(tzinfo=UTC),
                    footprint=box(minx - 0.01, miny - 0.01, east, maxy + 0.01),
                    cloud_percent=image.cloud,
                )
            )
        return found

    def compute_pixels(self, request: PixelRequest) -> np.ndarray:
        self.requests.append(request)
        pixels = render(request.grid, request.dtype, len(request.bands))
        if self.valid is not None:
            pixels[-1] = self.valid(request.grid)
        return pixels


def fake_for(longitude: float) -> FakeEarthEngine:
    """The fake a service test gets, chosen by the request's longitude."""
    errors = {
        NO_IMAGERY_LON: None,
        RATE_LIMITED_LON: "Too many concurrent aggregations.",
        REFUSED_LON: "Permission denied: the caller is not registered to use Earth Engine.",
    }
    if longitude == NO_IMAGERY_LON:
        return FakeEarthEngine(images=())
    return FakeEarthEngine(error=errors.get(longitude))


def fake_gee_runner(job: Any, progress: Callable[[float], None]) -> Path:
    """The worker's job runner with the fake Earth Engine in place of the real one."""
    from dataclasses import replace

    from sanchari_processes.service.jobs import run_road_job

    fake = fake_for(job.parameters["longitude"])
    return run_road_job(replace(job, plan=replace(job.plan, client=fake)), progress)


def write_service_account_key(path: Path, project: str | None = "fake-project") -> Path:
    """A service-account key file with the fields we check (not a working key)."""
    key = {
        "type": "service_account",
        "client_email": "sanchari@fake-project.iam.gserviceaccount.com",
        "private_key_id": "0123",
        "private_key": f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    if project:
        key["project_id"] = project
    path.write_text(json.dumps(key), encoding="utf-8")
    return path
