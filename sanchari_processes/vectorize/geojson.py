"""Road graph (pixels) → RFC 7946 GeoJSON FeatureCollection (EPSG:4326 lon/lat).

Pixel ``(row, col)`` centres map through the raster's affine at ``(col + 0.5, row + 0.5)``, then
to WGS84 with ``always_xy`` so coordinates are lon/lat whatever the CRS's axis order. Lines are
simplified in pixel space (Douglas-Peucker keeps the end points, so edges still meet at their
nodes), rounded (7 decimals of a degree is ~1 cm), and cleaned of repeated points; a line that
collapses to a point is dropped rather than written as invalid GeoJSON. Without a CRS the
coordinates stay in the affine's (pixel) space and the collection says so.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
import shapely
from affine import Affine
from pyproj import CRS, Geod, Transformer
from pyproj.exceptions import ProjError

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.vectorize.graph import iter_edges, relabel_by_position

DEGREE_DECIMALS = 7
PIXEL_DECIMALS = 3
PIXEL_COORDINATES_MEMBER = "sanchari:coordinates"


def _to_lonlat(crs: CRS, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project CRS coordinates to WGS84 longitude/latitude."""
    try:
        transformer = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        lon, lat = transformer.transform(x, y)
    except ProjError as exc:
        raise InvalidInputError(f"cannot transform {crs.name} to EPSG:4326: {exc}") from None
    lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        raise InvalidInputError(f"raster coordinates fall outside the valid area of {crs.name}")
    return lon, lat


def _clean_coords(coords: np.ndarray) -> np.ndarray:
    """Drop consecutive repeated points (rounding can create them)."""
    if len(coords) < 2:
        return coords
    keep = np.ones(len(coords), dtype=bool)
    keep[1:] = np.any(np.diff(coords, axis=0) != 0, axis=1)
    return coords[keep]


def graph_to_geojson(
    g: nx.MultiGraph,
    transform: Affine,
    crs: CRS | None,
    gsd_m: float,
    simplify_px: float,
) -> dict:
    """One LineString feature per edge, with length, mean probability and end-node degrees."""
    if g.number_of_edges() == 0:
        return _collection([], crs)
    g = relabel_by_position(g)
    edges = sorted(iter_edges(g), key=lambda e: (min(e[0], e[1]), max(e[0], e[1]), e[2]))
    # pixel (row, col) → affine pixel space (x = col + 0.5, y = row + 0.5)
    polylines = [pts[:, ::-1] + 0.5 for _, _, _, pts, _ in edges]
    lines = shapely.linestrings(
        np.concatenate(polylines),
        indices=np.repeat(np.arange(len(polylines)), [len(p) for p in polylines]),
    )
    if simplify_px > 0:
        lines = shapely.simplify(lines, simplify_px, preserve_topology=True)
    coords, index = shapely.get_coordinates(lines, return_index=True)
    pixel_lengths = shapely.length(lines)
    x, y = transform @ (coords[:, 0], coords[:, 1])
    if crs is not None:
        x, y = _to_lonlat(crs, np.asarray(x), np.asarray(y))
    decimals = DEGREE_DECIMALS if crs is not None else PIXEL_DECIMALS
    out = np.round(np.column_stack([x, y]), decimals)
    geod = Geod(ellps="WGS84")
    features: list[dict[str, Any]] = []
    splits = np.searchsorted(index, np.arange(1, len(edges)))
    for (u, v, _, _, data), line, pixel_length in zip(
        edges, np.split(out, splits), pixel_lengths, strict=True
    ):
        line = _clean_coords(line)
        if len(line) < 2:
            continue
        if crs is not None:
            length_m = float(geod.line_length(line[:, 0], line[:, 1]))
        else:
            length_m = float(pixel_length) * gsd_m
        if length_m <= 0:
            continue
        mean = data["psum"] / data["pcount"] if data["pcount"] else 0.0
        features.append(
            {
                "type": "Feature",
                "id": len(features),
                "geometry": {"type": "LineString", "coordinates": line.tolist()},
                "properties": {
                    "length_m": round(length_m, 3),
                    "mean_probability": round(float(mean), 4),
                    "u": int(u),
                    "v": int(v),
                    "u_degree": int(g.degree(u)),
                    "v_degree": int(g.degree(v)),
                },
            }
        )
    return _collection(features, crs)


def _collection(features: list[dict], crs: CRS | None) -> dict:
    """The FeatureCollection, with its bbox when it has features (an empty one has no extent)."""
    collection: dict = {"type": "FeatureCollection"}
    if features:
        coords = np.vstack([np.asarray(f["geometry"]["coordinates"]) for f in features])
        low, high = coords.min(axis=0), coords.max(axis=0)
        collection["bbox"] = [float(low[0]), float(low[1]), float(high[0]), float(high[1])]
    collection["features"] = features
    if crs is None:
        collection[PIXEL_COORDINATES_MEMBER] = "pixel"
    return collection
