"""APLS (Average Path Length Similarity), following CosmiQ's SpaceNet 3 definition.

Both road networks become graphs whose edges carry their centreline geometry in metres. Control
points are inserted every 50 m along every edge. Each node of the source graph is snapped onto
the nearest edge of the target graph when within 4 m (a node is inserted there), else it has
no counterpart. For every pair (a, b) of source nodes joined by a path of length L, the target
path length L' between their counterparts gives ``min(1, |L - L'| / L)``, or 1 when either
counterpart or the target path is missing. APLS(source -> target) = 1 - mean over pairs; the
final score is the harmonic mean of gt -> proposal (penalises missed roads and breaks) and
proposal -> gt (penalises hallucinated roads).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
from pyproj import Transformer
from shapely import STRtree
from shapely.geometry import LineString, Point
from shapely.ops import substring, unary_union

Coords = Sequence[tuple[float, float]]

#: An existing target node is used instead of a new point on an edge when it is at most this
#: much farther away (CosmiQ likewise reuses nodes near the projected point).
NODE_PREFERENCE_M = 1.0


@dataclass(frozen=True)
class AplsConfig:
    """CosmiQ defaults: control points every 50 m, 4 m snapping, at most 500 sampled nodes."""

    control_spacing_m: float = 50.0
    snap_m: float = 4.0
    max_nodes: int = 500
    seed: int = 0


def node_lines(lines: Iterable[Coords]) -> list[list[tuple[float, float]]]:
    """Split polylines wherever they cross or touch, so every junction becomes an end point.

    OSM ways and hand-drawn truth often share a vertex mid-line rather than an end point; a
    graph built from unnoded lines would be disconnected at those junctions.
    """
    geoms = [LineString(c) for c in lines if len(c) >= 2]
    if not geoms:
        return []
    merged = unary_union(geoms)
    parts = getattr(merged, "geoms", [merged])
    return [list(part.coords) for part in parts if isinstance(part, LineString)]


def graph_from_lines(
    lines: Iterable[Coords], tolerance_m: float = 0.01, node: bool = True
) -> nx.MultiGraph:
    """A road graph from metric polylines; endpoints closer than ``tolerance_m`` are one node.

    ``node`` first splits the lines at their intersections (:func:`node_lines`).
    """
    if node:
        lines = node_lines(lines)
    g = nx.MultiGraph()
    key_to_node: dict[tuple[int, int], int] = {}

    def node_of(xy: tuple[float, float]) -> int:
        key = (round(xy[0] / tolerance_m), round(xy[1] / tolerance_m))
        if key not in key_to_node:
            key_to_node[key] = len(key_to_node)
            g.add_node(key_to_node[key], xy=(float(xy[0]), float(xy[1])))
        return key_to_node[key]

    for coords in lines:
        pts = [(float(x), float(y)) for x, y, *_ in coords]
        if len(pts) < 2:
            continue
        geom = LineString(pts)
        if geom.length <= 0:
            continue
        u, v = node_of(pts[0]), node_of(pts[-1])
        g.add_edge(u, v, geometry=geom, length=geom.length)
    return g


def geojson_lines(
    fc: dict[str, Any], gsd_m: float | None = None
) -> list[list[tuple[float, float]]]:
    """LineString/MultiLineString coordinates in metres.

    With ``gsd_m`` the coordinates are pixel units (the vectorizer's ``crs=None`` output) and
    are scaled; without it they are EPSG:4326 longitude/latitude and are projected to their
    UTM zone.
    """
    lines: list[list[tuple[float, float]]] = []
    for feature in fc.get("features", []):
        geom = feature.get("geometry") or {}
        if geom.get("type") == "LineString":
            lines.append([tuple(c[:2]) for c in geom["coordinates"]])
        elif geom.get("type") == "MultiLineString":
            lines.extend([tuple(c[:2]) for c in part] for part in geom["coordinates"])
    if gsd_m is not None:
        return [[(x * gsd_m, y * gsd_m) for x, y in line] for line in lines]
    if not lines:
        return []
    lon, lat = lines[0][0]
    zone = int((lon + 180.0) // 6.0) % 60 + 1
    epsg = (32600 if lat >= 0 else 32700) + zone
    to_utm = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
    out = []
    for line in lines:
        xs, ys = to_utm.transform([p[0] for p in line], [p[1] for p in line])
        out.append(list(zip(xs, ys, strict=True)))
    return out


def _split_edge(
    g: nx.MultiGraph, u: int, v: int, key: Any, distances: Sequence[float]
) -> list[int]:
    """Split edge ``(u, v, key)`` at ``distances`` along its geometry (from ``u``'s end).

    Returns the node at each distance (an end node when a distance falls on an end).
    """
    data = g.edges[u, v, key]
    geom: LineString = data["geometry"]
    start_xy = g.nodes[u]["xy"]
    if Point(geom.coords[0]).distance(Point(start_xy)) > Point(geom.coords[-1]).distance(
        Point(start_xy)
    ):
        geom = LineString(geom.coords[::-1])  # orient the geometry from u to v
    length = geom.length
    cuts = sorted({float(np.clip(d, 0.0, length)) for d in distances})
    tol = 1e-6 * max(1.0, length)
    result: dict[float, int] = {}
    inner = [d for d in cuts if tol < d < length - tol]
    for d in cuts:
        if d <= tol:
            result[d] = u
        elif d >= length - tol:
            result[d] = v
    if inner:
        g.remove_edge(u, v, key)
        prev_node, prev_d = u, 0.0
        for d in inner:
            new = max(g.nodes) + 1 if len(g) else 0
            p = geom.interpolate(d)
            g.add_node(new, xy=(p.x, p.y))
            piece = substring(geom, prev_d, d)
            g.add_edge(prev_node, new, geometry=piece, length=piece.length)
            result[d] = new
            prev_node, prev_d = new, d
        piece = substring(geom, prev_d, length)
        g.add_edge(prev_node, v, geometry=piece, length=piece.length)
    return [result[float(np.clip(d, 0.0, length))] for d in distances]


def insert_control_points(g: nx.MultiGraph, spacing_m: float) -> nx.MultiGraph:
    """A copy of ``g`` with a node every ``spacing_m`` metres along every edge."""
    out = g.copy()
    for u, v, key, data in list(g.edges(keys=True, data=True)):
        length = data["length"]
        n = math.ceil(length / spacing_m) - 1
        if n > 0:
            _split_edge(out, u, v, key, [spacing_m * (i + 1) for i in range(n)])
    return out


def snap_nodes(
    points: dict[int, tuple[float, float]], target: nx.MultiGraph, snap_m: float
) -> tuple[nx.MultiGraph, dict[int, int]]:
    """Insert each point onto its nearest ``target`` edge within ``snap_m``.

    Returns the augmented copy of ``target`` and ``{point id: target node}`` for the points
    that snapped. Points beyond ``snap_m`` of every edge have no counterpart.
    """
    out = target.copy()
    edges = list(out.edges(keys=True, data=True))
    if not edges or not points:
        return out, {}
    tree = STRtree([d["geometry"] for *_, d in edges])
    node_ids = list(out.nodes)
    node_tree = STRtree([Point(out.nodes[n]["xy"]) for n in node_ids])
    by_edge: dict[int, list[tuple[int, float]]] = {}
    mapping: dict[int, int] = {}
    for pid, xy in points.items():
        p = Point(xy)
        hits = tree.query_nearest(p, max_distance=snap_m, all_matches=False)
        if len(hits) == 0:
            continue
        e = int(hits[0])
        near = node_tree.query_nearest(p, max_distance=snap_m, all_matches=False)
        if len(near) and (
            p.distance(Point(out.nodes[node_ids[int(near[0])]]["xy"]))
            <= p.distance(edges[e][3]["geometry"]) + NODE_PREFERENCE_M
        ):
            mapping[pid] = node_ids[int(near[0])]  # an existing node (junction, end) fits
            continue
        u, _, _, data = edges[e]
        geom = data["geometry"]
        along = geom.project(p)
        start_xy = out.nodes[u]["xy"]
        if Point(geom.coords[0]).distance(Point(start_xy)) > Point(geom.coords[-1]).distance(
            Point(start_xy)
        ):
            along = geom.length - along
        by_edge.setdefault(e, []).append((pid, along))
    for e, items in by_edge.items():
        u, v, key, _ = edges[e]
        nodes = _split_edge(out, u, v, key, [d for _, d in items])
        for (pid, _), node in zip(items, nodes, strict=True):
            mapping[pid] = node
    return out, mapping


def apls_one_way(source: nx.MultiGraph, target: nx.MultiGraph, config: AplsConfig) -> float:
    """APLS(source -> target) for graphs that already carry their control points."""
    if source.number_of_edges() == 0:
        return 1.0 if target.number_of_edges() == 0 else 0.0
    nodes = sorted(source.nodes)
    if len(nodes) > config.max_nodes:
        rng = np.random.default_rng(config.seed)
        nodes = sorted(rng.choice(nodes, config.max_nodes, replace=False).tolist())
    points = {n: source.nodes[n]["xy"] for n in nodes}
    snapped, mapping = snap_nodes(points, target, config.snap_m)
    penalties: list[float] = []
    for i, a in enumerate(nodes):
        src_len = nx.single_source_dijkstra_path_length(source, a, weight="length")
        tgt_len = (
            nx.single_source_dijkstra_path_length(snapped, mapping[a], weight="length")
            if a in mapping
            else {}
        )
        for b in nodes[i + 1 :]:
            length = src_len.get(b)
            if length is None or length <= 0:
                continue  # no path in the source: the pair says nothing
            other = tgt_len.get(mapping[b]) if b in mapping else None
            if other is None:
                penalties.append(1.0)
            else:
                penalties.append(min(1.0, abs(length - other) / length))
    if not penalties:
        return 1.0
    return 1.0 - float(np.mean(penalties))


def apls(
    truth: nx.MultiGraph, proposal: nx.MultiGraph, config: AplsConfig | None = None
) -> dict[str, float]:
    """Symmetric APLS: harmonic mean of APLS(gt -> proposal) and APLS(proposal -> gt)."""
    config = config or AplsConfig()
    gt = insert_control_points(truth, config.control_spacing_m)
    prop = insert_control_points(proposal, config.control_spacing_m)
    forward = apls_one_way(gt, prop, config)
    backward = apls_one_way(prop, gt, config)
    score = 0.0 if forward + backward == 0 else 2 * forward * backward / (forward + backward)
    return {"apls": score, "apls_gt_to_prop": forward, "apls_prop_to_gt": backward}
