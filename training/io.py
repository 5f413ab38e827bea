"""Image and mask files: read as RGB uint8 / boolean arrays, write losslessly."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from sanchari_processes.errors import InvalidInputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


def read_rgb(path: Path) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB; grey images are repeated, alpha is dropped."""
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise InvalidInputError(f"{path}: cannot read image")
    if data.dtype != np.uint8:
        raise InvalidInputError(f"{path}: expected 8-bit image, got {data.dtype}")
    if data.ndim == 2:
        return np.repeat(data[:, :, None], 3, axis=2)
    return np.ascontiguousarray(data[:, :, 2::-1])  # BGR(A) -> RGB


def read_binary(path: Path, threshold: int = 128) -> np.ndarray:
    """Boolean mask: any channel >= ``threshold`` (masks are 0/255; DeepGlobe's are RGB)."""
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise InvalidInputError(f"{path}: cannot read mask")
    if data.ndim == 3:
        data = data[:, :, :3].max(axis=2)
    if data.dtype != np.uint8:
        data = np.clip(data, 0, 255).astype(np.uint8)
    return data >= threshold


def write_rgb(path: Path, image: np.ndarray) -> None:
    """Write ``(H, W, 3)`` RGB uint8 as PNG (lossless: tiles must not be re-compressed)."""
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[:, :, ::-1])):
        raise InvalidInputError(f"{path}: cannot write image")


def write_binary(path: Path, mask: np.ndarray) -> None:
    """Write a boolean mask as a 0/255 PNG."""
    if not cv2.imwrite(str(path), mask.astype(np.uint8) * 255):
        raise InvalidInputError(f"{path}: cannot write mask")
