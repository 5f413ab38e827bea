"""Road centrelines as GeoPackage or FlatGeobuf, written by GDAL/OGR through pyogrio."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyogrio.raw import write

logging.getLogger("pyogrio").setLevel(logging.WARNING)  # one INFO line per file otherwise

#: OGR driver per file suffix.
DRIVERS = {".gpkg": "GPKG", ".fgb": "FlatGeobuf"}
#: Feature properties written, with their NumPy types (others are provenance-only).
FIELDS = (
    ("length_m", np.float64),
    ("mean_probability", np.float64),
    ("u", np.int64),
    ("v", np.int64),
    ("u_degree", np.int64),
    ("v_degree", np.int64),
)


def write_lines(collection: dict[str, Any], path: Path) -> Path:
    """Write the FeatureCollection's LineStrings (EPSG:4326) to ``path`` (driver by suffix).

    Pixel-coordinate collections have no CRS and are written without one.
    """
    path = Path(path)
    driver = DRIVERS[path.suffix.lower()]
    features = collection.get("features", [])
    geometries = [shapely.geometry.shape(f["geometry"]) for f in features]
    wkb = np.array([shapely.to_wkb(g) for g in geometries], dtype=object)
    names = [name for name, _ in FIELDS]
    data = [
        np.array([_value(f, name, kind) for f in features], dtype=kind) for name, kind in FIELDS
    ]
    crs = None if collection.get("sanchari:coordinates") == "pixel" else "EPSG:4326"
    path.unlink(missing_ok=True)
    write(
        str(path),
        wkb,
        data,
        names,
        layer="roads",
        driver=driver,
        geometry_type="LineString",
        crs=crs,
    )
    return path


def _value(feature: dict[str, Any], name: str, kind: type) -> Any:
    value = feature.get("properties", {}).get(name)
    if value is None:
        return np.nan if kind is np.float64 else -1
    return value
