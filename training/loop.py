"""The training loop shared by every phase: accumulation, AMP, cosine LR, validation, resume.

:func:`train` builds the run (:mod:`training.context`), starts or resumes it
(:mod:`training.run_state`), then runs each phase epoch by epoch, validating after each
(:mod:`training.validation`). Both checkpoints it writes load with ``sanchari predict --weights``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sanchari_processes.errors import InvalidInputError
from sanchari_processes.inference import read_metadata
from sanchari_processes.inference.checkpoint import load_float_weights
from training.config import Phase, TrainConfig
from training.context import data_loader, datasets, make_context, new_model
from training.dataset import EpochSampler, source_weights
from training.losses import LOSSES
from training.run_state import EpochStats, Run, save_state, start_state
from training.validation import hardest_tiles


def cosine_lr(base: float, step: int, total: int) -> float:
    """Cosine annealing from ``base`` to 0 over ``total`` steps (pure; resume-safe)."""
    if total <= 0:
        return base
    return 0.5 * base * (1.0 + math.cos(math.pi * min(step, total) / total))


def train(config: TrainConfig) -> Path:
    """Run (or resume) every phase of ``config``; returns the best checkpoint's path."""
    if config.threads:
        torch.set_num_threads(config.threads)
    ctx = make_context(config)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    model = new_model(ctx)
    state = start_state(config, ctx, model)
    if config.max_steps is not None and state.step >= config.max_steps:
        raise InvalidInputError(
            f"{config.out_dir}: already at step {state.step}; raise --max-steps to train further"
        )
    model.to(ctx.device)
    train_set, plain_train, val_set = datasets(ctx)
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
        data_loader(val_set, config, ctx.device),
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
        save_state(config.out_dir, state)
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
        run.log(phase, phase.lr, result, epoch=0, epoch_complete="baseline")
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
        row = run.log(
            phase,
            optimizer.param_groups[0]["lr"],
            result,
            epoch=state.epoch + 1,
            epoch_complete=epoch_complete,
        )
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
    for x, m, v in data_loader(run.train_set, config, ctx.device, sampler):
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


def describe(path: Path) -> str:
    """One line about a checkpoint's measured validation scores, for the CLIs."""
    meta = read_metadata(path)
    scores = {k: meta.metrics.get(k) for k in ("val_iou", "val_f1", "phase", "step")}
    return f"{path}: {json.dumps(scores)}"
