"""Segmentation losses over valid pixels only (pure functions of logits, mask and valid).

smp's Dice, Focal and Lovász losses each take an ``ignore_index``: targets equal to it are
dropped (Focal, Lovász) or zeroed in both prediction and target (Dice), which is exactly
"ignore pixels outside the valid mask". We encode invalid pixels with :data:`IGNORE` and let smp
do the rest, so the maths is the library's, not ours.
"""

from __future__ import annotations

import torch
from segmentation_models_pytorch.losses import DiceLoss, FocalLoss, LovaszLoss

#: Target value marking pixels that must not contribute to a loss.
IGNORE = -1

_DICE = DiceLoss(mode="binary", from_logits=True, ignore_index=IGNORE)
_FOCAL = FocalLoss(mode="binary", gamma=2.0, ignore_index=IGNORE)
_LOVASZ = LovaszLoss(mode="binary", per_image=False, ignore_index=IGNORE)


def ignore_target(mask: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """The float road mask with invalid pixels set to :data:`IGNORE`."""
    target = mask.float()
    if valid is None:
        return target
    return torch.where(valid.bool(), target, torch.full_like(target, IGNORE))


def _over_valid(
    loss: torch.nn.Module, logits: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor | None
) -> torch.Tensor:
    """``loss`` over the valid pixels; with none, a zero that still has a gradient."""
    if valid is not None and not bool(valid.bool().any()):
        return logits.sum() * 0.0
    return loss(logits, ignore_target(mask, valid))


def dice_loss(
    logits: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """1 - soft Dice of sigmoid(logits) vs mask over the batch's valid pixels.

    smp convention: 0 when the batch has no road pixel at all (Dice is undefined there).
    """
    return _over_valid(_DICE, logits, mask, valid)


def focal_loss(
    logits: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean binary focal loss (gamma 2, no alpha) over valid pixels."""
    return _over_valid(_FOCAL, logits, mask, valid)


def combo_loss(
    logits: torch.Tensor,
    mask: torch.Tensor,
    valid: torch.Tensor | None = None,
    dice_weight: float = 0.5,
    focal_weight: float = 0.5,
) -> torch.Tensor:
    """The V4 Phase-1 loss: 0.5 * Dice + 0.5 * Focal."""
    return dice_weight * dice_loss(logits, mask, valid) + focal_weight * focal_loss(
        logits, mask, valid
    )


def lovasz_loss(
    logits: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Lovász hinge (a convex surrogate of 1 - IoU) over the batch's valid pixels."""
    return _over_valid(_LOVASZ, logits, mask, valid)


LOSSES = {"combo": combo_loss, "lovasz": lovasz_loss}
