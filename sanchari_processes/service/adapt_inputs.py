"""The inputs of ``road-model-adaptation`` beside the imagery: the user's roads, the area where
they are complete, the budget and the model ids; GeoJSON checked before any job exists.

``roads`` and ``area`` come as GeoJSON (a FeatureCollection, a Feature or a geometry) by value,
as a qualified value (``{"value": {...}, "mediaType": "application/geo+json"}``) or by reference
(``{"href": "https://..."}``, fetched through the address guard, off the web threads). GeoJSON
is longitude/latitude (RFC 7946) unless it names another CRS the old way (a ``crs`` member, as
some tools still write); a CRS that cannot be read is a 400, as is anything not lines (roads)
or polygons (area), coordinates that are not finite or off the globe, and too many vertices.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from sanchari_processes.adapt.config import MAX_MINUTES, MAX_ROAD_WIDTH_M, MIN_MINUTES
from sanchari_processes.errors import InvalidInputError, SanchariError
from sanchari_processes.inputs import InputSpec
from sanchari_processes.netguard import request
from sanchari_processes.service.models import MODEL_ID_PATTERN
from sanchari_processes.sources.remote import RemoteSettings, is_http_url

GEOJSON = "application/geo+json"
#: Media types a qualified GeoJSON value may name.
GEOJSON_TYPES = (GEOJSON, "application/json", "application/vnd.geo+json")
#: Largest GeoJSON fetched by reference (bytes), and most vertices taken (by value or not).
MAX_FETCH_BYTES = 32 * 1024 * 1024
MAX_VERTICES = 2_000_000
LINES = ("LineString", "MultiLineString")
POLYGONS = ("Polygon", "MultiPolygon")
_WGS84 = CRS.from_epsg(4326)
#: Narrowest road width a request may ask for (metres; the command line takes any > 0).
MIN_ROAD_WIDTH_M = 0.5
_GEOMETRY_TYPES = (*LINES, *POLYGONS, "Point", "MultiPoint", "GeometryCollection")

GEOJSON_FORMS = (
    "GeoJSON (a FeatureCollection, a Feature or a geometry) by value, as "
    '{"value": {...}, "mediaType": "application/geo+json"}, or by reference as '
    '{"href": "https://..."}'
)


@dataclass(frozen=True)
class Shapes:
    """Checked geometries and their CRS (WKT), picklable: they travel with the job."""

    geoms: tuple[shapely.Geometry, ...]
    crs_wkt: str

    @property
    def crs(self) -> CRS:
        return CRS.from_wkt(self.crs_wkt)

    def bounds_lonlat(self, what: str) -> tuple[float, float, float, float]:
        """Their bounding box in longitude/latitude (400 when it cannot be computed)."""
        minx, miny, maxx, maxy = (float(v) for v in shapely.total_bounds(list(self.geoms)))
        crs = self.crs
        if not crs.equals(_WGS84, ignore_axis_order=True):
            to_ll = Transformer.from_crs(crs, _WGS84, always_xy=True)
            minx, miny, maxx, maxy = to_ll.transform_bounds(minx, miny, maxx, maxy, densify_pts=21)
        box = (minx, miny, maxx, maxy)
        if not all(math.isfinite(v) for v in box):
            raise InvalidInputError(f"input '{what}': its coordinates cannot be placed on Earth")
        return box


def adaptation_inputs(defaults: Any, max_minutes: float) -> dict[str, InputSpec]:
    """The process inputs besides the imagery (``defaults``: the server's AdaptConfig)."""
    geojson = {"type": "object", "contentMediaType": GEOJSON}
    model_id = {"type": "string", "pattern": MODEL_ID_PATTERN}
    return {
        "roads": InputSpec(
            "Your roads",
            "Road centrelines you already have (e.g. OpenStreetMap lines, lines drawn in QGIS, "
            f"or corrected output of road-extraction): {GEOJSON_FORMS}. LineStrings and "
            "MultiLineStrings, in longitude/latitude.",
            geojson,
            accepts={"type": "object"},
            required=True,
        ),
        "area": InputSpec(
            "Where the roads are complete",
            "Polygons inside which every road is in 'roads', so everything else there is "
            f"background: {GEOJSON_FORMS}. Default: the roads' convex hull grown by "
            f"{defaults.area_margin_m:g} m. Outside it nothing is taught.",
            geojson,
            accepts={"type": "object"},
        ),
        "minutes": InputSpec(
            "Budget (minutes)",
            "CPU minutes for the fine-tune (reading the imagery and scoring come on top).",
            {
                "type": "number",
                "minimum": MIN_MINUTES,
                "maximum": min(MAX_MINUTES, max_minutes),
                "default": defaults.minutes,
            },
        ),
        "finetune": InputSpec(
            "Fine-tune",
            "false: only re-choose the threshold for the region. true: also a fine-tune, kept "
            "only where it beats that on spatial blocks it did not train on.",
            {"type": "boolean", "default": True},
        ),
        "road_width_m": InputSpec(
            "Road width (metres)",
            "Width burnt around each centreline.",
            {
                "type": "number",
                "minimum": MIN_ROAD_WIDTH_M,
                "maximum": MAX_ROAD_WIDTH_M,
                "default": defaults.road_width_m,
            },
        ),
        "name": InputSpec(
            "Model id",
            "Id of the adapted model in the models folder (default: the base model's id, "
            "'-adapted-' and the start of the job id). It must not be taken.",
            model_id,
            accepts={"type": "string"},
        ),
        "model": InputSpec(
            "Base model",
            "Id of a model of the models folder to adapt (e.g. one adapted before, for the "
            "next round with corrected roads). Default: the server's model.",
            model_id,
            accepts={"type": "string"},
        ),
    }


@dataclass(frozen=True)
class GeoJsonInput:
    """A ``roads``/``area`` input: its GeoJSON, or the URL to fetch it from."""

    value: Mapping[str, Any] | None = None
    href: str | None = None


def geojson_input(raw: Any, what: str, remote: RemoteSettings) -> GeoJsonInput:
    """Which form ``raw`` takes (400 when none): by value, qualified value or by reference."""
    if not isinstance(raw, Mapping):
        raise InvalidInputError(f"input '{what}' must be {GEOJSON_FORMS}")
    if "href" in raw:
        unknown = sorted(set(raw) - {"href", "type", "rel", "title"})
        href = raw.get("href")
        if unknown or not isinstance(href, str) or not 0 < len(href) <= 2048:
            raise InvalidInputError(f'input \'{what}\': a reference is {{"href": "https://..."}}')
        if not is_http_url(href):
            raise InvalidInputError(f"input '{what}': href must be an http(s) URL")
        from sanchari_processes.sources.remote import check_href

        try:
            check_href(href, remote)
        except SanchariError as exc:
            raise InvalidInputError(f"input '{what}': {exc.message}") from None
        return GeoJsonInput(href=href)
    if "value" in raw:
        media = raw.get("mediaType", GEOJSON)
        if set(raw) - {"value", "mediaType", "encoding", "schema"}:
            raise InvalidInputError(f"input '{what}': a qualified value is {{value, mediaType}}")
        if not isinstance(media, str) or media.split(";")[0].strip().lower() not in GEOJSON_TYPES:
            raise InvalidInputError(f"input '{what}': mediaType must be {GEOJSON}")
        if not isinstance(raw["value"], Mapping):
            raise InvalidInputError(f"input '{what}': the value must be a GeoJSON object")
        return GeoJsonInput(value=raw["value"])
    return GeoJsonInput(value=raw)


def fetch_geojson(href: str, what: str, remote: RemoteSettings) -> Mapping[str, Any]:
    """The GeoJSON at ``href``, through the address guard (blocking: not on a web thread)."""
    try:
        response = request(
            href,
            remote.policy,
            headers={"Accept": f"{GEOJSON}, application/json"},
            deadline_s=max(remote.probe_deadline_s, 60.0),
            max_body_bytes=MAX_FETCH_BYTES,
        )
    except SanchariError as exc:
        raise InvalidInputError(f"input '{what}': {exc.message}") from None
    if response.status != 200:
        raise InvalidInputError(f"input '{what}': the href answered HTTP {response.status}")
    try:
        data = json.loads(response.body)
    except (ValueError, RecursionError):
        raise InvalidInputError(f"input '{what}': the href is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"input '{what}': the href is not a GeoJSON object")
    return data


def parse_shapes(value: Mapping[str, Any], what: str, kinds: tuple[str, ...]) -> Shapes:
    """Geometries of ``kinds`` from a GeoJSON object (400 naming ``what`` when wrong)."""
    crs = _crs_member(value.get("crs"), what)
    items = _geometries(value, what)
    geoms: list[shapely.Geometry] = []
    vertices = 0
    for item in items:
        if item is None:
            continue  # a Feature without geometry
        if not isinstance(item, Mapping):
            raise InvalidInputError(f"input '{what}': a geometry must be a GeoJSON object")
        try:
            geom = shapely.geometry.shape(item)
        except (AttributeError, KeyError, TypeError, ValueError, shapely.errors.GEOSException):
            raise InvalidInputError(f"input '{what}': not a valid GeoJSON geometry") from None
        for part in _flatten(geom):
            if part.geom_type not in kinds:
                raise InvalidInputError(
                    f"input '{what}': expected {' or '.join(kinds)}, got {part.geom_type}"
                )
            if not part.is_empty:
                geoms.append(part)
                vertices += int(shapely.get_num_coordinates(part))
        if vertices > MAX_VERTICES:
            raise InvalidInputError(f"input '{what}': more than {MAX_VERTICES} vertices")
    if not geoms:
        raise InvalidInputError(f"input '{what}': no {' or '.join(kinds)} in the GeoJSON")
    coords = shapely.get_coordinates(geoms)
    if not bool(np.isfinite(coords).all()):
        raise InvalidInputError(f"input '{what}': coordinates must be finite numbers")
    if crs.is_geographic and not (
        (abs(coords[:, 0]) <= 180).all() and (abs(coords[:, 1]) <= 90).all()
    ):
        raise InvalidInputError(
            f"input '{what}': longitude/latitude out of range (GeoJSON order: lon, lat)"
        )
    return Shapes(tuple(geoms), crs.to_wkt())


def _geometries(value: Mapping[str, Any], what: str) -> list[Any]:
    kind = value.get("type")
    if kind == "FeatureCollection":
        features = value.get("features")
        if not isinstance(features, list):
            raise InvalidInputError(f"input '{what}': a FeatureCollection needs 'features'")
        return [_feature_geometry(f, what) for f in features]
    if kind == "Feature":
        return [_feature_geometry(value, what)]
    if isinstance(kind, str) and kind in _GEOMETRY_TYPES:
        return [value]
    raise InvalidInputError(f"input '{what}' must be GeoJSON: {GEOJSON_FORMS}")


def _feature_geometry(feature: Any, what: str) -> Any:
    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        raise InvalidInputError(f"input '{what}': 'features' must hold GeoJSON Features")
    return feature.get("geometry")


def _flatten(geom: shapely.Geometry) -> list[shapely.Geometry]:
    if geom.geom_type == "GeometryCollection":
        return [p for g in geom.geoms for p in _flatten(g)]
    return [geom]


def _crs_member(member: Any, what: str) -> CRS:
    """The CRS an old-style ``crs`` member names (none: longitude/latitude, RFC 7946)."""
    if member is None:
        return _WGS84
    name = member.get("properties", {}).get("name") if isinstance(member, Mapping) else None
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"input '{what}': its CRS cannot be read (a 'crs' without name)")
    try:
        crs = CRS.from_user_input(name[:500])
    except CRSError:
        message = f"input '{what}': its CRS cannot be read ({name[:100]!r})"
        raise InvalidInputError(message) from None
    if crs.equals(CRS("OGC:CRS84")):
        return _WGS84
    return crs


def check_overlap(
    roads: tuple[float, float, float, float], imagery: tuple[float, float, float, float] | None
) -> None:
    """400 when the roads' and the imagery's longitude/latitude boxes do not meet."""
    if imagery is None:
        return
    r_minx, r_miny, r_maxx, r_maxy = roads
    i_minx, i_miny, i_maxx, i_maxy = imagery
    if r_maxx < i_minx or r_minx > i_maxx or r_maxy < i_miny or r_miny > i_maxy:
        raise InvalidInputError(
            "input 'roads' does not overlap the imagery: the roads lie within longitude "
            f"{r_minx:.5f}..{r_maxx:.5f}, latitude {r_miny:.5f}..{r_maxy:.5f}; the imagery "
            f"covers longitude {i_minx:.5f}..{i_maxx:.5f}, latitude {i_miny:.5f}..{i_maxy:.5f}"
        )


def imagery_bounds(plan: Any) -> tuple[float, float, float, float] | None:
    """A source plan's footprint in longitude/latitude, when it is known (catalogue plans at
    once, remote ones once their header was read)."""
    bounds = getattr(plan, "bounds_wgs84", None)
    if bounds is None:
        raster = getattr(plan, "raster", None)
        bounds = getattr(raster, "bounds_wgs84", None)
    return tuple(float(v) for v in bounds) if bounds else None  # type: ignore[return-value]
