"""The road graph and its clean-up: spurs, false loops, redundant parallels, degree-2 nodes.

The graph is a :class:`networkx.MultiGraph` in raster pixel coordinates (row, column of pixel
centres), because a skeleton legitimately has parallel edges and self-loops until they are
cleaned. Attributes:

* node ``pos``: ``(row, col)`` float array; ``border``: the node is where a road leaves the raster.
* edge ``pts``: ``(n, 2)`` float polyline from node ``src`` to the other end (networkx forgets
  edge direction, so ``src`` records it); ``length`` in pixels; ``psum``/``pcount``: sum and count
  of the probability under the edge's pixels, so merged edges keep an exact mean.

Every function mutates the graph in place and returns how many things it changed, so
:func:`clean_graph` can iterate to a fixed point.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterator
from pathlib import Path

import networkx as nx
import numpy as np
import shapely
import sknw

from sanchari_processes.vectorize.params import PixelParams

EdgeKey = tuple[int, int, int]
#: sknw's numba-compiled functions: compiling them costs ~4 s on every fresh process.
_SKNW_JIT = ("mark", "idx2rc", "fill", "trace", "parse_struc")


#: The folder the compiled code was cached in, once it was (a process has one numba cache).
_JIT_CACHE: list[Path] = []


def enable_jit_cache(folder: Path) -> None:
    """Cache sknw's compiled functions in ``folder`` (numba checks them against the source).

    ``NUMBA_CACHE_DIR``, when set, wins. Call before the first graph is built in a process;
    later calls change nothing.
    """
    if _JIT_CACHE:
        return
    import numba
    from sknw import sknw as sknw_module

    _JIT_CACHE.append(folder)

    if not os.environ.get("NUMBA_CACHE_DIR"):
        numba.config.CACHE_DIR = str(folder)  # type: ignore[attr-defined]
    for name in _SKNW_JIT:
        dispatcher = getattr(sknw_module, name, None)
        if dispatcher is not None and hasattr(dispatcher, "enable_caching"):
            dispatcher.enable_caching()


def polyline_length(pts: np.ndarray) -> float:
    """Length of a polyline in pixels."""
    if len(pts) < 2:
        return 0.0
    return float(np.hypot(*np.diff(pts, axis=0).T).sum())


def skeleton_graph(skeleton: np.ndarray) -> nx.MultiGraph:
    """sknw's graph of a skeleton: junction/end clusters as nodes, pixel paths as edges.

    ``multi=True`` keeps parallel edges and self-loops (they are cleaned later, with lengths in
    hand), ``iso=False`` drops isolated single-pixel blobs, ``ring=True`` keeps closed roads.
    """
    if not skeleton.any():
        return nx.MultiGraph()
    return sknw.build_sknw(skeleton, multi=True, iso=False, ring=True, full=True)


def add_edge(g: nx.MultiGraph, u: int, v: int, pts: np.ndarray, psum: float, pcount: int) -> int:
    """Add an edge whose polyline ``pts`` runs from ``u`` to ``v``; returns its key."""
    pts = np.asarray(pts, dtype=np.float64)
    return g.add_edge(
        u, v, pts=pts, src=u, length=polyline_length(pts), psum=float(psum), pcount=int(pcount)
    )


def oriented_pts(g: nx.MultiGraph, u: int, v: int, key: int) -> np.ndarray:
    """The polyline of edge ``(u, v, key)`` running from ``u`` to ``v``."""
    data = g.edges[u, v, key]
    return data["pts"] if data["src"] == u else data["pts"][::-1]


def new_node(g: nx.MultiGraph, pos: np.ndarray, *, border: bool = False) -> int:
    """Add a node at ``pos`` with the next free integer id."""
    node = g.graph.get("next_id")
    if node is None:
        node = max(g.nodes, default=-1) + 1
    g.graph["next_id"] = node + 1
    g.add_node(node, pos=np.asarray(pos, dtype=np.float64), border=border)
    return node


def near_border(pos: np.ndarray, shape: tuple[int, int], tolerance: float) -> bool:
    """Whether a pixel position lies within ``tolerance`` pixels of the raster's outer edge."""
    row, col = float(pos[0]), float(pos[1])
    edge = min(row + 0.5, col + 0.5, shape[0] - 0.5 - row, shape[1] - 0.5 - col)
    return edge <= tolerance


def merge_degree2(g: nx.MultiGraph) -> int:
    """Join the two edges at every degree-2 node, so nodes exist only at junctions and ends."""
    merged = 0
    for node in list(g.nodes):
        if g.degree(node) != 2:
            continue
        edges = list(g.edges(node, keys=True))
        if len(edges) != 2:  # a lone self-loop: a closed road with nothing to merge into
            continue
        (_, a, ka), (_, b, kb) = edges
        first = oriented_pts(g, node, a, ka)[::-1]  # a → node
        second = oriented_pts(g, node, b, kb)  # node → b
        da, db = g.edges[node, a, ka], g.edges[node, b, kb]
        psum, pcount = da["psum"] + db["psum"], da["pcount"] + db["pcount"]
        g.remove_node(node)
        add_edge(g, a, b, np.concatenate([first, second[1:]]), psum, pcount)
        merged += 1
    return merged


def prune_spurs(g: nx.MultiGraph, max_px: float, border_max_px: float) -> int:
    """Remove edges from a junction to a dead end shorter than ``max_px``, shortest first.

    Only an edge whose other end is a junction (degree >= 3, checked as the graph changes) is a
    spur: a short road between two junctions is real, and a junction is never pruned below two
    branches, so a small isolated Y keeps its two longer arms as one road. An edge that crosses
    the raster edge (a ``border`` node) is a road leaving the image and is kept unless shorter
    than ``border_max_px``.
    """
    candidates = []
    for u, v, k, data in g.edges(keys=True, data=True):
        if data["length"] >= max_px or u == v:
            continue
        for end, other in ((u, v), (v, u)):
            if g.degree(end) == 1 and g.degree(other) >= 3:
                candidates.append((data["length"], end, other, k))
    removed = 0
    for length, end, other, k in sorted(candidates, key=lambda c: c[0]):
        if not g.has_edge(end, other, k) or g.degree(end) != 1 or g.degree(other) < 3:
            continue
        if g.nodes[end]["border"] and length >= border_max_px:
            continue
        g.remove_node(end)
        removed += 1
    return removed


def remove_short_isolated(g: nx.MultiGraph, max_px: float) -> int:
    """Remove lone edges (both ends dead) shorter than ``max_px``: skeleton crumbs, not roads."""
    doomed = [
        (u, v)
        for u, v, data in g.edges(data=True)
        if u != v and g.degree(u) == 1 and g.degree(v) == 1 and data["length"] < max_px
    ]
    for u, v in doomed:
        g.remove_nodes_from((u, v))
    return len(doomed)


def remove_false_loops(g: nx.MultiGraph, loop_px: float, near_px: float) -> int:
    """Drop self-loops shorter than ``loop_px`` and redundant parallel edges.

    Of several edges between the same two nodes the shortest is kept; another is redundant when
    the loop the two form is shorter than ``loop_px`` (a hole in a wide road) or when it never
    strays more than ``near_px`` from the kept one. Farther parallels (a crescent, a divided road)
    are real roads and stay.
    """
    removed = 0
    for u, v, k, data in list(g.edges(keys=True, data=True)):
        if u == v and data["length"] < loop_px:
            g.remove_edge(u, v, k)
            removed += 1
    seen: set[tuple[int, int]] = set()
    for u, v in list(g.edges()):
        if u == v or (u, v) in seen or g.number_of_edges(u, v) < 2:
            continue
        seen.add((u, v))
        seen.add((v, u))
        keys = sorted(g[u][v], key=lambda key: g.edges[u, v, key]["length"])
        keep = g.edges[u, v, keys[0]]
        keep_line = shapely.LineString(keep["pts"])
        for key in keys[1:]:
            other = g.edges[u, v, key]
            loop = keep["length"] + other["length"]
            if loop < loop_px or (
                shapely.hausdorff_distance(keep_line, shapely.LineString(other["pts"])) <= near_px
            ):
                g.remove_edge(u, v, key)
                removed += 1
    return removed


def drop_isolated_nodes(g: nx.MultiGraph) -> int:
    """Remove nodes without edges."""
    lonely = [n for n, degree in g.degree() if degree == 0]
    g.remove_nodes_from(lonely)
    return len(lonely)


def clean_graph(g: nx.MultiGraph, params: PixelParams) -> None:
    """Iterate the clean-up steps until the graph stops changing.

    Each step can expose work for another (pruning a spur leaves a degree-2 node, merging it can
    turn two parallel edges into a self-loop), hence the fixed-point loop.
    """
    merge_degree2(g)
    for _ in range(50):
        changed = prune_spurs(g, params.spur_px, params.border_px)
        changed += remove_false_loops(g, params.self_loop_px, params.spur_px)
        changed += drop_isolated_nodes(g)
        changed += merge_degree2(g)
        changed += remove_short_isolated(g, params.spur_px)
        changed += drop_isolated_nodes(g)
        if not changed:
            return


def iter_edges(g: nx.MultiGraph) -> Iterator[tuple[int, int, int, np.ndarray, dict]]:
    """Edges as ``(u, v, key, pts from u to v, data)``."""
    for u, v, k, data in g.edges(keys=True, data=True):
        yield u, v, k, oriented_pts(g, u, v, k), data


def relabel_by_position(g: nx.MultiGraph) -> nx.MultiGraph:
    """Number nodes 0..n-1 by position (row, then column), so output ids are reproducible."""
    order = sorted(g.nodes, key=lambda n: (*g.nodes[n]["pos"].tolist(), n))
    mapping: dict[Hashable, int] = {node: i for i, node in enumerate(order)}
    out = nx.relabel_nodes(g, mapping, copy=True)
    for _, _, data in out.edges(data=True):
        data["src"] = mapping[data["src"]]
    out.graph["next_id"] = len(order)
    return out
