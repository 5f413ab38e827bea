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
