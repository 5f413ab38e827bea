"""Google Earth Engine as an imagery source: NAIP or Sentinel-2 pixels on a grid we choose.

The chip is asked for on an explicit grid — the local UTM zone, centred on the point, ``scale``
metres per pixel — through ``ee.data.computePixels``, so it is georeferenced exactly from the
grid we sent, never guessed. It is written as an RGB + alpha GeoTIFF in the job's scratch folder
and read by the same engine as every other source.

One module per concern: :mod:`.collections` (imagery rules per collection), :mod:`.credentials`
(settings and credentials, offline), :mod:`.grid` (the pixel grid), :mod:`.client` (the one
seam to Earth Engine, which tests fake), :mod:`.api` (the real client over ``ee``, the only
module importing it, and error mapping), :mod:`.fetch` (planning and fetching a chip),
:mod:`.request` (the request's inputs) and :mod:`.source` (the service's imagery source).

Names are imported from their module on first use (the package itself loads nothing heavy).
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the submodule defining it.
_HOMES = {
    "AUTH_HELP": "credentials",
    "COLLECTIONS": "collections",
    "CollectionProfile": "collections",
    "EarthEngineApi": "api",
    "EarthEngineClient": "client",
    "GeeCredentials": "credentials",
    "GeeImagery": "fetch",
    "GeePlan": "fetch",
    "GeeRequest": "request",
    "GeeSettings": "credentials",
    "ImageInfo": "client",
    "ImageQuery": "client",
    "MAX_SCALE_M": "collections",
    "MIN_SCALE_M": "collections",
    "NAIP": "collections",
    "PixelGrid": "grid",
    "PixelRequest": "client",
    "SCL_CLEAR": "collections",
    "SENTINEL2": "collections",
    "USER_CREDENTIALS": "credentials",
    "choose_images": "fetch",
    "classify_ee_error": "api",
    "connect": "api",
    "fetch_gee": "fetch",
    "import_ee": "api",
    "parse_request": "request",
    "plan_gee": "fetch",
    "point_grid": "grid",
    "resolve_credentials": "credentials",
    "service_errors": "api",
    "utm_epsg": "grid",
    "write_chip": "fetch",
}

__all__ = [
    "AUTH_HELP",
    "COLLECTIONS",
    "MAX_SCALE_M",
    "MIN_SCALE_M",
    "NAIP",
    "SCL_CLEAR",
    "SENTINEL2",
    "USER_CREDENTIALS",
    "CollectionProfile",
    "EarthEngineApi",
    "EarthEngineClient",
    "GeeCredentials",
    "GeeImagery",
    "GeePlan",
    "GeeRequest",
    "GeeSettings",
    "ImageInfo",
    "ImageQuery",
    "PixelGrid",
    "PixelRequest",
    "choose_images",
    "classify_ee_error",
    "connect",
    "fetch_gee",
    "import_ee",
    "parse_request",
    "plan_gee",
    "point_grid",
    "resolve_credentials",
    "service_errors",
    "utm_epsg",
    "write_chip",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"sanchari_processes.sources.gee.{home}"), name)
