"""What a training run is built from: architecture, normalisation, tiles, datasets and loaders.

Everything here is decided once, before the first step, from the :class:`TrainConfig` and the
preprocess manifest; the loop (:mod:`training.loop`) only reads it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.inference import (
    Architecture,
    build_model,
    get_preset,
    read_metadata,
    resolve_device,
)
from sanchari_processes.inference.checkpoint import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    checkpoint_paths,
    load_float_weights,
)
from training.config import TrainConfig
from training.dataset import (
    Normalisation,
    RoadTiles,
    Tile,
    eval_transform,
    load_manifest,
    load_style_images,
    manifest_tiles,
    train_augmentations,
    worker_init,
)
from training.imagenet import LITE_MEAN, LITE_STD, lite_variant


def normalisation_for(architecture: Architecture) -> Normalisation:
    """Lite encoders were trained on [-1, 1] inputs; smp/lukemelas encoders on ImageNet stats."""
    if lite_variant(architecture.encoder_name.removeprefix("tu-")) is not None:
        return Normalisation(LITE_MEAN, LITE_STD)
    return Normalisation(IMAGENET_MEAN, IMAGENET_STD)


@dataclass
class Context:
    """What the loop needs besides the model; built once per run."""

    config: TrainConfig
    device: torch.device
    architecture: Architecture
    norm: Normalisation
    train: list[Tile]
    val: list[Tile]
    imagenet_source: str | None
    data_description: str
    gsd_m: float
    manifest_sha256: str
    preset: str | None


def make_context(config: TrainConfig) -> Context:
    """The run's device, architecture (preset or ``--init``'s), tiles and normalisation."""
    device = resolve_device(config.device)
    if config.init_weights is not None:
        architecture = read_metadata(config.init_weights).architecture
    else:
        architecture = get_preset(config.preset)
    if config.crop % architecture.size_multiple:
        raise InvalidInputError(f"crop must be a multiple of {architecture.size_multiple}")
    train, val, desc, gsd, digest = _manifest_context(config)
    if config.val_max_tiles is not None:
        val = val[: config.val_max_tiles]
    norm = normalisation_for(architecture)
    preset: str | None = config.preset
    imagenet: str | None = None
    if config.init_weights is not None:
        meta = read_metadata(config.init_weights)
        norm = Normalisation(meta.mean, meta.std, meta.input_scale)
        preset = meta.preset
        imagenet = meta.metrics.get("training", {}).get("imagenet_init")
    return Context(
        config, device, architecture, norm, train, val, imagenet, desc, gsd, digest, preset
    )


def _manifest_context(config: TrainConfig) -> tuple[list[Tile], list[Tile], str, float, str]:
    manifest = load_manifest(config.manifest)
    train = manifest_tiles(config.manifest, "train")
    val = manifest_tiles(config.manifest, "val")
    if not train:
        raise InvalidInputError(f"{config.manifest}: no training tiles")
    if not val:
        raise InvalidInputError(f"{config.manifest}: no validation tiles (use --val-fraction > 0)")
    sources = ", ".join(s["name"] for s in manifest.get("sources", []))
    pre = manifest.get("config", {})
    n_img = manifest.get("images", [])
    n_val_img = sum(i["split"] == "val" for i in n_img)
    desc = (
        f"{sources}: {len(n_img) - n_val_img} train / {n_val_img} held-out images "
        f"(split seed {pre.get('seed')}, val fraction {pre.get('val_fraction')}), "
        f"{pre.get('tile_size')} px tiles, {len(train)} train / {len(val)} val tiles"
    )
    # One resolution since manifest v2; older manifests' tiles kept their sources' GSDs.
    gsd = float(manifest.get("gsd_m") or np.mean([t.gsd_m for t in train]))
    digest = hashlib.sha256(config.manifest.read_bytes()).hexdigest()
    return train, val, desc, gsd, digest


def new_model(ctx: Context) -> torch.nn.Module:
    """The run's network on the CPU: untrained, or with ``--init``'s weights."""
    model = build_model(ctx.architecture)
    if ctx.config.init_weights is not None:
        weights, _ = checkpoint_paths(ctx.config.init_weights)
        model.load_state_dict(load_float_weights(weights), strict=True)
    return model


def datasets(ctx: Context) -> tuple[RoadTiles, RoadTiles, RoadTiles]:
    """Augmented training tiles, plain training tiles (hard mining) and validation tiles."""
    config = ctx.config
    styles = load_style_images(config.style_dir) if config.style_dir is not None else ()
    transform = (
        train_augmentations(config.crop, config.augment_options, with_style=bool(styles))
        if config.augment
        else eval_transform(config.crop)
    )
    return (
        RoadTiles(
            ctx.train,
            transform,
            ctx.norm,
            styles,
            nodata_p=config.augment_options.nodata_p if config.augment else 0.0,
        ),
        RoadTiles(ctx.train, eval_transform(_pad_size(ctx.train, 32)), ctx.norm),
        RoadTiles(ctx.val, eval_transform(_pad_size(ctx.val, 32)), ctx.norm),
    )


def _pad_size(tiles: list[Tile], multiple: int) -> int:
    """Side every validation tile is padded to (the largest tile, up to a multiple)."""
    largest = 0
    for t in tiles[:1] + tiles[-1:]:
        img = cv2.imread(str(t.image), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise InvalidInputError(f"{t.image}: cannot read tile")
        largest = max(largest, *img.shape[:2])
    return math.ceil(largest / multiple) * multiple


def data_loader(
    dataset: RoadTiles, config: TrainConfig, device: torch.device, sampler: Any = None
) -> DataLoader:
    """Batches of ``dataset`` in the sampler's order (or the dataset's), never shuffled here."""
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=config.num_workers,
        worker_init_fn=worker_init if config.num_workers else None,
        pin_memory=device.type == "cuda",
        drop_last=False,
    )
