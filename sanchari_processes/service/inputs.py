"""The processes' inputs: their OGC description, JSON-schema validation, typed requests.

pygeoapi validates nothing against a process's declared schema, so every execute request is
checked here with ``jsonschema`` before any job exists: types, ranges, unknown inputs, exactly
one imagery source. Each error becomes one 400 naming the offending input. ``road-extraction``
and ``road-extraction-gee`` share the point and engine options and the same validation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import jsonschema
from pyproj import CRS
from pyproj.exceptions import CRSError

from sanchari_processes.config import DEFAULT_SIMPLIFY_M, DEFAULT_TTA, TTA_MODES
from sanchari_processes.errors import InvalidInputError
from sanchari_processes.sources.gee import COLLECTIONS, MAX_SCALE_M, MIN_SCALE_M, NAIP, SENTINEL2

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GEOTIFF = "image/tiff; application=geotiff"
IMAGERY_INPUTS = ("latitude", "longitude", "bbox", "image")

_LATITUDE = {"type": "number", "minimum": -90, "maximum": 90}
_LONGITUDE = {"type": "number", "minimum": -180, "maximum": 180}
_BBOX = {
    "type": "object",
    "format": "ogc-bbox",
    "required": ["bbox"],
    "properties": {
        "bbox": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
        "crs": {"type": "string", "default": CRS84},
    },
    "additionalProperties": False,
}
_IMAGE_REF = {
    "type": "object",
    "required": ["href"],
    "properties": {
        "href": {"type": "string", "minLength": 1, "maxLength": 2048},
        "type": {"type": "string"},
        "rel": {"type": "string"},
        "title": {"type": "string"},
    },
    "additionalProperties": False,
}
_THRESHOLD = {"type": "number", "minimum": 0, "maximum": 1}
_TTA = {"type": "string", "enum": list(TTA_MODES), "default": DEFAULT_TTA}
_WINDOW = {"type": "integer", "minimum": 64, "default": 1024}
_SIMPLIFY = {"type": "number", "minimum": 0, "maximum": 100, "default": DEFAULT_SIMPLIFY_M}


_OPTIONAL = {"minOccurs": 0, "maxOccurs": 1}


def _point_inputs(occurs: dict[str, int]) -> dict[str, dict]:
    return {
        "latitude": {
            "title": "Latitude",
            "description": "WGS84 latitude of the centre of the window (with longitude).",
            "schema": _LATITUDE,
            **occurs,
        },
        "longitude": {
            "title": "Longitude",
            "description": "WGS84 longitude of the centre of the window (with latitude).",
            "schema": _LONGITUDE,
            **occurs,
        },
    }


def _engine_inputs() -> dict[str, dict]:
    """The model and vectorizer options both processes take."""
    return {
        "threshold": {
            "title": "Road probability threshold",
            "description": "Cut-off between road and background (default: the model's).",
            "schema": _THRESHOLD,
            **_OPTIONAL,
        },
        "tta": {
            "title": "Test-time augmentation",
            "description": "none (fastest), flip4 or d4 (best, 8x the work).",
            "schema": _TTA,
            **_OPTIONAL,
        },
    }


def _window_input(description: str, default_window: int) -> dict[str, dict]:
    return {
        "window_size": {
            "title": "Window size (pixels)",
            "description": description,
            "schema": {**_WINDOW, "default": default_window},
            **_OPTIONAL,
        },
        "simplify_m": {
            "title": "Simplification tolerance (metres)",
            "description": "Douglas-Peucker tolerance applied to the centrelines.",
            "schema": _SIMPLIFY,
            **_OPTIONAL,
        },
    }


def process_inputs(max_pixels: int, default_window: int) -> dict[str, dict]:
    """The OGC process-description ``inputs`` block."""
    optional = _OPTIONAL
    return {
        **_point_inputs(optional),
        "bbox": {
            "title": "Bounding box",
            "description": "Area to map, cut from the catalogue: [minx, miny, maxx, maxy] in "
            "x/y (longitude/latitude) order, in CRS84 unless 'crs' names another CRS "
            "(e.g. EPSG:32633).",
            "schema": _BBOX,
            **optional,
        },
        "image": {
            "title": "Image by reference",
            "description": 'A GeoTIFF/COG passed by reference: {"href": "https://…/scene.tif"}'
            " (read with HTTP range requests) or the name of a file in the server's catalogue.",
            "schema": {"type": "string", "contentEncoding": "binary", "contentMediaType": GEOTIFF},
            **optional,
        },
        **_engine_inputs(),
        **_window_input(
            f"Side of the square window cut around latitude/longitude, in source "
            f"pixels (default {default_window}; window_size squared may not exceed "
            f"{max_pixels} pixels).",
            default_window,
        ),
    }


#: Schemas of the options both processes take.
_ENGINE_PROPERTIES = {
    "threshold": _THRESHOLD,
    "tta": _TTA,
    "window_size": _WINDOW,
    "simplify_m": _SIMPLIFY,
}


def _object_schema(**properties: dict) -> dict[str, Any]:
    """An ``inputs`` object schema: these inputs plus the engine options, nothing else."""
    return {
        "type": "object",
        "properties": {**properties, **_ENGINE_PROPERTIES},
        "additionalProperties": False,
    }


#: What a request's ``inputs`` object must look like (the description plus by-reference image).
VALIDATION_SCHEMA: dict[str, Any] = _object_schema(
    latitude=_LATITUDE,
    longitude=_LONGITUDE,
    bbox=_BBOX,
    image={"oneOf": [_IMAGE_REF, {"type": "string", "minLength": 1, "maxLength": 2048}]},
)
_VALIDATOR = jsonschema.Draft202012Validator(VALIDATION_SCHEMA)


@dataclass(frozen=True)
class RoadRequest:
    """A validated request: one imagery source plus options."""

    latitude: float | None = None
    longitude: float | None = None
    bbox: tuple[float, float, float, float] | None = None
    bbox_crs: str = CRS84
    image: str | None = None
    threshold: float | None = None
    tta: str | None = None
    window_size: int | None = None
    simplify_m: float = DEFAULT_SIMPLIFY_M

    @property
    def source_kind(self) -> str:
        if self.image is not None:
            return "image"
        return "bbox" if self.bbox is not None else "point"

    def to_dict(self) -> dict[str, Any]:
        """The inputs as given (``None`` dropped), for provenance and the job record."""
        values = {k: v for k, v in asdict(self).items() if v is not None}
        if self.bbox is None:
            values.pop("bbox_crs", None)
        else:
            values["bbox"] = list(self.bbox)
        return values


def _validate(inputs: Any, validator: jsonschema.Draft202012Validator) -> dict[str, Any]:
    """Schema errors and non-finite numbers as one 400 naming the first bad input."""
    if not isinstance(inputs, dict):
        raise InvalidInputError("'inputs' must be a JSON object")
    errors = sorted(validator.iter_errors(inputs), key=lambda e: (len(e.path), list(e.path)))
    if errors:
        raise InvalidInputError(_describe(errors[0], validator.schema["properties"]))
    for key in ("latitude", "longitude", "threshold", "simplify_m", "scale"):
        if key in inputs and not math.isfinite(inputs[key]):
            raise InvalidInputError(f"input '{key}' must be a finite number")
    return inputs


def parse_inputs(inputs: Any) -> RoadRequest:
    """Validate an execute request's ``inputs``; raise a 400 naming the first bad input."""
    inputs = _validate(inputs, _VALIDATOR)
    given = [k for k in IMAGERY_INPUTS if k in inputs]
    point = {"latitude", "longitude"} & set(given)
    if len(point) == 1:
        missing = ({"latitude", "longitude"} - point).pop()
        raise InvalidInputError(f"input '{missing}' is required with '{point.pop()}'")
    sources = len(given) - (1 if point else 0)
    if sources != 1:
        raise InvalidInputError(
            "give exactly one imagery source: 'latitude' + 'longitude', 'bbox' or 'image'"
        )
    if "window_size" in inputs and not point:
        raise InvalidInputError("input 'window_size' applies to latitude/longitude requests only")
    bbox = None
    crs = CRS84
    if "bbox" in inputs:
        bbox = tuple(float(v) for v in inputs["bbox"]["bbox"])
        crs = inputs["bbox"].get("crs", CRS84)
        _check_bbox(bbox, crs)
    image = inputs.get("image")
    if isinstance(image, dict):
        image = image["href"]
    return RoadRequest(
        latitude=inputs.get("latitude"),
        longitude=inputs.get("longitude"),
        bbox=bbox,  # type: ignore[arg-type]
        bbox_crs=crs,
        image=image,
        threshold=inputs.get("threshold"),
        tta=inputs.get("tta"),
        window_size=int(inputs["window_size"]) if "window_size" in inputs else None,
        simplify_m=float(inputs.get("simplify_m", DEFAULT_SIMPLIFY_M)),
    )


_COLLECTION = {"type": "string", "enum": list(COLLECTIONS), "default": NAIP}
_SCALE = {"type": "number", "minimum": MIN_SCALE_M, "maximum": MAX_SCALE_M, "default": 1.0}
_DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$", "format": "date"}


def gee_process_inputs(max_pixels: int, default_window: int) -> dict[str, dict]:
    """The OGC ``inputs`` block of ``road-extraction-gee``."""
    required = {"minOccurs": 1, "maxOccurs": 1}
    return {
        **_point_inputs(required),
        "collection": {
            "title": "Earth Engine collection",
            "description": f"{NAIP} (NAIP, contiguous US, most recent images covering the "
            f"window) or {SENTINEL2} (Sentinel-2, global, cloud-masked median over the dates).",
            "schema": _COLLECTION,
            **_OPTIONAL,
        },
        "scale": {
            "title": "Scale (metres per pixel)",
            "description": "Pixel size of the chip requested from Earth Engine, on the local "
            "UTM grid (NAIP is ~0.6 m, Sentinel-2 10 m).",
            "schema": _SCALE,
            **_OPTIONAL,
        },
        "start_date": {
            "title": "Start date",
            "description": "First acquisition date (YYYY-MM-DD). Default: all of NAIP (from "
            "2002), or one year before end_date for Sentinel-2.",
            "schema": _DATE,
            **_OPTIONAL,
        },
        "end_date": {
            "title": "End date",
            "description": "Last acquisition date, inclusive (YYYY-MM-DD). Default: today.",
            "schema": _DATE,
            **_OPTIONAL,
        },
        **_engine_inputs(),
        **_window_input(
            f"Side of the square chip centred on latitude/longitude, in pixels of 'scale' "
            f"metres (default {default_window}; window_size squared may not exceed "
            f"{max_pixels} pixels).",
            default_window,
        ),
    }


GEE_VALIDATION_SCHEMA: dict[str, Any] = _object_schema(
    latitude=_LATITUDE,
    longitude=_LONGITUDE,
    collection=_COLLECTION,
    scale=_SCALE,
    start_date=_DATE,
    end_date=_DATE,
)
_GEE_VALIDATOR = jsonschema.Draft202012Validator(GEE_VALIDATION_SCHEMA)


@dataclass(frozen=True)
class GeeRoadRequest:
    """A validated ``road-extraction-gee`` request."""

    latitude: float
    longitude: float
    collection: str = NAIP
    scale: float = 1.0
    start_date: date | None = None
    end_date: date | None = None
    threshold: float | None = None
    tta: str | None = None
    window_size: int | None = None
    simplify_m: float = DEFAULT_SIMPLIFY_M

    def to_dict(self) -> dict[str, Any]:
        """The inputs as given (``None`` dropped), for provenance and the job record."""
        values = {k: v for k, v in asdict(self).items() if v is not None}
        for key in ("start_date", "end_date"):
            if key in values:
                values[key] = values[key].isoformat()
        return values


def parse_gee_inputs(inputs: Any) -> GeeRoadRequest:
    """Validate ``road-extraction-gee`` inputs; raise a 400 naming the first bad input."""
    inputs = _validate(inputs, _GEE_VALIDATOR)
    for key in ("latitude", "longitude"):
        if key not in inputs:
            raise InvalidInputError(f"input '{key}' is required")
    dates = {key: _parse_date(inputs, key) for key in ("start_date", "end_date")}
    if dates["start_date"] and dates["end_date"] and dates["start_date"] > dates["end_date"]:
        raise InvalidInputError("input 'start_date' must not be after 'end_date'")
    return GeeRoadRequest(
        latitude=float(inputs["latitude"]),
        longitude=float(inputs["longitude"]),
        collection=inputs.get("collection", NAIP),
        scale=float(inputs.get("scale", 1.0)),
        start_date=dates["start_date"],
        end_date=dates["end_date"],
        threshold=inputs.get("threshold"),
        tta=inputs.get("tta"),
        window_size=int(inputs["window_size"]) if "window_size" in inputs else None,
        simplify_m=float(inputs.get("simplify_m", DEFAULT_SIMPLIFY_M)),
    )


def _parse_date(inputs: dict[str, Any], key: str) -> date | None:
    if key not in inputs:
        return None
    try:
        return date.fromisoformat(inputs[key])
    except ValueError:
        raise InvalidInputError(f"input '{key}' is not a valid date (YYYY-MM-DD)") from None


def parse_crs(text: str) -> CRS:
    """A pyproj CRS from an OGC URI, ``EPSG:n`` or WKT; 400 on ``bbox`` when unknown."""
    try:
        return CRS.from_user_input(text)
    except CRSError:
        raise InvalidInputError(f"input 'bbox': unknown crs {text[:100]!r}") from None


def _check_bbox(bbox: tuple[float, ...], crs_text: str) -> None:
    minx, miny, maxx, maxy = bbox
    if not all(math.isfinite(v) for v in bbox):
        raise InvalidInputError("input 'bbox': coordinates must be finite numbers")
    if minx >= maxx or miny >= maxy:
        raise InvalidInputError("input 'bbox': need minx < maxx and miny < maxy")
    crs = parse_crs(crs_text)
    if crs.is_geographic and not (minx >= -180 and maxx <= 180 and miny >= -90 and maxy <= 90):
        raise InvalidInputError(
            "input 'bbox': longitude/latitude out of range (x/y order: lon, lat)"
        )


def _describe(error: jsonschema.ValidationError, accepted: dict[str, Any]) -> str:
    """One line naming the input, without echoing long values back."""
    if error.validator == "additionalProperties" and not error.path:
        unknown = sorted(set(error.instance) - set(accepted))
        names = ", ".join(repr(u) for u in unknown)
        return f"unknown input(s) {names}; accepted: {', '.join(accepted)}"
    name = str(error.path[0]) if error.path else "inputs"
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in list(error.path)[1:])
    schema = error.schema if isinstance(error.schema, dict) else {}
    rules = {
        "type": lambda: f"must be of type {schema.get('type')}",
        "minimum": lambda: f"must be >= {schema.get('minimum')}",
        "maximum": lambda: f"must be <= {schema.get('maximum')}",
        "enum": lambda: f"must be one of {', '.join(map(str, schema.get('enum', [])))}",
        "required": lambda: f"needs {error.message}",
        "minItems": lambda: "must have 4 numbers: minx, miny, maxx, maxy",
        "maxItems": lambda: "must have 4 numbers: minx, miny, maxx, maxy",
        "oneOf": lambda: 'must be {"href": "..."} or a file name',
        "additionalProperties": lambda: "has unknown members",
        "minLength": lambda: "must not be empty",
        "maxLength": lambda: "is too long",
        "pattern": lambda: "must be a date written YYYY-MM-DD",
    }
    text = rules.get(str(error.validator), lambda: "is not valid")()
    if isinstance(error.instance, bool) and error.validator == "type":
        text = f"must be of type {schema.get('type')}, not a boolean"
    return f"input '{name}{where}' {text}"
