"""Pixel metrics accumulated over a whole set (pure functions; definitions in docs/training.md).

Road IoU is sum(intersection) / sum(union) over every tile, not a mean of per-tile scores: a
mean over tiles weighs an almost road-free tile as much as a dense one and rewards predicting
nothing on empty tiles. Pixels outside ``valid`` count for nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt

# The threshold search lives in the package (adaptation re-chooses a region's threshold with it).
from sanchari_processes.adapt.thresholds import (  # noqa: F401
    HIST_BINS,
    best_threshold,
    iou_sweep,
    probability_histograms,
    search_thresholds,
)


@dataclass(frozen=True)
class Counts:
    """Pixel counts (exact) plus relaxed counts at a tolerance of ``rho`` pixels."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    #: Predicted road pixels within rho of a true road pixel, and all predicted road pixels.
    relaxed_pred_hit: int = 0
    pred_total: int = 0
    #: True road pixels within rho of a predicted road pixel, and all true road pixels.
    relaxed_true_hit: int = 0
    true_total: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, f) + getattr(other, f) for f in self.__dataclass_fields__))


def _ratio(num: float, den: float) -> float:
    return num / den if den else math.nan


def _near(mask: np.ndarray, rho: float) -> np.ndarray:
    """Pixels within Euclidean distance ``rho`` of any True pixel of ``mask``."""
    if not mask.any():
        return np.zeros_like(mask)
    return distance_transform_edt(~mask) <= rho


def count(
    pred: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None, rho: float = 3.0
) -> Counts:
    """Exact and relaxed counts for one tile; ``valid`` False pixels are excluded."""
    pred = np.asarray(pred, bool)
    truth = np.asarray(truth, bool)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in shape")
    if valid is not None:
        valid = np.asarray(valid, bool)
        pred = pred & valid
        truth = truth & valid
    v = np.ones_like(pred) if valid is None else valid
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    tn = int(np.count_nonzero(~pred & ~truth & v))
    return Counts(
        tp=tp,
        fp=fp,
        fn=fn,
        tn=tn,
        relaxed_pred_hit=int(np.count_nonzero(pred & _near(truth, rho))),
        pred_total=tp + fp,
        relaxed_true_hit=int(np.count_nonzero(truth & _near(pred, rho))),
        true_total=tp + fn,
    )


def iou(c: Counts) -> float:
    """Road IoU = TP / (TP + FP + FN); NaN when there is no road in truth or prediction."""
    return _ratio(c.tp, c.tp + c.fp + c.fn)


def precision(c: Counts) -> float:
    return _ratio(c.tp, c.tp + c.fp)


def recall(c: Counts) -> float:
    return _ratio(c.tp, c.tp + c.fn)


def f1(c: Counts) -> float:
    """F1 = 2TP / (2TP + FP + FN) (equals the harmonic mean of precision and recall)."""
    return _ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn)


def relaxed_precision(c: Counts) -> float:
    """Fraction of predicted road pixels within rho of a true road pixel (Mnih 2013)."""
    return _ratio(c.relaxed_pred_hit, c.pred_total)


def relaxed_recall(c: Counts) -> float:
    """Fraction of true road pixels within rho of a predicted road pixel (Mnih 2013)."""
    return _ratio(c.relaxed_true_hit, c.true_total)


def relaxed_f1(c: Counts) -> float:
    """Harmonic mean of relaxed precision and recall."""
    p, r = relaxed_precision(c), relaxed_recall(c)
    if math.isnan(p) or math.isnan(r):
        return math.nan
    return _ratio(2 * p * r, p + r) if p + r else 0.0


def summary(c: Counts, rho: float = 3.0) -> dict[str, float | int]:
    """All pixel metrics of accumulated counts, as a JSON-ready dict."""
    return {
        "iou": iou(c),
        "precision": precision(c),
        "recall": recall(c),
        "f1": f1(c),
        "relaxed_precision": relaxed_precision(c),
        "relaxed_recall": relaxed_recall(c),
        "relaxed_f1": relaxed_f1(c),
        "rho_px": rho,
        "tp": c.tp,
        "fp": c.fp,
        "fn": c.fn,
        "tn": c.tn,
    }
