"""Process inputs every imagery source shares: their schemas, validation, and engine options.

pygeoapi validates nothing against a process's declared schema, so every execute request is
checked with ``jsonschema`` before any job exists: types, ranges, unknown inputs. Each error
becomes one 400 naming the offending input. Each imagery source declares the inputs it reads
(:class:`InputSpec`, built from the schemas here); a process is its sources' inputs plus the
engine options (:func:`engine_inputs`), validated together (:func:`make_validator`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sanchari_processes.config import DEFAULT_SIMPLIFY_M, DEFAULT_TTA, TTA_MODES
from sanchari_processes.errors import InvalidInputError

if TYPE_CHECKING:
    import jsonschema
    from pyproj import CRS

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GEOTIFF = "image/tiff; application=geotiff"

LATITUDE = {"type": "number", "minimum": -90, "maximum": 90}
LONGITUDE = {"type": "number", "minimum": -180, "maximum": 180}
BBOX = {
    "type": "object",
    "format": "ogc-bbox",
    "required": ["bbox"],
    "properties": {
        "bbox": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
        "crs": {"type": "string", "default": CRS84},
    },
    "additionalProperties": False,
}
IMAGE_REF = {
    "type": "object",
    "required": ["href"],
    "properties": {
        "href": {"type": "string", "minLength": 1, "maxLength": 2048},
        "type": {"type": "string", "maxLength": 200},
        "rel": {"type": "string", "maxLength": 200},
        "title": {"type": "string", "maxLength": 500},
    },
    "additionalProperties": False,
}
#: ``image`` sent in the request: base64 text as a qualified value (the body limit bounds it).
IMAGE_DATA = {
    "type": "object",
    "required": ["value"],
    "properties": {
        "value": {"type": "string", "minLength": 1},
        "mediaType": {"type": "string", "maxLength": 200},
        "encoding": {"type": "string", "enum": ["base64"]},
        "schema": {},
    },
    "additionalProperties": False,
}
#: What a request may send as ``image``: a link object, a bare href or file name, base64 text
#: (a string without ``.`` or ``:``, which every href and file name has) or a qualified value.
IMAGE = {"oneOf": [IMAGE_REF, {"type": "string", "minLength": 1}, IMAGE_DATA]}
#: Longest ``image`` href or file name.
MAX_HREF = 2048
#: Members of an OGC qualified value (``{"value": …, "mediaType": …}``).
QUALIFIED = frozenset({"value", "mediaType", "encoding", "schema"})
THRESHOLD = {"type": "number", "minimum": 0, "maximum": 1}
TTA = {"type": "string", "enum": list(TTA_MODES), "default": DEFAULT_TTA}
WINDOW = {"type": "integer", "minimum": 64, "default": 1024}
SIMPLIFY = {"type": "number", "minimum": 0, "maximum": 100, "default": DEFAULT_SIMPLIFY_M}
#: Inputs whose numbers must be finite (JSON cannot say NaN, but Python's parser can).
_FINITE = ("latitude", "longitude", "threshold", "simplify_m", "scale")


@dataclass(frozen=True)
class InputSpec:
    """One process input: its OGC description and what a request may send for it."""

    title: str
    description: str
    schema: dict[str, Any]
    #: The validation schema when a request may send more forms than ``schema`` describes
    #: (a link object for a by-reference input).
    accepts: dict[str, Any] | None = None
    required: bool = False

    def describe(self) -> dict[str, Any]:
        """The OGC process-description entry."""
        return {
            "title": self.title,
            "description": self.description,
            "schema": self.schema,
            "minOccurs": 1 if self.required else 0,
            "maxOccurs": 1,
        }

    @property
    def validation(self) -> dict[str, Any]:
        return self.accepts or self.schema


def point_inputs(required: bool = False) -> dict[str, InputSpec]:
    return {
        "latitude": InputSpec(
            "Latitude",
            "WGS84 latitude of the centre of the window (with longitude).",
            LATITUDE,
            required=required,
        ),
        "longitude": InputSpec(
            "Longitude",
            "WGS84 longitude of the centre of the window (with latitude).",
            LONGITUDE,
            required=required,
        ),
    }


def window_input(description: str, default_window: int) -> dict[str, InputSpec]:
    return {
        "window_size": InputSpec(
            "Window size (pixels)", description, {**WINDOW, "default": default_window}
        )
    }


def engine_inputs() -> dict[str, InputSpec]:
    """The model and vectorizer options every process takes."""
    return {
        "threshold": InputSpec(
            "Road probability threshold",
            "Cut-off between road and background (default: the model's).",
            THRESHOLD,
        ),
        "tta": InputSpec(
            "Test-time augmentation", "none (fastest), flip4 or d4 (best, 8x the work).", TTA
        ),
        "simplify_m": InputSpec(
            "Simplification tolerance (metres)",
            "Douglas-Peucker tolerance applied to the centrelines.",
            SIMPLIFY,
        ),
    }


@dataclass(frozen=True)
class RequestOptions:
    """The engine options of a validated request (``None``: the model's or config's default);
    :meth:`EngineSettings.options` turns them into the one engine builder's options."""

    threshold: float | None = None
    tta: str | None = None
    simplify_m: float = DEFAULT_SIMPLIFY_M

    @classmethod
    def parse(cls, inputs: Mapping[str, Any]) -> RequestOptions:
        return cls(
            threshold=inputs.get("threshold"),
            tta=inputs.get("tta"),
            simplify_m=float(inputs.get("simplify_m", DEFAULT_SIMPLIFY_M)),
        )


def make_validator(specs: Mapping[str, InputSpec]) -> jsonschema.Draft202012Validator:
    """A validator of an ``inputs`` object holding these inputs and nothing else."""
    import jsonschema

    schema = {
        "type": "object",
        "properties": {name: spec.validation for name, spec in specs.items()},
        "additionalProperties": False,
    }
    return jsonschema.Draft202012Validator(schema)


def validate(inputs: Any, validator: jsonschema.Draft202012Validator) -> dict[str, Any]:
    """Schema errors and non-finite numbers as one 400 naming the first bad input.

    JSON inputs sent as OGC qualified values (``{"value": {...}, "mediaType":
    "application/json"}``) are checked, and returned, as their plain value.
    """
    if not isinstance(inputs, dict):
        raise InvalidInputError("'inputs' must be a JSON object")
    inputs = {name: _unqualified(value) for name, value in inputs.items()}
    errors = sorted(validator.iter_errors(inputs), key=lambda e: (len(e.path), list(e.path)))
    if errors:
        raise InvalidInputError(_describe(errors[0], validator.schema["properties"]))
    for key in _FINITE:
        if key in inputs and not math.isfinite(inputs[key]):
            raise InvalidInputError(f"input '{key}' must be a finite number")
    return inputs


def _unqualified(value: Any) -> Any:
    """A qualified value whose media type is JSON (or not given) as its plain value; anything
    else as it is (base64 data stays qualified: only ``image`` takes it)."""
    if not isinstance(value, dict) or "value" not in value or not set(value) <= QUALIFIED:
        return value
    media = value.get("mediaType")
    if "encoding" in value or not (media is None or _is_json(media)):
        return value
    return value["value"]


def _is_json(media_type: Any) -> bool:
    kind = str(media_type).split(";")[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


def image_data(inputs: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """``(base64 text, media type)`` when ``image`` is sent in the request, else ``None``."""
    image = inputs.get("image")
    if isinstance(image, dict) and "value" in image:
        return image["value"], image.get("mediaType")
    if isinstance(image, str) and "." not in image and ":" not in image:
        return image, None
    return None


def image_href(inputs: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(href, type)`` of an ``image`` by reference or name, or ``(None, None)`` (no image, or
    one sent in the request)."""
    image = inputs.get("image")
    if image is None or image_data(inputs) is not None:
        return None, None
    href, media = (image["href"], image.get("type")) if isinstance(image, dict) else (image, None)
    if len(href) > MAX_HREF:
        raise InvalidInputError(f"input 'image': an href is at most {MAX_HREF} characters")
    return href, media


def parse_bbox(inputs: Mapping[str, Any]) -> tuple[tuple[float, float, float, float], str]:
    """The ``bbox`` input checked: ``(minx, miny, maxx, maxy)`` and its CRS text."""
    bbox = tuple(float(v) for v in inputs["bbox"]["bbox"])
    crs = inputs["bbox"].get("crs", CRS84)
    minx, miny, maxx, maxy = bbox
    if not all(math.isfinite(v) for v in bbox):
        raise InvalidInputError("input 'bbox': coordinates must be finite numbers")
    if minx >= maxx or miny >= maxy:
        raise InvalidInputError("input 'bbox': need minx < maxx and miny < maxy")
    parsed = parse_crs(crs)
    if parsed.is_geographic and not (minx >= -180 and maxx <= 180 and miny >= -90 and maxy <= 90):
        raise InvalidInputError(
            "input 'bbox': longitude/latitude out of range (x/y order: lon, lat)"
        )
    return bbox, crs  # type: ignore[return-value]


def parse_crs(text: str) -> CRS:
    """A pyproj CRS from an OGC URI, ``EPSG:n`` or WKT; 400 on ``bbox`` when unknown."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        return CRS.from_user_input(text)
    except CRSError:
        raise InvalidInputError(f"input 'bbox': unknown crs {text[:100]!r}") from None


def _describe(error: jsonschema.ValidationError, accepted: Mapping[str, Any]) -> str:
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
        "oneOf": lambda: 'must be {"href": "..."}, a file name or base64 data',
        "additionalProperties": lambda: "has unknown members",
        "minLength": lambda: "must not be empty",
        "maxLength": lambda: "is too long",
        "pattern": lambda: "must be a date written YYYY-MM-DD",
    }
    text = rules.get(str(error.validator), lambda: "is not valid")()
    if isinstance(error.instance, bool) and error.validator == "type":
        text = f"must be of type {schema.get('type')}, not a boolean"
    return f"input '{name}{where}' {text}"
