"""Spatial folds: the labelled area cut into square blocks, dealt into two folds.

Neighbouring pixels are nearly the same example, so a random pixel split would score a
fine-tune on what it trained on. Whole blocks (a few hundred metres) held out are a fair test
of whether the model learnt the region or the labelled roads themselves.
"""

from __future__ import annotations

import numpy as np

from sanchari_processes.adapt.config import DEFAULT_BLOCK_M
from sanchari_processes.adapt.labels import IGNORE, ROAD


def block_folds(
    labels: np.ndarray, gsd_m: float, *, block_m: float = DEFAULT_BLOCK_M, seed: int = 0
) -> np.ndarray:
    """``(H, W)`` int8 fold of every pixel: 0 or 1 inside labelled blocks, -1 elsewhere.

    Blocks with labels are dealt in order of their road pixels (most first), alternating
    between the folds from a seeded start, so both folds see roads and both see background.
    """
    side = max(round(block_m / gsd_m), 16)
    height, width = labels.shape
    rows, cols = -(-height // side), -(-width // side)
    labelled = np.zeros((rows, cols), np.int64)
    roads = np.zeros((rows, cols), np.int64)
    r_idx = (np.arange(height) // side)[:, None]
    c_idx = (np.arange(width) // side)[None, :]
    block = np.broadcast_to(r_idx * cols + c_idx, labels.shape)
    np.add.at(labelled.ravel(), block[labels != IGNORE], 1)
    np.add.at(roads.ravel(), block[labels == ROAD], 1)
    order = [i for i in np.argsort(-roads.ravel(), kind="stable") if labelled.ravel()[i] > 0]
    rng = np.random.default_rng(seed)
    start = int(rng.integers(2))
    fold_of_block = np.full(rows * cols, -1, np.int8)
    for rank, index in enumerate(order):
        # pairs of blocks split at random: balanced counts, no fixed checkerboard bias
        if rank % 2 == 0:
            start = int(rng.integers(2))
        fold_of_block[index] = (start + rank) % 2
    return fold_of_block[block]


def fold_labels(labels: np.ndarray, folds: np.ndarray, fold: int) -> np.ndarray:
    """``labels`` with everything outside ``fold`` ignored."""
    out = labels.copy()
    out[folds != fold] = IGNORE
    return out
