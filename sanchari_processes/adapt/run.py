"""Adapt a model to a region from the user's roads: re-choose its threshold, then a guarded
fine-tune, and write the result as a model folder with its card.

1. Each image is read on the model's grid and the roads are burnt there
   (:mod:`~sanchari_processes.adapt.labels`).
2. The labelled blocks are dealt into two spatial folds. The base model's threshold is
   re-chosen on the labelled pixels, and kept only when a threshold chosen on one fold beats the
   base's own threshold on the other (``finetune=False`` stops here).
3. A fine-tune on each fold predicts the other, so every labelled pixel gets an out-of-fold
   prediction. The fine-tune is kept only when those predictions beat the base model at its own
   and at a re-chosen threshold on both folds (thresholds cross-fitted: chosen on one fold, scored
   on the other); the shipped model is then the same recipe run on every labelled block, at the
   threshold best for it over the labelled pixels.
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
from affine import Affine

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
    Hist,
    best_threshold,
    cross_fitted,
    iou_sweep,
    pooled_iou,
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
    regions = [_labelled_part(r) for r in regions]
    tell(0.02, "base model")
    base_probs = [base.predict(r.raw, r.valid) for r in regions]
    hist = _histograms(zip(base_probs, (r.labels for r in regions), strict=True))
    threshold, recal_iou, _ = best_threshold(*hist)
    folds = [
        block_folds(r.labels, r.grid.gsd_m, block_m=config.block_m, seed=config.seed)
        for r in regions
    ]
    cv = _threshold_check(_fold_histograms(base_probs, regions, folds), base.metadata.threshold)
    region_threshold = (
        threshold if cv["recalibrated_iou"] > cv["base_iou"] else base.metadata.threshold
    )
    report: dict[str, Any] = {
        "parent": {"model_id": base.metadata.model_id, "sha256": base.metadata.weights_sha256},
        "data": _summary(regions, roads),
        "config": dict(vars(config)),
        "base": {
            "threshold": base.metadata.threshold,
            "iou": iou_at(hist, base.metadata.threshold),
        },
        "recalibrated": {"threshold": threshold, "iou": recal_iou},
        "cross_validation": cv,
    }
    model_id = name or f"{base.metadata.model_id}-adapted-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    module, final_threshold = None, region_threshold
    why_threshold = (
        f"threshold {threshold:.2f} re-chosen for the region"
        if region_threshold == threshold
        else f"the base threshold {region_threshold:.2f} kept: re-choosing it did not pay out of "
        f"fold (road IoU {cv['recalibrated_iou']:.3f} against {cv['base_iou']:.3f})"
    )
    if not config.finetune:
        report["verdict"] = f"recalibrated: {why_threshold} (no fine-tune asked for)"
    else:
        tuner = _Tuner(regions, base, weights, config, tell)
        cv.update(tuner.folds(folds))
        final_threshold, report["verdict"] = _verdict(cv, config.min_gain, why_threshold)
        if final_threshold is None:
            final_threshold = region_threshold
        else:
            module, cv["final_steps"], final_threshold = tuner.final(final_threshold)
            cv["final_threshold"] = final_threshold
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


def _threshold_check(hists: list[Hist], base_threshold: float) -> dict[str, Any]:
    """The base model out of fold: at its own threshold, and at a threshold re-chosen on the
    other fold (re-chosen and scored on the same pixels, a threshold always looks better)."""
    base_iou, base_folds = pooled_iou(hists, [base_threshold] * len(hists))
    recal_iou, recal_folds, _ = cross_fitted(hists)
    return {
        "base_iou": base_iou,
        "base_folds": base_folds,
        "recalibrated_iou": recal_iou,
        "recalibrated_folds": recal_folds,
    }


def _verdict(cv: dict[str, Any], min_gain: float, why_threshold: str) -> tuple[Any, str]:
    """``(threshold of the fine-tuned model or None when it is not kept, the verdict)``.

    Kept only when, out of fold, it beats the base model at its own and at a re-chosen threshold
    on both folds, and by ``min_gain`` over both folds together: one lucky fold is not enough.
    """
    if cv.get("skipped"):
        return None, f"recalibrated: {why_threshold}; no fine-tune ({cv['skipped']})"
    best = max(cv["base_iou"], cv["recalibrated_iou"])
    gain = cv["adapted_iou"] - best
    folds = zip(cv["adapted_folds"], cv["base_folds"], cv["recalibrated_folds"], strict=True)
    lost = [i + 1 for i, (a, b, r) in enumerate(folds) if not a > max(b, r)]
    if gain >= min_gain and not lost:
        return cv["threshold"], (
            f"adapted: out of fold, road IoU {cv['adapted_iou']:.3f} against {best:.3f} for the "
            f"base model (+{gain:.3f}), better on both folds"
        )
    why = f"lost on fold {lost[0]}" if lost else f"it must add {min_gain:g}"
    return None, (
        f"recalibrated: the fine-tune did not beat the base model out of fold (road IoU "
        f"{cv['adapted_iou']:.3f} against {best:.3f}; {why}); {why_threshold}"
    )


class _Tuner:
    """The fine-tunes of one adaptation: two on the folds, each scored on the other fold, then
    (when they win) one on every labelled block, the model shipped: the same recipe on twice
    the data, at the threshold best for it over the labelled pixels."""

    RUNS = 3

    def __init__(
        self,
        regions: list[Region],
        base: Predictor,
        weights: Path,
        config: AdaptConfig,
        tell: Progress,
    ) -> None:
        from sanchari_processes.inference.checkpoint import load_checkpoint

        self._regions, self._base, self._config, self._tell = regions, base, config, tell
        self._loaded = load_checkpoint(weights, "cpu")
        self._inputs = [base.prepare(r.raw, r.valid)[0] for r in regions]

    def folds(self, folds: list[np.ndarray]) -> dict[str, Any]:
        """Fine-tune on each fold, predict the other: the out-of-fold IoU and threshold."""
        held: list[list[tuple[np.ndarray, np.ndarray]]] = [[], []]
        steps: list[int] = []
        for fold in (0, 1):
            labels = [
                fold_labels(r.labels, f, fold) for r, f in zip(self._regions, folds, strict=True)
            ]
            if not any((y == ROAD).any() for y in labels):
                return {"steps": steps, "skipped": f"fold {fold + 1} has no road"}
            model, n = self._tune(labels, fold, f"fine-tune {fold + 1} of 2")
            steps.append(n)
            predictor = self._predictor(model)
            for r, f in zip(self._regions, folds, strict=True):
                scored = fold_labels(r.labels, f, 1 - fold)
                if (scored != IGNORE).any():
                    held[1 - fold].append((predictor.predict(r.raw, r.valid), scored))
        hists = [_histograms(pairs) for pairs in held]
        adapted_iou, adapted_folds, _ = cross_fitted(hists)
        pooled = (hists[0][0] + hists[1][0], hists[0][1] + hists[1][1])
        return {
            "adapted_iou": adapted_iou,
            "adapted_folds": adapted_folds,
            "threshold": best_threshold(*pooled)[0],
            "steps": steps,
        }

    def final(self, fallback: float) -> tuple[Any, int, float]:
        """The model shipped: fine-tuned on every labelled block; its steps; its threshold.

        The threshold is the best for this model over the labelled pixels. The fold models'
        out-of-fold threshold fits the fold models, trained on half the roads and calibrated
        otherwise: on the development split it cost the final model up to 0.043 road IoU on
        the other half of the scene, where this one lost nothing (``fallback`` where no
        threshold is defined).
        """
        labels = [r.labels for r in self._regions]
        module, steps = self._tune(labels, 2, "fine-tune on all the roads")
        predictor = self._predictor(module)
        probs = (predictor.predict(r.raw, r.valid) for r in self._regions)
        threshold = best_threshold(*_histograms(zip(probs, labels, strict=True)))[0]
        return module, steps, fallback if np.isnan(threshold) else threshold

    def _predictor(self, module: Any) -> Predictor:
        """A fine-tuned network predicting as the base model does (torch, on the CPU)."""
        from sanchari_processes.engine.build import torch_predictor
        from sanchari_processes.inference.checkpoint import LoadedModel

        loaded = LoadedModel(module, self._loaded.metadata, self._loaded.device, self._loaded.path)
        return torch_predictor(loaded, replace(self._base.config, device="cpu", backend="torch"))

    def _tune(self, labels: list[np.ndarray], run: int, what: str) -> tuple[Any, int]:
        from sanchari_processes.adapt.finetune import FinetuneConfig, TrainRegion, finetune

        c = self._config
        settings = FinetuneConfig(
            max_steps=c.steps,
            seconds=c.minutes * 60.0 / self.RUNS,
            crop=c.crop,
            batch=c.batch,
            lr=c.lr,
            seed=c.seed * self.RUNS + run,
        )
        train = [TrainRegion(x, y) for x, y in zip(self._inputs, labels, strict=True)]

        def tick(step: int, done: float) -> None:
            self._tell(0.05 + 0.9 * (run + done) / self.RUNS, f"{what}, step {step}")

        return finetune(self._loaded.module, train, settings, tick)


def _fold_histograms(
    probs: list[np.ndarray], regions: list[Region], folds: list[np.ndarray]
) -> list[Hist]:
    """Per fold, the histograms of the probabilities over that fold's labelled pixels."""
    return [
        _histograms(
            (p, fold_labels(r.labels, f, k)) for p, r, f in zip(probs, regions, folds, strict=True)
        )
        for k in (0, 1)
    ]


#: Context kept around the labelled part of an image (pixels), so its edge predicts as inside.
CONTEXT_PX = 128


def _labelled_part(region: Region) -> Region:
    """``region`` cut to its labelled pixels and some context: nothing else is trained on or
    scored, and an area much smaller than the image then costs much less."""
    rows, cols = np.nonzero(region.labels != IGNORE)
    height, width = region.labels.shape
    if not len(rows):
        return region
    r0, r1 = max(rows.min() - CONTEXT_PX, 0), min(rows.max() + 1 + CONTEXT_PX, height)
    c0, c1 = max(cols.min() - CONTEXT_PX, 0), min(cols.max() + 1 + CONTEXT_PX, width)
    if (r0, c0, r1, c1) == (0, 0, height, width):
        return region
    grid = replace(
        region.grid,
        shape=(int(r1 - r0), int(c1 - c0)),
        transform=region.grid.transform * Affine.translation(int(c0), int(r0)),
    )
    return Region(
        region.name,
        region.raw[:, r0:r1, c0:c1],
        region.valid[r0:r1, c0:c1],
        grid,
        region.labels[r0:r1, c0:c1],
    )


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
