"""Choosing a road threshold: IoU at every candidate threshold from one pass over the data.

Pixels are counted into probability histograms of true-road and background pixels; the
histograms add up across images and batches, so a search over every threshold never looks at
the pixels twice. The training tools and the adaptation of a model to a region share it.
"""

from __future__ import annotations

import math

import numpy as np


def _ratio(num: float, den: float) -> float:
    return num / den if den else math.nan


HIST_BINS = 1000


def search_thresholds() -> np.ndarray:
    """The candidate road thresholds of every threshold search: 0.05..0.95 in steps of 0.01."""
    return np.round(np.arange(0.05, 0.951, 0.01), 2)


def probability_histograms(
    prob: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None, bins: int = HIST_BINS
) -> tuple[np.ndarray, np.ndarray]:
    """Valid road and background pixels counted per probability bin (what :func:`iou_sweep` reads).

    Histograms add up across images and batches, so one pass scores every threshold.
    """
    keep = np.ones(truth.shape, bool) if valid is None else valid
    idx = np.clip((prob * bins).astype(np.int64), 0, bins - 1)
    return (
        np.bincount(idx[truth & keep], minlength=bins),
        np.bincount(idx[~truth & keep], minlength=bins),
    )


def best_threshold(
    road_hist: np.ndarray, background_hist: np.ndarray, thresholds: np.ndarray | None = None
) -> tuple[float, float, np.ndarray]:
    """``(threshold, its IoU, IoU per threshold)``: the IoU-maximising threshold, or NaNs."""
    ts = search_thresholds() if thresholds is None else thresholds
    ious = iou_sweep(road_hist, background_hist, ts)
    if np.all(np.isnan(ious)):
        return math.nan, math.nan, ious
    i = int(np.nanargmax(ious))
    return float(ts[i]), float(ious[i]), ious


def iou_sweep(
    road_hist: np.ndarray, background_hist: np.ndarray, thresholds: np.ndarray
) -> np.ndarray:
    """IoU at each threshold from probability histograms of true-road and background pixels.

    ``*_hist[i]`` counts valid pixels whose probability falls in bin ``i`` of ``len(hist)``
    equal bins on [0, 1]; a pixel is predicted road when its bin's lower edge >= threshold.
    Pure: lets a threshold search see every threshold from one pass over the data.
    """
    bins = len(road_hist)
    edges = np.arange(bins) / bins
    out = np.empty(len(thresholds))
    for i, t in enumerate(thresholds):
        on = edges >= t - 1e-12
        tp = road_hist[on].sum()
        fp = background_hist[on].sum()
        fn = road_hist[~on].sum()
        out[i] = _ratio(tp, tp + fp + fn)
    return out


Hist = tuple[np.ndarray, np.ndarray]


def counts_at(hist: Hist, threshold: float) -> tuple[int, int, int]:
    """``(true positives, false positives, false negatives)`` of the histograms at a threshold."""
    on = np.arange(len(hist[0])) / len(hist[0]) >= threshold - 1e-12
    return int(hist[0][on].sum()), int(hist[1][on].sum()), int(hist[0][~on].sum())


def pooled_iou(hists: list[Hist], thresholds: list[float]) -> tuple[float, list[float]]:
    """``(IoU over all the folds' pixels, IoU of each fold)``, each fold at its own threshold."""
    counts = [counts_at(h, t) for h, t in zip(hists, thresholds, strict=True)]
    each = [_ratio(tp, tp + fp + fn) for tp, fp, fn in counts]
    tp, fp, fn = (sum(c[i] for c in counts) for i in range(3))
    return _ratio(tp, tp + fp + fn), each


def cross_fitted(hists: list[Hist]) -> tuple[float, list[float], list[float]]:
    """Each fold scored at the threshold chosen on the other folds' pixels, never its own:
    ``(pooled IoU, IoU of each fold, threshold of each fold)``. A threshold chosen and scored
    on the same pixels flatters whatever it is chosen for."""
    thresholds = []
    for k in range(len(hists)):
        others = [h for i, h in enumerate(hists) if i != k]
        road = np.sum([h[0] for h in others], axis=0)
        background = np.sum([h[1] for h in others], axis=0)
        t = best_threshold(road, background)[0]
        thresholds.append(0.5 if math.isnan(t) else t)
    pooled, each = pooled_iou(hists, thresholds)
    return pooled, each, thresholds
