"""Fine-tune a loaded model on one region's labels, within a time budget, on a CPU.

Small-data fine-tuning from a good model: random crops (half of them centred on a road pixel,
as roads are a few percent of the pixels), the eight flips and quarter turns, Dice + Focal over
the labelled pixels only, AdamW at a low rate, and batch-norm statistics frozen (a batch of a
few crops of one region would replace what the model learnt from thousands). Stops at the step
budget or the deadline, whichever comes first.

Speed is steps, and steps are what a fine-tune gains by: the network trains in channels-last
layout, and in bfloat16 autocast where the CPU has bfloat16 instructions (weights, optimiser
and loss stay float32). Where it has none, bfloat16 is emulated and slower, so float32 is kept.
"""

from __future__ import annotations

import copy
import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from segmentation_models_pytorch.losses import DiceLoss, FocalLoss

from sanchari_processes.adapt.labels import IGNORE, ROAD


@dataclass(frozen=True)
class FinetuneConfig:
    """How long and how hard to fine-tune."""

    max_steps: int = 400
    seconds: float = 120.0
    crop: int = 192
    batch: int = 4
    lr: float = 1e-4
    #: Share of crops centred on a road pixel.
    road_crops: float = 0.5
    seed: int = 0
    #: bfloat16 autocast: ``None`` where the CPU has bfloat16 instructions.
    bf16: bool | None = None


@dataclass(frozen=True)
class TrainRegion:
    """One image's model input ``(C, H, W)`` (normalised, no-data filled) and labels ``(H, W)``."""

    x: np.ndarray
    labels: np.ndarray


_DICE = DiceLoss(mode="binary", from_logits=True, ignore_index=IGNORE)
_FOCAL = FocalLoss(mode="binary", gamma=2.0, ignore_index=IGNORE)


def region_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """0.5 Dice + 0.5 Focal over labelled pixels (``labels`` 0/1, :data:`IGNORE` skipped)."""
    if not bool((labels != IGNORE).any()):
        return logits.sum() * 0.0
    return 0.5 * _DICE(logits, labels) + 0.5 * _FOCAL(logits, labels)


def finetune(
    module: torch.nn.Module,
    regions: Sequence[TrainRegion],
    config: FinetuneConfig,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[torch.nn.Module, int]:
    """A fine-tuned copy of ``module`` and the steps it took (``module`` is left as it was).

    ``progress(step, fraction)``: the fraction of the step or time budget used, whichever is more.
    """
    model = trainable_copy(module)
    bf16 = native_bf16() if config.bf16 is None else config.bf16
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    sampler = CropSampler(regions, config.crop, config.road_crops, config.seed)
    start = time.monotonic()
    step, done = 0, 0.0
    while done < 1.0:
        x, y = sampler.batch(config.batch)
        for group in optimiser.param_groups:  # cosine decay over the budget
            group["lr"] = config.lr * 0.5 * (1 + math.cos(math.pi * done))
        inputs = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
        train_step(model, optimiser, inputs, torch.from_numpy(y), bf16)
        step += 1
        done = max(step / config.max_steps, (time.monotonic() - start) / config.seconds)
        if progress is not None:
            progress(step, min(done, 1.0))
    model.eval()
    return model.to(memory_format=torch.contiguous_format), step


def trainable_copy(module: torch.nn.Module, channels_last: bool = True) -> torch.nn.Module:
    """A float32 copy of ``module`` to train (``module`` is left as it was), batch-norm
    statistics frozen."""
    model = copy.deepcopy(module).float().requires_grad_(True)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    for layer in model.modules():
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
            layer.eval()  # frozen statistics; its scale and shift still learn
    return model


def train_step(
    model: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    bf16: bool,
) -> None:
    """One step on a batch: the network in bfloat16 autocast when asked, the loss in float32."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(x)
    loss = region_loss(logits.float(), y)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()


@functools.cache
def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX; Linux reports it)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            flags = next((line.split() for line in info if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class CropSampler:
    """Random labelled crops of the regions, in a random flip/turn (state: the generator)."""

    def __init__(
        self, regions: Sequence[TrainRegion], crop: int, road_share: float, seed: int
    ) -> None:
        self._regions = [r for r in regions if (r.labels != IGNORE).any()]
        if not self._regions:
            raise ValueError("no labelled pixels to train on")
        self._crop = crop
        self._road_share = road_share
        self._rng = np.random.default_rng(seed)
        self._roads = [np.flatnonzero(r.labels == ROAD) for r in self._regions]
        self._known = [np.flatnonzero(r.labels != IGNORE) for r in self._regions]

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(x (n, C, s, s) float32, labels (n, 1, s, s) float32)``."""
        pairs = [self._one() for _ in range(n)]
        x = np.stack([p[0] for p in pairs]).astype(np.float32)
        y = np.stack([p[1] for p in pairs])[:, None].astype(np.float32)
        return x, y

    def _one(self) -> tuple[np.ndarray, np.ndarray]:
        i = int(self._rng.integers(len(self._regions)))
        region = self._regions[i]
        roads = self._roads[i]
        pool = roads if len(roads) and self._rng.random() < self._road_share else self._known[i]
        centre = int(pool[self._rng.integers(len(pool))])
        height, width = region.labels.shape
        s = self._crop
        row = _corner(centre // width, s, height, self._rng)
        col = _corner(centre % width, s, width, self._rng)
        x = _padded(region.x, row, col, s, 0.0)
        y = _padded(region.labels, row, col, s, IGNORE)
        k, flip = int(self._rng.integers(4)), bool(self._rng.integers(2))
        if flip:
            x, y = x[..., ::-1], y[..., ::-1]
        return np.rot90(x, k, axes=(-2, -1)).copy(), np.rot90(y, k, axes=(-2, -1)).copy()


def _corner(centre: int, size: int, length: int, rng: np.random.Generator) -> int:
    """A crop start that keeps ``centre`` inside, jittered, and inside the image when it fits."""
    start = centre - int(rng.integers(size // 4, 3 * size // 4 + 1))
    return int(np.clip(start, 0, max(length - size, 0)))


def _padded(array: np.ndarray, row: int, col: int, size: int, fill: float) -> np.ndarray:
    """``array[..., row:row+size, col:col+size]``, padded with ``fill`` past the image edge."""
    part = array[..., row : row + size, col : col + size]
    short = (size - part.shape[-2], size - part.shape[-1])
    if short == (0, 0):
        return part
    widths = [(0, 0)] * (part.ndim - 2) + [(0, short[0]), (0, short[1])]
    return np.pad(part, widths, constant_values=fill)
