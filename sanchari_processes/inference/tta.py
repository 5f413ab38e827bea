"""Test-time augmentation over the dihedral group D4 (flips and quarter turns).

Roads have no preferred orientation, so averaging the model over rotated/flipped views removes
orientation bias and smooths noise. Every view is mapped back with its exact inverse before
averaging, so the result is aligned pixel for pixel. Transforms act on the last two axes, so they
work on NCHW batches and NHW/NCHW outputs alike, square or not, and on NumPy arrays (the
exported runtimes) as well as torch tensors (without importing torch here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

import numpy as np

from sanchari_processes.config import TTA_MODES, TTAMode

_HW = (-2, -1)
Array = TypeVar("Array", np.ndarray, Any)


def _flip(x: Array) -> Array:
    return np.flip(x, axis=-1) if isinstance(x, np.ndarray) else x.flip(-1)


def _rot90(x: Array, k: int) -> Array:
    return np.rot90(x, k, axes=_HW) if isinstance(x, np.ndarray) else x.rot90(k, _HW)


def sigmoid(x: Array) -> Array:
    """float32 probabilities of logits (NumPy without overflow warnings, or torch)."""
    if isinstance(x, np.ndarray):
        return (0.5 * (1.0 + np.tanh(0.5 * x.astype(np.float32)))).astype(np.float32)
    return x.float().sigmoid()


@dataclass(frozen=True)
class Transform:
    """One element of D4: optionally mirror left-right, then rotate ``k`` quarter turns."""

    name: str
    k: int = 0
    flip: bool = False

    def forward(self, x: Array) -> Array:
        """Apply to the last two (H, W) axes."""
        if self.flip:
            x = _flip(x)
        return _rot90(x, self.k) if self.k % 4 else x

    def inverse(self, y: Array) -> Array:
        """Exact inverse of :meth:`forward`: undo the turn, then the mirror."""
        if self.k % 4:
            y = _rot90(y, -self.k)
        return _flip(y) if self.flip else y


_IDENTITY = Transform("identity")
_FLIP4 = (
    _IDENTITY,
    Transform("hflip", flip=True),
    Transform("vflip", k=2, flip=True),  # mirror left-right then half turn == mirror up-down
    Transform("rot90", k=1),
)
_D4 = (
    _IDENTITY,
    Transform("rot90", k=1),
    Transform("rot180", k=2),
    Transform("rot270", k=3),
    Transform("hflip", flip=True),
    Transform("transpose", k=1, flip=True),
    Transform("vflip", k=2, flip=True),
    Transform("antitranspose", k=3, flip=True),
)
_MODES: Mapping[str, tuple[Transform, ...]] = MappingProxyType(
    {"none": (_IDENTITY,), "flip4": _FLIP4, "d4": _D4}
)
assert tuple(_MODES) == TTA_MODES, "config.TTA_MODES and the views defined here must agree"


def tta_transforms(mode: TTAMode) -> tuple[Transform, ...]:
    """The views for a TTA mode: ``none`` (1), ``flip4`` (4, the V4 design) or ``d4`` (8)."""
    try:
        return _MODES[mode]
    except KeyError:
        raise ValueError(f"unknown TTA mode {mode!r}; use one of {', '.join(_MODES)}") from None


def average_views(
    fn: Callable[[Array], Array], batch: Array, mode: TTAMode, *, batch_views: bool = False
) -> Array:
    """Mean of ``fn`` (probabilities) over the TTA views, each mapped back onto ``batch``.

    ``fn`` knows nothing of the views: the predictor wraps its runner in this. ``batch_views``
    runs all views of a square batch as one call (faster on a GPU; on a CPU one view at a time
    measures faster). Accumulates in float32 so float16 probabilities do not lose precision.
    """
    transforms = tta_transforms(mode)
    if len(transforms) == 1:
        return fn(batch)
    if batch_views and batch.shape[-1] == batch.shape[-2]:
        n = batch.shape[0]
        views = [t.forward(batch) for t in transforms]
        probs = fn(np.concatenate(views) if isinstance(batch, np.ndarray) else _cat(views))
        parts = [t.inverse(probs[i * n : (i + 1) * n]) for i, t in enumerate(transforms)]
    else:
        parts = [t.inverse(fn(t.forward(batch))) for t in transforms]
    total = _float32(parts[0])
    for part in parts[1:]:
        total = total + part
    return total / len(transforms)


def predict_with_tta(
    fn: Callable[[Array], Array], batch: Array, mode: TTAMode, *, batch_views: bool = False
) -> Array:
    """Mean sigmoid probability of ``fn`` (logits) over the TTA views, mapped back to ``batch``."""
    return average_views(lambda x: sigmoid(fn(x)), batch, mode, batch_views=batch_views)


def _float32(x: Array) -> Array:
    return x.astype(np.float32) if isinstance(x, np.ndarray) else x.float()


def _cat(views: list[Any]) -> Any:
    import torch  # only reached with torch tensors, so torch is already loaded

    return torch.cat(views)
