"""``python -m training.optimize_threshold``: the validation-IoU-maximising threshold.

One pass over the held-out images builds probability histograms of road and background pixels;
IoU at every candidate threshold then follows from them (:func:`training.metrics.iou_sweep`),
so the sweep costs no extra inference. The best threshold is written into the checkpoint's
metadata, which ``sanchari predict`` uses by default.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from sanchari_processes.config import InferenceConfig
from sanchari_processes.inference import Predictor, load_checkpoint, save_checkpoint
from training.cli import ArgumentParser, positive_int, run_main
from training.evaluate import _predictions, manifest_samples
from training.metrics import iou_sweep

BINS = 1000


def sweep(
    predictor: Predictor, samples: Sequence, thresholds: np.ndarray
) -> tuple[float, np.ndarray]:
    """``(best threshold, IoU per threshold)`` over ``samples``' valid pixels."""
    road = np.zeros(BINS, np.int64)
    background = np.zeros(BINS, np.int64)
    for _, prob, truth, valid in _predictions(samples, predictor):
        keep = np.ones_like(truth) if valid is None else valid
        bins = np.clip((prob * BINS).astype(np.int64), 0, BINS - 1)
        road += np.bincount(bins[truth & keep], minlength=BINS)
        background += np.bincount(bins[~truth & keep], minlength=BINS)
    ious = iou_sweep(road, background, thresholds)
    return float(thresholds[int(np.nanargmax(ious))]), ious


def _parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m training.optimize_threshold",
        description="Sweep the road threshold on held-out images; record the best in the "
        "checkpoint metadata.",
    )
    parser.add_argument("--weights", type=Path, required=True, help="checkpoint to tune")
    parser.add_argument("--manifest", type=Path, required=True, help="preprocess manifest")
    parser.add_argument("--split", default="val", help="manifest split (default val)")
    parser.add_argument("-o", "--out", type=Path, help="write here (default: update in place)")
    parser.add_argument("--tta", choices=("none", "flip4", "d4"), default="flip4")
    parser.add_argument("--patch", type=positive_int, default=512)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--limit", type=positive_int, help="use only the first N images")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    samples = manifest_samples(args.manifest, args.split)[: args.limit]
    config = InferenceConfig(
        patch_size=args.patch, stride=args.patch // 2, tta=args.tta, device=args.device
    )
    loaded = load_checkpoint(args.weights, config.device)
    predictor = Predictor(loaded, config)
    thresholds = np.round(np.arange(0.05, 0.951, 0.01), 2)
    best, ious = sweep(predictor, samples, thresholds)
    meta = loaded.metadata
    search = {
        "threshold": best,
        "iou": float(np.nanmax(ious)),
        "iou_at_previous": float(ious[np.argmin(np.abs(thresholds - meta.threshold))]),
        "previous_threshold": meta.threshold,
        "split": args.split,
        "images": len(samples),
        "tta": args.tta,
    }
    metadata = replace(meta, threshold=best, metrics={**meta.metrics, "threshold_search": search})
    target = save_checkpoint(loaded.module, metadata, args.out or args.weights)
    print(
        f"{target}: threshold {meta.threshold:.2f} -> {best:.2f} "
        f"(IoU {search['iou_at_previous']:.4f} -> {search['iou']:.4f} on {len(samples)} images)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, None))
