"""Adapt a model to a region from the user's roads: re-choose its threshold, then a guarded
fine-tune, and write the result as a model folder with its card.

1. Each image is read on the model's grid and the roads are burnt there
   (:mod:`~sanchari_processes.adapt.labels`).
2. The base model's threshold is re-chosen on the labelled pixels (``finetune=False`` stops here).
3. The labelled blocks are dealt into two spatial folds; a fine-tune on each fold predicts the
   other, so every labelled pixel gets an out-of-fold prediction. The fine-tune is kept only
   when those predictions beat the recalibrated base model on the same pixels; the shipped
   result is then the mean of the two fold models' weights, at the threshold chosen out of fold.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from sanchari_processes.adapt import card as card_text
from sanchari_processes.adapt.config import AdaptConfig
from sanchari_processes.adapt.folds import block_folds, fold_labels
from sanchari_processes.adapt.labels import (
    IGNORE,
    ROAD,
    Grid,
    Roads,
    label_grid,
)
from sanchari_processes.adapt.thresholds import (
    HIST_BINS,
    best_threshold,
    iou_sweep,
    probability_histograms,
)
from sanchari_processes.config import InferenceConfig
from sanchari_processes.engine.build import EngineOptions, build_engine
from sanchari_processes.engine.run import source_grid
from sanchari_processes.errors import (
    BackendUnavailableError,
    InvalidInputError,
    RequestTooLargeError,
)
from sanchari_processes.inference.backends import installed
from sanchari_processes.inference.metadata import ModelMetadata, checkpoint_paths
from sanchari_processes.inference.predictor import Predictor
from sanchari_processes.inference.shipped import copy_exports
from sanchari_processes.sources.raster import open_raster

#: ``progress(fraction, stage)``.
Progress = Callable[[float, str], None]
#: Fewest labelled road and background pixels worth adapting to (at 0.5 m: 200 m² of road).
MIN_ROAD_PX = 800
MIN_BACKGROUND_PX = 8000
#: Largest model grid read for adaptation (pixels over all images).
MAX_PIXELS = 64_000_000


@dataclass
class Region:
    """One image on the model grid with its labels (raw pixels, as the predictor takes them)."""

    name: str
    raw: np.ndarray
    valid: np.ndarray
    grid: Grid
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.uint8))


@dataclass(frozen=True)
class Adapted:
    """Where the model was written and what the adaptation measured."""

    folder: Path
    model_id: str
    report: dict[str, Any]


def read_region(path: Path, predictor: Predictor) -> Region:
    """``path`` read whole on the model's grid (resampled to the model's GSD)."""
    from rasterio.windows import Window

    with open_raster(path, len(predictor.metadata.bands)) as source:
        grid, _ = source_grid(source, predictor)
        chip = source.read(Window(0, 0, source.width, source.height), grid)
        crs = source.crs if source.is_georeferenced else None
    valid = np.ones(grid, bool) if chip.valid is None else chip.valid
    return Region(
        path.name, chip.data, valid, Grid(grid, chip.transform, crs, predictor.metadata.gsd_m)
    )


def adapt(
    images: Sequence[Path],
    roads: Roads,
    out: Path,
    *,
    weights: Path,
    config: AdaptConfig,
    area: Any = None,
    name: str | None = None,
    progress: Progress | None = None,
    inference: InferenceConfig | None = None,
    cache_dir: Path | None = None,
) -> Adapted:
    """Adapt the model at ``weights`` to ``images`` with ``roads``; write it into ``out``.

    ``inference``: how the base model predicts (device, backend, patches; its ``tta`` is
    ``config.tta``); ``cache_dir``: where exported models are cached (a server's settings).
    """
    tell = progress or (lambda fraction, stage: None)
    started = time.monotonic()
    if config.finetune and not installed("torch"):
        raise BackendUnavailableError(
            "fine-tuning needs torch, which this install lacks: pip install "
            "'sanchari-processes[train]' (without it, --no-finetune only re-chooses the threshold)"
        )
    icfg = replace(inference or InferenceConfig(), tta=config.tta)
    engine = build_engine(EngineOptions(weights, icfg, cache_dir=cache_dir))
    base = engine.predictor
    regions = [read_region(Path(p), base) for p in images]
    if sum(r.valid.size for r in regions) > MAX_PIXELS:
        raise RequestTooLargeError(f"the imagery is over {MAX_PIXELS} pixels at the model's GSD")
    for region in regions:
        region.labels = label_grid(
            roads,
            region.grid,
            region.valid,
            road_width_m=config.road_width_m,
            ignore_m=config.ignore_m,
            area=area,
            area_margin_m=config.area_margin_m,
        )
    _check_enough(regions)
    tell(0.02, "base model")
    base_probs = [base.predict(r.raw, r.valid) for r in regions]
    hist = _histograms(zip(base_probs, (r.labels for r in regions), strict=True))
    threshold, recal_iou, _ = best_threshold(*hist)
    report: dict[str, Any] = {
        "parent": {"model_id": base.metadata.model_id, "sha256": base.metadata.weights_sha256},
        "data": _summary(regions, roads),
        "config": dict(vars(config)),
        "base": {
            "threshold": base.metadata.threshold,
            "iou": iou_at(hist, base.metadata.threshold),
        },
        "recalibrated": {"threshold": threshold, "iou": recal_iou},
    }
    model_id = name or f"{base.metadata.model_id}-adapted-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    module, final_threshold = None, threshold
    if not config.finetune:
        report["verdict"] = "recalibrated: the threshold only (no fine-tune asked for)"
    else:
        module, cv = _guarded_finetune(regions, base_probs, base, weights, config, tell)
        recal_cv = iou_at(cv.pop("base_hist"), threshold)
        gain = cv["adapted_iou"] - recal_cv
        report["cross_validation"] = {**cv, "recalibrated_iou": recal_cv}
        if module is not None and gain >= config.min_gain:
            final_threshold = cv["threshold"]
            report["verdict"] = (
                f"adapted: out of fold, road IoU {cv['adapted_iou']:.3f} against {recal_cv:.3f} "
                f"for the recalibrated base model (+{gain:.3f})"
            )
        else:
            module = None
            report["verdict"] = (
                f"recalibrated: the fine-tune did not beat recalibration out of fold (road IoU "
                f"{cv['adapted_iou']:.3f} against {recal_cv:.3f}; it must add {config.min_gain:g})"
            )
    report["threshold"] = final_threshold
    report["seconds"] = round(time.monotonic() - started, 1)
    folder = out
    folder.mkdir(parents=True, exist_ok=True)
    metadata = replace(
        base.metadata,
        model_id=model_id,
        threshold=final_threshold,
        data=f"adapted from {base.metadata.model_id} to {report['data']['images']} image(s)",
        metrics={"adaptation": report},
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    if module is None:
        _write_recalibrated(folder, weights, metadata)
    else:
        from sanchari_processes.inference.checkpoint import save_checkpoint
        from sanchari_processes.inference.export import export_beside

        # the exported network beside it: the adapted model then runs without torch
        export_beside(save_checkpoint(module, metadata, folder / model_id, half=True))
    (folder / "MODEL_CARD.md").write_text(card_text.render(model_id, report), encoding="utf-8")
    tell(1.0, "done")
    return Adapted(folder, model_id, report)


def _guarded_finetune(
    regions: list[Region],
    base_probs: list[np.ndarray],
    base: Predictor,
    weights: Path,
    config: AdaptConfig,
    tell: Progress,
) -> tuple[Any, dict[str, Any]]:
    """Two fold fine-tunes scored out of fold, and the mean of their weights."""
    from sanchari_processes.adapt.finetune import FinetuneConfig, TrainRegion, average_state
    from sanchari_processes.adapt.finetune import finetune as tune
    from sanchari_processes.engine.build import torch_predictor
    from sanchari_processes.inference.checkpoint import LoadedModel, load_checkpoint

    loaded = load_checkpoint(weights, "cpu")
    folds = [
        block_folds(r.labels, r.grid.gsd_m, block_m=config.block_m, seed=config.seed)
        for r in regions
    ]
    inputs = [base.prepare(r.raw, r.valid)[0] for r in regions]
    adapted: list[tuple[np.ndarray, np.ndarray]] = []
    held_base: list[tuple[np.ndarray, np.ndarray]] = []
    models: list[Any] = []
    steps: list[int] = []
    for fold in (0, 1):
        train = [
            TrainRegion(x, fold_labels(r.labels, f, fold))
            for x, r, f in zip(inputs, regions, folds, strict=True)
        ]
        if not any((t.labels == ROAD).any() for t in train):
            return None, {
                "adapted_iou": float("nan"),
                "threshold": None,
                "steps": steps,
                "base_hist": _histograms(held_base),
                "skipped": f"fold {fold + 1} has no road",
            }
        settings = FinetuneConfig(
            max_steps=config.steps,
            seconds=config.minutes * 30.0,
            crop=config.crop,
            batch=config.batch,
            lr=config.lr,
            seed=config.seed * 2 + fold,
        )

        def tick(step: int, done: float, fold: int = fold) -> None:
            tell(0.05 + 0.9 * (fold + done) / 2, f"fine-tune {fold + 1} of 2, step {step}")

        model, n = tune(loaded.module, train, settings, tick)
        models.append(model)
        steps.append(n)
        held = LoadedModel(model, loaded.metadata, loaded.device, loaded.path)
        predictor = torch_predictor(held, replace(base.config, device="cpu", backend="torch"))
        for r, f, prob in zip(regions, folds, base_probs, strict=True):
            scored = fold_labels(r.labels, f, 1 - fold)
            if (scored != IGNORE).any():
                adapted.append((predictor.predict(r.raw, r.valid), scored))
                held_base.append((prob, scored))
    threshold, iou, _ = best_threshold(*_histograms(adapted))
    module = models[0]
    module.load_state_dict(average_state(models))
    cv = {"adapted_iou": iou, "threshold": threshold, "steps": steps}
    return module, {**cv, "base_hist": _histograms(held_base)}


def _histograms(pairs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Road and background probability histograms over the labelled pixels of ``pairs``."""
    road = np.zeros(HIST_BINS, np.int64)
    background = np.zeros(HIST_BINS, np.int64)
    for prob, labels in pairs:
        r, b = probability_histograms(prob, labels == ROAD, labels != IGNORE)
        road += r
        background += b
    return road, background


def iou_at(hist: tuple[np.ndarray, np.ndarray], threshold: float) -> float:
    """Road IoU of the histograms' pixels at one threshold."""
    return float(iou_sweep(*hist, np.array([threshold]))[0])


def _check_enough(regions: Sequence[Region]) -> None:
    roads = sum(int((r.labels == ROAD).sum()) for r in regions)
    background = sum(int((r.labels == 0).sum()) for r in regions)
    if roads < MIN_ROAD_PX or background < MIN_BACKGROUND_PX:
        raise InvalidInputError(
            f"too few labelled pixels where the roads meet the imagery ({roads} road, "
            f"{background} background; need {MIN_ROAD_PX} and {MIN_BACKGROUND_PX}): do the "
            "roads overlap the imagery, and is the area large enough?"
        )


def _summary(regions: Sequence[Region], roads: Roads) -> dict[str, Any]:
    gsd = regions[0].grid.gsd_m
    labelled = sum(int((r.labels != IGNORE).sum()) for r in regions)
    road = sum(int((r.labels == ROAD).sum()) for r in regions)
    return {
        "images": len(regions),
        "names": [r.name for r in regions],
        "roads": "mask raster" if roads.is_mask else f"{len(roads.lines)} line(s)",
        "labelled_km2": round(labelled * gsd * gsd / 1e6, 4),
        "road_share": round(road / max(labelled, 1), 4),
        "gsd_m": gsd,
    }


def _write_recalibrated(folder: Path, weights: Path, metadata: ModelMetadata) -> None:
    """The base weights, unchanged, with the new metadata beside them: ``metadata`` keeps the
    base's SHA-256, which building the base engine already checked against the file, and
    the base's exported networks, copied."""
    source = checkpoint_paths(weights)[0]
    shutil.copyfile(source, folder / f"{metadata.model_id}.safetensors")
    metadata = copy_exports(source, metadata, folder, metadata.model_id)  # the same network
    text = json.dumps(metadata.to_dict(), indent=2) + "\n"
    (folder / f"{metadata.model_id}.json").write_text(text, encoding="utf-8")
