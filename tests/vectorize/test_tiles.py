"""Tiled processing: cores cover the raster once, windows are read lazily, roads are stitched."""

from __future__ import annotations

from dataclasses import replace

import networkx as nx
import numpy as np
import pytest

from sanchari_processes.config import VectorizeConfig
from sanchari_processes.vectorize import PixelParams, road_graph
from sanchari_processes.vectorize.graph import add_edge
from sanchari_processes.vectorize.tiles import stitch_leftovers, tile_grid
from tests.vectorize.test_graph import (
    GSD,
    draw_roads,
    feature_graph,
    total_length_m,
    vectorize_pixels,
)

SIZE = 1000
TILED = VectorizeConfig(tile_size=256, tile_overlap=32)


def road_network() -> np.ndarray:
    """Straight, diagonal and curved roads crossing many 256 px tile borders (and corners)."""
    theta = np.linspace(0, np.pi, 150)
    arc = [(500 + 350 * np.sin(t), 500 + 350 * np.cos(t)) for t in theta]
    roads = [[(r, 0), (r, SIZE - 1)] for r in (130, 511, 760)]
    roads += [[(0, c), (SIZE - 1, c)] for c in (255, 640)]
    roads += [[(20, 20), (980, 900)], arc]
    return draw_roads((SIZE, SIZE), roads, width=14)


class LazyRaster:
    """An array-like that only answers window reads, and records them."""

    def __init__(self, data: np.ndarray) -> None:
        self._data = data
        self.shape = data.shape
        self.reads: list[tuple[int, int]] = []

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        window = self._data[key]
        self.reads.append(window.shape)
        return window.copy()

    def __array__(self, *args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("the whole raster was read")


@pytest.mark.parametrize(
    ("shape", "tile", "count"), [((1000, 700), 256, 12), ((100, 90), 4096, 1), ((513, 512), 256, 6)]
)
def test_cores_partition_the_raster(shape: tuple[int, int], tile: int, count: int) -> None:
    tiles = tile_grid(shape, tile, 32)
    assert len(tiles) == count
    cover = np.zeros(shape, dtype=int)
    for t in tiles:
        assert t.row1 - t.row0 <= tile and t.col1 - t.col0 <= tile
        cover[t.row0 : t.row1, t.col0 : t.col1] += 1
    assert (cover == 1).all()


def test_tiled_graph_equals_the_single_tile_graph() -> None:
    mask = road_network()
    params = PixelParams.from_config(VectorizeConfig(), GSD)
    whole = road_graph(mask, params)
    tiled = road_graph(mask, replace(params, tile_size=256, tile_overlap=32))
    assert nx.number_connected_components(tiled) == nx.number_connected_components(whole) == 1
    assert sorted(d for _, d in tiled.degree()) == sorted(d for _, d in whole.degree())
    length = [sum(d["length"] for *_, d in g.edges(data=True)) for g in (whole, tiled)]
    assert length[1] == pytest.approx(length[0], rel=0.02)


def test_tiled_geojson_is_one_network_without_seams() -> None:
    mask = road_network()
    calls: list[tuple[int, int]] = []
    raster = LazyRaster(mask)
    tiled = vectorize_pixels(
        raster, TILED, progress=lambda done, total: calls.append((done, total))
    )
    whole = vectorize_pixels(mask)
    g = feature_graph(tiled)
    assert nx.number_connected_components(g) == 1
    assert 2 not in {d for _, d in g.degree()}  # no node left where a road crossed a tile border
    assert len(tiled["features"]) == len(whole["features"])
    assert total_length_m(tiled) == pytest.approx(total_length_m(whole), rel=0.02)
    assert calls == [(i, 16) for i in range(1, 17)]
    assert max(r * c for r, c in raster.reads) <= (256 + 2 * 32) ** 2


def test_road_along_a_tile_border_is_not_split() -> None:
    # a road whose centreline runs exactly on the cut between two tile rows
    mask = draw_roads((512, 512), [[(256, 0), (256, 511)], [(0, 100), (511, 100)]])
    g = feature_graph(vectorize_pixels(mask, TILED))
    assert sorted(d for _, d in g.degree()) == [1, 1, 1, 1, 4]
    assert g.number_of_edges() == 4


def test_valid_mask_is_read_by_window_too() -> None:
    mask = road_network()
    valid = np.ones(mask.shape, dtype=bool)
    valid[:, SIZE // 2 :] = False
    fc = vectorize_pixels(LazyRaster(mask), TILED, valid=LazyRaster(valid))
    xs = [x for f in fc["features"] for x, _ in f["geometry"]["coordinates"]]
    assert max(xs) <= SIZE // 2 + 1


def test_crossings_two_windows_skeletonised_apart_are_still_joined() -> None:
    g = nx.MultiGraph()
    for node, pos, tile in [(0, (10.0, 0.0), None), (1, (10.0, 49.5), 0), (2, (11.0, 50.5), 1)]:
        g.add_node(node, pos=np.array(pos), border=False, tile=tile)
    g.add_node(3, pos=np.array([10.0, 100.0]), border=False, tile=None)
    add_edge(g, 0, 1, np.array([[10.0, 0.0], [10.0, 49.5]]), 0.0, 0)
    add_edge(g, 2, 3, np.array([[11.0, 50.5], [10.0, 100.0]]), 0.0, 0)
    stitch_leftovers(g)
    assert nx.number_connected_components(g) == 1
