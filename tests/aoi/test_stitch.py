"""Seams: a line cut by block cores comes back whole; the overlap is never written twice."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import LineString, box

from sanchari_processes.aoi.stitch import Piece, clip_to_core, stitch

B = 100.0


def feature(coords: list[tuple[float, float]], p: float = 0.8) -> dict:
    return {"geometry": {"coordinates": coords}, "properties": {"mean_probability": p}}


def core(ix: int, iy: int = 0) -> tuple[float, float, float, float]:
    return (ix * B, iy * B, (ix + 1) * B, (iy + 1) * B)


def blocks_of(line: list[tuple[float, float]], jitter: float = 0.0) -> list[list[Piece]]:
    """The line as three neighbouring blocks see it (each its own view, moved by ``jitter``
    across the line, and reaching into the margins), clipped to their cores."""
    out = []
    for ix in range(3):
        shifted = [(x, y + jitter * (ix - 1)) for x, y in line]
        out.append(clip_to_core([feature(shifted)], core(ix), box(*core(ix))))
    return out


def test_a_line_across_three_blocks_comes_back_as_one() -> None:
    road = [(-20.0, 30.0), (320.0, 70.0)]
    lines = stitch(blocks_of(road, jitter=0.4), tolerance_m=2.0)
    assert len(lines) == 1 and lines[0].pieces == 3
    got = LineString(lines[0].coords)
    expected = LineString(road).intersection(box(0, 0, 3 * B, B))
    assert got.hausdorff_distance(expected) < 0.5
    assert abs(got.length - expected.length) < 0.1  # no gap, nothing doubled
    assert lines[0].probability == pytest.approx(0.8)


def test_ends_further_apart_than_the_tolerance_stay_apart() -> None:
    lines = stitch(blocks_of([(-20.0, 30.0), (320.0, 70.0)], jitter=3.0), tolerance_m=2.0)
    assert len(lines) == 3


def test_a_line_on_a_seam_belongs_to_one_block() -> None:
    along = feature([(100.0, 10.0), (100.0, 90.0)])
    left = clip_to_core([along], core(0), box(*core(0)))
    right = clip_to_core([along], core(1), box(*core(1)))
    assert left == [] and len(right) == 1


def test_pieces_of_one_block_are_not_joined_to_each_other() -> None:
    # a line leaving the core and coming back: two pieces of one block, ends on its edge
    wiggle = feature([(50.0, 50.0), (120.0, 50.0), (120.0, 60.0), (50.0, 60.0)])
    pieces = clip_to_core([wiggle], core(0), box(*core(0)))
    assert len(pieces) == 2 and all(any(p.seam_ends) for p in pieces)
    assert len(stitch([pieces], tolerance_m=20.0)) == 2


def test_a_record_round_trip_keeps_a_piece() -> None:
    piece = Piece(np.array([[0.0, 1.0], [2.5, 3.25]]), 0.5, (True, False))
    again = Piece.from_json(piece.to_json())
    np.testing.assert_array_equal(again.coords, piece.coords)
    assert again.seam_ends == piece.seam_ends and again.probability == piece.probability


def test_the_result_does_not_depend_on_which_block_finished_first() -> None:
    blocks = blocks_of([(-20.0, 30.0), (320.0, 70.0)], jitter=0.4)
    first = stitch(blocks, tolerance_m=2.0)
    again = stitch([list(b) for b in blocks], tolerance_m=2.0)
    np.testing.assert_array_equal(first[0].coords, again[0].coords)
