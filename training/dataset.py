"""Tiles from a preprocess manifest as tensors, with the V4 augmentations.

Every sample carries a ``valid`` mask besides the road mask: it is False on no-data pixels
(Massachusetts' blank areas), on padding and where a geometric augmentation pulled in pixels
from outside the tile, so losses and metrics can ignore exactly those pixels.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from sanchari_processes.errors import InvalidInputError
from training.io import read_binary, read_rgb


@dataclass(frozen=True)
class Tile:
    """One manifest tile with absolute paths."""

    image: Path
    mask: Path
    valid: Path | None
    split: str
    source: str
    origin: str
    gsd_m: float


@dataclass(frozen=True)
class Normalisation:
    """``(x / scale - mean) / std``: must equal the checkpoint metadata used at inference."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    scale: float = 255.0


def load_manifest(path: Path) -> dict[str, Any]:
    """Read a preprocess manifest, with a one-line error for anything that is not one."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: manifest not found (run training.preprocess)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path}: not a JSON manifest ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("tiles"), list):
        raise InvalidInputError(f"{path}: not a training.preprocess manifest")
    return manifest


def manifest_tiles(path: Path, split: str) -> list[Tile]:
    """The tiles of one split (``train`` / ``val``), paths resolved against the manifest."""
    manifest = load_manifest(path)
    root = path.parent
    return [
        Tile(
            image=root / t["image"],
            mask=root / t["mask"],
            valid=root / t["valid"] if t.get("valid") else None,
            split=t["split"],
            source=t["source"],
            origin=t["origin"],
            gsd_m=float(t.get("gsd_m", 0.5)),
        )
        for t in manifest["tiles"]
        if t["split"] == split
    ]


def train_augmentations(crop: int) -> A.Compose:
    """The V4 augmentations: flips, rotate-90, grid/elastic distortion, colour jitter.

    Padding and distortions fill with 0 in the image and in both masks, so pixels that did
    not come from the tile are marked invalid and ignored.
    """
    constant = cv2.BORDER_CONSTANT
    return A.Compose(
        [
            A.PadIfNeeded(crop, crop, border_mode=constant, fill=0, fill_mask=0),
            A.RandomCrop(crop, crop),
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.RandomRotate90(p=0.5),
            A.OneOf(
                [
                    A.GridDistortion(num_steps=5, distort_limit=0.2, border_mode=constant),
                    A.ElasticTransform(alpha=30, sigma=6, border_mode=constant),
                ],
                p=0.3,
            ),
            A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.05, p=0.5),
        ]
    )


def eval_transform(size: int) -> A.Compose:
    """Pad (top-left, constant, marked invalid) to ``size`` so tiles batch together."""
    return A.Compose(
        [
            A.PadIfNeeded(
                size,
                size,
                position="top_left",
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                fill_mask=0,
            ),
            A.CenterCrop(size, size),
        ]
    )


class RoadTiles(Dataset):
    """``(image, mask, valid)`` tensors: ``(3, S, S)`` normalised float, ``(1, S, S)`` 0/1."""

    def __init__(self, tiles: Sequence[Tile], transform: A.Compose, norm: Normalisation) -> None:
        if not tiles:
            raise InvalidInputError("no tiles to load (empty split?)")
        self.tiles = list(tiles)
        self.transform = transform
        self.mean = np.asarray(norm.mean, np.float32) * norm.scale
        self.std = np.asarray(norm.std, np.float32) * norm.scale

    def __len__(self) -> int:
        return len(self.tiles)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw ``(H, W, 3)`` uint8 image and boolean mask / valid for one tile."""
        tile = self.tiles[index]
        image = read_rgb(tile.image)
        mask = read_binary(tile.mask)
        valid = read_binary(tile.valid) if tile.valid else np.ones_like(mask)
        return image, mask, valid

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        image, mask, valid = self.load(index)
        out = self.transform(image=image, masks=[mask.astype(np.uint8), valid.astype(np.uint8)])
        x = (out["image"].astype(np.float32) - self.mean) / self.std
        m, v = out["masks"]
        v = v.astype(bool)
        m = m.astype(bool) & v
        return (
            torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))),
            torch.from_numpy(m[None].astype(np.float32)),
            torch.from_numpy(v[None].astype(np.float32)),
        )


class EpochSampler(Sampler[int]):
    """A seeded permutation per ``(seed, epoch)``, optionally starting part-way through.

    Deterministic order is what makes ``--resume`` continue mid-epoch without repeating or
    skipping samples.
    """

    def __init__(self, indices: Sequence[int], seed: int, epoch: int, start: int = 0) -> None:
        self.indices = list(indices)
        self.seed = seed
        self.epoch = epoch
        self.start = start

    def order(self) -> list[int]:
        """The whole epoch's order (pure in ``seed``/``epoch``)."""
        rng = np.random.default_rng([self.seed, self.epoch])
        return [self.indices[i] for i in rng.permutation(len(self.indices))]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order()[self.start :])

    def __len__(self) -> int:
        return max(0, len(self.indices) - self.start)


def worker_init(_: int) -> None:
    """Keep DataLoader workers single-threaded so they do not fight the training threads."""
    cv2.setNumThreads(0)
    torch.set_num_threads(1)
