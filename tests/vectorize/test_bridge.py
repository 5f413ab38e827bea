"""Gap bridging: short collinear gaps close; parallels, far gaps and the raster edge do not."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from sanchari_processes.config import VectorizeConfig
from tests.vectorize.test_graph import GSD, draw_roads, feature_graph, vectorize_pixels

METRES = 1.0 / GSD  # pixels per metre


def components(collection: dict) -> int:
    return nx.number_connected_components(feature_graph(collection))


def test_four_metre_gap_is_bridged_into_one_road() -> None:
    mask = draw_roads((200, 400), [[(100, 30), (100, 370)]])
    mask[:, 196 : 196 + int(4 * METRES)] = 0
    fc = vectorize_pixels(mask)
    assert components(fc) == 1
    assert len(fc["features"]) == 1
    assert fc["features"][0]["properties"]["mean_probability"] < 1.0  # the bridge is uncertain


def test_gap_on_a_diagonal_road_cut_square_to_the_image_is_bridged() -> None:
    # the cut is slanted to the road, so the skeleton ends hook towards the cut's corners
    mask = draw_roads((400, 400), [[(30, 30), (370, 370)]], width=14)
    mask[:, 195:203] = 0
    fc = vectorize_pixels(mask)
    assert components(fc) == 1
    assert len(fc["features"]) == 1


def test_road_stopping_short_of_a_crossing_road_is_joined_to_it() -> None:
    mask = draw_roads((400, 400), [[(200, 20), (200, 380)], [(20, 150), (180, 150)]])
    mask[180:194, :] = 0  # the side road stops 4-5 m before the main road...
    mask[194:207, :] = draw_roads((400, 400), [[(200, 20), (200, 380)]])[194:207, :]
    fc = vectorize_pixels(mask)
    g = feature_graph(fc)
    assert components(fc) == 1
    assert sorted(d for _, d in g.degree()) == [1, 1, 1, 3]  # ...and now meets it in a T


def test_gap_longer_than_bridge_max_stays_open() -> None:
    mask = draw_roads((200, 400), [[(100, 30), (100, 370)]])
    mask[:, 180 : 180 + int(20 * METRES)] = 0
    assert components(vectorize_pixels(mask)) == 2
    assert components(vectorize_pixels(mask, VectorizeConfig(bridge_max_m=40.0))) == 1


def test_parallel_roads_are_not_bridged() -> None:
    mask = draw_roads((400, 400), [[(150, 30), (150, 370)], [(250, 30), (250, 370)]])
    assert components(vectorize_pixels(mask)) == 2


def test_offset_dead_ends_are_not_bridged_sideways() -> None:
    # two roads ending 5 m apart along their line but 12 m apart across it
    mask = draw_roads((300, 400), [[(126, 30), (126, 200)], [(150, 200), (150, 370)]])
    mask[:, 195:205] = 0
    assert components(vectorize_pixels(mask)) == 2


def test_roads_leaving_the_raster_are_not_bridged() -> None:
    # two roads leave through the top edge 6 m apart, heading towards each other's exit
    mask = draw_roads((300, 300), [[(250, 80), (0, 138)], [(250, 220), (0, 162)]])
    fc = vectorize_pixels(mask)
    assert components(fc) == 2
    tops = sorted(min(y for _, y in f["geometry"]["coordinates"]) for f in fc["features"])
    assert tops == pytest.approx([0.0, 0.0])  # both run right up to the raster edge


def test_road_ending_at_the_raster_edge_stays_a_dead_end() -> None:
    mask = draw_roads((200, 300), [[(100, 0), (100, 150)]])
    fc = vectorize_pixels(mask)
    ((x0, _), *_, (x1, _)) = fc["features"][0]["geometry"]["coordinates"]
    assert len(fc["features"]) == 1
    assert min(x0, x1) == pytest.approx(0.0)  # the pixel edge of the raster


def test_mean_probability_counts_the_bridge() -> None:
    mask = draw_roads((200, 400), [[(100, 30), (100, 370)]]) * np.float32(0.9)
    fc = vectorize_pixels(mask)
    assert fc["features"][0]["properties"]["mean_probability"] == pytest.approx(0.9, abs=1e-3)
