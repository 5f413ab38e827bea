"""An image sent in the execute request itself (OGC API - Processes binary input, base64).

``image`` may carry the GeoTIFF as base64 text, bare or as a qualified value ``{"value": …,
"mediaType": "image/tiff; application=geotiff", "encoding": "base64"}``; the request body limit
bounds its size. Planning decodes it strictly and opens it with GDAL from memory: it must be a
georeferenced, unrotated GeoTIFF within the pixel limit, else 400 (413 when too large). The web
process then writes the bytes into the job's folder (:meth:`UploadPlan.stage`) and the job
reads that file like a catalogue file, so the bytes never travel with the job.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyproj import CRS, Transformer
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.io import MemoryFile

from sanchari_processes.errors import InvalidInputError, RequestTooLargeError
from sanchari_processes.inputs import GEOTIFF, InputSpec, image_data
from sanchari_processes.sources.base import Imagery, Progress, SourceSettings
from sanchari_processes.sources.catalogue import IMAGE_INPUT
from sanchari_processes.sources.mosaic import grid_bounds

#: Where a staged upload is written inside the job's folder.
UPLOAD_NAME = "input/image.tif"
_WHITESPACE = re.compile(rb"\s+")
_ALPHABET = re.compile(rb"[A-Za-z0-9+/]*={0,2}")


@dataclass(frozen=True)
class UploadInfo:
    """What the decoded image is: size, grid and checksum (its provenance record)."""

    sha256: str
    size: int
    width: int
    height: int
    crs: str
    bounds_wgs84: tuple[float, float, float, float]

    def describe(self) -> dict[str, Any]:
        return {
            "files": ["(sent in the request)"],
            "crs": self.crs,
            "bounds_wgs84": list(self.bounds_wgs84),
            "width": self.width,
            "height": self.height,
        }


@dataclass(frozen=True)
class UploadPlan:
    """A decoded, checked image: its bytes until :meth:`stage` writes them, then its file."""

    info: UploadInfo
    data: bytes | None = None
    path: Path | None = None

    needs_network = False

    def complete(self) -> UploadPlan:
        return self

    def stage(self, job_dir: Path) -> UploadPlan:
        """Write the bytes into the job's folder (in the web process, before the job is
        queued); the plan that travels to a worker names the file only."""
        if self.data is None:
            return self
        path = Path(job_dir) / UPLOAD_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.data)
        return UploadPlan(self.info, None, path)

    def materialise(self, workdir: Path, progress: Progress) -> Imagery:
        path = self.path if self.path is not None else self.stage(Path(workdir).parent).path
        assert path is not None
        progress(1.0)
        provenance = {"window": self.info.describe(), "upload": {"sha256": self.info.sha256}}
        return Imagery(path, "upload", provenance)


def decode(text: str) -> bytes:
    """Strict base64 (line breaks allowed), or a 400 naming the ``image`` input."""
    raw = _WHITESPACE.sub(b"", text.encode("ascii", "replace"))
    if not raw or len(raw) % 4 or not _ALPHABET.fullmatch(raw):
        raise InvalidInputError(
            "input 'image': not an href, a catalogue file name (…tif) or base64 data"
        )
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError("input 'image': the base64 data cannot be decoded") from None


def inspect(data: bytes, max_pixels: int) -> UploadInfo:
    """Open ``data`` with GDAL: a georeferenced GeoTIFF within ``max_pixels``, or 400/413."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with MemoryFile(data) as memory, memory.open() as ds:
                driver, crs_text = ds.driver, ds.crs
                transform, width, height = ds.transform, ds.width, ds.height
    except (RasterioIOError, ValueError):
        raise InvalidInputError("input 'image': the data is not a raster GDAL can read") from None
    if driver != "GTiff":
        raise InvalidInputError(f"input 'image': the data is {driver}, not a GeoTIFF")
    if not crs_text:
        raise InvalidInputError("input 'image': the GeoTIFF has no georeferencing")
    if transform.b or transform.d:
        raise InvalidInputError("input 'image': rotated GeoTIFFs are not supported")
    if width * height > max_pixels:
        raise RequestTooLargeError(
            f"input 'image': the GeoTIFF has {width * height} pixels, over the limit of "
            f"{max_pixels}"
        )
    crs = CRS.from_user_input(crs_text)
    to_wgs84 = Transformer.from_crs(crs, CRS.from_epsg(4326), always_xy=True)
    west, south, east, north = to_wgs84.transform_bounds(
        *grid_bounds(transform, width, height), densify_pts=21
    )
    return UploadInfo(
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        width=width,
        height=height,
        crs=crs.to_string(),
        bounds_wgs84=(float(west), float(south), float(east), float(north)),
    )


def recorded(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """``inputs`` as a job records them: an image sent in the request becomes its size and
    checksum (never megabytes of base64 in a status document or a result's provenance)."""
    sent = image_data(inputs)
    if sent is None:
        return dict(inputs)
    text, media = sent
    try:
        data = decode(text)
    except InvalidInputError:
        return {**inputs, "image": {"encoding": "base64", "characters": len(text)}}
    summary = {"mediaType": media or GEOTIFF, "encoding": "base64", "bytes": len(data)}
    summary["sha256"] = hashlib.sha256(data).hexdigest()
    return {**inputs, "image": summary}


class UploadSource:
    """A GeoTIFF sent in the request as base64 (state: none)."""

    name = "upload"

    def __init__(self, settings: SourceSettings) -> None:
        self.settings = settings

    def inputs(self) -> dict[str, InputSpec]:
        return {"image": IMAGE_INPUT}

    def accepts(self, inputs: Mapping[str, Any]) -> bool:
        return image_data(inputs) is not None

    def plan(self, inputs: Mapping[str, Any]) -> UploadPlan:
        for name in ("latitude", "longitude", "window_size", "bbox"):
            if name in inputs:
                raise InvalidInputError(f"input '{name}' does not apply to an 'image' sent as data")
        sent = image_data(inputs)
        assert sent is not None
        data = decode(sent[0])
        return UploadPlan(inspect(data, self.settings.max_pixels), data)
