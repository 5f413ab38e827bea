"""Training samples: the domain-robust augmentations, style transfer and source balancing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from sanchari_processes.errors import InvalidInputError
from tests.training_fixtures import road_pair
from training.config import Augment
from training.dataset import (
    STYLE_KEY,
    EpochSampler,
    load_style_images,
    source_weights,
    synthetic_nodata,
    train_augmentations,
)
from training.io import write_rgb


def _sample(augment: Augment, styles: list[np.ndarray] | None = None, seed: int = 0) -> dict:
    image, mask = road_pair(128, seed)
    valid = np.ones_like(mask)
    transform = train_augmentations(96, augment, with_style=bool(styles))
    transform.set_random_seed(seed)
    extra = {STYLE_KEY: styles} if styles else {}
    return transform(image=image, masks=[mask.astype(np.uint8), valid.astype(np.uint8)], **extra)


def test_photometric_and_scale_keep_masks_binary_and_aligned() -> None:
    augment = Augment(photometric=True, scale=(0.5, 0.5))  # shrink: 128 -> 64 < crop 96
    out = _sample(augment)
    mask, valid = out["masks"]
    assert out["image"].shape == (96, 96, 3) and out["image"].dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 1} and set(np.unique(valid)) <= {0, 1}
    # the shrunk tile is padded to the crop: the padding is marked invalid, roads stay on data
    assert 0.3 < valid.mean() < 0.6
    assert not (mask.astype(bool) & ~valid.astype(bool)).any()


def test_style_transfer_moves_colours_toward_the_style_bank() -> None:
    reddish = np.zeros((64, 64, 3), np.uint8)
    reddish[..., 0] = 200
    augment = Augment(style="histogram", style_p=1.0)
    plain = _sample(Augment(), seed=1)["image"].astype(float)
    styled = _sample(augment, [reddish], seed=1)["image"].astype(float)
    assert (
        styled[..., 0].mean() - styled[..., 2].mean()
        > plain[..., 0].mean() - plain[..., 2].mean() + 40
    )
    fda = _sample(Augment(style="fda", style_p=1.0), [reddish], seed=2)["image"]
    assert fda.shape == (96, 96, 3)


def test_synthetic_nodata_is_filled_as_inference_fills_it_and_labelled_no_road() -> None:
    image, mask = road_pair(128, 3)
    valid = np.ones_like(mask)
    valid[:, :8] = False  # the tile's own no-data is filled too
    rng = np.random.default_rng(5)
    out_image, out_mask = synthetic_nodata(image, mask, valid, rng)
    changed = (out_image != image).any(axis=2)
    share = changed[:, 8:].mean()
    assert 0.1 < share < 0.65  # a half-plane of 15-60 % (minus pixels the fill left alike)
    assert out_image.dtype == np.uint8 and out_image.shape == image.shape
    assert not out_mask[changed & valid].any()  # no road where the data was removed
    kept = ~changed & valid
    assert (out_mask[kept] == mask[kept]).all()
    # the fill has no edge: neighbouring filled pixels differ far less than the image does
    filled = out_image.astype(float)
    inside = changed[:, 1:] & changed[:, :-1]
    step = np.abs(np.diff(filled, axis=1)).max(axis=2)[inside].mean()
    assert step < 0.25 * np.abs(np.diff(image.astype(float), axis=1)).max(axis=2).mean()


def test_synthetic_nodata_cuts_at_any_angle() -> None:
    image, mask = road_pair(64, 1)
    valid = np.ones_like(mask)
    sides = set()
    for seed in range(12):
        out, _ = synthetic_nodata(image, mask, valid, np.random.default_rng(seed))
        changed = (out != image).any(axis=2)
        halves = (changed[:, :32].mean(), changed[:, 32:].mean(), changed[:32].mean())
        sides.add(tuple(np.round(halves, 1) > 0.5))
    assert len(sides) >= 3


def test_style_bank_is_read_and_shrunk(tmp_path: Path) -> None:
    write_rgb(tmp_path / "a.png", np.zeros((40, 1200, 3), np.uint8))
    (bank,) = load_style_images(tmp_path)
    assert max(bank.shape[:2]) == 512
    with pytest.raises(InvalidInputError, match="not found"):
        load_style_images(tmp_path / "a.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="no images"):
        load_style_images(tmp_path / "empty")


def test_augment_options_are_checked() -> None:
    with pytest.raises(InvalidInputError):
        Augment(scale=(1.4, 0.7))
    with pytest.raises(InvalidInputError):
        Augment(style="cyclegan")  # type: ignore[arg-type]


def test_source_weights_balance_shares() -> None:
    sources = ["big"] * 90 + ["small"] * 10
    even = source_weights(sources, 1.0)
    assert even[:90].sum() == pytest.approx(0.5) and even[90:].sum() == pytest.approx(0.5)
    uniform = source_weights(sources, 0.0)
    assert np.allclose(uniform, 0.01)
    sqrt = source_weights(sources, 0.5)
    assert sqrt[90:].sum() == pytest.approx(np.sqrt(10) / (np.sqrt(10) + np.sqrt(90)))


def test_weighted_epochs_are_deterministic_and_sized() -> None:
    weights = source_weights(["a"] * 8 + ["b"] * 2, 1.0)
    sampler = EpochSampler(list(range(10)), seed=0, epoch=3, weights=weights, size=400)
    order = sampler.order()
    assert len(order) == 400 == len(sampler) and order == sampler.order()
    picks = Counter(i >= 8 for i in order)
    assert 150 < picks[True] < 250  # source b: 2 of 10 tiles, half of the draws
    resumed = EpochSampler(list(range(10)), 0, 3, start=100, weights=weights, size=400)
    assert list(resumed) == order[100:]
    # unweighted, unsized: still the plain permutation
    assert sorted(EpochSampler(list(range(10)), 0, 0).order()) == list(range(10))
