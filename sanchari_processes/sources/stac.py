"""A STAC Item by http(s) reference as an imagery source: its RGB asset, read by window.

``image`` names a STAC Item (a static ``item.json`` or a STAC API item link,
``…/collections/C/items/ID``). Off the web threads, the Item is fetched through the SSRF guard
and parsed with pystac; the asset to read is chosen by its roles and bands:

1. an asset with the ``visual`` role (a true-colour image), else
2. an asset whose bands (``eo:bands``, or STAC 1.1 ``bands`` with ``eo:common_name``) include
   ``red``, ``green`` and ``blue`` — those three bands are read, in that order, else
3. a 400 listing the Item's assets.

The asset (a COG, by its URL resolved against the Item's) is then read like any remote raster
(:mod:`.cog`): only the window inside ``bbox`` when one is given. The result's provenance names
the Item, its collection, date and the asset read, and links the Item as ``derived_from``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pystac
from pystac.extensions.eo import EOExtension

from sanchari_processes.errors import InvalidInputError, SanchariError
from sanchari_processes.inputs import InputSpec, image_href
from sanchari_processes.netguard import request
from sanchari_processes.sources.base import Imagery, Progress, SourceSettings
from sanchari_processes.sources.catalogue import BBOX_INPUT, IMAGE_INPUT
from sanchari_processes.sources.cog import RemotePlan, remote_plan_inputs
from sanchari_processes.sources.remote import Bbox, is_http_url
from sanchari_processes.sources.settings import RemoteSettings

#: What pystac raises for JSON that is not the STAC it expects (not one exception tree).
STAC_ERRORS = (
    pystac.STACError,
    pystac.STACTypeError,
    pystac.errors.RequiredPropertyMissing,
    pystac.errors.ExtensionTypeError,
)
#: ``image.type`` values that say "this is a STAC Item".
STAC_TYPES = ("application/geo+json", "application/json")
#: Largest STAC Item read (bytes).
MAX_ITEM_BYTES = 2 * 1024 * 1024
_RGB = ("red", "green", "blue")
_RASTER_TYPES = ("image/tiff", "image/vnd.stac.geotiff", "application/x-geotiff")


@dataclass(frozen=True)
class StacAsset:
    """The asset of an Item that the job reads, and what the result records about it."""

    href: str
    bands: tuple[int, ...] | None
    provenance: dict[str, Any]


def choose_asset(item: pystac.Item, item_url: str) -> StacAsset:
    """The RGB asset of ``item`` by roles and bands (see the module docstring); 400 if none."""
    key, bands = rgb_asset(item)
    asset = item.assets[key]
    href = urljoin(item_url, asset.href)
    if not is_http_url(href):
        raise InvalidInputError(f"input 'image': the STAC asset '{key}' is not at an http(s) URL")
    record = {
        "item": item_url,
        "id": item.id,
        "collection": item.collection_id,
        "datetime": item.properties.get("datetime"),
        "asset": key,
        "asset_href": href,
        "bands": list(bands) if bands else None,
    }
    return StacAsset(href, bands, record)


def rgb_asset(item: pystac.Item) -> tuple[str, tuple[int, ...] | None]:
    """The key of ``item``'s RGB asset and the bands to read (``None``: as the file says)."""
    rasters = {k: a for k, a in item.assets.items() if _is_raster(a)}
    key = next((k for k, a in rasters.items() if "visual" in (a.roles or [])), None)
    bands: tuple[int, ...] | None = None
    if key is None:
        for name, asset in rasters.items():
            names = _common_names(item, asset)
            if all(colour in names for colour in _RGB):
                key, bands = name, tuple(names.index(colour) + 1 for colour in _RGB)
                break
    if key is None:
        listed = ", ".join(sorted(item.assets)[:20]) or "none"
        raise InvalidInputError(
            "input 'image': the STAC Item has no asset with the 'visual' role or red, green "
            f"and blue bands (assets: {listed})"
        )
    return key, bands


def _is_raster(asset: pystac.Asset) -> bool:
    media = (asset.media_type or "").lower()
    if media:
        return media.startswith(_RASTER_TYPES)
    return urlsplit(asset.href).path.lower().endswith((".tif", ".tiff"))


def _common_names(item: pystac.Item, asset: pystac.Asset) -> list[str | None]:
    """The asset's bands by common name (eo extension, or STAC 1.1 ``bands``)."""
    try:
        bands = EOExtension.ext(asset).bands
        if bands:
            return [b.common_name for b in bands]
    except pystac.ExtensionNotImplemented:
        pass
    raw = asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands") or []
    return [
        (b.get("common_name") or b.get("eo:common_name")) if isinstance(b, dict) else None
        for b in raw
    ]


def fetch_item(href: str, settings: RemoteSettings) -> tuple[pystac.Item, str]:
    """The STAC Item at ``href`` (through the guard) and its final URL; 400 when unusable."""
    try:
        response = request(
            href,
            settings.policy,
            headers={"Accept": "application/geo+json, application/json"},
            deadline_s=settings.probe_deadline_s,
            max_body_bytes=MAX_ITEM_BYTES,
        )
    except SanchariError as exc:
        raise InvalidInputError(f"input 'image': {exc.message}") from None
    if response.status != 200:
        raise InvalidInputError(f"input 'image': the STAC Item answered HTTP {response.status}")
    try:
        data = json.loads(response.body)
        if not isinstance(data, dict) or data.get("type") != "Feature":
            raise ValueError("not a Feature")
        item = pystac.Item.from_dict(data, href=response.url, migrate=True)
    except (ValueError, TypeError, KeyError, *STAC_ERRORS):
        raise InvalidInputError("input 'image': the href is not a STAC Item (JSON)") from None
    return item, response.url


@dataclass(frozen=True)
class StacPlan:
    """A STAC Item to read: complete() fetches it, chooses the asset and probes its COG."""

    href: str
    settings: RemoteSettings
    max_pixels: int
    bbox: Bbox | None = None

    needs_network = True

    def complete(self) -> RemotePlan:
        item, url = fetch_item(self.href, self.settings)
        asset = choose_asset(item, url)
        provenance = {
            "stac": asset.provenance,
            "derived_from": [{"rel": "derived_from", "href": url, "type": "application/geo+json"}],
        }
        plan = RemotePlan(
            asset.href, self.settings, self.max_pixels, self.bbox, None, provenance, asset.bands
        )
        return plan.complete()

    def materialise(self, workdir: Path, progress: Progress) -> Imagery:
        return self.complete().materialise(workdir, progress)


class StacSource:
    """A STAC Item at an http(s) URL: ``type`` says so, or its URL looks like an Item's."""

    name = "stac"

    def __init__(self, settings: SourceSettings) -> None:
        self.settings = settings

    def inputs(self) -> dict[str, InputSpec]:
        return {"image": IMAGE_INPUT, "bbox": BBOX_INPUT}

    def accepts(self, inputs: Mapping[str, Any]) -> bool:
        href, media = image_href(inputs)
        if href is None or not is_http_url(href):
            return False
        if media:
            return media.split(";")[0].strip().lower() in STAC_TYPES
        path = urlsplit(href).path.lower()
        return path.endswith(".json") or "/items/" in path

    def plan(self, inputs: Mapping[str, Any]) -> StacPlan:
        href, remote, bbox = remote_plan_inputs(inputs, self.settings)
        return StacPlan(href, remote, self.settings.max_pixels, bbox)
