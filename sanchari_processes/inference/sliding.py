"""Sliding-window prediction with smooth blending (nnU-Net style), pure NumPy.

A CNN is least reliable near its patch borders, so patches overlap and each prediction is
weighted by a window that peaks at the patch centre: ``sum(w * p) / sum(w)``. The image is
reflect-padded so that its own borders get the same overlap as its interior, and so that images
smaller than a patch work. The model is hidden behind ``predict_batch``, keeping this module free
of torch and testable with plain functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

BlendMode = Literal["gaussian", "hann"]
#: Smallest weight relative to the centre, so corners still count and sum(w) is never 0.
WEIGHT_FLOOR = 1e-3


@dataclass(frozen=True)
class AxisPlan:
    """Padding and patch start offsets (in padded coordinates) along one axis."""

    pad_before: int
    pad_after: int
    starts: tuple[int, ...]


def plan_axis(length: int, patch_size: int, stride: int, margin: int | None = None) -> AxisPlan:
    """Place patches along an axis of ``length`` pixels.

    ``margin`` (default ``patch_size - stride``) is the minimum padding on each side: with it,
    the first and last pixels are covered by as many patches as interior ones. Any slack needed
    to fit a whole number of strides is split evenly between both sides.
    """
    if length <= 0:
        raise ValueError("length must be positive")
    if patch_size <= 0 or not 0 < stride <= patch_size:
        raise ValueError("need 0 < stride <= patch_size")
    margin = patch_size - stride if margin is None else margin
    if margin < 0:
        raise ValueError("margin must be >= 0")
    needed = length + 2 * margin
    n = max(1, math.ceil((needed - patch_size) / stride) + 1)
    padded = (n - 1) * stride + patch_size
    slack = padded - length - 2 * margin
    pad_before = margin + slack // 2
    return AxisPlan(pad_before, padded - length - pad_before, tuple(i * stride for i in range(n)))


def blend_window(patch_size: int, blend: BlendMode = "gaussian") -> np.ndarray:
    """``(patch, patch)`` float32 weights peaking at 1 in the centre, floored at WEIGHT_FLOOR.

    Gaussian uses sigma = patch / 8 (nnU-Net). Hann drops the zero end points of a window two
    samples longer, so no pixel of the patch is ignored.
    """
    if blend == "gaussian":
        centre = (patch_size - 1) / 2.0
        w1 = np.exp(-0.5 * ((np.arange(patch_size) - centre) / (patch_size / 8.0)) ** 2)
    elif blend == "hann":
        w1 = np.hanning(patch_size + 2)[1:-1]
    else:
        raise ValueError(f"unknown blend {blend!r}; use 'gaussian' or 'hann'")
    w = np.outer(w1, w1)
    return np.maximum(w / w.max(), WEIGHT_FLOOR).astype(np.float32)


def sliding_window_predict(
    image: np.ndarray,
    predict_batch: Callable[[np.ndarray], np.ndarray],
    *,
    patch_size: int = 512,
    stride: int = 256,
    batch_size: int = 4,
    blend: BlendMode = "gaussian",
    progress: Callable[[int, int], None] | None = None,
    margin: int | None = None,
) -> np.ndarray:
    """Predict a ``(C, H, W)`` normalised image patch by patch; returns ``(H, W)`` float32.

    ``predict_batch`` maps ``(N, C, p, p)`` float32 patches to ``(N, p, p)`` values (e.g.
    probabilities). ``progress(done, total)`` is called after each batch. ``margin`` is the
    minimum reflect padding per side (default ``patch_size - stride``, see :func:`plan_axis`);
    pass 0 when the caller already supplies context around the image.
    """
    if image.ndim != 3:
        raise ValueError(f"image must be (C, H, W), got shape {image.shape}")
    if batch_size <= 0:
        raise ValueError("batch_size must be positive")
    _, height, width = image.shape
    plan_y = plan_axis(height, patch_size, stride, margin)
    plan_x = plan_axis(width, patch_size, stride, margin)
    weight = blend_window(patch_size, blend)

    # NumPy's reflect pads iteratively when the pad exceeds the axis, so thin images work too.
    padded = np.pad(
        np.asarray(image, dtype=np.float32),
        ((0, 0), (plan_y.pad_before, plan_y.pad_after), (plan_x.pad_before, plan_x.pad_after)),
        mode="reflect",
    )
    acc = np.zeros(padded.shape[1:], dtype=np.float32)
    weight_sum = np.zeros(padded.shape[1:], dtype=np.float32)

    origins = [(y, x) for y in plan_y.starts for x in plan_x.starts]
    total = len(origins)
    for first in range(0, total, batch_size):
        chunk = origins[first : first + batch_size]
        patches = np.stack([padded[:, y : y + patch_size, x : x + patch_size] for y, x in chunk])
        preds = np.asarray(predict_batch(patches), dtype=np.float32)
        if preds.shape != (len(chunk), patch_size, patch_size):
            raise ValueError(
                f"predict_batch returned shape {preds.shape}, "
                f"expected {(len(chunk), patch_size, patch_size)}"
            )
        for (y, x), pred in zip(chunk, preds, strict=True):
            acc[y : y + patch_size, x : x + patch_size] += weight * pred
            weight_sum[y : y + patch_size, x : x + patch_size] += weight
        if progress is not None:
            progress(first + len(chunk), total)

    rows = slice(plan_y.pad_before, plan_y.pad_before + height)
    cols = slice(plan_x.pad_before, plan_x.pad_before + width)
    return acc[rows, cols] / weight_sum[rows, cols]
