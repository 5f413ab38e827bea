"""Spatial folds: whole blocks, both folds with roads, seeded."""

from __future__ import annotations

import numpy as np

from sanchari_processes.adapt.folds import block_folds, fold_labels
from sanchari_processes.adapt.labels import IGNORE, ROAD


def _labels() -> np.ndarray:
    labels = np.zeros((512, 512), np.uint8)
    labels[100:108, :] = ROAD
    labels[:, 300:308] = ROAD
    labels[:, 480:] = IGNORE
    return labels


def test_blocks_are_whole_and_both_folds_see_roads() -> None:
    labels = _labels()
    folds = block_folds(labels, 0.5, block_m=64.0, seed=3)  # 128 px blocks
    for r in range(0, 512, 128):
        for c in range(0, 512, 128):
            assert len(np.unique(folds[r : r + 128, c : c + 128])) == 1
    for fold in (0, 1):
        assert ((folds == fold) & (labels == ROAD)).any()
        assert ((folds == fold) & (labels == 0)).any()
    assert abs(int((folds == 0).sum()) - int((folds == 1).sum())) <= 128 * 128 * 2


def test_seeded_and_labelled_blocks_only() -> None:
    labels = _labels()
    labels[:128, :128] = IGNORE
    a = block_folds(labels, 0.5, block_m=64.0, seed=1)
    assert np.array_equal(a, block_folds(labels, 0.5, block_m=64.0, seed=1))
    assert (a[:128, :128] == -1).all()


def test_fold_labels_ignores_the_other_fold() -> None:
    labels = _labels()
    folds = block_folds(labels, 0.5, block_m=64.0)
    held = fold_labels(labels, folds, 1)
    assert (held[folds != 1] == IGNORE).all()
    assert np.array_equal(held[folds == 1], labels[folds == 1])
