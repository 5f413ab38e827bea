"""Losses against hand-computed values, and the valid mask really excludes pixels."""

from __future__ import annotations

import math

import torch

from training.losses import combo_loss, dice_loss, focal_loss, lovasz_loss


def _t(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).reshape(1, 1, 1, -1)


def test_dice_matches_hand_computation() -> None:
    logits = _t([0.0, math.log(3.0), -math.log(3.0)])  # p = 0.5, 0.75, 0.25
    mask = _t([1, 1, 0])
    # soft Dice = 2 * (0.5 + 0.75) / (sum p + sum y) = 2.5 / (1.5 + 2) = 5/7
    assert torch.isclose(dice_loss(logits, mask), torch.tensor(1 - 5 / 7), atol=1e-6)


def test_focal_matches_hand_computation() -> None:
    logits = _t([0.0, math.log(3.0)])  # p = 0.5 (road), 0.75 (background)
    mask = _t([1, 0])
    # FL = -(1 - pt)^2 log(pt): pt = 0.5 and 0.25
    expected = (0.25 * -math.log(0.5) + 0.75**2 * -math.log(0.25)) / 2
    assert torch.isclose(focal_loss(logits, mask), torch.tensor(expected), atol=1e-6)
    combo = combo_loss(logits, mask)
    assert torch.isclose(combo, 0.5 * dice_loss(logits, mask) + 0.5 * focal_loss(logits, mask))


def test_lovasz_hinge_hand_values() -> None:
    # Margins all >= 1: no hinge error, loss 0. Logits 0: every error is 1 and the Lovász
    # extension of the Jaccard loss over {road, background} sums to 1.
    assert float(lovasz_loss(_t([2.0, -2.0]), _t([1, 0]))) == 0.0
    assert math.isclose(float(lovasz_loss(_t([0.0, 0.0]), _t([1, 0]))), 1.0, abs_tol=1e-6)


def test_invalid_pixels_do_not_count() -> None:
    logits = _t([0.0, math.log(3.0), 7.0])
    mask = _t([1, 0, 0])
    valid = _t([1, 1, 0])
    other = _t([0.0, math.log(3.0), -9.0])  # only the invalid pixel changed
    for fn in (dice_loss, focal_loss, combo_loss, lovasz_loss):
        a = fn(logits, mask, valid)
        assert torch.isclose(a, fn(other, mask, valid)), fn.__name__
        assert torch.isclose(a, fn(logits[..., :2], mask[..., :2])), fn.__name__
        assert not torch.isclose(a, fn(logits, mask)), fn.__name__


def test_all_invalid_gives_zero_with_gradient() -> None:
    logits = _t([1.0, -1.0]).requires_grad_()
    for fn in (dice_loss, focal_loss, lovasz_loss):
        loss = fn(logits, _t([1, 0]), _t([0, 0]))
        loss.backward()
        assert float(loss.detach()) == 0.0
