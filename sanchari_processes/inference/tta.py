"""Test-time augmentation over the dihedral group D4 (flips and quarter turns).

Roads have no preferred orientation, so averaging the model over rotated/flipped views removes
orientation bias and smooths noise. Every view is mapped back with its exact inverse before
averaging, so the result is aligned pixel for pixel. Transforms act on the last two axes, so they
work on NCHW batches and NHW/NCHW outputs alike, square or not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import torch

from sanchari_processes.config import TTAMode

_HW = (-2, -1)


@dataclass(frozen=True)
class Transform:
    """One element of D4: optionally mirror left-right, then rotate ``k`` quarter turns."""

    name: str
    k: int = 0
    flip: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply to the last two (H, W) axes."""
        if self.flip:
            x = torch.flip(x, dims=(-1,))
        return torch.rot90(x, self.k, dims=_HW) if self.k % 4 else x

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Exact inverse of :meth:`forward`: undo the turn, then the mirror."""
        if self.k % 4:
            y = torch.rot90(y, -self.k, dims=_HW)
        return torch.flip(y, dims=(-1,)) if self.flip else y


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


def tta_transforms(mode: TTAMode) -> tuple[Transform, ...]:
    """The views for a TTA mode: ``none`` (1), ``flip4`` (4, the V4 design) or ``d4`` (8)."""
    try:
        return _MODES[mode]
    except KeyError:
        raise ValueError(f"unknown TTA mode {mode!r}; use one of {', '.join(_MODES)}") from None


def predict_with_tta(
    fn: Callable[[torch.Tensor], torch.Tensor], batch: torch.Tensor, mode: TTAMode
) -> torch.Tensor:
    """Mean sigmoid probability of ``fn`` (logits) over the TTA views, mapped back to ``batch``.

    Accumulates in float32 so float16 autocast logits do not lose precision when averaged.
    """
    transforms = tta_transforms(mode)
    total: torch.Tensor | None = None
    for t in transforms:
        prob = t.inverse(torch.sigmoid(fn(t.forward(batch)).float()))
        total = prob if total is None else total + prob
    assert total is not None  # every mode has at least the identity
    return total / len(transforms)
