"""Gap bridging: join a dead end to the road it was obviously heading for.

A segmentation model breaks roads under trees, shadows and cars, leaving dead ends facing each
other across a few metres. As in CRESI/APLS post-processing, a dead end is joined to another dead
end, a node, or a point of an edge when the gap is at most ``bridge_max`` and the join runs
roughly along the dead end's own direction (angle at most ``bridge_max_angle``), so a road end
is never bridged sideways to a parallel road.

The last metres of a skeleton at a cut road bend towards a corner of the cut or into a ragged
edge (a "hook"), so a dead end's heading is measured behind it, from two to one ``spur_length``
back (a third of a short edge). The bridge starts from that *base* point, replacing the hook,
and is judged from there too.

Dead ends at the raster edge are roads leaving the image, never gaps, and a join that would
close a loop shorter than ``self_loop`` (the road doubling back on itself) is refused. Bridges
are applied shortest first, in rounds, so each dead end is used once and each edge is split at
most once per round.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import networkx as nx
import numpy as np
import shapely
from scipy.spatial import cKDTree

from sanchari_processes.vectorize.graph import (
    EdgeKey,
    add_edge,
    near_border,
    new_node,
    oriented_pts,
    polyline_length,
)
from sanchari_processes.vectorize.params import PixelParams

#: ``(start, end)`` pixel positions → (sum, count) of the probability under the straight line.
LineSampler = Callable[[np.ndarray, np.ndarray], tuple[float, int]]


@dataclass(frozen=True)
class DeadEnd:
    """A degree-1 node: where it is, where its bridge would start, and where it heads."""

    node: int
    tip: np.ndarray
    base: np.ndarray
    heading: np.ndarray
    #: Arc length from the tip back to ``base``: the hook a bridge replaces.
    trim: float


@dataclass(frozen=True)
class Bridge:
    """A proposed join from a dead end to a node (maybe another dead end) or an edge point."""

    cost: float
    source: int
    point: tuple[float, float]
    node: int | None = None
    edge: EdgeKey | None = None


def _arc(pts: np.ndarray) -> np.ndarray:
    """Cumulative arc length along a polyline."""
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])


def _point_at(pts: np.ndarray, along: np.ndarray, at: float) -> np.ndarray:
    """The point ``at`` pixels along a polyline (clamped to its ends)."""
    return np.array([np.interp(at, along, pts[:, 0]), np.interp(at, along, pts[:, 1])])


def dead_end(g: nx.MultiGraph, node: int, skip: float, look: float) -> DeadEnd | None:
    """Describe a dead end; ``None`` when its edge is too short to have a direction."""
    ((_, other, key),) = g.edges(node, keys=True)
    pts = oriented_pts(g, node, other, key)
    along = _arc(pts)
    total = float(along[-1])
    trim = min(skip, total / 3.0)
    base = _point_at(pts, along, trim)
    behind = _point_at(pts, along, min(trim + look, total))
    vec = base - behind
    norm = float(np.hypot(*vec))
    if norm < 1.0:
        return None
    return DeadEnd(node, pts[0].copy(), base, vec / norm, trim)


def _angle(direction: np.ndarray, vec: np.ndarray) -> float:
    """Angle in degrees between a unit ``direction`` and ``vec``."""
    norm = float(np.hypot(*vec))
    if norm < 1e-9:
        return 0.0
    return math.degrees(math.acos(max(-1.0, min(1.0, float(direction @ vec) / norm))))


def _dedupe(pts: np.ndarray) -> np.ndarray:
    """Drop consecutive repeated points."""
    keep = np.ones(len(pts), dtype=bool)
    keep[1:] = np.any(np.diff(pts, axis=0) != 0, axis=1)
    return pts[keep]


def split_edge(g: nx.MultiGraph, edge: EdgeKey, point: np.ndarray) -> int:
    """Split an edge at ``point`` (on it) with a new node; returns the node."""
    u, v, key = edge
    pts = oriented_pts(g, u, v, key)
    data = g.edges[u, v, key]
    at = shapely.LineString(pts).project(shapely.Point(point))
    cut = int(np.searchsorted(_arc(pts), at, side="right"))
    share = cut / len(pts)
    head = round(data["pcount"] * share)
    node = new_node(g, point)
    g.remove_edge(u, v, key)
    add_edge(g, u, node, _dedupe(np.vstack([pts[:cut], point])), data["psum"] * share, head)
    add_edge(
        g,
        node,
        v,
        _dedupe(np.vstack([point, pts[cut:]])),
        data["psum"] * (1 - share),
        data["pcount"] - head,
    )
    return node


def trim_dead_end(g: nx.MultiGraph, end: DeadEnd) -> None:
    """Cut the hook off a dead end: its edge now stops at ``end.base``, where the node moves."""
    ((_, other, key),) = g.edges(end.node, keys=True)
    data = g.edges[end.node, other, key]
    pts = oriented_pts(g, end.node, other, key)
    along = _arc(pts)
    rest = pts[along > end.trim]
    new = _dedupe(np.vstack([end.base, rest])) if len(rest) else np.vstack([end.base, pts[-1]])
    share = len(rest) / len(pts)
    data["pts"] = new if data["src"] == end.node else new[::-1].copy()
    data["length"] = polyline_length(new)
    data["psum"] *= share
    data["pcount"] = round(data["pcount"] * share)
    g.nodes[end.node]["pos"] = end.base.copy()


class _Finder:
    """Candidate bridges for the dead ends of one graph state."""

    def __init__(self, g: nx.MultiGraph, params: PixelParams, shape: tuple[int, int]) -> None:
        self.g, self.params, self.shape = g, params, shape
        self.reach = params.bridge_max_px
        self.snap = params.border_px
        self.ends: dict[int, DeadEnd] = {}
        for node, degree in g.degree():
            if degree != 1 or self.at_border(node):
                continue
            end = dead_end(g, node, params.spur_px, params.spur_px)
            if end is not None:
                self.ends[node] = end
        self.edges: list[EdgeKey] = list(g.edges(keys=True))
        self.lines = [shapely.LineString(g.edges[e]["pts"]) for e in self.edges]
        self.tree = shapely.STRtree(self.lines)

    def at_border(self, node: int) -> bool:
        data = self.g.nodes[node]
        return bool(data["border"]) or near_border(data["pos"], self.shape, self.params.border_px)

    def candidates(self) -> list[Bridge]:
        if not self.ends:
            return []
        ends = list(self.ends.values())
        out: list[Bridge] = []
        kdtree = cKDTree(np.array([e.tip for e in ends]))
        for i, end in enumerate(ends):
            near = nx.single_source_dijkstra_path_length(
                self.g, end.node, cutoff=self.params.self_loop_px, weight="length"
            )
            for j in kdtree.query_ball_point(end.tip, self.reach):
                if j != i:
                    bridge = self._to_dead_end(end, ends[j], near)
                    if bridge is not None:
                        out.append(bridge)
            out.extend(self._to_edges(end, near))
        return out

    def _cost(self, gap: float, angle: float) -> float:
        return gap * (1.0 + math.radians(angle))

    def _closes_small_loop(self, gap: float, via: float) -> bool:
        return via + gap < self.params.self_loop_px

    def _alignment(self, end: DeadEnd, target: np.ndarray, gap: float) -> float | None:
        """The join's angle to the road, or ``None`` when it is not roughly straight ahead.

        The angle is taken from the base, behind the end's hook; the target must also lie
        within ``sin(max angle) * gap`` of the road's line, so that the longer lever of the base
        does not let a road be joined to one running beside it.
        """
        limit = self.params.bridge_max_angle_deg
        vec = target - end.base
        angle = _angle(end.heading, vec)
        lateral = abs(float(end.heading[0] * vec[1] - end.heading[1] * vec[0]))
        if angle > limit or lateral > max(math.sin(math.radians(limit)) * gap, 2.0):
            return None
        return angle

    def _to_dead_end(self, end: DeadEnd, other: DeadEnd, near: dict[int, float]) -> Bridge | None:
        gap = float(np.hypot(*(other.tip - end.tip)))
        angle = self._alignment(end, other.base, gap)
        if angle is None or self._alignment(other, end.base, gap) is None:
            return None
        if self._closes_small_loop(gap, near.get(other.node, math.inf)):
            return None
        point = (float(other.base[0]), float(other.base[1]))
        return Bridge(self._cost(gap, angle), end.node, point, node=other.node)

    def _to_edges(self, end: DeadEnd, near: dict[int, float]) -> list[Bridge]:
        tip = shapely.Point(end.tip)
        ray = shapely.LineString(
            [end.base, end.base + end.heading * (self.reach + end.trim + self.snap)]
        )
        out = []
        for index in self.tree.query(tip, predicate="dwithin", distance=self.reach):
            edge = self.edges[index]
            if end.node in edge[:2]:
                continue
            line = self.lines[index]
            points = np.vstack(
                [
                    shapely.get_coordinates(line.interpolate(line.project(tip))),
                    shapely.get_coordinates(line.intersection(ray)),
                ]
            )
            options = [self._to_edge_point(end, edge, line, p, near) for p in points]
            valid = [b for b in options if b is not None]
            if valid:
                out.append(min(valid, key=lambda b: b.cost))
        return out

    def _to_edge_point(
        self,
        end: DeadEnd,
        edge: EdgeKey,
        line: shapely.LineString,
        point: np.ndarray,
        near: dict[int, float],
    ) -> Bridge | None:
        gap = float(np.hypot(*(point - end.tip)))
        angle = self._alignment(end, point, gap)
        if gap > self.reach or angle is None:
            return None
        u, v, _ = edge
        src = self.g.edges[edge]["src"]
        other = v if src == u else u
        at = line.project(shapely.Point(point))
        for node, dist in ((src, at), (other, line.length - at)):
            hook = self.ends.get(node)
            if hook is not None and dist <= hook.trim + self.snap:
                return None  # the end of another dead end: joined pairwise, base to base
            if dist <= self.snap:  # landing next to a node: join the node itself
                return self._to_node(end, node, near)
        via = min(near.get(src, math.inf) + at, near.get(other, math.inf) + line.length - at)
        if self._closes_small_loop(gap, via):
            return None
        return Bridge(
            self._cost(gap, angle), end.node, (float(point[0]), float(point[1])), edge=edge
        )

    def _to_node(self, end: DeadEnd, node: int, near: dict[int, float]) -> Bridge | None:
        if self.g.degree(node) == 1:
            return None  # dead ends are joined pairwise (or not at all, at the raster edge)
        target = self.g.nodes[node]["pos"]
        gap = float(np.hypot(*(target - end.tip)))
        angle = self._alignment(end, target, gap)
        if angle is None or gap > self.reach + self.snap:
            return None
        if self._closes_small_loop(gap, near.get(node, math.inf)):
            return None
        return Bridge(self._cost(gap, angle), end.node, (float(target[0]), float(target[1])), node)


def bridge_gaps(
    g: nx.MultiGraph,
    params: PixelParams,
    shape: tuple[int, int],
    sample: LineSampler,
    max_rounds: int = 10,
) -> int:
    """Join dead ends across small gaps, in place; returns the number of bridges added."""
    if params.bridge_max_px <= 0:
        return 0
    added = 0
    for _ in range(max_rounds):
        finder = _Finder(g, params, shape)
        used_nodes: set[int] = set()
        used_edges: set[EdgeKey] = set()
        applied = 0
        for bridge in sorted(finder.candidates(), key=lambda b: b.cost):
            if bridge.source in used_nodes or bridge.node in used_nodes:
                continue
            if bridge.edge is not None and (
                bridge.edge in used_edges or not g.has_edge(*bridge.edge)
            ):
                continue
            source = finder.ends[bridge.source]
            trim_dead_end(g, source)
            if bridge.node is not None:
                target = bridge.node
                if target in finder.ends:
                    trim_dead_end(g, finder.ends[target])
            else:
                assert bridge.edge is not None  # a bridge lands on a node or on an edge
                used_edges.add(bridge.edge)
                target = split_edge(g, bridge.edge, np.asarray(bridge.point))
            start, point = source.base, g.nodes[target]["pos"]
            psum, pcount = sample(start, point)
            add_edge(g, bridge.source, target, np.vstack([start, point]), psum, pcount)
            used_nodes.update((bridge.source, target))
            applied += 1
        added += applied
        if not applied:
            break
    return added
