"""Pixel metrics on constructed cases computed by hand."""

from __future__ import annotations

import math

import numpy as np

from training import metrics


def _road(shape: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[rows, cols] = True
    return m


def test_iou_of_a_shifted_mask() -> None:
    truth = _road((20, 20), slice(5, 10), slice(0, 20))  # 5 rows x 20
    pred = _road((20, 20), slice(7, 12), slice(0, 20))  # shifted down 2 rows
    c = metrics.count(pred, truth)
    # intersection rows 7..9 = 60 px; union rows 5..11 = 140 px
    assert (c.tp, c.fp, c.fn) == (60, 40, 40)
    assert math.isclose(metrics.iou(c), 60 / 140)
    assert math.isclose(metrics.precision(c), 0.6)
    assert math.isclose(metrics.recall(c), 0.6)
    assert math.isclose(metrics.f1(c), 0.6)
    # 2 px shift is within rho = 3: every pixel is a relaxed hit
    assert metrics.relaxed_f1(c) == 1.0
    assert metrics.relaxed_f1(c) >= metrics.f1(c)
    far = metrics.count(_road((20, 20), slice(12, 17), slice(0, 20)), truth, rho=3)
    assert metrics.f1(far) == 0.0
    assert metrics.relaxed_precision(far) == 0.2  # only row 12 is within 3 px of row 9
    assert metrics.relaxed_f1(far) >= metrics.f1(far)


def test_valid_mask_excludes_pixels() -> None:
    truth = _road((10, 10), slice(0, 10), slice(0, 5))
    pred = _road((10, 10), slice(0, 10), slice(0, 10))
    valid = _road((10, 10), slice(0, 10), slice(0, 5))
    c = metrics.count(pred, truth, valid)
    assert (c.tp, c.fp, c.fn, c.tn) == (50, 0, 0, 0)
    assert metrics.iou(c) == 1.0


def test_iou_is_accumulated_not_averaged() -> None:
    a = metrics.count(
        _road((10, 10), slice(0, 1), slice(0, 10)), _road((10, 10), slice(0, 1), slice(0, 5))
    )
    b = metrics.count(np.zeros((10, 10), bool), _road((10, 10), slice(0, 2), slice(0, 10)))
    total = a + b
    assert math.isclose(metrics.iou(total), 5 / (10 + 20))
    assert not math.isclose(metrics.iou(total), (metrics.iou(a) + metrics.iou(b)) / 2)


def test_empty_cases_are_nan_not_zero_division() -> None:
    c = metrics.count(np.zeros((4, 4), bool), np.zeros((4, 4), bool))
    assert math.isnan(metrics.iou(c)) and math.isnan(metrics.relaxed_f1(c))


def test_iou_sweep_matches_direct_thresholding() -> None:
    rng = np.random.default_rng(0)
    prob = rng.random((50, 50))
    truth = rng.random((50, 50)) < prob  # correlated with prob
    valid = rng.random((50, 50)) < 0.9
    road, back = metrics.probability_histograms(prob, truth, valid, bins=100)
    assert road.sum() + back.sum() == valid.sum()
    ts = np.array([0.2, 0.5, 0.73])
    sweep = metrics.iou_sweep(road, back, ts)
    for t, value in zip(ts, sweep, strict=True):
        direct = metrics.iou(metrics.count(prob >= t, truth, valid))
        assert math.isclose(value, direct)
    best, best_iou, ious = metrics.best_threshold(road, back, ts)
    assert best_iou == max(sweep) and best == ts[int(np.argmax(sweep))] and len(ious) == 3


def test_best_threshold_of_nothing_is_nan() -> None:
    empty = np.zeros(metrics.HIST_BINS, np.int64)
    threshold, iou, _ = metrics.best_threshold(empty, empty)
    assert math.isnan(threshold) and math.isnan(iou)
