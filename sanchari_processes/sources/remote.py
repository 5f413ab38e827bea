"""GeoTIFFs/COGs over http(s), read by HTTP range requests through the SSRF guard.

GDAL's own ``/vsicurl/`` would connect wherever the URL (or DNS, or a redirect) points, so remote
rasters are opened through a rasterio *opener* instead: GDAL reads a Python file whose bytes come
from :mod:`sanchari_processes.netguard` (checked addresses only, timeouts, a deadline). Planning
reads only the header (size check before any work) and runs off the web threads, in a small
pool (:attr:`RemoteSettings.concurrency`); the job then copies the raster block by block into
its scratch folder, so the engine reads a local file.
"""

from __future__ import annotations

import logging
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import rasterio
import rasterio.windows
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.abc import FileContainer
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError, WindowError
from rasterio.windows import Window

from sanchari_processes.errors import (
    InvalidInputError,
    OutsideCoverageError,
    RequestTooLargeError,
    SanchariError,
    SourceUnavailableError,
)
from sanchari_processes.netguard import NetPolicy, check_url
from sanchari_processes.sources.base import Progress
from sanchari_processes.sources.ranges import RangeReader, RemoteBytes
from sanchari_processes.sources.settings import RemoteSettings

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteRaster:
    """A probed remote raster and the window of it a job will copy (whole raster: ``None``)."""

    href: str
    width: int
    height: int
    crs_wkt: str | None
    bounds_wgs84: tuple[float, float, float, float] | None
    #: ``(col_off, row_off, width, height)`` of the part to read.
    window: tuple[int, int, int, int] | None = None
    count: int = 3

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of what is read."""
        return (self.window[2], self.window[3]) if self.window else (self.width, self.height)

    def describe(self) -> dict:
        described = {
            "href": self.href,
            "width": self.size[0],
            "height": self.size[1],
            "bounds_wgs84": list(self.bounds_wgs84) if self.bounds_wgs84 else None,
        }
        if self.window is not None:
            described["window"] = {
                "col_off": self.window[0],
                "row_off": self.window[1],
                "source_width": self.width,
                "source_height": self.height,
            }
        return described


@dataclass(frozen=True)
class RemoteHref:
    """A remote raster whose URL has the right form but whose header is not read yet."""

    href: str


def is_http_url(href: str) -> bool:
    try:
        return urlsplit(href).scheme.lower() in ("http", "https")
    except ValueError:
        return False


def check_href(href: str, settings: RemoteSettings) -> RemoteHref:
    """The form of ``href`` checked without any network (400 naming the ``image`` input)."""
    try:
        check_url(href, settings.policy)
    except InvalidInputError as exc:
        raise InvalidInputError(f"input 'image': {exc.message}") from None
    return RemoteHref(href)


class _Opener(FileContainer):
    """Serves one remote file to GDAL under a private name (fresh reader per GDAL open)."""

    def __init__(self, name: str, data: RemoteBytes) -> None:
        self.name = name
        self.data = data

    def open(self, path: str, mode: str = "r", **kwargs: Any) -> RangeReader:
        if path != self.name or "w" in mode or "+" in mode:
            raise FileNotFoundError(path)
        return RangeReader(self.data)

    def isfile(self, path: str) -> bool:
        return path == self.name

    def isdir(self, path: str) -> bool:
        return False

    def ls(self, path: str) -> list[str]:
        return []

    def mtime(self, path: str) -> int:
        return 0

    def size(self, path: str) -> int:
        return self.data.size if path == self.name else 0

    def rm(self, path: str) -> None:
        raise PermissionError(path)


@contextmanager
def open_remote(href: str, policy: NetPolicy, deadline_s: float) -> Iterator[Any]:
    """``href`` as an open rasterio dataset, every byte through the guard.

    Our own errors (refused address, timeout, no range support) come out as they are, not as
    GDAL's generic I/O error.
    """
    data = RemoteBytes(href, policy, deadline_s=deadline_s)
    suffix = PurePosixPath(urlsplit(href).path).suffix.lower()
    name = f"/sanchari-remote/{uuid.uuid4().hex}/image{suffix if suffix else '.tif'}"
    try:
        with (
            rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(name, opener=_Opener(name, data)) as dataset:
                yield dataset
    except RasterioIOError:
        if data.error is not None:
            raise data.error from None
        raise


#: A bbox and its CRS text, as :func:`sanchari_processes.inputs.parse_bbox` gives them.
Bbox = tuple[tuple[float, float, float, float], str]


def probe_remote(
    href: str, max_pixels: int, settings: RemoteSettings, bbox: Bbox | None = None
) -> RemoteRaster:
    """Read ``href``'s header: 400 when it is refused or not a raster, 413 when too large.

    With ``bbox`` only the window of the raster inside it is planned (404 when they do not
    overlap), and only that window counts against ``max_pixels``. A server that cannot be
    reached or answers too slowly is 400 as well: the caller named it.
    """
    check_href(href, settings)
    try:
        with open_remote(href, settings.policy, settings.probe_deadline_s) as ds:
            width, height = ds.width, ds.height
            crs = CRS.from_user_input(ds.crs) if ds.crs else None
            transform = ds.transform
            bounds = ds.bounds
            count = ds.count
    except RasterioIOError as exc:
        LOGGER.info("remote raster %s not readable: %s", href[:200], exc)
        raise InvalidInputError(
            "input 'image': the href could not be opened as a GeoTIFF over http(s)"
        ) from None
    except SanchariError as exc:
        raise InvalidInputError(f"input 'image': {exc.message}") from None
    if crs is None:
        raise InvalidInputError("input 'image': the referenced raster has no georeferencing")
    window = None if bbox is None else _bbox_window(bbox, crs, transform, width, height)
    if window is not None:
        bounds = rasterio.windows.bounds(Window(*window), transform)
    pixels = window[2] * window[3] if window else width * height
    if pixels > max_pixels:
        what = "the window of the raster inside 'bbox'" if window else "the raster"
        raise RequestTooLargeError(
            f"input 'image': {what} has {pixels} pixels, over the limit of {max_pixels}"
        )
    to_wgs84 = Transformer.from_crs(crs, CRS.from_epsg(4326), always_xy=True)
    left, bottom, right, top = bounds
    corners = to_wgs84.transform_bounds(left, bottom, right, top, densify_pts=21)
    wgs84 = tuple(float(v) for v in corners)
    return RemoteRaster(href, width, height, crs.to_wkt(), wgs84, window, count)  # type: ignore[arg-type]


def _bbox_window(
    bbox: Bbox, crs: CRS, transform: Affine, width: int, height: int
) -> tuple[int, int, int, int]:
    """The whole pixels of the raster inside ``bbox`` (404 when they do not overlap)."""
    (minx, miny, maxx, maxy), crs_text = bbox
    to_raster = Transformer.from_crs(CRS.from_user_input(crs_text), crs, always_xy=True)
    left, bottom, right, top = to_raster.transform_bounds(minx, miny, maxx, maxy, densify_pts=21)
    window = rasterio.windows.from_bounds(left, bottom, right, top, transform)
    window = window.round_offsets(op="floor").round_lengths(op="ceil")
    try:
        window = window.intersection(Window(0, 0, width, height))
    except WindowError:
        raise OutsideCoverageError("input 'bbox' does not overlap the referenced image") from None
    if window.width < 1 or window.height < 1:
        raise OutsideCoverageError("input 'bbox' does not overlap the referenced image")
    return (int(window.col_off), int(window.row_off), int(window.width), int(window.height))


def fetch_remote(
    remote: RemoteRaster,
    workdir: Path,
    settings: RemoteSettings,
    progress: Progress | None = None,
    *,
    bands: tuple[int, ...] | None = None,
) -> Path:
    """Copy the planned window of the remote raster into ``workdir``, in strips of rows.

    GDAL reads the strips by range requests, so a window of a large COG costs only the tiles
    it touches (and the overviews are never read).
    """
    dst_path = Path(workdir) / "remote.tif"
    try:
        with open_remote(remote.href, settings.policy, settings.fetch_deadline_s) as ds:
            if (ds.width, ds.height) != (remote.width, remote.height):
                raise SourceUnavailableError("the referenced GeoTIFF changed since it was checked")
            window = Window(*(remote.window or (0, 0, ds.width, ds.height)))
            _copy_window(ds, window, dst_path, progress, bands)
    except RasterioIOError as exc:
        LOGGER.warning("copy of %s failed: %s", remote.href[:200], exc)
        raise SourceUnavailableError("the referenced GeoTIFF could not be read") from None
    except InvalidInputError as exc:
        message = f"the referenced GeoTIFF could not be read: {exc.message}"
        raise SourceUnavailableError(message) from None
    return dst_path


def _copy_window(
    ds: Any,
    window: Window,
    path: Path,
    progress: Progress | None,
    bands: tuple[int, ...] | None = None,
) -> None:
    """Write ``window`` of ``ds`` as a tiled GeoTIFF, keeping band colours, nodata and mask.

    With ``bands`` only those are copied, in that order, labelled red, green, blue.
    """
    width, height = int(window.width), int(window.height)
    indexes = list(bands) if bands else list(range(1, ds.count + 1))
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": len(indexes),
        "dtype": ds.dtypes[0],
        "crs": ds.crs,
        "transform": ds.window_transform(window),
        "nodata": ds.nodata,
        "compress": "deflate",
    }
    if width >= 256 and height >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    per_dataset_mask = MaskFlags.per_dataset in ds.mask_flag_enums[0]
    strip = 512
    with rasterio.open(path, "w", **profile) as dst:
        if bands:
            dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue][: len(bands)]
        else:
            dst.colorinterp = ds.colorinterp
        for row in range(0, height, strip):
            rows = min(strip, height - row)
            part = Window(window.col_off, window.row_off + row, width, rows)
            target = Window(0, row, width, rows)
            dst.write(ds.read(indexes, window=part), window=target)
            if per_dataset_mask:
                dst.write_mask(ds.read_masks(1, window=part), window=target)
            if progress:
                progress((row + rows) / height)
