"""Scoring the model during training: validation after each epoch and hard-tile mining.

Both pass tiles through the model in eval mode and count pixels with exact counts only (the
relaxed counts of :mod:`training.metrics` cost too much to compute every epoch).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from training import metrics
from training.config import TrainConfig
from training.context import data_loader
from training.dataset import RoadTiles


@torch.no_grad()
def predict_tiles(
    model: torch.nn.Module, loader: DataLoader, device: torch.device, amp: bool
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``(logits, image, mask, valid)`` per batch, in eval mode."""
    model.eval()
    for x, m, v in loader:
        x = x.to(device, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.float16, enabled=amp and device.type == "cuda"):
            logits = model(x)
        yield logits.float(), x, m.to(device), v.to(device)


@dataclass
class Validation:
    """One pass over the validation tiles: loss, counts at the threshold, histograms for all."""

    loss: float
    counts: metrics.Counts
    road_hist: np.ndarray
    background_hist: np.ndarray

    def scores(self) -> dict[str, float]:
        """Metrics at the fixed threshold, plus the best IoU over every threshold.

        Fine-tuning phases (hard mining, Lovász) move the model's calibration; the threshold-free
        IoU tells a better model from a merely shifted one.
        """
        threshold, iou, _ = metrics.best_threshold(self.road_hist, self.background_hist)
        return {
            "val_loss": self.loss,
            "val_iou": metrics.iou(self.counts),
            "val_precision": metrics.precision(self.counts),
            "val_recall": metrics.recall(self.counts),
            "val_f1": metrics.f1(self.counts),
            "val_iou_best": iou,
            "val_threshold_best": threshold,
        }


def validate(
    model: torch.nn.Module,
    loader: DataLoader,
    device: torch.device,
    loss_fn: Callable[..., torch.Tensor],
    threshold: float,
    amp: bool = True,
) -> Validation:
    """Mean loss, accumulated pixel counts (relaxed ones skipped) and probability histograms."""
    total = metrics.Counts()
    road = np.zeros(metrics.HIST_BINS, np.int64)
    background = np.zeros(metrics.HIST_BINS, np.int64)
    losses = []
    for logits, _, m, v in predict_tiles(model, loader, device, amp):
        losses.append(float(loss_fn(logits, m, v).detach()))
        prob, truth, valid = _as_arrays(logits, m, v)
        for p, t, va in zip(prob, truth, valid, strict=True):
            total = total + _fast_counts(p >= threshold, t, va)
        r, b = metrics.probability_histograms(prob, truth, valid)  # the whole batch at once
        road += r
        background += b
    loss = float(np.mean(losses)) if losses else math.nan
    return Validation(loss, total, road, background)


def _as_arrays(
    logits: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A batch's road probability, truth and valid pixels as ``(N, H, W)`` arrays."""
    return (
        torch.sigmoid(logits).cpu().numpy()[:, 0],
        mask.bool().cpu().numpy()[:, 0],
        valid.bool().cpu().numpy()[:, 0],
    )


def _fast_counts(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> metrics.Counts:
    """Exact counts only (validation during training does not need the relaxed ones)."""
    pred, truth = pred & valid, truth & valid
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred)) - tp
    fn = int(np.count_nonzero(truth)) - tp
    return metrics.Counts(tp=tp, fp=fp, fn=fn, tn=int(np.count_nonzero(valid)) - tp - fp - fn)


def hardest_tiles(
    model: torch.nn.Module,
    dataset: RoadTiles,
    config: TrainConfig,
    device: torch.device,
    fraction: float,
) -> list[int]:
    """Indices of the ``fraction`` training tiles with the lowest IoU (no road anywhere = 1)."""
    loader = data_loader(dataset, config, device)
    scores: list[float] = []
    # Scoring every training tile takes minutes on a CPU: show it, like the training steps.
    bar = tqdm(total=len(dataset), desc="mining", unit="tile", disable=not config.progress)
    for logits, _, m, v in predict_tiles(model, loader, device, config.amp):
        prob, truth, valid = _as_arrays(logits, m, v)
        for p, t, va in zip(prob, truth, valid, strict=True):
            score = metrics.iou(_fast_counts(p >= config.val_threshold, t, va))
            scores.append(1.0 if math.isnan(score) else score)
        bar.update(len(prob))
    n = max(1, math.ceil(fraction * len(scores)))
    chosen = np.argsort(scores, kind="stable")[:n]
    bar.write(
        f"hard mining: the {n} of {len(scores)} training tiles with IoU <= "
        f"{scores[chosen[-1]]:.3f} (threshold {config.val_threshold})"
    )
    bar.close()
    return sorted(chosen.tolist())
