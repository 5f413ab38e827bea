"""GeoTIFFs/COGs over http(s), read with GDAL's ``/vsicurl/`` (HTTP range requests).

Only the header is fetched to plan a request (size check before any work); the job then copies
the raster block by block into its scratch folder, so the engine reads a local file and the
transfer is bounded by the request size limit.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import rasterio
import rasterio.shutil
from pyproj import CRS, Transformer
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

from sanchari_processes.errors import (
    InvalidInputError,
    RequestTooLargeError,
    SourceUnavailableError,
)

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteRaster:
    """A probed remote raster: what the job will copy."""

    href: str
    width: int
    height: int
    crs_wkt: str | None
    bounds_wgs84: tuple[float, float, float, float] | None

    def describe(self) -> dict:
        return {
            "href": self.href,
            "width": self.width,
            "height": self.height,
            "bounds_wgs84": list(self.bounds_wgs84) if self.bounds_wgs84 else None,
        }


def is_http_url(href: str) -> bool:
    return urlsplit(href).scheme.lower() in ("http", "https")


def gdal_options(timeout_s: int) -> dict[str, str]:
    """GDAL settings for remote reads: no directory listing, bounded timeouts and retries."""
    return {
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "GDAL_HTTP_TIMEOUT": str(timeout_s),
        "GDAL_HTTP_CONNECTTIMEOUT": str(min(timeout_s, 10)),
        "GDAL_HTTP_MAX_RETRY": "2",
        "CPL_VSIL_CURL_USE_HEAD": "NO",
    }


def probe_remote(href: str, max_pixels: int, timeout_s: int = 30) -> RemoteRaster:
    """Open ``href``'s header; 400 when it is not a readable raster, 413 when too large."""
    if not is_http_url(href) or not urlsplit(href).netloc:
        raise InvalidInputError("input 'image': href must be an http(s) URL")
    try:
        with rasterio.Env(**gdal_options(timeout_s)), warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(f"/vsicurl/{href}") as ds:
                width, height = ds.width, ds.height
                crs = CRS.from_user_input(ds.crs) if ds.crs else None
                bounds = ds.bounds
    except RasterioIOError as exc:
        LOGGER.info("remote raster %s not readable: %s", href, exc)
        raise InvalidInputError(
            "input 'image': the href could not be opened as a GeoTIFF over http(s)"
        ) from None
    if crs is None:
        raise InvalidInputError("input 'image': the referenced raster has no georeferencing")
    if width * height > max_pixels:
        raise RequestTooLargeError(
            f"input 'image': the raster has {width * height} pixels, over the limit of {max_pixels}"
        )
    to_wgs84 = Transformer.from_crs(crs, CRS.from_epsg(4326), always_xy=True)
    wgs84 = tuple(float(v) for v in to_wgs84.transform_bounds(*bounds, densify_pts=21))
    return RemoteRaster(href, width, height, crs.to_wkt(), wgs84)


def fetch_remote(remote: RemoteRaster, workdir: Path, timeout_s: int = 30) -> Path:
    """Copy the remote raster into ``workdir`` (GDAL reads it in blocks by range requests)."""
    dst = Path(workdir) / "remote.tif"
    try:
        with rasterio.Env(**gdal_options(timeout_s)):
            rasterio.shutil.copy(
                f"/vsicurl/{remote.href}", dst, driver="GTiff", COMPRESS="DEFLATE", TILED="YES"
            )
    except RasterioIOError as exc:
        LOGGER.warning("copy of %s failed: %s", remote.href, exc)
        raise SourceUnavailableError("the referenced GeoTIFF could not be read") from None
    return dst
