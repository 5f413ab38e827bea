"""No-data fill and margin: no edge where the data ends, no road right next to it."""

from __future__ import annotations

import numpy as np

from sanchari_processes.inference.nodata import fill_smooth, shrink_valid


def test_fill_leaves_no_step_at_the_edge_and_no_streaks() -> None:
    rng = np.random.default_rng(0)
    image = (0.3 + 0.05 * rng.standard_normal((3, 64, 64))).astype(np.float32)
    image[:, 20:24, :] = 1.0  # a bright horizontal road crossing into the no-data half
    valid = np.ones((64, 64), bool)
    valid[:, :32] = False
    filled = fill_smooth(image, valid)
    np.testing.assert_array_equal(filled[:, valid], image[:, valid])
    # across the edge the fill continues the local mean: no step like a constant 0 would make
    step = np.abs(filled[:, :, 31] - filled[:, :, 32]).mean()
    assert step < 0.15
    # far from the edge the road does not continue as a streak (nearest-pixel copying would)
    assert filled[:, 20:24, :8].mean() < 0.5


def test_fill_is_a_no_op_on_full_data_and_zero_without_data() -> None:
    image = np.ones((3, 8, 8), np.float32)
    assert fill_smooth(image, np.ones((8, 8), bool)) is image
    assert not fill_smooth(image, np.zeros((8, 8), bool)).any()


def test_shrink_valid_drops_a_margin_next_to_no_data_only() -> None:
    valid = np.ones((20, 20), bool)
    valid[:, :5] = False
    shrunk = shrink_valid(valid, 2.0)
    assert not shrunk[:, :7].any() and shrunk[:, 7:].all()  # image borders do not shrink it
    assert shrink_valid(np.ones((4, 4), bool), 3.0).all()
    assert (shrink_valid(valid, 0.0) == valid).all()


def test_fill_deep_inside_a_large_hole_fades_to_the_mean_without_streaks() -> None:
    """Far beyond the local mean's reach, copying the nearest filled value drew a straight
    streak per row (a model read them as roads); the fill fades into coarser means instead."""
    rng = np.random.default_rng(1)
    image = rng.uniform(0.0, 1.0, (3, 128, 512)).astype(np.float32)
    image[:, ::16, :] = 1.0  # bright rows every 16 px reaching the edge of the hole
    valid = np.ones((128, 512), bool)
    valid[:, :400] = False
    filled = fill_smooth(image, valid)
    deep = filled[:, :, :200]
    assert np.isfinite(deep).all()
    # rows deep inside barely differ from each other (a streak would keep each row's value)
    assert deep.std(axis=1).max() < 0.02
    np.testing.assert_allclose(deep.mean(axis=(1, 2)), image[:, valid].mean(axis=1), atol=0.05)
