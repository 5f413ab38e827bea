"""Thresholds scored out of fold: chosen on one fold's pixels, scored on the other's."""

from __future__ import annotations

import numpy as np

from sanchari_processes.adapt.thresholds import HIST_BINS, cross_fitted, pooled_iou


def _hist(road: list[float], background: list[float]) -> tuple[np.ndarray, np.ndarray]:
    def count(values: list[float]) -> np.ndarray:
        return np.bincount((np.array(values) * HIST_BINS).astype(int), minlength=HIST_BINS)

    return count(road), count(background)


def test_pooled_iou_adds_the_counts_of_the_folds() -> None:
    a = _hist([0.9, 0.9, 0.2], [0.1, 0.8])  # at 0.5: tp 2, fp 1, fn 1
    b = _hist([0.6], [0.1] * 5)  # at 0.5: tp 1
    pooled, each = pooled_iou([a, b], [0.5, 0.5])
    assert each == [0.5, 1.0] and pooled == 3 / 5


def test_a_threshold_is_scored_on_the_fold_it_was_not_chosen_on() -> None:
    # fold a is best cut near 0.3, fold b near 0.7: each is scored at the other's cut
    a = _hist([0.35] * 10, [0.2] * 10 + [0.6] * 3)
    b = _hist([0.75] * 10, [0.5] * 10)
    pooled, each, thresholds = cross_fitted([a, b])
    assert 0.35 < thresholds[0] <= 0.75 and 0.2 < thresholds[1] <= 0.35
    assert each[0] == 0.0  # a's roads (0.35) fall below b's cut
    assert each[1] == 10 / 20  # b's background (0.5) passes a's cut
    assert pooled == 10 / (
        10 + 13 + 10
    )  # a: fn 10, fp 3 (0.6 passes the cut 0.51); b: tp 10, fp 10
