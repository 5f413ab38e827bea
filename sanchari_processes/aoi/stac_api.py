"""Scenes from a STAC API item search, every request through the address guard.

The source is the API's item search as a GET URL, the form a browser or ``curl`` can try::

    https://host/v1/search?collections=naip&datetime=2022-01-01T00:00:00Z/2023-12-31T23:59:59Z

(a URL whose path ends in ``/search``). ``collections``, ``datetime``, ``ids`` and ``limit``
(the page size) are passed on; the AOI's bounding box is added as ``bbox`` (Items that
intersect it), so the URL gives no ``bbox`` or ``intersects`` of its own. The API's landing
page is the URL without ``/search``; pystac-client opens it and pages through the results
(``next`` links) up to :data:`MAX_SEARCH_ITEMS` Items: a search that matches more is refused,
to be narrowed.

pystac-client sends its requests with ``requests``; :class:`GuardedStacApiIO` replaces that
with :func:`sanchari_processes.netguard.request` (each address checked, redirects checked hop
by hop, bodies and time bounded) and refuses anything that is not an http(s) URL, so no link
an API returns (``next``, ``search``, an asset) is fetched unchecked.
"""

from __future__ import annotations

import json
import warnings
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pystac
import requests
from pystac_client import Client
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO
from requests.adapters import BaseAdapter
from shapely.geometry.base import BaseGeometry

from sanchari_processes.aoi.scenes import MAX_LIST_BYTES, parse_item_collection
from sanchari_processes.config import MAX_STAC_ITEMS
from sanchari_processes.errors import InvalidInputError, SanchariError
from sanchari_processes.netguard import BlockedURLError, check_url, request
from sanchari_processes.sources.remote import is_http_url
from sanchari_processes.sources.settings import RemoteSettings
from sanchari_processes.sources.stac import STAC_ERRORS

#: Most Items one search may match (more: narrow it by ``datetime`` or ``collections``).
MAX_SEARCH_ITEMS = MAX_STAC_ITEMS
#: Largest page (or landing page) read from the API (bytes).
MAX_PAGE_BYTES = 16 * 1024 * 1024
#: Query parameters of the search URL passed on to the API.
SEARCH_PARAMETERS = ("collections", "datetime", "ids", "limit")


def is_search_url(source: str) -> bool:
    """Whether ``source`` is a STAC API item search URL (an http(s) path ending ``/search``)."""
    return is_http_url(source) and urlsplit(source).path.rstrip("/").endswith("/search")


class _Refused(BaseAdapter):
    """The requests session's only adapter: nothing leaves by requests' own network code."""

    def send(self, *args: Any, **kwargs: Any) -> Any:
        raise BlockedURLError("requests outside the address guard are refused")

    def close(self) -> None:
        pass


class GuardedStacApiIO(StacApiIO):
    """pystac-client's I/O with every request sent by :func:`netguard.request`."""

    def __init__(self, remote: RemoteSettings) -> None:
        super().__init__(max_retries=None)
        self.remote = remote
        self.session.mount("http://", _Refused())
        self.session.mount("https://", _Refused())

    def read_text(self, source: Any, *args: Any, **kwargs: Any) -> str:
        if not isinstance(source, pystac.Link) and not is_http_url(str(source)):
            raise BlockedURLError("only http(s) URLs are fetched")  # no local files
        return super().read_text(source, *args, **kwargs)

    def request(
        self,
        href: str,
        method: str | None = None,
        headers: dict[str, str] | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> str:
        method = (method or "GET").upper()
        if method == "POST":
            prepared = requests.Request(method, href, headers=headers, json=parameters).prepare()
        else:
            prepared = requests.Request(method, href, headers=headers, params=parameters).prepare()
        sent = {k: str(v) for k, v in prepared.headers.items()}
        sent.setdefault("Accept", "application/geo+json, application/json")
        body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
        if body is not None and not isinstance(body, bytes):
            raise APIError("a streamed request body is not sent")
        response = request(
            str(prepared.url),
            self.remote.policy,
            method=method,
            headers=sent,
            body=body,
            deadline_s=self.remote.fetch_deadline_s,
            max_body_bytes=MAX_PAGE_BYTES,
        )
        if not 200 <= response.status < 300:
            raise APIError(f"HTTP {response.status} from {response.url[:200]}")
        try:
            return response.body.decode("utf-8")
        except UnicodeDecodeError:
            raise APIError(f"{response.url[:200]} did not answer UTF-8 JSON") from None


def search_items(url: str, area: BaseGeometry, remote: RemoteSettings) -> list[pystac.Item]:
    """The Items of the search at ``url`` that meet ``area``'s box (one error when unusable)."""
    label = f"STAC API search {url[:200]}"
    parameters = _parameters(url, label)
    root = _root(url)
    try:
        check_url(root, remote.policy)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pystac-client's NoConformsTo and the like
            client = Client.open(root, stac_io=GuardedStacApiIO(remote))
            search = client.search(
                method="GET",
                bbox=list(area.bounds),
                max_items=MAX_SEARCH_ITEMS + 1,
                **parameters,
            )
            items = list(search.items())
    except SanchariError as exc:  # refused (400) or unreachable (503): the same kind
        raise type(exc)(f"{label}: {exc.message}") from None
    except (APIError, NotImplementedError, *STAC_ERRORS) as exc:
        raise InvalidInputError(f"{label}: {_first_line(exc)}") from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InvalidInputError(f"{label}: not a STAC API answer ({_first_line(exc)})") from None
    if len(items) > MAX_SEARCH_ITEMS:
        raise InvalidInputError(
            f"{label}: more than {MAX_SEARCH_ITEMS} items match; narrow it (datetime, "
            "collections) or split the area"
        )
    if not items:
        raise InvalidInputError(f"{label}: no items over the area")
    return items


def _parameters(url: str, label: str) -> dict[str, Any]:
    query = parse_qs(urlsplit(url).query, keep_blank_values=True)
    unknown = sorted(set(query) - set(SEARCH_PARAMETERS))
    if unknown:
        raise InvalidInputError(
            f"{label}: parameter '{unknown[0][:40]}' is not supported (the area gives the bbox; "
            f"use {', '.join(SEARCH_PARAMETERS)})"
        )
    found: dict[str, Any] = {}
    for name, values in query.items():
        if len(values) != 1 or not values[0]:
            raise InvalidInputError(f"{label}: give '{name}' once, with a value")
        found[name] = values[0]
    for name in ("collections", "ids"):
        if name in found:
            found[name] = [part for part in found[name].split(",") if part]
    if "limit" in found:
        if not found["limit"].isdigit() or not 0 < int(found["limit"]) <= 10000:
            raise InvalidInputError(f"{label}: 'limit' is a page size from 1 to 10000")
        found["limit"] = int(found["limit"])
    return found


def _root(url: str) -> str:
    """The API's landing page: the search URL without ``/search`` and its query."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/").removesuffix("/search") or "/"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def fetch_item_collection(url: str, remote: RemoteSettings) -> list[pystac.Item]:
    """The Items of the STAC ItemCollection at ``url``, fetched through the address guard."""
    label = f"STAC ItemCollection {url[:200]}"
    try:
        response = request(
            url,
            remote.policy,
            headers={"Accept": "application/geo+json, application/json"},
            deadline_s=remote.fetch_deadline_s,
            max_body_bytes=MAX_LIST_BYTES,
        )
    except SanchariError as exc:
        raise type(exc)(f"{label}: {exc.message}") from None
    if response.status != 200:
        raise InvalidInputError(f"{label}: HTTP {response.status}")
    try:
        data = json.loads(response.body)
    except ValueError:
        raise InvalidInputError(f"{label} is not JSON") from None
    items = parse_item_collection(data, label)
    if len(items) > MAX_SEARCH_ITEMS:
        raise InvalidInputError(f"{label}: more than {MAX_SEARCH_ITEMS} items")
    return items


def check_search_url(url: str, remote: RemoteSettings) -> None:
    """The search URL's form and parameters checked, without any network (one error)."""
    label = f"STAC API search {url[:200]}"
    _parameters(url, label)
    try:
        check_url(url, remote.policy)
    except SanchariError as exc:
        raise type(exc)(f"{label}: {exc.message}") from None
