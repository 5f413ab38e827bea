"""``python -m training.optimize_threshold``: the validation-IoU-maximising threshold.

One pass over the held-out images builds probability histograms of road and background pixels;
IoU at every candidate threshold then follows from them (:func:`training.metrics.iou_sweep`),
so the sweep costs no extra inference. The best threshold is written into the checkpoint's
metadata, which ``sanchari predict`` uses by default. ``--report`` also scores the same
probabilities at that threshold with :func:`training.evaluate.evaluate` (precision, recall, F1,
relaxed F1, APLS, per source), which saves a second pass of the model over the images.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from sanchari_processes.config import DEFAULT_TTA, TTA_MODES, InferenceConfig
from sanchari_processes.engine.build import torch_predictor
from sanchari_processes.errors import InvalidInputError
from sanchari_processes.inference import load_checkpoint, save_checkpoint
from training.cli import ArgumentParser, positive_int, run_main
from training.evaluate import Prediction, evaluate, manifest_samples, predict_samples
from training.metrics import HIST_BINS, best_threshold, probability_histograms, search_thresholds


def sweep(predictions: Iterable[Prediction], thresholds: np.ndarray) -> tuple[float, np.ndarray]:
    """``(best threshold, IoU per threshold)`` over the predictions' valid pixels."""
    road = np.zeros(HIST_BINS, np.int64)
    background = np.zeros(HIST_BINS, np.int64)
    for _, prob, truth, valid in predictions:
        r, b = probability_histograms(prob, truth, valid)
        road += r
        background += b
    best, _, ious = best_threshold(road, background, thresholds)
    return best, ious


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
    parser.add_argument("--tta", choices=TTA_MODES, default=DEFAULT_TTA)
    parser.add_argument("--patch", type=positive_int, default=512)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--limit", type=positive_int, help="use only the first N images")
    parser.add_argument(
        "--report",
        type=Path,
        help="also write the training.evaluate JSON report at the chosen threshold here "
        "(keeps the probabilities in memory; no second model pass)",
    )
    parser.add_argument("--no-apls", action="store_true", help="no APLS in --report (faster)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    samples = manifest_samples(args.manifest, args.split)[: args.limit]
    config = InferenceConfig(patch_size=args.patch, tta=args.tta, device=args.device)
    loaded = load_checkpoint(args.weights, config.device)
    predictor = torch_predictor(loaded, config)
    thresholds = search_thresholds()
    predictions: Iterable[Prediction] = predict_samples(samples, predictor)
    if args.report is not None:
        predictions = list(predictions)  # scored again at the chosen threshold below
    best, ious = sweep(predictions, thresholds)
    if np.isnan(best):
        raise InvalidInputError(f"{args.manifest}: the {args.split!r} images have no valid pixels")
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
    if args.report is not None:
        report = evaluate(predictions, threshold=best, with_apls=not args.no_apls)
        report |= {"weights": str(target), "tta": args.tta, "split": args.split}
        args.report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"{args.report}: IoU {report['iou']:.4f}, F1 {report['f1']:.4f} at {best:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, None))
