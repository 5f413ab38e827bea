"""Google Earth Engine as an imagery source: NAIP or Sentinel-2 pixels on a grid we choose.

The chip is asked for on an explicit grid — the local UTM zone, centred on the point, ``scale``
metres per pixel — through ``ee.data.computePixels``, so it is georeferenced exactly from the
grid we sent, never guessed. It is written as an RGB + alpha GeoTIFF in the job's scratch folder
and read by the same engine as every other source.

This is the only module that imports ``ee`` (lazily: the package works without the ``gee``
extra). Earth Engine is reached through one small seam, :class:`EarthEngineClient`: the real
:class:`EarthEngineApi` builds ``ee`` expressions, tests pass a fake that records what was asked.

Imagery rules (documented in the README, "Google Earth Engine imagery"):

- ``USDA/NAIP/DOQQ``: bands R, G, B (8-bit, used as is). Images touching the window are taken
  newest first until their footprints cover it; they are mosaicked newest on top.
- ``COPERNICUS/S2_SR_HARMONIZED``: scenes with CLOUDY_PIXEL_PERCENTAGE <= 60 (the 64 least
  cloudy), each cloud-masked with its Scene Classification Layer (SCL: no data, saturated,
  cloud shadow, medium/high-probability cloud and cirrus are masked), then the per-pixel median
  of B4, B3, B2. Surface reflectance x 10000 in 0..3000 maps linearly to 0..255, clipped.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any, Literal, Protocol

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.enums import ColorInterp
from shapely.geometry import Polygon, box, shape
from shapely.ops import unary_union

from sanchari_processes.errors import (
    CredentialsError,
    InvalidInputError,
    OutsideCoverageError,
    RateLimitedError,
    RequestTooLargeError,
    SanchariError,
    SourceUnavailableError,
)

LOGGER = logging.getLogger(__name__)

NAIP = "USDA/NAIP/DOQQ"
SENTINEL2 = "COPERNICUS/S2_SR_HARMONIZED"
#: Where ``earthengine authenticate`` stores the user's refresh token.
USER_CREDENTIALS = Path("~/.config/earthengine/credentials")
#: How to authenticate, in every "no credentials" message (CLI and service alike).
AUTH_HELP = (
    "set SANCHARI_GEE_SERVICE_ACCOUNT_KEY (or GOOGLE_APPLICATION_CREDENTIALS) to a service-account "
    "JSON key, or run `earthengine authenticate` as the user running SANCHARi, and set "
    "SANCHARI_GEE_PROJECT to a Cloud project registered for Earth Engine "
    "(see Google Earth Engine imagery in the README)"
)
#: Sane bounds of the chip's pixel size (the model is trained near 0.5 m; Sentinel-2 is 10 m).
MIN_SCALE_M, MAX_SCALE_M = 0.25, 30.0
#: Share of the window that counts as covered (footprints are polygons, edges are fuzzy).
_COVERED = 0.999
_WGS84 = CRS.from_epsg(4326)

Progress = Callable[[float], None]


# -- collections ------------------------------------------------------------------------------
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


# -- settings and credentials ---------------------------------------------------------------
@dataclass(frozen=True)
class GeeSettings:
    """How this process reaches Earth Engine (paths and ids only: no secrets; picklable)."""

    project: str | None = None
    #: Service-account JSON key (or a gcloud ``authorized_user`` file).
    service_account_key: Path | None = None
    #: The refresh token ``earthengine authenticate`` stores.
    user_credentials: Path = field(default_factory=USER_CREDENTIALS.expanduser)
    #: Earth Engine endpoint (default: the standard one; the high-volume one suits batches).
    api_url: str | None = None
    #: Side of the square tiles fetched per ``computePixels`` call (EE caps one response).
    tile_px: int = 1024
    timeout_s: int = 300

    def __post_init__(self) -> None:
        if not 16 <= self.tile_px <= 8192:
            raise ValueError("tile_px must be within 16..8192")

    @classmethod
    def from_mapping(cls, block: Mapping[str, Any]) -> GeeSettings:
        """Parse the ``gee`` block of the processor settings (unknown keys are errors)."""
        known = {"project", "service_account_key", "application_credentials"}
        known |= {"user_credentials", "api_url", "tile_px", "timeout_s"}
        unknown = sorted(set(block) - known)
        if unknown:
            raise ValueError(f"unknown setting(s) in gee: {', '.join(unknown)}")
        key = _text(block.get("service_account_key")) or _text(block.get("application_credentials"))
        user = _text(block.get("user_credentials"))
        return cls(
            project=_text(block.get("project")),
            service_account_key=Path(key).expanduser() if key else None,
            user_credentials=Path(user or str(USER_CREDENTIALS)).expanduser(),
            api_url=_text(block.get("api_url")),
            tile_px=int(block.get("tile_px") or 1024),
            timeout_s=int(block.get("timeout_s") or 300),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> GeeSettings:
        """The same settings from environment variables (for the CLI, read at its edge)."""
        return cls.from_mapping(
            {
                "project": environ.get("SANCHARI_GEE_PROJECT"),
                "service_account_key": environ.get("SANCHARI_GEE_SERVICE_ACCOUNT_KEY"),
                "application_credentials": environ.get("GOOGLE_APPLICATION_CREDENTIALS"),
                "user_credentials": environ.get("SANCHARI_GEE_USER_CREDENTIALS"),
                "api_url": environ.get("SANCHARI_GEE_API_URL"),
            }
        )


@dataclass(frozen=True)
class GeeCredentials:
    """Where the credentials are and which project bills the requests (contents not kept)."""

    kind: Literal["service_account", "authorized_user", "earthengine"]
    path: Path
    project: str | None


def resolve_credentials(settings: GeeSettings) -> GeeCredentials:
    """Find usable credentials without touching the network, or say how to authenticate.

    Checked before any job exists, so a server without credentials answers 503 at once.
    """
    if importlib.util.find_spec("ee") is None:
        raise CredentialsError(
            "Earth Engine support is not installed: pip install 'sanchari-processes[gee]', "
            f"then {AUTH_HELP}"
        )
    if settings.service_account_key is not None:
        info = _read_json(settings.service_account_key, "the service-account key")
        kind = info.get("type")
        if kind == "service_account" and info.get("client_email") and info.get("private_key"):
            project = settings.project or _text(info.get("project_id"))
            return GeeCredentials("service_account", settings.service_account_key, project)
        if kind == "authorized_user" and info.get("refresh_token"):
            project = settings.project or _text(info.get("quota_project_id"))
            return _with_project(
                GeeCredentials("authorized_user", settings.service_account_key, project)
            )
        raise CredentialsError(
            "the file named by SANCHARI_GEE_SERVICE_ACCOUNT_KEY / GOOGLE_APPLICATION_CREDENTIALS "
            f"is not a service-account key; {AUTH_HELP}"
        )
    if settings.user_credentials.is_file():
        info = _read_json(settings.user_credentials, "the stored Earth Engine credentials")
        if not info.get("refresh_token"):
            raise CredentialsError(
                f"the stored Earth Engine credentials hold no refresh token; {AUTH_HELP}"
            )
        project = settings.project or _text(info.get("project"))
        return _with_project(GeeCredentials("earthengine", settings.user_credentials, project))
    raise CredentialsError(f"Earth Engine is not configured: no credentials found; {AUTH_HELP}")


def _with_project(creds: GeeCredentials) -> GeeCredentials:
    """User credentials need a Cloud project (service accounts default to their own)."""
    if not creds.project:
        raise CredentialsError(
            "Earth Engine needs a Cloud project for user credentials: set SANCHARI_GEE_PROJECT "
            "(or run `earthengine set_project PROJECT`)"
        )
    return creds


def _read_json(path: Path, what: str) -> dict[str, Any]:
    """A credentials file as JSON; errors name what it is, never its path or contents."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CredentialsError(f"{what} file does not exist; {AUTH_HELP}") from None
    except (OSError, ValueError):
        raise CredentialsError(f"{what} file is not readable JSON; {AUTH_HELP}") from None
    if not isinstance(info, dict):
        raise CredentialsError(f"{what} file is not a JSON object; {AUTH_HELP}")
    return info


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


# -- the grid ---------------------------------------------------------------------------------
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


# -- what we ask Earth Engine for ------------------------------------------------------------
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


# -- planning and fetching ---------------------------------------------------------------------
@dataclass(frozen=True)
class GeePlan:
    """A validated Earth Engine request: collection, dates (inclusive) and the exact grid."""

    collection: str
    longitude: float
    latitude: float
    grid: PixelGrid
    start: date
    end: date
    settings: GeeSettings = field(default_factory=GeeSettings)

    @property
    def pixels(self) -> int:
        return self.grid.width * self.grid.height

    @property
    def profile(self) -> CollectionProfile:
        return COLLECTIONS[self.collection]


def plan_gee(
    longitude: float,
    latitude: float,
    *,
    collection: str,
    scale_m: float,
    window_px: int,
    start: date | None,
    end: date | None,
    today: date,
    max_pixels: int,
    settings: GeeSettings,
) -> GeePlan:
    """Check the request and fix its grid and dates (400/413 before any job or network)."""
    if collection not in COLLECTIONS:
        raise InvalidInputError(
            f"input 'collection': must be one of {', '.join(COLLECTIONS)}, got {collection[:80]!r}"
        )
    if window_px * window_px > max_pixels:
        raise RequestTooLargeError(
            f"input 'window_size': {window_px} px squared is over the limit of {max_pixels} pixels"
        )
    if not -80.0 <= latitude <= 84.0:
        raise InvalidInputError("input 'latitude': must be within -80..84 (UTM grids)")
    end = end or today
    if start is None:
        profile = COLLECTIONS[collection]
        start = profile.earliest
        if profile.default_days is not None:
            start = max(start, end - timedelta(days=profile.default_days))
    if start > end:
        raise InvalidInputError("input 'start_date' must not be after 'end_date'")
    grid = point_grid(longitude, latitude, scale_m, window_px)
    return GeePlan(collection, longitude, latitude, grid, start, end, settings)


@dataclass(frozen=True)
class GeeImagery:
    """A fetched chip on disk, with what it is made of (for provenance)."""

    path: Path
    window: dict[str, Any]
    imagery: dict[str, Any]


def fetch_gee(
    plan: GeePlan, client: EarthEngineClient, workdir: Path, progress: Progress | None = None
) -> GeeImagery:
    """List the imagery, pick images, fetch the pixels tile by tile, write an RGBA GeoTIFF."""
    profile = plan.profile
    window = plan.grid.footprint_wgs84()
    found = client.list_images(
        ImageQuery(
            collection=profile.id,
            region=tuple(float(v) for v in window.bounds),  # type: ignore[arg-type]
            start=plan.start,
            end=plan.end + timedelta(days=1),
            cloud_property=profile.cloud_property,
            max_cloud_percent=profile.max_cloud_percent,
            sort_property=profile.sort_property,
            ascending=profile.ascending,
            limit=profile.limit,
        )
    )
    chosen = choose_images(profile, found, window)
    where = f"latitude {plan.latitude}, longitude {plan.longitude}"
    dates = f"between {plan.start.isoformat()} and {plan.end.isoformat()}"
    if not chosen:
        hint = f"; {profile.coverage_hint}" if profile.coverage_hint else ""
        raise OutsideCoverageError(
            f"no {profile.title} imagery ({profile.id}) at {where} {dates}{hint}"
        )
    ids = tuple(image.id for image in chosen)
    data = np.zeros((len(profile.bands) + 1, plan.grid.height, plan.grid.width), profile.dtype)
    tiles = list(plan.grid.tiles(plan.settings.tile_px))
    for index, (row, col, tile) in enumerate(tiles):
        pixels = client.compute_pixels(
            PixelRequest(
                ids, profile.bands, profile.composite, profile.dtype, tile, profile.cloud_mask
            )
        )
        expected = (len(profile.bands) + 1, tile.height, tile.width)
        if pixels.shape != expected:
            raise SourceUnavailableError(
                f"Earth Engine returned pixels of shape {pixels.shape}, expected {expected}"
            )
        data[:, row : row + tile.height, col : col + tile.width] = pixels
        if progress:
            progress((index + 1) / len(tiles))
    valid = data[-1] > 0
    if not valid.any():
        raise OutsideCoverageError(
            f"no usable (cloud-free) {profile.title} pixels at {where} {dates}"
        )
    rgb = profile.to_uint8(data[:-1])
    rgb[:, ~valid] = 0
    path = Path(workdir) / "gee.tif"
    write_chip(path, rgb, valid, plan.grid)
    imagery = {
        "collection": profile.id,
        "start_date": plan.start.isoformat(),
        "end_date": plan.end.isoformat(),
        "images": [{"id": image.id, "date": image.date} for image in chosen],
        "valid_fraction": round(float(valid.mean()), 4),
        **profile.describe(),
    }
    return GeeImagery(path, plan.grid.describe(), imagery)


def choose_images(
    profile: CollectionProfile, found: list[ImageInfo], window: Polygon
) -> list[ImageInfo]:
    """Which listed images make the chip.

    Mosaics (NAIP): newest first until the footprints cover the window — the most recent
    image(s) covering it. Medians (Sentinel-2): every listed scene (the listing already keeps
    the least cloudy ones).
    """
    touching = [i for i in found if i.footprint is None or i.footprint.intersects(window)]
    if profile.composite == "median":
        return touching
    chosen: list[ImageInfo] = []
    covered: Polygon | None = None
    for image in sorted(touching, key=lambda i: i.time, reverse=True):
        chosen.append(image)
        if image.footprint is None:
            break
        covered = image.footprint if covered is None else unary_union([covered, image.footprint])
        if covered.intersection(window).area >= _COVERED * window.area:
            break
    return chosen


def write_chip(path: Path, rgb: np.ndarray, valid: np.ndarray, grid: PixelGrid) -> Path:
    """An 8-bit RGB + alpha GeoTIFF on exactly ``grid``."""
    profile = {
        "driver": "GTiff",
        "height": grid.height,
        "width": grid.width,
        "count": 4,
        "dtype": "uint8",
        "crs": grid.crs_code,
        "transform": grid.transform,
        "photometric": "RGB",
        "compress": "deflate",
    }
    if grid.width >= 256 and grid.height >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(rgb, [1, 2, 3])
        dst.write(np.where(valid, 255, 0).astype(np.uint8), 4)
        dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    return path


# -- errors -----------------------------------------------------------------------------------
_RATE = ("too many", "rate limit", "quota", "resource_exhausted", "resource exhausted", "429")
_TOO_BIG = ("memory limit", "request size", "too large", "must be less than or equal to")
_SLOW = ("timed out", "timeout", "deadline")
_AUTH = (
    "authorize",
    "not registered",
    "permission",
    "credential",
    "unauthenticated",
    "not signed up",
    "has not been used in project",
    "invalid_grant",
    "forbidden",
    "401",
    "403",
    "no project",
)


def classify_ee_error(exc: BaseException) -> SanchariError:
    """An Earth Engine failure as the error the caller sees (EE's own text goes to the log)."""
    if isinstance(exc, SanchariError):
        return exc
    text = str(exc).lower()
    LOGGER.warning("Earth Engine: %s: %s", type(exc).__name__, str(exc)[:500])
    if any(word in text for word in _RATE):
        return RateLimitedError(
            "Earth Engine is rate-limiting this server (quota or too many concurrent "
            "requests); retry later"
        )
    if any(word in text for word in _TOO_BIG):
        return RequestTooLargeError(
            "Earth Engine could not compute a window this large; use a smaller window_size "
            "or a coarser scale"
        )
    if any(word in text for word in _SLOW):
        return SourceUnavailableError("Earth Engine timed out computing the imagery; retry later")
    if any(word in text for word in _AUTH) or "refresh" in type(exc).__name__.lower():
        return CredentialsError(f"Earth Engine refused this server's credentials; {AUTH_HELP}")
    if (
        isinstance(exc, OSError)
        or "connection" in text
        or "transport" in type(exc).__name__.lower()
    ):
        return SourceUnavailableError("Earth Engine could not be reached; retry later")
    return SourceUnavailableError("Earth Engine could not compute the imagery for this request")


# -- the real client --------------------------------------------------------------------------
def import_ee() -> ModuleType:
    """The ``ee`` module, or a 503 saying how to install it."""
    try:
        return importlib.import_module("ee")
    except ImportError:
        raise CredentialsError(
            "Earth Engine support is not installed: pip install 'sanchari-processes[gee]'"
        ) from None


class EarthEngineApi:
    """:class:`EarthEngineClient` over the ``ee`` library (which must be initialised)."""

    def __init__(self, ee: ModuleType) -> None:
        self._ee = ee

    def list_images(self, query: ImageQuery) -> list[ImageInfo]:
        ee = self._ee
        region = ee.Geometry.Rectangle(list(query.region), "EPSG:4326", False)
        images = (
            ee.ImageCollection(query.collection)
            .filterBounds(region)
            .filterDate(query.start.isoformat(), query.end.isoformat())
        )
        if query.cloud_property and query.max_cloud_percent is not None:
            images = images.filter(ee.Filter.lte(query.cloud_property, query.max_cloud_percent))
        images = images.sort(query.sort_property, query.ascending).limit(query.limit)
        fields = ["system:id", "system:time_start", "system:footprint"]
        if query.cloud_property:
            fields.append(query.cloud_property)

        def row(image: Any) -> Any:
            image = ee.Image(image)
            return ee.List([image.get(name) for name in fields])

        rows = self._call(lambda: images.toList(query.limit).map(row).getInfo())
        return [_image_info(values) for values in rows or []]

    def compute_pixels(self, request: PixelRequest) -> np.ndarray:
        ee = self._ee
        bands = list(request.bands)
        images = ee.ImageCollection([ee.Image(image_id) for image_id in request.image_ids])

        def prepare(image: Any) -> Any:
            image = ee.Image(image)
            if request.cloud_mask == "scl":
                clear = image.select("SCL").remap(list(SCL_CLEAR), [1] * len(SCL_CLEAR), 0)
                image = image.updateMask(clear)
            return image.select(bands).resample("bilinear")

        images = images.map(prepare)
        if request.composite == "median":
            composite = images.median().rename(bands)
        else:
            composite = images.sort("system:time_start").mosaic().rename(bands)
        valid = composite.mask().reduce(ee.Reducer.min()).gt(0).rename("valid")
        stack = ee.Image.cat([composite.unmask(0), valid.unmask(0)])
        stack = stack.toUint8() if request.dtype == "uint8" else stack.toUint16()
        params = {"expression": stack, "fileFormat": "NUMPY_NDARRAY", "grid": request.grid.to_ee()}
        array = self._call(lambda: ee.data.computePixels(params))
        names = [*bands, "valid"]
        return np.stack([np.asarray(array[name], dtype=request.dtype) for name in names])

    def _call(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except service_errors(self._ee) as exc:
            raise classify_ee_error(exc) from None


def service_errors(ee: ModuleType) -> tuple[type[BaseException], ...]:
    """What Earth Engine, Google auth and the HTTP stack raise (our own bugs stay 500s)."""
    import google.auth.exceptions
    import googleapiclient.errors
    import requests

    return (
        ee.EEException,
        google.auth.exceptions.GoogleAuthError,
        googleapiclient.errors.Error,
        requests.RequestException,
        OSError,
    )


def _image_info(values: list[Any]) -> ImageInfo:
    image_id, millis, footprint = values[0], values[1], values[2]
    cloud = values[3] if len(values) > 3 else None
    polygon = None
    if isinstance(footprint, dict) and footprint.get("coordinates"):
        if footprint.get("type") == "LinearRing":
            polygon = Polygon(footprint["coordinates"])
        else:
            polygon = shape(footprint)
    return ImageInfo(
        id=str(image_id),
        time=datetime.fromtimestamp(float(millis) / 1000.0, UTC),
        footprint=polygon,
        cloud_percent=float(cloud) if cloud is not None else None,
    )


@functools.lru_cache(maxsize=2)
def connect(settings: GeeSettings) -> EarthEngineClient:
    """Initialise Earth Engine once per process (and settings); the client to use.

    ``ee`` keeps process-wide state, so this is cached like the model is; a failed
    initialisation is not cached and is retried by the next job.
    """
    creds = resolve_credentials(settings)
    ee = import_ee()
    try:
        credentials = _ee_credentials(ee, creds)
        ee.Initialize(credentials=credentials, project=creds.project, url=settings.api_url)
        ee.data.setDeadline(settings.timeout_s * 1000)
    except ValueError:  # a key file google-auth cannot parse
        raise CredentialsError(f"the service-account key is not valid; {AUTH_HELP}") from None
    except service_errors(ee) as exc:
        raise classify_ee_error(exc) from None
    LOGGER.info("Earth Engine initialised (%s credentials, project %s)", creds.kind, creds.project)
    return EarthEngineApi(ee)


def _ee_credentials(ee: ModuleType, creds: GeeCredentials) -> Any:
    """OAuth2 credentials for ``ee.Initialize`` (read here, never logged or returned)."""
    if creds.kind == "service_account":
        return ee.ServiceAccountCredentials(None, key_file=str(creds.path))
    from google.oauth2.credentials import Credentials

    info = json.loads(creds.path.read_text(encoding="utf-8"))
    scopes = info.get("scopes") or (ee.oauth.SCOPES if creds.kind == "earthengine" else None)
    return Credentials(
        None,
        refresh_token=info["refresh_token"],
        token_uri=ee.oauth.TOKEN_URI,
        client_id=info.get("client_id", ee.oauth.CLIENT_ID),
        client_secret=info.get("client_secret", ee.oauth.CLIENT_SECRET),
        scopes=scopes,
        quota_project_id=creds.project,
    )
