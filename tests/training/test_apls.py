"""APLS on constructed graphs: identical = 1, a cut road < 1, hallucinations penalised."""

from __future__ import annotations

import math

from training.apls import apls, geojson_lines, graph_from_lines, insert_control_points

CROSS = [[(0.0, 0.0), (200.0, 0.0)], [(100.0, 0.0), (100.0, 150.0)]]


def test_identical_graphs_score_one() -> None:
    g = graph_from_lines(CROSS)
    assert g.number_of_edges() == 3  # the T junction is noded
    assert apls(g, g)["apls"] == 1.0


def test_cut_road_scores_below_one() -> None:
    gt = graph_from_lines(CROSS)
    cut = graph_from_lines([[(0, 0), (90, 0)], [(110, 0), (200, 0)], [(100, 0), (100, 150)]])
    score = apls(gt, cut)
    assert score["apls"] < 0.8
    assert score["apls_gt_to_prop"] < score["apls_prop_to_gt"]  # missing link hurts gt->prop


def test_small_offset_within_snap_scores_near_one() -> None:
    gt = graph_from_lines(CROSS)
    shifted = graph_from_lines([[(0.0, 2.0), (200.0, 2.0)], [(100.0, 2.0), (100.0, 150.0)]])
    assert apls(gt, shifted)["apls"] > 0.95


def test_extra_road_is_penalised_and_empty_is_zero() -> None:
    gt = graph_from_lines(CROSS)
    extra = graph_from_lines([*CROSS, [(0.0, 0.0), (0.0, -300.0)]])
    score = apls(gt, extra)
    assert score["apls_gt_to_prop"] == 1.0 and score["apls_prop_to_gt"] < 0.5
    assert apls(gt, graph_from_lines([]))["apls"] == 0.0


def test_control_points_every_50_m_and_geojson_scaling() -> None:
    g = insert_control_points(graph_from_lines([[(0.0, 0.0), (120.0, 0.0)]]), 50.0)
    assert sorted(round(d["length"]) for *_, d in g.edges(data=True)) == [20, 50, 50]
    fc = {"features": [{"geometry": {"type": "LineString", "coordinates": [[0, 0], [10, 0]]}}]}
    assert geojson_lines(fc, gsd_m=0.5) == [[(0.0, 0.0), (5.0, 0.0)]]
    lonlat = {
        "features": [
            {"geometry": {"type": "LineString", "coordinates": [[2.35, 48.85], [2.351, 48.85]]}}
        ]
    }
    (line,) = geojson_lines(lonlat)
    assert math.isclose(math.dist(*line), 73.3, rel_tol=0.01)  # 0.001 deg lon at 48.85 N
