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


class LineWriter:
    """Lines written as they come (GeoPackage: appended in batches; FlatGeobuf and GeoJSON:
    written at :meth:`close`, FlatGeobuf's spatial index needing every feature), to a temporary
    name renamed into place on success, so a failed run never leaves a half-written file.

    Features are ``(LineString in EPSG:4326, {field: value})``; ``fields`` name them in order.
    """

    SUFFIXES = (".gpkg", ".fgb", ".geojson", ".json")

    def __init__(self, path: Path, fields: tuple[tuple[str, type], ...], extra: dict | None = None):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in self.SUFFIXES:
            raise ValueError(f"unsupported output type {suffix!r}")
        self.fields = fields
        self.extra = extra or {}
        self.count = 0
        self._tmp = self.path.with_name(f".{self.path.name}.partial{self.path.suffix}")
        self._tmp.unlink(missing_ok=True)
        self._streamed = suffix == ".gpkg"
        self._held: list[tuple[Any, dict[str, Any]]] = []

    def write(self, features: list[tuple[Any, dict[str, Any]]]) -> None:
        if not features:
            return
        if self._streamed:
            self._write_ogr(features, append=self.count > 0)
        else:
            self._held.extend(features)
        self.count += len(features)

    def close(self) -> Path:
        """Finish the file and move it into place."""
        suffix = self.path.suffix.lower()
        if suffix in (".geojson", ".json"):
            from sanchari_processes.results.files import write_json_atomic

            collection = {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "id": i,
                        "geometry": shapely.geometry.mapping(geometry),
                        "properties": properties,
                    }
                    for i, (geometry, properties) in enumerate(self._held)
                ],
                **self.extra,
            }
            write_json_atomic(collection, self.path)
            return self.path
        if not self._streamed or self.count == 0:
            self._write_ogr(self._held, append=False)
        self._tmp.replace(self.path)
        return self.path

    def abort(self) -> None:
        self._tmp.unlink(missing_ok=True)

    def _write_ogr(self, features: list[tuple[Any, dict[str, Any]]], *, append: bool) -> None:
        wkb = np.array([shapely.to_wkb(g) for g, _ in features], dtype=object)
        data: list[np.ndarray] = [
            np.array([p[name] for _, p in features], dtype=kind) for name, kind in self.fields
        ]
        write(
            str(self._tmp),
            wkb,
            data,
            [name for name, _ in self.fields],
            layer="roads",
            driver=DRIVERS[self.path.suffix.lower()],
            geometry_type="LineString",
            crs="EPSG:4326",
            append=append,
        )
