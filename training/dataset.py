"""Tiles from a preprocess manifest as tensors, with the V4 augmentations.

Every sample carries a ``valid`` mask besides the road mask: it is False on no-data pixels
(Massachusetts' blank areas), on padding and where a geometric augmentation pulled in pixels
from outside the tile, so losses and metrics can ignore exactly those pixels.
"""

from __future__ import annotations

import json
from collections import Counter
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
from sanchari_processes.inference.nodata import fill_smooth
from training.config import Augment
from training.io import IMAGE_SUFFIXES, read_binary, read_rgb


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
        raise InvalidInputError(f"{path}: manifest not found (run sanchari preprocess)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path}: not a JSON manifest ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("tiles"), list):
        raise InvalidInputError(f"{path}: not a `sanchari preprocess` manifest")
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


#: Key under which a sample passes the style bank to the style-transfer transforms.
STYLE_KEY = "style_images"


def photometric_augmentations() -> list[A.BasicTransform]:
    """Colour, tone, colour temperature, blur, noise and JPEG loss seen from other sensors and
    regions (the V4 recipe's mild colour jitter left the model blind outside US cities)."""
    return [
        A.HueSaturationValue(hue_shift_limit=15, sat_shift_limit=40, val_shift_limit=25, p=0.6),
        A.RandomGamma(gamma_limit=(70, 150), p=0.4),
        A.RandomBrightnessContrast(brightness_limit=0.25, contrast_limit=0.3, p=0.6),
        A.PlanckianJitter(mode="blackbody", temperature_limit=(3500, 15000), p=0.3),
        A.OneOf(
            [A.GaussianBlur(sigma_limit=(0.3, 1.5)), A.Defocus(radius=(1, 3))],
            p=0.25,
        ),
        A.GaussNoise(std_range=(0.01, 0.06), p=0.25),
        A.ImageCompression(quality_range=(35, 95), p=0.3),
    ]


def style_transfer(augment: Augment) -> A.BasicTransform:
    """FDA or histogram matching against a random image of the sample's style bank."""
    if augment.style == "fda":
        return A.FDA(beta_limit=(0.005, 0.05), metadata_key=STYLE_KEY, p=augment.style_p)
    return A.HistogramMatching(blend_ratio=(0.5, 1.0), metadata_key=STYLE_KEY, p=augment.style_p)


def train_augmentations(
    crop: int, augment: Augment | None = None, with_style: bool = False
) -> A.Compose:
    """The V4 augmentations (flips, rotate-90, grid/elastic distortion, colour jitter), plus
    the domain-robust ones ``augment`` turns on.

    Padding and distortions fill with 0 in the image and in both masks, so pixels that did
    not come from the tile are marked invalid and ignored.
    """
    augment = augment or Augment()
    constant = cv2.BORDER_CONSTANT
    scale: list[A.BasicTransform] = []
    if augment.scale is not None:
        low, high = augment.scale
        scale = [A.RandomScale(scale_limit=(low - 1.0, high - 1.0), p=1.0)]
    colour: list[A.BasicTransform] = (
        photometric_augmentations()
        if augment.photometric
        else [A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.05, p=0.5)]
    )
    style = [style_transfer(augment)] if with_style else []
    return A.Compose(
        [
            *scale,
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
            *style,
            *colour,
        ]
    )


def synthetic_nodata(
    image: np.ndarray, mask: np.ndarray, valid: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``(image, mask)`` with a random half-plane (15–60 % of the crop, any angle) made
    no-data the way inference sees it: filled by :func:`fill_smooth` and labelled no road.

    Scene edges of mosaics, alpha borders of GEE chips and nodata collars all reach the model
    through that fill; a model never shown it may read the smooth fill as asphalt.
    """
    height, width = mask.shape
    angle = rng.uniform(0.0, 2.0 * np.pi)
    rows, cols = np.mgrid[0:height, 0:width]
    along = cols * np.cos(angle) + rows * np.sin(angle)
    cut = np.quantile(along, 1.0 - rng.uniform(0.15, 0.6))
    kept = along <= cut
    # every pixel without data is filled, as at inference (``valid``: the tile's own no-data)
    filled = fill_smooth(image.transpose(2, 0, 1).astype(np.float32), kept & valid)
    image = np.clip(np.rint(filled), 0, 255).astype(np.uint8).transpose(1, 2, 0)
    return np.ascontiguousarray(image), mask & kept


def load_style_images(folder: Path, limit: int = 256, side: int = 512) -> list[np.ndarray]:
    """The RGB images of ``folder`` (sorted; at most ``limit``) as a style bank, shrunk to at
    most ``side`` px (style transfer resizes a whole reference to the crop: only its colour
    and low frequencies count, and small references keep each sample cheap)."""
    if not folder.is_dir():
        raise InvalidInputError(f"{folder}: style folder not found")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not paths:
        raise InvalidInputError(f"{folder}: no images for style transfer")
    bank = []
    for path in paths:
        image = read_rgb(path)
        factor = side / max(image.shape[:2])
        if factor < 1:
            size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        bank.append(image)
    return bank


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

    def __init__(
        self,
        tiles: Sequence[Tile],
        transform: A.Compose,
        norm: Normalisation,
        styles: Sequence[np.ndarray] = (),
        nodata_p: float = 0.0,
    ) -> None:
        if not tiles:
            raise InvalidInputError("no tiles to load (empty split?)")
        self.tiles = list(tiles)
        self.transform = transform
        self.styles = list(styles)
        self.nodata_p = nodata_p
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
        extra = {STYLE_KEY: self.styles} if self.styles else {}
        out = self.transform(
            image=image, masks=[mask.astype(np.uint8), valid.astype(np.uint8)], **extra
        )
        m, v = out["masks"]
        v = v.astype(bool)
        m = m.astype(bool) & v
        image = out["image"]
        if self.nodata_p and _rng().random() < self.nodata_p:
            image, m = synthetic_nodata(image, m, v, _rng())
        x = (image.astype(np.float32) - self.mean) / self.std
        return (
            torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))),
            torch.from_numpy(m[None].astype(np.float32)),
            torch.from_numpy(v[None].astype(np.float32)),
        )


def _rng() -> np.random.Generator:
    """A generator drawn from torch's per-worker seed, so DataLoader workers differ."""
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))


class EpochSampler(Sampler[int]):
    """A seeded order per ``(seed, epoch)``, optionally starting part-way through.

    Without ``weights`` or ``size`` an epoch is a permutation of ``indices``; with them it is
    ``size`` draws (with replacement) weighted by ``weights``, so small sources are not drowned
    by large ones. Either way the order is deterministic, which is what makes ``--resume``
    continue mid-epoch without repeating or skipping samples.
    """

    def __init__(
        self,
        indices: Sequence[int],
        seed: int,
        epoch: int,
        start: int = 0,
        *,
        weights: np.ndarray | None = None,
        size: int | None = None,
    ) -> None:
        self.indices = list(indices)
        self.seed = seed
        self.epoch = epoch
        self.start = start
        self.weights = weights
        self.size = size

    def order(self) -> list[int]:
        """The whole epoch's order (pure in ``seed``/``epoch``)."""
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.weights is None and self.size is None:
            picks = rng.permutation(len(self.indices))
        else:
            size = self.size or len(self.indices)
            picks = rng.choice(len(self.indices), size=size, replace=True, p=self.weights)
        return [self.indices[i] for i in picks]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order()[self.start :])

    def __len__(self) -> int:
        return max(0, (self.size or len(self.indices)) - self.start)


def source_weights(sources: Sequence[str], balance: float) -> np.ndarray:
    """Per-tile sampling probabilities giving source ``s`` a share ∝ ``n_s ** (1 - balance)``.

    ``balance`` 0 samples tiles uniformly (a 1500² Massachusetts image outweighs a 400² CIL one
    by its tile count), 1 gives every source the same share, 0.5 sits between (∝ √n).
    """
    if not 0.0 <= balance <= 1.0:
        raise InvalidInputError(f"source balance must be within 0..1, got {balance}")
    counts = Counter(sources)
    weights = np.array([counts[s] ** (1.0 - balance) / counts[s] for s in sources], np.float64)
    return weights / weights.sum()


def worker_init(_: int) -> None:
    """Keep DataLoader workers single-threaded so they do not fight the training threads."""
    cv2.setNumThreads(0)
    torch.set_num_threads(1)
