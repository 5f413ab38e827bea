"""The training loop shared by every phase: accumulation, AMP, cosine LR, validation, resume.

A run directory holds ``last.safetensors``/``.json`` (latest weights, engine format),
``best.safetensors``/``.json`` (best validation IoU so far), ``state.pt`` (optimizer and
position, for ``--resume``) and ``log.csv`` (one row per validation). Both checkpoints load with
``sanchari predict --weights``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.inference import (
    Architecture,
    ModelMetadata,
    build_model,
    get_preset,
    read_metadata,
    resolve_device,
    save_checkpoint,
)
from sanchari_processes.inference.checkpoint import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    checkpoint_paths,
    load_float_weights,
)
from training import metrics
from training.config import Phase, TrainConfig
from training.dataset import (
    EpochSampler,
    Normalisation,
    RoadTiles,
    Tile,
    eval_transform,
    load_manifest,
    load_style_images,
    manifest_tiles,
    source_weights,
    train_augmentations,
    worker_init,
)
from training.imagenet import LITE_MEAN, LITE_STD, init_encoder_from_imagenet, lite_variant
from training.losses import LOSSES

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


def cosine_lr(base: float, step: int, total: int) -> float:
    """Cosine annealing from ``base`` to 0 over ``total`` steps (pure; resume-safe)."""
    if total <= 0:
        return base
    return 0.5 * base * (1.0 + math.cos(math.pi * min(step, total) / total))


def normalisation_for(architecture: Architecture) -> Normalisation:
    """Lite encoders were trained on [-1, 1] inputs; smp/lukemelas encoders on ImageNet stats."""
    if lite_variant(architecture.encoder_name.removeprefix("tu-")) is not None:
        return Normalisation(LITE_MEAN, LITE_STD)
    return Normalisation(IMAGENET_MEAN, IMAGENET_STD)


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


def _pad_size(tiles: list[Tile], multiple: int) -> int:
    """Side every validation tile is padded to (the largest tile, up to a multiple)."""
    largest = 0
    for t in tiles[:1] + tiles[-1:]:
        img = cv2.imread(str(t.image), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise InvalidInputError(f"{t.image}: cannot read tile")
        largest = max(largest, *img.shape[:2])
    return math.ceil(largest / multiple) * multiple


def _loader(
    dataset: RoadTiles, config: TrainConfig, device: torch.device, sampler: Any = None
) -> DataLoader:
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
        prob = torch.sigmoid(logits).cpu().numpy()[:, 0]
        truth = m.bool().cpu().numpy()[:, 0]
        valid = v.bool().cpu().numpy()[:, 0]
        for p, t, va in zip(prob, truth, valid, strict=True):
            total = total + _fast_counts(p >= threshold, t, va)
        r, b = metrics.probability_histograms(prob, truth, valid)  # the whole batch at once
        road += r
        background += b
    loss = float(np.mean(losses)) if losses else math.nan
    return Validation(loss, total, road, background)


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
    loader = _loader(dataset, config, device)
    scores: list[float] = []
    # Scoring every training tile takes minutes on a CPU: show it, like the training steps.
    bar = tqdm(total=len(dataset), desc="mining", unit="tile", disable=not config.progress)
    for logits, _, m, v in predict_tiles(model, loader, device, config.amp):
        pred = (torch.sigmoid(logits) >= config.val_threshold).cpu().numpy()[:, 0]
        for p, t, va in zip(
            pred, m.bool().cpu().numpy()[:, 0], v.bool().cpu().numpy()[:, 0], strict=True
        ):
            score = metrics.iou(_fast_counts(p, t, va))
            scores.append(1.0 if math.isnan(score) else score)
        bar.update(len(pred))
    n = max(1, math.ceil(fraction * len(scores)))
    chosen = np.argsort(scores, kind="stable")[:n]
    bar.write(
        f"hard mining: the {n} of {len(scores)} training tiles with IoU <= "
        f"{scores[chosen[-1]]:.3f} (threshold {config.val_threshold})"
    )
    bar.close()
    return sorted(chosen.tolist())


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


def _save_state(out: Path, state: RunState) -> None:
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


def _build(ctx: Context) -> torch.nn.Module:
    model = build_model(ctx.architecture)
    if ctx.config.init_weights is not None:
        weights, _ = checkpoint_paths(ctx.config.init_weights)
        model.load_state_dict(load_float_weights(weights), strict=True)
    return model


def _context(config: TrainConfig) -> Context:
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


@dataclass
class Run:
    """One training run in progress: the model, where it is, and its data.

    The loop's state is real (weights, optimizer, position), so it lives here and the phase
    and epoch functions below take it instead of a dozen arguments.
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
        _save_state(self.out, self.state)

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


def _start_state(config: TrainConfig, ctx: Context, model: torch.nn.Module) -> RunState:
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


def _datasets(ctx: Context) -> tuple[RoadTiles, RoadTiles, RoadTiles]:
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


def train(config: TrainConfig) -> Path:
    """Run (or resume) every phase of ``config``; returns the best checkpoint's path."""
    if config.threads:
        torch.set_num_threads(config.threads)
    ctx = _context(config)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    model = _build(ctx)
    state = _start_state(config, ctx, model)
    if config.max_steps is not None and state.step >= config.max_steps:
        raise InvalidInputError(
            f"{config.out_dir}: already at step {state.step}; raise --max-steps to train further"
        )
    model.to(ctx.device)
    train_set, plain_train, val_set = _datasets(ctx)
    use_amp = config.amp and ctx.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    if state.scaler:
        scaler.load_state_dict(state.scaler)
    run = Run(
        ctx,
        model,
        state,
        train_set,
        plain_train,
        _loader(val_set, config, ctx.device),
        scaler,
        use_amp,
    )
    for phase_index in range(state.phase_index, len(config.phases)):
        _run_phase(run, phase_index)
        if run.stopped:
            break
        # Phase done: the next one (now, or after a later --resume that adds it) starts afresh.
        state.phase_index, state.epoch, state.batch, state.phase_step = phase_index + 1, 0, 0, 0
        state.optimizer, state.hard_indices, state.baseline_done = None, None, False
        _save_state(config.out_dir, state)
    best = config.out_dir / "best.safetensors"
    return best if best.is_file() else config.out_dir / "last.safetensors"


@dataclass(frozen=True)
class EpochPlan:
    """Which tiles a phase draws from, how, and how many per epoch."""

    indices: list[int]
    weights: np.ndarray | None
    size: int | None

    @property
    def length(self) -> int:
        return self.size or len(self.indices)


def _epoch_plan(run: Run, phase: Phase) -> EpochPlan:
    """Hard mining's tiles as a plain permutation; otherwise every training tile, balanced
    across sources and paced by ``epoch_tiles`` as configured."""
    indices = _phase_indices(run, phase)
    config = run.config
    if run.state.hard_indices is not None:
        return EpochPlan(indices, None, None)
    weights = (
        source_weights([t.source for t in run.ctx.train], config.source_balance)
        if config.source_balance > 0
        else None
    )
    return EpochPlan(indices, weights, config.epoch_tiles)


def _phase_indices(run: Run, phase: Phase) -> list[int]:
    """The training tiles a phase sees: all, or (Phase 2) the hardest for the best weights."""
    state, ctx = run.state, run.ctx
    if phase.hard_fraction is not None and state.hard_indices is None:
        best = run.out / "best.safetensors"
        if best.is_file():
            run.model.load_state_dict(
                {k: v.to(ctx.device) for k, v in load_float_weights(best).items()}
            )
        state.hard_indices = hardest_tiles(
            run.model, run.plain_train, run.config, ctx.device, phase.hard_fraction
        )
    if state.hard_indices is not None:
        return state.hard_indices
    return list(range(len(run.train_set)))


def _run_phase(run: Run, phase_index: int) -> None:
    """One phase from wherever the run is in it to its end (or to ``--max-steps``)."""
    config, state = run.config, run.state
    phase = config.phases[phase_index]
    loss_fn = LOSSES[phase.loss]
    plan = _epoch_plan(run, phase)
    optimizer = torch.optim.AdamW(
        run.model.parameters(), lr=phase.lr, weight_decay=config.weight_decay
    )
    if state.optimizer:
        optimizer.load_state_dict(state.optimizer)
    if not state.baseline_done and (config.init_weights is not None or phase_index > 0):
        # Fine-tuning phases start from trained weights: score them first so "best" can
        # never be worse than the starting point.
        result = run.validation(phase, loss_fn)
        _append_log(
            run.out / "log.csv",
            _log_row(run, phase, phase.lr, result, epoch=0, epoch_complete="baseline"),
        )
    state.baseline_done = True
    batches_per_epoch = math.ceil(plan.length / config.batch_size)
    total_steps = math.ceil(batches_per_epoch / config.accumulate) * phase.epochs
    bar = tqdm(
        total=total_steps,
        initial=state.phase_step,
        desc=phase.name,
        unit="step",
        disable=not config.progress,
        dynamic_ncols=True,
    )
    while state.epoch < phase.epochs and not run.stopped:
        _run_epoch(run, phase_index, optimizer, plan, total_steps, bar)
        epoch_complete = not run.stopped or state.batch >= batches_per_epoch
        result = run.validation(phase, loss_fn)
        row = _log_row(
            run,
            phase,
            optimizer.param_groups[0]["lr"],
            result,
            epoch=state.epoch + 1,
            epoch_complete=epoch_complete,
        )
        _append_log(run.out / "log.csv", row)
        bar.write(
            f"{phase.name} epoch {state.epoch + 1}/{phase.epochs} step {state.step}: "
            f"train loss {row['train_loss']:.4f}, val IoU {result['val_iou']:.4f} "
            f"(best {result['val_iou_best']:.4f} at {result['val_threshold_best']:.2f})"
        )
        if epoch_complete:  # a --max-steps stop on the epoch's last batch still completes it
            state.epoch += 1
            state.batch = 0
        run.persist(optimizer, result["scores"])
    bar.close()


@dataclass
class EpochStats:
    """What one (possibly partial) epoch did, for its log row."""

    losses: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0


def _run_epoch(
    run: Run,
    phase_index: int,
    optimizer: torch.optim.Optimizer,
    plan: EpochPlan,
    total_steps: int,
    bar: tqdm,
) -> None:
    """Train from the run's position to the end of the epoch (or ``--max-steps``)."""
    config, state, ctx = run.config, run.state, run.ctx
    phase = config.phases[phase_index]
    loss_fn = LOSSES[phase.loss]
    batches_per_epoch = math.ceil(plan.length / config.batch_size)
    sampler = EpochSampler(
        plan.indices,
        config.seed,
        state.epoch + 1000 * phase_index,
        start=state.batch * config.batch_size,
        weights=plan.weights,
        size=plan.size,
    )
    stats = EpochStats()
    started = time.perf_counter()
    run.model.train()
    optimizer.zero_grad(set_to_none=True)
    for x, m, v in _loader(run.train_set, config, ctx.device, sampler):
        x, m, v = (t.to(ctx.device, non_blocking=True) for t in (x, m, v))
        with torch.autocast("cuda", dtype=torch.float16, enabled=run.use_amp):
            logits = run.model(x)
        loss = loss_fn(logits.float(), m, v)
        run.scaler.scale(loss / config.accumulate).backward()
        stats.losses.append(float(loss.detach()))
        state.batch += 1
        if state.batch % config.accumulate and state.batch < batches_per_epoch:
            continue  # accumulate; the epoch's last batches step with what they have
        lr = (
            cosine_lr(phase.lr, state.phase_step, total_steps)
            if phase.schedule == "cosine"
            else phase.lr
        )
        for group in optimizer.param_groups:
            group["lr"] = lr
        run.scaler.step(optimizer)
        run.scaler.update()
        optimizer.zero_grad(set_to_none=True)
        state.step += 1
        state.phase_step += 1
        stats.steps += 1
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(stats.losses[-config.accumulate * 10 :]):.4f}")
        if config.max_steps is not None and state.step >= config.max_steps:
            run.stopped = True
            break
        if config.save_every and state.step % config.save_every == 0:
            run.persist(optimizer, {"phase": phase.name, "step": state.step})
    stats.seconds = time.perf_counter() - started
    run.epoch_stats = stats


def _log_row(
    run: Run,
    phase: Phase,
    lr: float,
    result: dict[str, Any],
    *,
    epoch: int,
    epoch_complete: bool | str,
) -> dict[str, Any]:
    """One ``log.csv`` row: a validation with the epoch's training figures (if any)."""
    row: dict[str, Any] = {
        "time": _now(),
        "phase": phase.name,
        "epoch": epoch,
        "step": run.state.step,
        "lr": lr,
        **{k: v for k, v in result.items() if k != "scores"},
        "epoch_complete": epoch_complete,
    }
    stats = run.epoch_stats if epoch_complete != "baseline" else None
    if stats is not None:
        row["train_loss"] = float(np.mean(stats.losses)) if stats.losses else math.nan
        row["steps_per_s"] = stats.steps / stats.seconds if stats.seconds else math.nan
    return row


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def describe(path: Path) -> str:
    """One line about a checkpoint's measured validation scores, for the CLIs."""
    meta = read_metadata(path)
    scores = {k: meta.metrics.get(k) for k in ("val_iou", "val_f1", "phase", "step")}
    return f"{path}: {json.dumps(scores)}"
