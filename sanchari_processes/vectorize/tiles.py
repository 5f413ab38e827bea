"""Tiled skeleton graphs, stitched into one graph for the whole raster.

Why tiles: sknw stores pixel coordinates as int16 and a 20000 x 20000 raster must not be held in
memory at once. Design:

1. The raster is cut into a grid of non-overlapping *cores* of at most ``tile_size`` pixels a
   side. Every pixel belongs to exactly one core. A raster smaller than one tile is one core.
2. Each core is processed in a *window*: the core plus a halo of ``tile_overlap`` pixels on every
   side. Only the window is read (``prob[r0:r1, c0:c1]``). The halo gives the morphology and the
   skeleton the context they need, so near the core's boundary the window's skeleton is the
   skeleton the whole raster would have. The mask is cleaned on the window as read; only then,
   where the window sticks out of the raster, is it mirrored for the skeleton, so a road that
   leaves the image keeps its centreline up to the raster edge.
3. The window's skeleton becomes an sknw graph, and every edge polyline is cut where it leaves
   the core. A cut between consecutive skeleton pixels ``p`` (inside) and ``q`` (outside) becomes
   a *crossing node* at their midpoint, keyed by the pixel pair. The neighbouring tile cuts the
   same skeleton between the same two pixels and produces the same key, so the two halves of the
   road meet in one node: stitching is a dictionary lookup, with no duplicate nodes and no gap.
   A crossing whose ``q`` lies outside the raster is a ``border`` node: the road leaves the image.
   Skeleton pixels at most ``BORDER_SNAP_PX`` outside count as on the edge (a road running along
   the edge zigzags across it). Junction and end nodes belong to the core holding their centre.
4. Crossing nodes end up with degree 2 and are merged away by :func:`graph.merge_degree2`, so a
   road crossing a tile border is a single edge again. Should two windows ever disagree on a
   skeleton pixel at the cut, the unmatched crossing ends (a pixel or two apart) are joined by
   proximity instead.

Memory is one window's arrays at a time plus the graph, which is as large as the road network.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
from scipy.spatial import cKDTree

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.vectorize.graph import add_edge, skeleton_graph
from sanchari_processes.vectorize.mask import clean_mask, skeleton_with_context, threshold_mask
from sanchari_processes.vectorize.params import PixelParams

#: Crossing ends of neighbouring tiles farther apart than this (pixels) are different roads.
STITCH_TOLERANCE_PX = 3.0
#: Skeleton pixels this close outside the raster are moved onto its edge rather than cut off:
#: the skeleton of a road running along the edge zigzags across it by a pixel or two.
BORDER_SNAP_PX = 2

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Tile:
    """A core (the pixels this tile owns, half-open) and the halo it is computed with."""

    index: int
    row0: int
    row1: int
    col0: int
    col1: int
    halo: int

    def read_bounds(self, shape: tuple[int, int]) -> tuple[int, int, int, int]:
        """The window clipped to the raster: ``(row0, row1, col0, col1)``."""
        return (
            max(self.row0 - self.halo, 0),
            min(self.row1 + self.halo, shape[0]),
            max(self.col0 - self.halo, 0),
            min(self.col1 + self.halo, shape[1]),
        )

    def pads(self, shape: tuple[int, int]) -> tuple[int, int, int, int]:
        """How far the window sticks out of the raster: ``(top, bottom, left, right)``."""
        return (
            max(self.halo - self.row0, 0),
            max(self.row1 + self.halo - shape[0], 0),
            max(self.halo - self.col0, 0),
            max(self.col1 + self.halo - shape[1], 0),
        )

    def contains(self, pts: np.ndarray) -> np.ndarray:
        """Which ``(row, col)`` points lie in the core."""
        rows, cols = pts[:, 0], pts[:, 1]
        return (rows >= self.row0) & (rows < self.row1) & (cols >= self.col0) & (cols < self.col1)


def tile_grid(shape: tuple[int, int], tile_size: int, overlap: int) -> list[Tile]:
    """Equal-sized cores of at most ``tile_size`` pixels covering ``shape``."""

    def cuts(n: int) -> list[int]:
        count = max(math.ceil(n / tile_size), 1)
        return [round(i * n / count) for i in range(count + 1)]

    rows, cols = cuts(shape[0]), cuts(shape[1])
    tiles: list[Tile] = []
    for r0, r1 in itertools.pairwise(rows):
        for c0, c1 in itertools.pairwise(cols):
            tiles.append(Tile(len(tiles), r0, r1, c0, c1, overlap))
    return tiles


@dataclass
class RasterStats:
    """What the tiles saw of the probability values, to reject unusable input."""

    finite: bool = False
    low: float = math.inf
    high: float = -math.inf

    def update(self, prob: np.ndarray) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows
            low, high = float(np.nanmin(prob)), float(np.nanmax(prob))
        if not math.isnan(low):
            self.finite = True
            self.low, self.high = min(self.low, low), max(self.high, high)


def read_tile(
    prob: Any, valid: Any, bounds: tuple[int, int, int, int]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read one window of ``prob`` (and ``valid``) as arrays, checking their shape."""
    r0, r1, c0, c1 = bounds
    window = np.asarray(prob[r0:r1, c0:c1], dtype=np.float32)
    if window.shape != (r1 - r0, c1 - c0):
        raise InvalidInputError(
            f"probability window [{r0}:{r1}, {c0}:{c1}] read as shape {window.shape}"
        )
    mask = None
    if valid is not None:
        mask = np.asarray(valid[r0:r1, c0:c1], dtype=bool)
        if mask.shape != window.shape:
            raise InvalidInputError(f"valid window read as shape {mask.shape}")
    return window, mask


@dataclass(frozen=True)
class NodeRef:
    """A node as a tile sees it: a global key, its position and whether it is on the raster edge."""

    key: Hashable
    pos: tuple[float, float]
    border: bool = False
    #: A node where the skeleton crosses a core's boundary (rather than a junction or an end).
    crossing: bool = False


@dataclass(frozen=True)
class Piece:
    """The part of a skeleton edge inside one core, with the probability under its pixels."""

    start: NodeRef
    end: NodeRef
    pts: np.ndarray
    psum: float
    pcount: int


def _outside_distance(pts: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """How many pixels each ``(row, col)`` point lies outside the raster (0 inside)."""
    rows = np.maximum(np.maximum(-pts[:, 0], pts[:, 0] - (shape[0] - 1)), 0)
    cols = np.maximum(np.maximum(-pts[:, 1], pts[:, 1] - (shape[1] - 1)), 0)
    return np.maximum(rows, cols)


def _clamp(pts: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Points moved onto the raster's outer edge (pixel centres run 0..n-1, the edge is ±0.5)."""
    low = np.array([-0.5, -0.5])
    return np.clip(pts, low, np.array(shape) - 0.5)


def _crossing(
    inside: np.ndarray, outside: np.ndarray, shape: tuple[int, int], snap: float
) -> NodeRef:
    """The node where the skeleton steps from pixel ``inside`` to ``outside`` of a core."""
    a, b = (int(inside[0]), int(inside[1])), (int(outside[0]), int(outside[1]))
    off_raster = bool(_outside_distance(np.array([b]), shape)[0] > snap)
    pos = _clamp(np.array([(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0]), shape)
    key = (*min(a, b), *max(a, b))
    return NodeRef(key, (float(pos[0]), float(pos[1])), off_raster, crossing=True)


def tile_pieces(
    skeleton_g: nx.MultiGraph,
    tile: Tile,
    origin: tuple[int, int],
    prob: np.ndarray,
    prob_origin: tuple[int, int],
    shape: tuple[int, int],
    snap: float,
) -> Iterator[Piece]:
    """Cut a window's skeleton graph to the tile's core.

    ``origin`` is the raster position of the window's pixel (0, 0) (negative where the window is
    mirrored past the raster edge); ``prob`` is the window as read, starting at ``prob_origin``.
    Skeleton pixels up to ``snap`` pixels outside the raster belong to the tile at that edge
    and are moved onto it: a road running along the raster edge zigzags across it in the
    mirrored mask and must stay one road, not a string of fragments.
    """
    offset = np.asarray(origin, dtype=np.int64)
    pr0, pc0 = prob_origin
    limit = np.array(shape) - 1
    for u, v, data in skeleton_g.edges(data=True):
        if not np.array_equal(data["pts"][0], skeleton_g.nodes[u]["o"]):
            u, v = v, u  # networkx forgets edge direction; sknw's polyline runs start → end
        pts = data["pts"].astype(np.int64) + offset
        owner = np.where(
            (_outside_distance(pts, shape) <= snap)[:, None], np.clip(pts, 0, limit), pts
        )
        inside = tile.contains(owner)
        if not inside.any():
            continue
        steps = np.diff(np.concatenate([[0], inside.view(np.int8), [0]]))
        for s, e in zip(np.flatnonzero(steps == 1), np.flatnonzero(steps == -1), strict=True):
            line = _clamp(pts[s:e].astype(np.float64), shape)
            if s == 0:
                start = NodeRef((tile.index, u), (float(line[0, 0]), float(line[0, 1])))
            else:
                start = _crossing(pts[s], pts[s - 1], shape, snap)
                line = np.vstack([start.pos, line])
            if e == len(pts):
                end = NodeRef((tile.index, v), (float(line[-1, 0]), float(line[-1, 1])))
            else:
                end = _crossing(pts[e - 1], pts[e], shape, snap)
                line = np.vstack([line, end.pos])
            keep = np.ones(len(line), dtype=bool)
            keep[1:] = np.any(np.diff(line, axis=0) != 0, axis=1)
            # a piece snapped onto a single point still needs two vertices
            line = line[keep] if keep.sum() >= 2 else line[[0, -1]]
            values = prob[owner[s:e, 0] - pr0, owner[s:e, 1] - pc0]
            yield Piece(start, end, line, float(np.nan_to_num(values).sum()), int(e - s))


def stitch_leftovers(g: nx.MultiGraph) -> None:
    """Join crossing ends that neighbouring windows skeletonised a pixel or two apart."""
    loose = [
        n
        for n, d in g.nodes(data=True)
        if d.get("tile") is not None and not d["border"] and g.degree(n) == 1
    ]
    if len(loose) < 2:
        return
    pos = np.array([g.nodes[n]["pos"] for n in loose])
    pairs = sorted(
        cKDTree(pos).query_pairs(STITCH_TOLERANCE_PX, output_type="ndarray").tolist(),
        key=lambda p: float(np.hypot(*(pos[p[0]] - pos[p[1]]))),
    )
    used: set[int] = set()
    for i, j in pairs:
        a, b = loose[i], loose[j]
        if i in used or j in used or g.nodes[a]["tile"] == g.nodes[b]["tile"]:
            continue
        used.update((i, j))
        add_edge(g, a, b, np.vstack([pos[i], pos[j]]), 0.0, 0)


def build_graph(
    prob: Any,
    valid: Any,
    shape: tuple[int, int],
    params: PixelParams,
    progress: Progress | None = None,
) -> nx.MultiGraph:
    """The raw (uncleaned) skeleton graph of the whole raster, built tile by tile.

    Nodes carry ``pos`` and ``border`` (see :mod:`~sanchari_processes.vectorize.graph`), and
    crossing nodes the ``tile`` that created them. Raises :class:`InvalidInputError` when the
    probabilities are all NaN or outside 0..1.
    """
    tiles = tile_grid(shape, params.tile_size, params.tile_overlap)
    g = nx.MultiGraph()
    ids: dict[Hashable, int] = {}
    stats = RasterStats()

    def node_id(ref: NodeRef, tile: int) -> int:
        node = ids.get(ref.key)
        if node is None:
            node = ids[ref.key] = len(ids)
            g.add_node(
                node,
                pos=np.array(ref.pos),
                border=ref.border,
                tile=tile if ref.crossing else None,
            )
        return node

    for done, tile in enumerate(tiles, start=1):
        bounds = tile.read_bounds(shape)
        window, valid_window = read_tile(prob, valid, bounds)
        stats.update(window)
        if stats.low < -1e-6 or stats.high > 1.0 + 1e-6:
            raise InvalidInputError(
                f"probabilities must lie in 0..1, found {stats.low:g}..{stats.high:g}"
            )
        mask = clean_mask(threshold_mask(window, params.threshold, valid_window), params)
        pads = tile.pads(shape)
        skeleton = skeleton_with_context(mask, pads)
        del mask
        origin = (bounds[0] - pads[0], bounds[2] - pads[2])
        pieces = tile_pieces(
            skeleton_graph(skeleton),
            tile,
            origin,
            window,
            (bounds[0], bounds[2]),
            shape,
            BORDER_SNAP_PX,
        )
        for piece in pieces:
            u, v = node_id(piece.start, tile.index), node_id(piece.end, tile.index)
            add_edge(g, u, v, piece.pts, piece.psum, piece.pcount)
        del skeleton, window
        if progress is not None:
            progress(done, len(tiles))
    if not stats.finite:
        raise InvalidInputError("the probability raster has no finite values")
    stitch_leftovers(g)
    for _, data in g.nodes(data=True):
        data.pop("tile", None)
    g.graph["next_id"] = len(ids)
    return g
