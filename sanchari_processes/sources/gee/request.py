"""The Earth Engine request: its inputs (shared by the service and ``predict-gee``), parsed."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.inputs import (
    InputSpec,
    engine_inputs,
    make_validator,
    point_inputs,
    validate,
    window_input,
)
from sanchari_processes.sources.gee.collections import (
    COLLECTIONS,
    MAX_SCALE_M,
    MIN_SCALE_M,
    NAIP,
    SENTINEL2,
)

COLLECTION = {"type": "string", "enum": list(COLLECTIONS), "default": NAIP}
SCALE = {"type": "number", "minimum": MIN_SCALE_M, "maximum": MAX_SCALE_M, "default": 1.0}
DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$", "format": "date"}


def gee_inputs(max_pixels: int, default_window: int) -> dict[str, InputSpec]:
    """The inputs of an Earth Engine request (the engine options are added by the process)."""
    return {
        **point_inputs(required=True),
        "collection": InputSpec(
            "Earth Engine collection",
            f"{NAIP} (NAIP, contiguous US, most recent images covering the window) or "
            f"{SENTINEL2} (Sentinel-2, global, cloud-masked median over the dates).",
            COLLECTION,
        ),
        "scale": InputSpec(
            "Scale (metres per pixel)",
            "Pixel size of the chip requested from Earth Engine, on the local UTM grid "
            "(NAIP is ~0.6 m, Sentinel-2 10 m).",
            SCALE,
        ),
        "start_date": InputSpec(
            "Start date",
            "First acquisition date (YYYY-MM-DD). Default: all of NAIP (from 2002), or one "
            "year before end_date for Sentinel-2.",
            DATE,
        ),
        "end_date": InputSpec(
            "End date", "Last acquisition date, inclusive (YYYY-MM-DD). Default: today.", DATE
        ),
        **window_input(
            f"Side of the square chip centred on latitude/longitude, in pixels of 'scale' "
            f"metres (default {default_window}; window_size squared may not exceed "
            f"{max_pixels} pixels).",
            default_window,
        ),
    }


_VALIDATOR = make_validator({**gee_inputs(1, 1), **engine_inputs()})


@dataclass(frozen=True)
class GeeRequest:
    """A validated Earth Engine request (point, collection, scale, dates, window)."""

    latitude: float
    longitude: float
    collection: str = NAIP
    scale: float = 1.0
    start_date: date | None = None
    end_date: date | None = None
    window_size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The inputs as given (``None`` dropped), for provenance."""
        values = {k: v for k, v in asdict(self).items() if v is not None}
        for key in ("start_date", "end_date"):
            if key in values:
                values[key] = values[key].isoformat()
        return values


def parse_request(inputs: Any) -> GeeRequest:
    """Validate Earth Engine inputs (engine options allowed); a 400 names the first bad one."""
    inputs = validate(inputs, _VALIDATOR)
    for key in ("latitude", "longitude"):
        if key not in inputs:
            raise InvalidInputError(f"input '{key}' is required")
    dates = {key: _parse_date(inputs, key) for key in ("start_date", "end_date")}
    if dates["start_date"] and dates["end_date"] and dates["start_date"] > dates["end_date"]:
        raise InvalidInputError("input 'start_date' must not be after 'end_date'")
    return GeeRequest(
        latitude=float(inputs["latitude"]),
        longitude=float(inputs["longitude"]),
        collection=inputs.get("collection", NAIP),
        scale=float(inputs.get("scale", 1.0)),
        start_date=dates["start_date"],
        end_date=dates["end_date"],
        window_size=int(inputs["window_size"]) if "window_size" in inputs else None,
    )


def _parse_date(inputs: dict[str, Any], key: str) -> date | None:
    if key not in inputs:
        return None
    try:
        return date.fromisoformat(inputs[key])
    except ValueError:
        raise InvalidInputError(f"input '{key}' is not a valid date (YYYY-MM-DD)") from None
