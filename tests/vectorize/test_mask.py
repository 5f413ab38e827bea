"""Mask clean-up and skeleton context: the pixel stages before the graph."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import disk, rectangle

from sanchari_processes.config import VectorizeConfig
from sanchari_processes.errors import InvalidInputError
from sanchari_processes.vectorize.mask import clean_mask, skeleton_with_context, threshold_mask
from sanchari_processes.vectorize.params import PixelParams

PARAMS = PixelParams.from_config(VectorizeConfig(), 0.5)


def test_defaults_are_the_v4_pixel_values_at_half_a_metre() -> None:
    assert PARAMS.fill_holes_px == 400
    assert PARAMS.min_object_px == 99  # objects < 100 px go
    assert PARAMS.closing_radius_px == 3
    assert PARAMS.spur_px == pytest.approx(20)
    assert PARAMS.self_loop_px == pytest.approx(100)


def test_lengths_scale_with_the_ground_sample_distance() -> None:
    fine = PixelParams.from_config(VectorizeConfig(), 0.25)
    assert fine.fill_holes_px == 1600
    assert fine.spur_px == pytest.approx(40)
    assert fine.closing_radius_px == 6


@pytest.mark.parametrize("gsd", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_gsd_is_rejected(gsd: float) -> None:
    with pytest.raises(InvalidInputError):
        PixelParams.from_config(VectorizeConfig(), gsd)


def test_threshold_ignores_nan_and_invalid_pixels() -> None:
    prob = np.array([[0.9, np.nan], [0.5, 0.2]], dtype=np.float32)
    valid = np.array([[True, True], [False, True]])
    assert threshold_mask(prob, 0.45).tolist() == [[True, False], [True, False]]
    assert threshold_mask(prob, 0.45, valid).tolist() == [[True, False], [False, False]]


def test_clean_mask_fills_small_holes_and_drops_speckle() -> None:
    mask = np.zeros((200, 200), dtype=bool)
    mask[rectangle((60, 10), extent=(40, 180))] = True  # a 20 m wide road
    mask[rectangle((75, 40), extent=(10, 10))] = False  # 100 px hole: filled
    mask[rectangle((70, 120), extent=(22, 25))] = False  # 550 px hole: kept
    mask[disk((20, 20), 4)] = True  # ~50 px speckle: removed
    mask[disk((170, 170), 7)] = True  # ~150 px blob: kept
    out = clean_mask(mask, PARAMS)
    assert out[80, 45]
    assert not out[80, 130]
    assert not out[20, 20]
    assert out[170, 170]


def test_closing_mends_a_one_pixel_crack() -> None:
    mask = np.zeros((60, 120), dtype=bool)
    mask[24:36, 5:115] = True
    mask[:, 60] = False
    assert clean_mask(mask, PARAMS)[26:34, 60].all()  # the corners of a closed crack may stay


def test_clean_mask_of_nothing_is_nothing() -> None:
    assert not clean_mask(np.zeros((30, 30), dtype=bool), PARAMS).any()


def test_mirrored_context_carries_the_skeleton_to_the_raster_edge() -> None:
    mask = np.zeros((100, 100), dtype=bool)
    mask[40:60, :70] = True  # a 20 px road leaving through the left edge
    plain = skeleton_with_context(mask, (0, 0, 0, 0))
    mirrored = skeleton_with_context(mask, (8, 8, 8, 8))[8:-8, 8:-8]
    assert not plain[:, :5].any()  # thinning eats half a road width at the edge...
    assert mirrored[:, 0].any()  # ...unless the road continues into the mirror


def test_areas_wider_than_a_road_are_dropped_roads_into_them_kept() -> None:
    mask = np.zeros((400, 400), dtype=bool)
    mask[100:300, 100:300] = True  # a 100 m square "car park" at 0.5 m
    mask[195:205, 0:100] = True  # a 5 m road leading into it
    mask[20:100, 320:380] = True  # a 30 m wide road: kept
    out = clean_mask(mask, PARAMS)
    assert not out[100:300, 100:300].any()
    assert out[195:205, 0:50].all()
    assert out[30:90, 330:370].all()


def test_wide_blob_leaves_only_the_road() -> None:
    from tests.vectorize.test_graph import total_length_m, vectorize_pixels

    mask = np.zeros((1200, 1200), dtype=np.float32)
    mask[100:1100, 300:1100] = 1.0  # 500 m x 400 m of "road": an untrained model's output
    mask[595:605, 0:300] = 1.0  # a real 5 m road, 150 m long, leading into it
    roads = vectorize_pixels(mask)  # thinning the blob itself would take minutes
    assert len(roads["features"]) == 1
    assert total_length_m(roads) == pytest.approx(150, abs=25)
