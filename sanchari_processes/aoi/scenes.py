"""The scenes an AOI run reads: from a folder of GeoTIFFs, a STAC ItemCollection, or COG URLs.

Every kind of source becomes the same list of :class:`Scene` (where to open it, its footprint
in EPSG:4326, which bands are red, green, blue), best first: the finest resolution, then the
newest. A block reads only the scenes that meet its window, and only its window of each.
Remote scenes (http(s)) are opened through the address guard (:mod:`sanchari_processes.netguard`,
via :func:`~sanchari_processes.sources.remote.open_remote`), never by GDAL's own network code.
"""

from __future__ import annotations

import contextlib
import json
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pystac
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from sanchari_processes.errors import InvalidInputError, SanchariError
from sanchari_processes.sources.remote import check_href, is_http_url, open_remote, probe_remote
from sanchari_processes.sources.settings import RemoteSettings
from sanchari_processes.sources.stac import STAC_ERRORS

#: Largest ItemCollection or URL list read (bytes).
MAX_LIST_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Scene:
    """One raster of the run: where it is, what it covers (EPSG:4326), which bands to read."""

    location: str
    footprint: BaseGeometry
    bands: tuple[int, ...] | None = None
    #: Metres per pixel when known (ranking only).
    gsd_m: float | None = None
    #: ISO date-time when known (ranking only: the newest wins among equals).
    datetime: str | None = None

    @property
    def remote(self) -> bool:
        return is_http_url(self.location)

    def rank(self) -> tuple[float, float]:
        """Sort key: finest resolution first, then newest."""
        when = _timestamp(self.datetime)
        return (round(self.gsd_m, 6) if self.gsd_m else math.inf, -when)


def find_scenes(
    sources: Sequence[str],
    remote: RemoteSettings | None = None,
    area: BaseGeometry | None = None,
) -> list[Scene]:
    """The scenes of ``--imagery`` values, best first (one error line for a bad source).

    Each value is a folder of GeoTIFFs, a STAC ItemCollection (``.json``/``.geojson``), a text
    file of COG URLs (one a line), one COG URL, or a STAC API item search URL (``…/search?…``,
    see :mod:`.stac_api`: searched over ``area``, EPSG:4326).
    """
    from sanchari_processes.aoi.stac_api import is_search_url

    remote = remote or RemoteSettings()
    scenes: list[Scene] = []
    for source in sources:
        if is_search_url(source):
            scenes.extend(search_scenes(source, area, remote))
            continue
        if is_http_url(source):
            scenes.append(url_scene(source, remote))
            continue
        path = Path(source)
        if path.is_dir():
            scenes.extend(folder_scenes(path))
        elif not path.is_file():
            raise InvalidInputError(f"imagery not found: {source}")
        elif path.suffix.lower() in (".json", ".geojson"):
            scenes.extend(item_collection_scenes(path, remote))
        elif path.suffix.lower() in (".tif", ".tiff"):
            scenes.extend(folder_scenes(path))
        else:
            for url in _url_lines(path):
                scenes.append(url_scene(url, remote))
    if not scenes:
        raise InvalidInputError("no imagery: the sources hold no georeferenced GeoTIFF")
    unique = {s.location: s for s in scenes}
    return sorted(unique.values(), key=Scene.rank)


def folder_scenes(path: Path) -> list[Scene]:
    """The georeferenced GeoTIFFs of a folder (the catalogue's index), or one GeoTIFF."""
    from sanchari_processes.sources.catalogue import Catalogue

    if path.is_file():
        catalogue = Catalogue(path.parent)
        entries = [e for e in catalogue.entries() if e.path == path.resolve()]
        if not entries:
            raise InvalidInputError(f"{path} is not a georeferenced GeoTIFF")
    else:
        entries = Catalogue(path).entries()
        if not entries:
            raise InvalidInputError(f"no georeferenced GeoTIFF in {path}")
    return [Scene(str(e.path), e.footprint, None, e.gsd_m, _mtime_iso(e.mtime_ns)) for e in entries]


def item_collection_scenes(path: Path, remote: RemoteSettings) -> list[Scene]:
    """The RGB asset of each Item of a STAC ItemCollection file (local or http(s) assets)."""
    if path.stat().st_size > MAX_LIST_BYTES:
        raise InvalidInputError(f"{path.name} is over {MAX_LIST_BYTES // 2**20} MiB")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInputError(f"{path.name} is not a STAC ItemCollection ({exc})") from None
    items = parse_item_collection(data, path.name)
    return items_scenes(items, path.resolve().as_uri(), path.name, remote, local=True)


def parse_item_collection(data: Any, label: str) -> list[pystac.Item]:
    """The Items of a parsed ItemCollection (one error naming ``label`` when it is not one)."""
    try:
        collection = pystac.ItemCollection.from_dict(data, preserve_dict=False)
    except (ValueError, TypeError, KeyError, AttributeError, *STAC_ERRORS) as exc:
        raise InvalidInputError(f"{label} is not a STAC ItemCollection ({exc})") from None
    return list(collection.items)


def items_scenes(
    items: Sequence[pystac.Item], base: str, label: str, remote: RemoteSettings, *, local: bool
) -> list[Scene]:
    """A scene of each Item's RGB asset (its href resolved against ``base``).

    http(s) assets are checked by the address guard; local files only when ``local`` (a file
    the operator gave on the command line, never an Item from a request or a remote API).
    """
    from sanchari_processes.sources.stac import rgb_asset

    scenes = []
    for item in items:
        try:
            key, bands = rgb_asset(item)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{label}, item {item.id}: {exc.message}") from None
        own = item.get_self_href()
        href = urljoin(
            own if not local and own and is_http_url(own) else base, item.assets[key].href
        )
        if local and href.startswith("file://"):
            href = str(Path(href.removeprefix("file://")))
            if not Path(href).is_file():
                raise InvalidInputError(f"{label}, item {item.id}: asset not found: {href}")
        elif is_http_url(href):
            _check(href, remote)
        else:
            raise InvalidInputError(
                f"{label}, item {item.id}: asset {key} is not "
                + ("a file or URL" if local else "at an http(s) URL")
            )
        if item.geometry is not None:
            footprint = shape(item.geometry)
        elif item.bbox is not None:
            footprint = box(*item.bbox[:2], *item.bbox[-2:])
        else:
            raise InvalidInputError(f"{label}, item {item.id}: no geometry or bbox")
        gsd = item.properties.get("gsd")
        when = item.properties.get("datetime")
        scenes.append(Scene(href, footprint, bands, float(gsd) if gsd else None, when))
    return scenes


def search_scenes(url: str, area: BaseGeometry | None, remote: RemoteSettings) -> list[Scene]:
    """The scenes of the Items a STAC API search finds over ``area``."""
    from sanchari_processes.aoi.stac_api import search_items

    if area is None:
        raise InvalidInputError("a STAC API search needs the area to search over")
    items = search_items(url, area, remote)
    return items_scenes(items, url, f"STAC API search {url[:200]}", remote, local=False)


def url_scene(url: str, remote: RemoteSettings) -> Scene:
    """A COG by URL: its header read through the address guard for the footprint."""
    _check(url, remote)
    try:
        raster = probe_remote(url, 2**62, remote)
    except SanchariError as exc:
        raise _about(url, exc) from None
    assert raster.bounds_wgs84 is not None
    return Scene(url, box(*raster.bounds_wgs84))


@contextlib.contextmanager
def open_scene(scene: Scene, remote: RemoteSettings) -> Iterator[Any]:
    """The scene as an open rasterio dataset (remote ones through the guard)."""
    if scene.remote:
        with open_remote(scene.location, remote.policy, remote.fetch_deadline_s) as dataset:
            yield dataset
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            dataset = rasterio.open(scene.location)
    except RasterioIOError as exc:
        raise InvalidInputError(f"cannot read {scene.location}: {exc}") from None
    with dataset:
        yield dataset


def _check(url: str, remote: RemoteSettings) -> None:
    try:
        check_href(url, remote)
    except SanchariError as exc:
        raise _about(url, exc) from None


def _about(url: str, exc: SanchariError) -> InvalidInputError:
    """The sources' message about their ``image`` input, said of this imagery URL."""
    return InvalidInputError(f"imagery {url[:200]}: {exc.message.removeprefix(_IMAGE)}")


_IMAGE = "input 'image': "


def _url_lines(path: Path) -> list[str]:
    if path.stat().st_size > MAX_LIST_BYTES:
        raise InvalidInputError(f"{path.name} is over {MAX_LIST_BYTES // 2**20} MiB")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    urls = [line for line in lines if line and not line.startswith("#")]
    bad = [u for u in urls if not is_http_url(u)]
    if bad:
        raise InvalidInputError(f"{path.name}: not an http(s) URL: {bad[0][:200]}")
    return urls


def _mtime_iso(mtime_ns: int) -> str:
    return datetime.fromtimestamp(mtime_ns / 1e9).astimezone().isoformat()


def _timestamp(text: str | None) -> float:
    if not text:
        return 0.0
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
