"""The real Earth Engine client over the ``ee`` library, and its errors as SANCHARi's.

This is the only module that imports ``ee`` (lazily: the package works without the ``gee``
extra).
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import numpy as np
from shapely.geometry import Polygon, shape

from sanchari_processes.errors import (
    CredentialsError,
    RateLimitedError,
    RequestTooLargeError,
    SanchariError,
    SourceUnavailableError,
)
from sanchari_processes.sources.gee.client import (
    EarthEngineClient,
    ImageInfo,
    ImageQuery,
    PixelRequest,
)
from sanchari_processes.sources.gee.collections import SCL_CLEAR
from sanchari_processes.sources.gee.credentials import (
    AUTH_HELP,
    GeeCredentials,
    GeeSettings,
    resolve_credentials,
)

LOGGER = logging.getLogger(__name__)

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
