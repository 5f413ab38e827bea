"""``sanchari optimize-threshold``: the validation-IoU-maximising threshold.

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

import click
import numpy as np

from sanchari_processes.cli import options, run
from sanchari_processes.engine.build import torch_predictor
from sanchari_processes.errors import InvalidInputError
from sanchari_processes.inference import load_checkpoint, save_checkpoint
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


@click.command("optimize-threshold", context_settings=options.CONTEXT_SETTINGS)
@options.engine_options(
    options.weights,
    options.tta,
    options.patch,
    options.device,
    weights={"required": True, "help": "Checkpoint to tune."},
)
@click.option(
    "--manifest", type=options.PATH, required=True, help="`sanchari preprocess` manifest."
)
@click.option("--split", default="val", show_default=True, help="Manifest split.")
@click.option("-o", "--out", type=options.PATH, help="Write here (default: update in place).")
@click.option("--limit", type=options.POSITIVE_INT, help="Use only the first N images.")
@click.option(
    "--report",
    type=options.PATH,
    help="Also write the `sanchari evaluate` JSON report at the chosen threshold here "
    "(keeps the probabilities in memory; no second model pass).",
)
@click.option("--no-apls", is_flag=True, help="No APLS in --report (faster).")
def command(
    engine: options.EngineArgs,
    manifest: Path,
    split: str,
    out: Path | None,
    limit: int | None,
    report: Path | None,
    no_apls: bool,
) -> None:
    """Sweep the road threshold on held-out images; record the best in the checkpoint metadata."""
    samples = manifest_samples(manifest, split)[:limit]
    config = engine.inference()
    loaded = load_checkpoint(engine.weights, config.device)
    predictor = torch_predictor(loaded, config)
    thresholds = search_thresholds()
    predictions: Iterable[Prediction] = predict_samples(samples, predictor)
    if report is not None:
        predictions = list(predictions)  # scored again at the chosen threshold below
    best, ious = sweep(predictions, thresholds)
    if np.isnan(best):
        raise InvalidInputError(f"{manifest}: the {split!r} images have no valid pixels")
    meta = loaded.metadata
    search = {
        "threshold": best,
        "iou": float(np.nanmax(ious)),
        "iou_at_previous": float(ious[np.argmin(np.abs(thresholds - meta.threshold))]),
        "previous_threshold": meta.threshold,
        "split": split,
        "images": len(samples),
        "tta": config.tta,
    }
    metadata = replace(meta, threshold=best, metrics={**meta.metrics, "threshold_search": search})
    target = save_checkpoint(loaded.module, metadata, out or engine.weights)
    print(
        f"{target}: threshold {meta.threshold:.2f} -> {best:.2f} "
        f"(IoU {search['iou_at_previous']:.4f} -> {search['iou']:.4f} on {len(samples)} images)"
    )
    if report is not None:
        scored = evaluate(predictions, threshold=best, with_apls=not no_apls)
        scored |= {"weights": str(target), "tta": config.tta, "split": split}
        report.write_text(json.dumps(scored, indent=2) + "\n", encoding="utf-8")
        print(f"{report}: IoU {scored['iou']:.4f}, F1 {scored['f1']:.4f} at {best:.2f}")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training.optimize_threshold``: ``sanchari optimize-threshold``."""
    return run(command, argv, "python -m training.optimize_threshold")


if __name__ == "__main__":
    sys.exit(main())
