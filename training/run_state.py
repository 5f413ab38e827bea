"""A run in progress and its directory: position, checkpoints, ``state.pt`` and ``log.csv``.

A run directory holds ``last.safetensors``/``.json`` (latest weights, engine format),
``best.safetensors``/``.json`` (best validation IoU so far), ``state.pt`` (optimizer and
position, for ``--resume``) and ``log.csv`` (one row per validation).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.inference import ModelMetadata, read_metadata, save_checkpoint
from sanchari_processes.inference.checkpoint import load_float_weights
from training.config import Phase, TrainConfig
from training.context import Context
from training.dataset import RoadTiles
from training.imagenet import init_encoder_from_imagenet
from training.validation import validate

STATE_VERSION = 1
LOG_FIELDS = (
    "time",
    "phase",
    "epoch",
    "step",
    "lr",
    "train_loss",
    "val_loss",
    "val_iou",
    "val_precision",
    "val_recall",
    "val_f1",
    "val_iou_best",
    "val_threshold_best",
    "steps_per_s",
    "epoch_complete",
)


@dataclass
class RunState:
    """Where a run is; saved to ``state.pt`` so ``--resume`` continues exactly there."""

    phase_index: int = 0
    epoch: int = 0
    #: Micro-batches of the current epoch already consumed.
    batch: int = 0
    step: int = 0
    phase_step: int = 0
    best_iou: float = -1.0
    hard_indices: list[int] | None = None
    baseline_done: bool = False
    optimizer: dict[str, Any] | None = None
    scaler: dict[str, Any] | None = None
    recipe: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, **self.__dict__}


def save_state(out: Path, state: RunState) -> None:
    """Write ``state.pt`` atomically (a crash mid-write leaves the previous one)."""
    tmp = out / ".state.pt.tmp"
    torch.save(state.to_dict(), tmp)
    tmp.replace(out / "state.pt")


def _load_state(out: Path) -> RunState:
    path = out / "state.pt"
    if not path.is_file():
        raise InvalidInputError(f"{out}: nothing to resume (no state.pt)")
    data = torch.load(path, map_location="cpu", weights_only=True)
    if data.pop("version", None) != STATE_VERSION:
        raise InvalidInputError(f"{path}: unsupported state version")
    return RunState(**data)


def start_state(config: TrainConfig, ctx: Context, model: torch.nn.Module) -> RunState:
    """A fresh run's state (ImageNet encoder, seeded) or the resumed run's (its weights)."""
    out = config.out_dir
    recipe = {**config.recipe(), "architecture": ctx.architecture.to_dict()}
    if not config.resume:
        if (out / "state.pt").exists():
            raise InvalidInputError(
                f"{out}: a run already exists there; pass --resume or choose another --out"
            )
        torch.manual_seed(config.seed)
        if config.init_weights is None and config.imagenet:
            ctx.imagenet_source = init_encoder_from_imagenet(model, ctx.architecture.encoder_name)
        return RunState(recipe=recipe)
    state = _load_state(out)
    if state.recipe.get("architecture") != ctx.architecture.to_dict():
        raise InvalidInputError(f"{out}: the run to resume used another architecture")
    state.recipe = recipe
    model.load_state_dict(load_float_weights(out / "last.safetensors"), strict=True)
    ctx.imagenet_source = (
        read_metadata(out / "last.safetensors").metrics["training"].get("imagenet_init")
    )
    if state.phase_index >= len(config.phases):
        # A finished phase cannot grow more epochs (its schedule and "best" are settled); say
        # what works instead of silently doing nothing.
        raise InvalidInputError(
            f"{out}: every phase of this run is finished; to train on, start a new run from "
            f"{out / 'last.safetensors'} (training.train_lovasz --init), or resume with "
            "--hard-mining to add Phase 2"
        )
    return state


def _metadata(ctx: Context, extra: dict[str, Any]) -> ModelMetadata:
    config = ctx.config
    training = {
        "recipe": config.recipe(),
        "manifest": str(config.manifest.resolve()),
        "manifest_sha256": ctx.manifest_sha256,
        "imagenet_init": ctx.imagenet_source,
        "train_tiles": len(ctx.train),
        "val_tiles": len(ctx.val),
    }
    return ModelMetadata(
        model_id=config.model_id or f"{config.preset}-{config.out_dir.name}",
        architecture=ctx.architecture,
        preset=ctx.preset,
        mean=ctx.norm.mean,
        std=ctx.norm.std,
        gsd_m=ctx.gsd_m,
        threshold=config.val_threshold,
        data=ctx.data_description,
        metrics={**extra, "training": training},
    )


@dataclass
class EpochStats:
    """What one (possibly partial) epoch did, for its log row."""

    losses: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0


@dataclass
class Run:
    """One training run in progress: the model, where it is, and its data.

    The loop's state is real (weights, optimizer, position), so it lives here and the phase
    and epoch functions of :mod:`training.loop` take it instead of a dozen arguments.
    """

    ctx: Context
    model: torch.nn.Module
    state: RunState
    train_set: RoadTiles
    plain_train: RoadTiles
    val_loader: DataLoader
    scaler: torch.amp.GradScaler
    use_amp: bool
    stopped: bool = False
    epoch_stats: EpochStats | None = None

    @property
    def config(self) -> TrainConfig:
        return self.ctx.config

    @property
    def out(self) -> Path:
        return self.ctx.config.out_dir

    def checkpoint(self, name: str, extra: dict[str, Any]) -> Path:
        return save_checkpoint(self.model, _metadata(self.ctx, extra), self.out / name)

    def persist(self, optimizer: torch.optim.Optimizer, extra: dict[str, Any]) -> None:
        """``last`` weights plus the state ``--resume`` needs."""
        self.checkpoint("last", extra)
        self.state.optimizer = optimizer.state_dict()
        self.state.scaler = self.scaler.state_dict()
        save_state(self.out, self.state)

    def validation(self, phase: Phase, loss_fn: Callable[..., torch.Tensor]) -> dict[str, Any]:
        """Validate; a better IoU than ever before becomes ``best``."""
        config = self.config
        result: dict[str, Any] = validate(
            self.model, self.val_loader, self.ctx.device, loss_fn, config.val_threshold, config.amp
        ).scores()
        scores = {k: v for k, v in result.items() if k != "val_loss"} | {
            "val_threshold": config.val_threshold,
            "phase": phase.name,
            "epoch": self.state.epoch,
            "step": self.state.step,
        }
        iou = result["val_iou"]
        if not math.isnan(iou) and iou > self.state.best_iou:
            self.state.best_iou = iou
            self.checkpoint("best", scores)
        result["scores"] = scores
        return result

    def log(
        self,
        phase: Phase,
        lr: float,
        result: dict[str, Any],
        *,
        epoch: int,
        epoch_complete: bool | str,
    ) -> dict[str, Any]:
        """Append one ``log.csv`` row: a validation with the epoch's training figures (if any)."""
        row: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "phase": phase.name,
            "epoch": epoch,
            "step": self.state.step,
            "lr": lr,
            **{k: v for k, v in result.items() if k != "scores"},
            "epoch_complete": epoch_complete,
        }
        stats = self.epoch_stats if epoch_complete != "baseline" else None
        if stats is not None:
            row["train_loss"] = float(np.mean(stats.losses)) if stats.losses else math.nan
            row["steps_per_s"] = stats.steps / stats.seconds if stats.seconds else math.nan
        _append_log(self.out / "log.csv", row)
        return row


def _append_log(path: Path, row: dict[str, Any]) -> None:
    new = not path.exists()
    if not new:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) != LOG_FIELDS:
                # A run resumed by a newer version: rewrite the log under today's columns
                # (old rows keep their values, new columns stay empty) rather than misalign it.
                old_rows = list(reader)
                tmp = path.with_suffix(".csv.tmp")
                with tmp.open("w", newline="", encoding="utf-8") as out:
                    writer = csv.DictWriter(out, fieldnames=LOG_FIELDS)
                    writer.writeheader()
                    writer.writerows({k: r.get(k) or "" for k in LOG_FIELDS} for r in old_rows)
                tmp.replace(path)
    with path.open("a", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=LOG_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in LOG_FIELDS})
