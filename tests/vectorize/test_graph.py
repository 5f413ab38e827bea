"""Road graph topology on synthetic masks with known answers, and the clean-up steps.

The drawing and graph helpers here are shared by the other modules of ``tests/vectorize``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import networkx as nx
import numpy as np
import pytest
from affine import Affine
from skimage.draw import disk, line
from skimage.morphology import dilation
from skimage.morphology import disk as disk_footprint

from sanchari_processes.config import VectorizeConfig
from sanchari_processes.vectorize import vectorize_probability
from sanchari_processes.vectorize.graph import (
    add_edge,
    merge_degree2,
    prune_spurs,
    remove_false_loops,
    remove_short_isolated,
)

GSD = 0.5
CONFIG = VectorizeConfig()
Polyline = Sequence[tuple[float, float]]


def draw_roads(
    shape: tuple[int, int], polylines: Sequence[Polyline], width: int = 12
) -> np.ndarray:
    """A 0/1 float mask with roads of ``width`` pixels along ``(row, col)`` polylines."""
    centre = np.zeros(shape, dtype=bool)
    for polyline in polylines:
        pts = np.rint(np.asarray(polyline)).astype(int)
        for (r0, c0), (r1, c1) in itertools.pairwise(pts):
            rr, cc = line(r0, c0, r1, c1)
            keep = (rr >= 0) & (rr < shape[0]) & (cc >= 0) & (cc < shape[1])
            centre[rr[keep], cc[keep]] = True
    return dilation(centre, disk_footprint(width // 2)).astype(np.float32)


def vectorize_pixels(mask: np.ndarray, config: VectorizeConfig = CONFIG, **kwargs: object) -> dict:
    """Vectorize a plain (unreferenced) image at 0.5 m: coordinates are pixels."""
    return vectorize_probability(mask, Affine.identity(), None, config, gsd_m=GSD, **kwargs)


def feature_graph(collection: dict) -> nx.MultiGraph:
    """The output graph rebuilt from the features' end nodes."""
    g = nx.MultiGraph()
    for feature in collection["features"]:
        props = feature["properties"]
        g.add_edge(props["u"], props["v"], length=props["length_m"])
    return g


def total_length_m(collection: dict) -> float:
    return sum(f["properties"]["length_m"] for f in collection["features"])


def degrees(g: nx.MultiGraph) -> list[int]:
    return sorted(d for _, d in g.degree())


def test_grid_of_three_by_three_roads() -> None:
    size = 600
    rows = [[(r, 0), (r, size - 1)] for r in (150, 300, 450)]
    cols = [[(0, c), (size - 1, c)] for c in (150, 300, 450)]
    fc = vectorize_pixels(draw_roads((size, size), rows + cols))
    g = feature_graph(fc)
    assert degrees(g) == [1] * 12 + [4] * 9  # 9 crossings, 12 roads leaving the image
    assert g.number_of_edges() == 24
    assert nx.number_connected_components(g) == 1
    assert total_length_m(fc) == pytest.approx(6 * size * GSD, rel=0.01)


def test_t_junction() -> None:
    mask = draw_roads((400, 400), [[(200, 50), (200, 350)], [(200, 200), (350, 200)]])
    g = feature_graph(vectorize_pixels(mask))
    assert g.number_of_edges() == 3
    assert degrees(g) == [1, 1, 1, 3]


def test_smooth_curve_is_one_edge_of_its_arc_length() -> None:
    theta = np.linspace(0, np.pi / 2, 100)
    radius, width = 250, 12
    arc = [(50 + radius * np.sin(t), 50 + radius * np.cos(t)) for t in theta]
    fc = vectorize_pixels(draw_roads((400, 400), [arc], width))
    assert len(fc["features"]) == 1
    assert total_length_m(fc) == pytest.approx(radius * np.pi / 2 * GSD, rel=0.03)


def test_wide_road_with_a_hole_is_not_a_loop() -> None:
    mask = draw_roads((300, 400), [[(150, 20), (150, 380)]], width=30)
    mask[142:158, 90:110] = 0  # 320 px: filled before skeletonizing
    mask[147:153, 200:280] = 0  # 480 px crack: too big to fill; the loop around it is collapsed
    g = feature_graph(vectorize_pixels(mask))
    assert g.number_of_edges() == 1
    assert nx.cycle_basis(nx.Graph(g)) == []
    assert nx.number_of_selfloops(g) == 0


def test_speckle_vanishes() -> None:
    rng = np.random.default_rng(3)
    mask = np.zeros((300, 300), dtype=np.float32)
    for _ in range(80):
        rr, cc = disk(tuple(rng.uniform(0, 300, 2)), rng.uniform(1, 5), shape=mask.shape)
        mask[rr, cc] = 1
    fc = vectorize_pixels(mask)
    assert fc["type"] == "FeatureCollection"
    assert fc["features"] == []


def test_spurs_are_pruned() -> None:
    mask = draw_roads((300, 400), [[(150, 40), (150, 360)]])
    for col in (100, 200, 300):
        mask[134:146, col : col + 4] = 1  # 6 m stubs off the road edge: skeleton spurs
    rr, cc = disk((140, 250), 8)
    mask[rr, cc] = 1  # a bulge
    no_pruning = vectorize_pixels(mask, VectorizeConfig(spur_length_m=0.1))
    assert len(no_pruning["features"]) > 1  # the stubs do make spurs
    fc = vectorize_pixels(mask)
    assert len(fc["features"]) == 1
    assert total_length_m(fc) == pytest.approx(320 * GSD, rel=0.02)


def test_short_isolated_road_longer_than_a_spur_survives() -> None:
    mask = draw_roads((200, 200), [[(100, 70), (100, 130)]])  # 36 m > 10 m spur length
    fc = vectorize_pixels(mask)
    assert len(fc["features"]) == 1


# --- the clean-up steps on hand-made graphs --------------------------------------------------


def _graph(nodes: dict[int, tuple[float, float]], edges: list[tuple[int, int]]) -> nx.MultiGraph:
    g = nx.MultiGraph()
    for node, pos in nodes.items():
        g.add_node(node, pos=np.array(pos, dtype=float), border=False)
    for u, v in edges:
        add_edge(g, u, v, np.array([nodes[u], nodes[v]], dtype=float), 0.0, 0)
    return g


def test_prune_keeps_short_road_between_junctions_and_last_arm() -> None:
    # 0 -- 1 -- 2 -- 3 (long), 1 and 2 are junctions 5 px apart, each with a long branch
    nodes = {0: (0, 0), 1: (0, 100), 2: (0, 105), 3: (0, 200), 4: (100, 100), 5: (100, 105)}
    g = _graph(nodes, [(0, 1), (1, 2), (2, 3), (1, 4), (2, 5)])
    assert prune_spurs(g, 20.0, 1.0) == 0
    # a tiny Y (three short arms) loses its shortest arm only: the other two are its road
    star = _graph({0: (0, 0), 1: (0, 8), 2: (10, 0), 3: (0, -15)}, [(0, 1), (0, 2), (0, 3)])
    assert prune_spurs(star, 20.0, 1.0) == 1
    assert sorted(star.edges()) == [(0, 2), (0, 3)]


def test_prune_spurs_keeps_roads_leaving_the_raster() -> None:
    g = _graph({0: (50, 0), 1: (50, 50), 2: (50, 100), 3: (40, 50)}, [(0, 1), (1, 2), (1, 3)])
    g.nodes[3]["border"] = True
    assert prune_spurs(g, 20.0, 5.0) == 0
    assert prune_spurs(g, 20.0, 12.0) == 1


def test_merge_degree2_keeps_geometry_and_probability() -> None:
    g = _graph({0: (0, 0), 1: (0, 10), 2: (10, 10)}, [(0, 1), (2, 1)])
    g.edges[0, 1, 0].update(psum=3.0, pcount=4)
    g.edges[1, 2, 0].update(psum=1.0, pcount=4)
    assert merge_degree2(g) == 1
    ((u, v, data),) = g.edges(data=True)
    assert {u, v} == {0, 2}
    assert data["length"] == pytest.approx(20.0)
    assert data["psum"] / data["pcount"] == pytest.approx(0.5)
    start = data["pts"][0] if data["src"] == 0 else data["pts"][-1]
    assert start.tolist() == [0.0, 0.0]


def test_false_loops_and_redundant_parallels_go_real_ones_stay() -> None:
    g = _graph({0: (0, 0), 1: (0, 100)}, [(0, 1)])
    add_edge(g, 0, 0, np.array([[0, 0], [5, 5], [0, 10], [0, 0]], float), 0, 0)  # small loop
    add_edge(g, 0, 1, np.array([[0, 0], [4, 50], [0, 100]], float), 0, 0)  # 4 px away
    add_edge(g, 0, 1, np.array([[0, 0], [60, 50], [0, 100]], float), 0, 0)  # 60 px away
    assert remove_false_loops(g, loop_px=100.0, near_px=20.0) == 2
    assert g.number_of_edges() == 2
    assert nx.number_of_selfloops(g) == 0


def test_short_isolated_crumbs_are_removed() -> None:
    g = _graph({0: (0, 0), 1: (0, 5), 2: (50, 0), 3: (50, 60)}, [(0, 1), (2, 3)])
    assert remove_short_isolated(g, 20.0) == 1
    assert sorted(g.nodes) == [2, 3]


def test_compiled_graph_code_is_cached_between_runs(tmp_path):
    """sknw's numba functions compile once per cache, not once per command (~4 s each)."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np, pathlib, sys; "
        "from sanchari_processes.vectorize.graph import enable_jit_cache, skeleton_graph; "
        "enable_jit_cache(pathlib.Path(sys.argv[1])); "
        "s = np.zeros((9, 9), bool); s[4, 1:8] = True; "
        "print(skeleton_graph(s).number_of_edges())"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=True, env=env,
    )  # fmt: skip
    assert done.stdout.strip() == "1", done.stderr
    assert list(tmp_path.rglob("*.nbi")) and list(tmp_path.rglob("*.nbc"))
