"""The fine-tune alone, on the development split: how far a recipe carries to the other half.

Where ``bench_adapt.py`` measures the whole adaptation (threshold check, guard, final model),
this runs the one thing a recipe change touches: a single fine-tune of the shipped model on the
labelled half of each scene (its roads burnt as ``sanchari adapt`` burns them), scored on the
other half. No guard, no folds, so a recipe costs one fine-tune a half-scene. Left/right halves
only: this is for choosing a recipe, never for reporting one (the report split is
``bench_adapt.py --split tb``).

    python benchmarks/bench_finetune.py [--set lr=2e-4 steps=120 crop=192] [--scenes dg1 dg2 paris]
        [--variant freeze-encoder | lovasz]

``--variant`` re-runs a change tried on this split and dropped (docs/adapt.md has its rows):
the encoder frozen (only the decoder learns, so a step is cheaper), or a
Lovasz hinge added to the loss (half of it, with half Dice + Focal).

IoU on the scored half: the shipped model at its threshold; the fine-tuned model at 0.5, at the
threshold best on its own labelled half (what a user could choose) and at the best threshold
on the scored half (an upper bound that only ranks recipes; not a result).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_adapt import half_polygon, pairs_present

from sanchari_processes.adapt.config import AdaptConfig
from sanchari_processes.adapt.finetune import FinetuneConfig, TrainRegion, finetune
from sanchari_processes.adapt.labels import IGNORE, ROAD, label_grid, read_roads
from sanchari_processes.adapt.run import _histograms, _labelled_part, read_region
from sanchari_processes.adapt.thresholds import best_threshold
from sanchari_processes.config import InferenceConfig
from sanchari_processes.engine.build import EngineOptions, build_engine, torch_predictor
from sanchari_processes.inference.checkpoint import LoadedModel, load_checkpoint
from sanchari_processes.settings import SHIPPED_WEIGHTS

THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.01), 2)
VARIANTS = ("freeze-encoder", "lovasz")


def use_variant(name: str) -> None:
    """Patch the fine-tune as ``name`` asks (this process only)."""
    import sanchari_processes.adapt.finetune as tune

    if name == "freeze-encoder":
        original = tune.trainable_copy

        def frozen_copy(module: Any, channels_last: bool = True) -> Any:
            model = original(module, channels_last)
            model.encoder.requires_grad_(False)
            return model

        tune.trainable_copy = frozen_copy
    elif name == "lovasz":
        from segmentation_models_pytorch.losses import LovaszLoss

        lovasz = LovaszLoss(mode="binary", from_logits=True, ignore_index=IGNORE)
        region_loss = tune.region_loss

        def with_lovasz(logits: Any, labels: Any) -> Any:
            if not bool((labels != IGNORE).any()):
                return logits.sum() * 0.0
            return 0.5 * region_loss(logits, labels) + 0.5 * lovasz(logits, labels)

        tune.region_loss = with_lovasz


def iou(prob: np.ndarray, threshold: float, truth: np.ndarray) -> float:
    known = truth != IGNORE
    pred = (prob >= threshold) & known
    road = truth == ROAD
    return float((pred & road).sum() / max((pred | road).sum(), 1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", nargs="+")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--json", type=Path, help="write every run here")
    parser.add_argument("--variant", choices=VARIANTS, help="a change tried and dropped")
    args = parser.parse_args()
    if args.variant:
        use_variant(args.variant)
    fields: dict = {}
    for key, value in (item.split("=", 1) for item in args.set):
        kind = type(getattr(AdaptConfig(), key))
        fields[key] = value.lower() in {"1", "true"} if kind is bool else kind(value)
    config = AdaptConfig(**fields)
    print(f"config: {config}, variant: {args.variant}", flush=True)
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    pairs = pairs_present()
    if not pairs:
        print("error: ../shared/data is absent: nothing to measure", file=sys.stderr)
        return 1
    icfg = InferenceConfig(backend="torch", precision="fp32", tta=config.tta)
    base = build_engine(EngineOptions(SHIPPED_WEIGHTS, icfg)).predictor
    loaded = load_checkpoint(SHIPPED_WEIGHTS, "cpu")
    rows = []
    for name in args.scenes or list(pairs):
        image, roads_path = pairs[name]
        roads = read_roads(roads_path)
        region = read_region(image, base)
        height, width = region.raw.shape[1:]
        shipped = base.predict(region.raw, region.valid)
        for side, other in (("left", "right"), ("right", "left")):
            crs, transform = region.grid.crs, region.grid.transform
            scored = ((half_polygon(width, height, other, transform),), crs)
            truth_ignore = 0.0 if roads.is_mask else 2.0
            truth = label_grid(roads, region.grid, region.valid, ignore_m=truth_ignore, area=scored)
            region.labels = label_grid(
                roads,
                region.grid,
                region.valid,
                road_width_m=config.road_width_m,
                ignore_m=config.ignore_m,
                area=((half_polygon(width, height, side, transform),), crs),
            )
            part = _labelled_part(region)
            settings = FinetuneConfig(
                max_steps=config.steps,
                seconds=1e9,
                crop=config.crop,
                batch=config.batch,
                lr=config.lr,
                seed=config.seed,
            )
            start = time.monotonic()
            train = [TrainRegion(base.prepare(part.raw, part.valid)[0], part.labels)]
            model, _ = finetune(loaded.module, train, settings)
            seconds = time.monotonic() - start
            tuned = torch_predictor(
                LoadedModel(model, loaded.metadata, loaded.device, loaded.path),
                replace(base.config, device="cpu", backend="torch"),
            )
            prob = tuned.predict(region.raw, region.valid)
            own = best_threshold(*_histograms([(tuned.predict(part.raw, part.valid), part.labels)]))
            row = {
                "variant": args.variant,
                "scene": name,
                "train_half": side,
                "seconds": round(seconds, 1),
                "threshold": own[0],
                "shipped": iou(shipped, base.metadata.threshold, truth),
                "tuned_0.5": iou(prob, 0.5, truth),
                "tuned_own": iou(prob, own[0], truth),
                "tuned_best": max(iou(prob, t, truth) for t in THRESHOLDS),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    keys = ["shipped", "tuned_0.5", "tuned_own", "tuned_best"]
    for label, mine in (("rural", [r for r in rows if r["scene"] != "paris"]), ("all", rows)):
        if mine:
            means = {k: round(float(np.mean([r[k] for r in mine])), 3) for k in keys}
            print(f"mean, {label} ({len(mine)} runs): {means}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
