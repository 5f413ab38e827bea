"""Tiny synthetic road data sets for the training tests: textured ground with drawn roads."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from skimage.draw import line


def road_pair(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(H, W, 3)`` uint8 image and boolean mask with two random straight 5 px roads."""
    rng = np.random.default_rng(seed)
    image = (rng.random((size, size, 3)) * 40 + [70, 100, 60]).astype(np.uint8)
    mask = np.zeros((size, size), bool)
    for _ in range(2):
        r0, r1 = rng.integers(0, size, 2)
        if rng.random() < 0.5:
            rr, cc = line(int(r0), 0, int(r1), size - 1)
        else:
            rr, cc = line(0, int(r0), size - 1, int(r1))
        for d in range(-2, 3):
            mask[np.clip(rr + d, 0, size - 1), cc] = True
    image[mask] = (185, 185, 180)
    return image, mask


def write_road_folder(root: Path, n: int = 6, size: int = 96, valid: bool = False) -> Path:
    """``root/images/*.jpg`` + ``root/masks/*.png`` (+ ``root/valid/*.png``: left 8 px no-data)."""
    for sub in ("images", "masks") + (("valid",) if valid else ()):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, mask = road_pair(size, seed=i)
        cv2.imwrite(str(root / "images" / f"tile{i}.png"), image[:, :, ::-1])
        cv2.imwrite(str(root / "masks" / f"tile{i}.png"), mask.astype(np.uint8) * 255)
        if valid:
            v = np.full((size, size), 255, np.uint8)
            v[:, :8] = 0
            cv2.imwrite(str(root / "valid" / f"tile{i}.png"), v)
    return root
