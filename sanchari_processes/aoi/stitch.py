"""Lines across block seams: each block keeps only its core, then the ends at seams are joined.

Every block is predicted and vectorized with a margin, so near a seam both neighbours see the
same road; each keeps only the part of its lines inside its own core, clipped half-open
(``[left, right) x [bottom, top)``), so the overlap is never written twice and a line lying
exactly on a seam belongs to one block. The cut ends lie on the seam; two ends of different
blocks within a tolerance (the two views of the road differ by a pixel or so) are joined at
their midpoint, and the pieces are chained into one line across as many blocks as it crosses.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from scipy.spatial import cKDTree
from shapely.geometry import LineString
from shapely.geometry.base import BaseGeometry

#: An end this close to a core edge (grid units, metres) lies on the seam.
SEAM_EPS = 1e-3


@dataclass(frozen=True)
class Piece:
    """A block's line inside its core: grid-CRS coordinates, mean probability, which ends
    were cut at the core's edge (and may continue in a neighbour)."""

    coords: np.ndarray
    probability: float
    seam_ends: tuple[bool, bool]

    @property
    def length(self) -> float:
        return float(np.hypot(*np.diff(self.coords, axis=0).T).sum())

    def to_json(self) -> dict:
        return {
            "xy": np.round(self.coords, 3).tolist(),
            "p": round(self.probability, 4),
            "seam": list(self.seam_ends),
        }

    @classmethod
    def from_json(cls, data: dict) -> Piece:
        start, end = data["seam"]
        return cls(np.asarray(data["xy"], np.float64), float(data["p"]), (bool(start), bool(end)))


@dataclass(frozen=True)
class Line:
    """A stitched line (grid CRS): its coordinates, length-weighted probability, pieces."""

    coords: np.ndarray
    probability: float
    pieces: int


def clip_to_core(
    features: Iterable[dict], core: tuple[float, float, float, float], area: BaseGeometry
) -> list[Piece]:
    """The parts of ``features`` (LineStrings in grid coordinates) inside ``area`` (the core,
    or the part of it inside the AOI), the core's right and top edges excluded."""
    _, _, right, top = core
    shapely.prepare(area)
    pieces = []
    for feature in features:
        line = LineString(feature["geometry"]["coordinates"])
        probability = float(feature["properties"].get("mean_probability") or 0.0)
        if not area.intersects(line):
            continue
        parts = [line] if area.contains(line) else _lines(line.intersection(area))
        if len(parts) > 1:  # GEOS splits a line where it touches the edge: join it again
            parts = _lines(shapely.line_merge(shapely.multilinestrings(parts)))
        for part in parts:
            coords = np.asarray(part.coords, np.float64)
            if _on_excluded_edge(coords, right, top) or part.length <= 0:
                continue
            ends = tuple(_on_edge(coords[i], core) for i in (0, -1))
            pieces.append(Piece(coords, probability, (ends[0], ends[1])))
    return pieces


def _lines(geometry: BaseGeometry) -> list[LineString]:
    if geometry.is_empty:
        return []
    if geometry.geom_type == "LineString":
        return [geometry]  # type: ignore[list-item]
    found: list[LineString] = []
    for part in getattr(geometry, "geoms", []):
        found.extend(_lines(part))
    return found


def _on_excluded_edge(coords: np.ndarray, right: float, top: float) -> bool:
    """Whether a part lies along the core's right or top edge (the neighbour's)."""
    return bool(
        np.all(np.abs(coords[:, 0] - right) < SEAM_EPS)
        or np.all(np.abs(coords[:, 1] - top) < SEAM_EPS)
    )


def _on_edge(point: np.ndarray, core: tuple[float, float, float, float]) -> bool:
    left, bottom, right, top = core
    x, y = float(point[0]), float(point[1])
    return min(abs(x - left), abs(x - right), abs(y - bottom), abs(y - top)) < SEAM_EPS


def stitch(blocks: Sequence[Sequence[Piece]], tolerance_m: float) -> list[Line]:
    """Join the pieces of neighbouring blocks whose seam ends lie within ``tolerance_m``.

    ``blocks`` holds each block's pieces, in a fixed order (the run's block order), so the
    result does not depend on which block finished first. Each seam end joins at most one
    other (the nearest pairs first); pieces with nothing to join come out as they are.
    """
    pieces: list[Piece] = []
    owner: list[int] = []
    for b, block in enumerate(blocks):
        pieces.extend(block)
        owner.extend([b] * len(block))
    links = _match_ends(pieces, owner, tolerance_m)
    return _chains(pieces, links)


def _match_ends(
    pieces: list[Piece], owner: list[int], tolerance_m: float
) -> dict[tuple[int, int], tuple[int, int]]:
    """``(piece, end) -> (piece, end)`` for the seam ends joined (both directions)."""
    ends = [(i, e) for i, p in enumerate(pieces) for e in (0, 1) if p.seam_ends[e]]
    if len(ends) < 2:
        return {}
    points = np.array([pieces[i].coords[0 if e == 0 else -1] for i, e in ends])
    tree = cKDTree(points)
    pairs = [
        (float(np.hypot(*(points[a] - points[b]))), a, b)
        for a, b in sorted(tree.query_pairs(tolerance_m))
        if owner[ends[a][0]] != owner[ends[b][0]]
    ]
    links: dict[tuple[int, int], tuple[int, int]] = {}
    for _, a, b in sorted(pairs):
        if ends[a] in links or ends[b] in links:
            continue
        links[ends[a]] = ends[b]
        links[ends[b]] = ends[a]
    return links


def _chains(pieces: list[Piece], links: dict[tuple[int, int], tuple[int, int]]) -> list[Line]:
    """Walk the joined pieces into lines, each from a free end (or round a closed loop)."""
    done = [False] * len(pieces)
    lines = []
    starts = [i for i in range(len(pieces)) if (i, 0) not in links or (i, 1) not in links]
    for start in starts + list(range(len(pieces))):
        if done[start]:
            continue
        entry = 0 if (start, 0) not in links else 1
        parts: list[np.ndarray] = []
        weights: list[tuple[float, float]] = []
        current: tuple[int, int] | None = (start, entry)
        while current is not None and not done[current[0]]:
            index, enter = current
            done[index] = True
            piece = pieces[index]
            coords = piece.coords if enter == 0 else piece.coords[::-1]
            parts.append(coords.copy())
            weights.append((piece.length, piece.probability))
            current = links.get((index, 1 - enter))
        lines.append(_join(parts, weights))
    return lines


def _join(parts: list[np.ndarray], weights: list[tuple[float, float]]) -> Line:
    """One line from pieces in order; each joint moves to the midpoint of the two ends."""
    for before, after in itertools.pairwise(parts):
        middle = (before[-1] + after[0]) / 2.0
        before[-1] = middle
        after[0] = middle
    coords = np.concatenate([parts[0]] + [p[1:] for p in parts[1:]])
    total = sum(length for length, _ in weights)
    probability = sum(length * p for length, p in weights) / total if total > 0 else weights[0][1]
    return Line(coords, float(probability), len(parts))
