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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import rasterio
import rasterio.shutil
from pyproj import CRS, Transformer
from rasterio.abc import FileContainer
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

from sanchari_processes.errors import (
    InvalidInputError,
    RequestTooLargeError,
    SanchariError,
    SettingsError,
    SourceUnavailableError,
)
from sanchari_processes.netguard import AllowList, NetPolicy, RangeReader, RemoteBytes, check_url

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteSettings:
    """Remote imagery: where it may come from, how long it may take, how many reads at once."""

    policy: NetPolicy = field(default_factory=NetPolicy)
    #: Remote headers checked at once by the web process (more wait their turn).
    concurrency: int = 4
    #: Longest time a job may spend copying a remote raster.
    fetch_deadline_s: float = 600.0

    @property
    def probe_deadline_s(self) -> float:
        """Longest time a header check may take (a connect and two reads)."""
        return self.policy.connect_timeout_s + 2 * self.policy.read_timeout_s

    @classmethod
    def from_mapping(cls, block: Mapping[str, Any]) -> RemoteSettings:
        """``remote_allow``, ``remote_timeout_s``, ``remote_concurrency`` of a processor block."""
        timeout = _number(block, "remote_timeout_s", 15.0)
        concurrency = int(_number(block, "remote_concurrency", 4))
        if timeout <= 0 or concurrency < 1:
            raise SettingsError("remote_timeout_s must be > 0 and remote_concurrency >= 1")
        policy = NetPolicy(
            allow=AllowList.parse(block.get("remote_allow") or None),
            connect_timeout_s=min(5.0, timeout),
            read_timeout_s=timeout,
        )
        deadline = _number(block, "remote_fetch_deadline_s", 600.0)
        return cls(policy=policy, concurrency=concurrency, fetch_deadline_s=deadline)


#: The processor settings :meth:`RemoteSettings.from_mapping` reads.
REMOTE_KEYS = {"remote_allow", "remote_timeout_s", "remote_concurrency", "remote_fetch_deadline_s"}


def _number(block: Mapping[str, Any], key: str, default: float) -> float:
    value = block.get(key)
    if value in (None, ""):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"setting {key} must be a number, got {value!r}") from None


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


def probe_remote(href: str, max_pixels: int, settings: RemoteSettings) -> RemoteRaster:
    """Read ``href``'s header: 400 when it is refused or not a raster, 413 when too large.

    A server that cannot be reached or answers too slowly is 400 as well: the caller named it.
    """
    check_href(href, settings)
    try:
        with open_remote(href, settings.policy, settings.probe_deadline_s) as ds:
            width, height = ds.width, ds.height
            crs = CRS.from_user_input(ds.crs) if ds.crs else None
            bounds = ds.bounds
    except RasterioIOError as exc:
        LOGGER.info("remote raster %s not readable: %s", href[:200], exc)
        raise InvalidInputError(
            "input 'image': the href could not be opened as a GeoTIFF over http(s)"
        ) from None
    except SanchariError as exc:
        raise InvalidInputError(f"input 'image': {exc.message}") from None
    if crs is None:
        raise InvalidInputError("input 'image': the referenced raster has no georeferencing")
    if width * height > max_pixels:
        raise RequestTooLargeError(
            f"input 'image': the raster has {width * height} pixels, over the limit of {max_pixels}"
        )
    to_wgs84 = Transformer.from_crs(crs, CRS.from_epsg(4326), always_xy=True)
    wgs84 = tuple(float(v) for v in to_wgs84.transform_bounds(*bounds, densify_pts=21))
    return RemoteRaster(href, width, height, crs.to_wkt(), wgs84)


def fetch_remote(remote: RemoteRaster, workdir: Path, settings: RemoteSettings) -> Path:
    """Copy the remote raster into ``workdir`` (GDAL reads it in blocks by range requests)."""
    dst = Path(workdir) / "remote.tif"
    try:
        with open_remote(remote.href, settings.policy, settings.fetch_deadline_s) as ds:
            if (ds.width, ds.height) != (remote.width, remote.height):
                raise SourceUnavailableError("the referenced GeoTIFF changed since it was checked")
            rasterio.shutil.copy(ds, dst, driver="GTiff", COMPRESS="DEFLATE", TILED="YES")
    except RasterioIOError as exc:
        LOGGER.warning("copy of %s failed: %s", remote.href[:200], exc)
        raise SourceUnavailableError("the referenced GeoTIFF could not be read") from None
    except InvalidInputError as exc:
        message = f"the referenced GeoTIFF could not be read: {exc.message}"
        raise SourceUnavailableError(message) from None
    return dst
