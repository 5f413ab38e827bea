"""A STAC API stand-in on 127.0.0.1: landing page, conformance, item search with paging.

It serves the GeoTIFFs of a folder (range requests, as a COG host does) and one STAC Item for
each, whose ``visual`` asset is that file on the same server. ``GET /search`` honours
``bbox``, ``collections`` and ``limit`` (default 2 a page, so four scenes take two pages joined
by a ``next`` link); ``/collection.json`` is every Item as one static ItemCollection. Each
request's path is recorded.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import rasterio
from rasterio.warp import transform_bounds

from tests.service_fixtures import _RangeHandler

ITEM_SEARCH = "https://api.stacspec.org/v1.0.0/item-search"
COLLECTION = "scenes"


def scene_item(path: Path, base: str, number: int) -> dict[str, Any]:
    """The STAC Item of one GeoTIFF served under ``base``/cogs/."""
    with rasterio.open(path) as dataset:
        west, south, east, north = transform_bounds(dataset.crs, "EPSG:4326", *dataset.bounds)
        gsd = abs(dataset.transform.a)
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": path.stem,
        "collection": COLLECTION,
        "bbox": [west, south, east, north],
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"datetime": f"2024-01-0{number + 1}T00:00:00Z", "gsd": gsd},
        "links": [],
        "assets": {
            "visual": {
                "href": f"{base}/cogs/{path.name}",
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "roles": ["visual"],
            }
        },
    }


class StacApi:
    """The server's state: its Items (built once the port is known) and the paths asked for."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.items: list[dict[str, Any]] = []
        self.requests: list[str] = []

    def search(self, query: dict[str, list[str]], base: str) -> dict[str, Any]:
        found = self.items
        if "bbox" in query:
            w, s, e, n = (float(v) for v in query["bbox"][0].split(","))
            found = [i for i in found if _meets(i["bbox"], (w, s, e, n))]
        if "collections" in query:
            found = [i for i in found if i["collection"] in query["collections"][0].split(",")]
        limit = int(query.get("limit", ["2"])[0])
        page = int(query.get("page", ["1"])[0])
        links = []
        if page * limit < len(found):
            after = {k: v[0] for k, v in query.items()} | {"page": str(page + 1)}
            links.append({"rel": "next", "href": f"{base}/search?{urlencode(after)}"})
        return {
            "type": "FeatureCollection",
            "features": found[(page - 1) * limit : page * limit],
            "links": links,
        }


def _meets(a: list[float], b: tuple[float, ...]) -> bool:
    return a[0] <= b[2] and a[2] >= b[0] and a[1] <= b[3] and a[3] >= b[1]


def landing_page(base: str) -> dict[str, Any]:
    return {
        "type": "Catalog",
        "stac_version": "1.0.0",
        "id": "stand-in",
        "description": "A STAC API stand-in for tests",
        "conformsTo": ["https://api.stacspec.org/v1.0.0/core", ITEM_SEARCH],
        "links": [
            {"rel": "self", "href": f"{base}/"},
            {"rel": "root", "href": f"{base}/"},
            {"rel": "conformance", "href": f"{base}/conformance"},
            {"rel": "search", "href": f"{base}/search", "type": "application/geo+json"},
        ],
    }


class _ApiHandler(_RangeHandler):
    api: StacApi
    base: str

    def do_GET(self) -> None:
        self.api.requests.append(self.path)
        parts = urlsplit(self.path)
        if parts.path.startswith("/cogs/"):
            self.path = parts.path.removeprefix("/cogs")
            super().do_GET()
            return
        if parts.path in ("", "/"):
            self._json(landing_page(self.base))
        elif parts.path == "/conformance":
            self._json({"conformsTo": landing_page(self.base)["conformsTo"]})
        elif parts.path == "/search":
            self._json(self.api.search(parse_qs(parts.query), self.base))
        elif parts.path == "/collection.json":  # a static ItemCollection of every Item
            self._json({"type": "FeatureCollection", "features": self.api.items})
        else:
            self._json({"code": "NotFound"}, 404)

    def _json(self, data: Any, status: int = 200) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/geo+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def stac_api(folder: Path) -> Iterator[tuple[str, StacApi]]:
    """Serve ``folder``'s GeoTIFFs behind a STAC API on 127.0.0.1; yields its URL and state."""
    api = StacApi(folder)
    handler = type("Handler", (_ApiHandler,), {"api": api})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(folder))
    )
    base = f"http://127.0.0.1:{server.server_address[1]}"
    handler.base = base
    api.items = [scene_item(p, base, n) for n, p in enumerate(sorted(folder.glob("*.tif")))]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base, api
    finally:
        server.shutdown()
        server.server_close()
