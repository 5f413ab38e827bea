"""``sanchari evaluate``: pixel metrics accumulated over a set, plus APLS.

Three ways to name the data: prediction masks against truth masks (``--pred`` + ``--truth``,
matched by file stem), a model run over an image folder (``--weights`` + ``--images`` +
``--truth``), or a model run over a manifest's held-out images (``--weights`` + ``--manifest``).
The report is JSON on stdout (and ``--output``).
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import click
import cv2
import numpy as np
from affine import Affine

from sanchari_processes.cli import options, run
from sanchari_processes.config import VectorizeConfig
from sanchari_processes.errors import InvalidInputError
from training import metrics
from training.apls import AplsConfig, apls, geojson_lines, graph_from_lines
from training.io import IMAGE_SUFFIXES, read_binary, read_rgb, write_binary


@dataclass(frozen=True)
class Sample:
    """One image to score: a prediction (mask file or image to predict) and its truth."""

    name: str
    truth: Path
    valid: Path | None = None
    pred: Path | None = None
    image: Path | None = None
    gsd_m: float | None = None


class Prediction(NamedTuple):
    """One sample's probability (or 0/1 prediction), truth and valid mask, ready to score."""

    sample: Sample
    prob: np.ndarray
    truth: np.ndarray
    valid: np.ndarray | None


def _stems(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise InvalidInputError(f"{folder}: not a directory")
    return {
        p.stem: p
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    }


def folder_samples(
    truth: Path, valid: Path | None, *, pred: Path | None = None, images: Path | None = None
) -> list[Sample]:
    """Samples matched by file stem; every prediction/image needs a truth mask."""
    truths = _stems(truth)
    valids = _stems(valid) if valid else {}
    inputs = _stems(pred if pred is not None else images)  # type: ignore[arg-type]
    if not inputs:
        raise InvalidInputError(f"{pred or images}: no image files")
    missing = sorted(set(inputs) - set(truths))
    if missing:
        raise InvalidInputError(
            f"{truth}: no truth mask for {len(missing)} file(s), e.g. {missing[0]!r}"
        )
    if valid and set(inputs) - set(valids):
        raise InvalidInputError(
            f"{valid}: no valid mask for {sorted(set(inputs) - set(valids))[0]!r}"
        )
    return [
        Sample(
            name=n,
            truth=truths[n],
            valid=valids.get(n),
            pred=inputs[n] if pred is not None else None,
            image=inputs[n] if images is not None else None,
        )
        for n in sorted(inputs)
    ]


def manifest_samples(manifest: Path, split: str) -> list[Sample]:
    """The whole source images of one manifest split (not its overlapping tiles)."""
    from training.dataset import load_manifest

    rows = [r for r in load_manifest(manifest).get("images", []) if r["split"] == split]
    if not rows:
        raise InvalidInputError(f"{manifest}: no {split!r} images")
    return [
        Sample(
            name=f"{r['source']}/{r['name']}",
            truth=Path(r["mask"]),
            valid=Path(r["valid"]) if r.get("valid") else None,
            image=Path(r["image"]),
            gsd_m=r.get("gsd_m"),
        )
        for r in rows
    ]


def mask_graph(mask: np.ndarray, valid: np.ndarray | None, gsd_m: float, threshold: float = 0.5):
    """Road graph (metres) of a probability or binary raster, through the product vectorizer."""
    from sanchari_processes.vectorize import vectorize_probability

    fc = vectorize_probability(
        mask.astype(np.float32),
        Affine.identity(),
        None,
        VectorizeConfig(threshold=threshold),
        gsd_m=gsd_m,
        valid=valid,
    )
    return graph_from_lines(geojson_lines(fc, gsd_m=gsd_m))


def _source(name: str) -> str | None:
    """The data source of a manifest sample (``"cil/satimage_0"`` → ``"cil"``), else None."""
    head, sep, _ = name.partition("/")
    return head if sep else None


def _source_summary(
    items: Sequence[tuple[metrics.Counts, float | None]], rho: float, with_apls: bool
) -> dict[str, Any]:
    """One source's images: accumulated pixel metrics and their mean APLS."""
    total = sum((counts for counts, _ in items), metrics.Counts())
    summary: dict[str, Any] = {"images": len(items), **metrics.summary(total, rho)}
    if with_apls:
        summary["apls"] = float(np.mean([score for _, score in items]))
    return summary


def _json_float(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_float(v) for k, v in value.items()}
    return value


def evaluate(
    predictions: Iterable[Prediction],
    *,
    threshold: float = 0.5,
    rho: float = 3.0,
    with_apls: bool = True,
    gsd_m: float | None = None,
    apls_config: AplsConfig | None = None,
    save_pred: Path | None = None,
    per_image: bool = False,
) -> dict[str, Any]:
    """Score ``predictions``: accumulated pixel metrics and the mean per-image APLS.

    Taking predictions rather than samples lets the threshold search score the probabilities it
    already computed instead of running the model again. Manifest samples also get a
    ``by_source`` breakdown: one source's large images would otherwise hide how the model does
    on the others.
    """
    total = metrics.Counts()
    apls_scores: list[float] = []
    rows: list[dict[str, Any]] = []
    by_source: dict[str, list[tuple[metrics.Counts, float | None]]] = defaultdict(list)
    road_hist = np.zeros(metrics.HIST_BINS, np.int64)
    background_hist = np.zeros(metrics.HIST_BINS, np.int64)
    for sample, prob, truth, valid in predictions:
        pred = prob >= threshold
        r, b = metrics.probability_histograms(prob, truth, valid)
        road_hist += r
        background_hist += b
        counts = metrics.count(pred, truth, valid, rho)
        total = total + counts
        row: dict[str, Any] = {"name": sample.name, "iou": metrics.iou(counts)}
        if with_apls:
            gsd = sample.gsd_m or gsd_m
            if gsd is None:
                raise InvalidInputError("APLS needs the ground sample distance: pass --gsd")
            truth_graph = mask_graph(truth, valid, gsd)
            pred_graph = mask_graph(prob, valid, gsd, threshold)
            score = apls(truth_graph, pred_graph, apls_config)
            apls_scores.append(score["apls"])
            row.update(score)
        source = _source(sample.name)
        if source is not None:
            by_source[source].append((counts, row.get("apls")))
        if save_pred is not None:
            save_pred.mkdir(parents=True, exist_ok=True)
            write_binary(save_pred / f"{Path(sample.name).name}.png", pred)
        rows.append(row)
    best, best_iou, _ = metrics.best_threshold(road_hist, background_hist)
    report: dict[str, Any] = {
        "images": len(rows),
        "threshold": threshold,
        **metrics.summary(total, rho),
        # what another threshold would give on this set (judges a model apart from calibration)
        "iou_best": best_iou,
        "threshold_best": best,
    }
    if with_apls:
        report["apls"] = float(np.mean(apls_scores)) if apls_scores else math.nan
        report["apls_config"] = (apls_config or AplsConfig()).__dict__
    if len(by_source) > 1:
        report["by_source"] = {
            name: _source_summary(items, rho, with_apls)
            for name, items in sorted(by_source.items())
        }
    if per_image:
        report["per_image"] = [_json_float(r) for r in rows]
    return _json_float(report)


def predict_at_model_gsd(
    predictor: Any, image: np.ndarray, valid: np.ndarray | None, gsd_m: float | None
) -> np.ndarray:
    """Probability on the image's own grid, the model run at its training resolution.

    As the engine does: an image at ``gsd_m`` is resampled to the model's GSD (area when
    shrinking, bilinear when enlarging; ``valid`` nearest) and the probability mapped back.
    """
    scale = 1.0 if gsd_m is None else gsd_m / predictor.metadata.gsd_m
    height, width = image.shape[:2]
    if abs(scale - 1.0) > 0.02:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        smooth = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        model_image = cv2.resize(image, size, interpolation=smooth)
        model_valid = (
            cv2.resize(valid.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
            if valid is not None
            else None
        )
        prob = predictor.predict(np.ascontiguousarray(model_image.transpose(2, 0, 1)), model_valid)
        prob = cv2.resize(prob, (width, height), interpolation=cv2.INTER_LINEAR)
        return prob if valid is None else np.where(valid, prob, 0.0).astype(np.float32)
    return predictor.predict(np.ascontiguousarray(image.transpose(2, 0, 1)), valid)


def predict_samples(
    samples: Sequence[Sample], predictor: Any, gsd_m: float | None = None
) -> Iterator[Prediction]:
    """Each sample's prediction: its mask file, or the model run on its image (at the model's
    GSD; an image's own GSD is its sample's, else ``gsd_m``)."""
    for s in samples:
        truth = read_binary(s.truth)
        valid = read_binary(s.valid) if s.valid else None
        if s.pred is not None:
            prob = read_binary(s.pred).astype(np.float32)
        else:
            image = read_rgb(s.image)  # type: ignore[arg-type]
            prob = predict_at_model_gsd(predictor, image, valid, s.gsd_m or gsd_m)
        if prob.shape != truth.shape or (valid is not None and valid.shape != truth.shape):
            raise InvalidInputError(f"{s.name}: prediction, truth and valid sizes differ")
        yield Prediction(s, prob, truth, valid)


@click.command("evaluate", context_settings=options.CONTEXT_SETTINGS)
@click.option("--pred", type=options.PATH, help="Folder of predicted masks (0/255).")
@click.option("--truth", type=options.PATH, help="Folder of truth masks (0/255).")
@click.option("--valid", type=options.PATH, help="Folder of no-data masks (255 = has data).")
@options.engine_options(
    options.weights,
    options.tta,
    options.patch,
    options.stride,
    options.edge_margin,
    options.batch_size,
    options.device,
    options.backend,
    options.precision,
    options.cache_dir,
    weights={"help": "Checkpoint to run."},
    backend={"help": "Inference runtime (as predict's).", "envvar": None},
)
@click.option("--images", type=options.PATH, help="Folder of images for --weights.")
@click.option(
    "--manifest", type=options.PATH, help="`sanchari preprocess` manifest (with --weights)."
)
@click.option("--split", default="val", show_default=True, help="Manifest split.")
@options.threshold(help="Probability threshold (default: the checkpoint's; 0.5 for --pred).")
@click.option(
    "--rho",
    type=options.POSITIVE_FLOAT,
    default=3.0,
    show_default=True,
    help="Relaxed F1 tolerance, px.",
)
@options.gsd(
    help="Metres per pixel of the images/masks: images are resampled to the model's GSD "
    "(default: the model's), and APLS needs it (manifests carry their own)."
)
@click.option("--no-apls", is_flag=True, help="Skip APLS (faster).")
@click.option("--limit", type=options.POSITIVE_INT, help="Score only the first N images.")
@click.option("--per-image", is_flag=True, help="Add per-image scores.")
@click.option("--save-pred", type=options.PATH, help="Write predicted masks here.")
@click.option("--output", type=options.PATH, help="Also write the JSON report here.")
def command(
    pred: Path | None,
    truth: Path | None,
    valid: Path | None,
    engine: options.EngineArgs,
    images: Path | None,
    manifest: Path | None,
    split: str,
    threshold: float | None,
    rho: float,
    gsd: float | None,
    no_apls: bool,
    limit: int | None,
    per_image: bool,
    save_pred: Path | None,
    output: Path | None,
) -> None:
    """Road IoU (accumulated over the set), precision, recall, F1, relaxed F1 and APLS, as JSON.

    Give --pred + --truth, --weights + --images + --truth, or --weights + --manifest.
    """
    predictor = None
    if pred is not None:
        if engine.weights or images or manifest:
            raise InvalidInputError("--pred cannot be combined with --weights/--images/--manifest")
        if truth is None:
            raise InvalidInputError("--pred needs --truth")
        samples = folder_samples(truth, valid, pred=pred)
        threshold = 0.5 if threshold is None else threshold
        if gsd is None and not no_apls:
            # pixel metrics need no ground resolution: report them and say what was left out
            sys.stderr.write("note: APLS skipped: pass --gsd M (metres per pixel) to score it\n")
            no_apls = True
    elif engine.weights is not None:
        from sanchari_processes.engine.build import build_predictor

        if manifest is not None:
            samples = manifest_samples(manifest, split)
        elif images is not None and truth is not None:
            samples = folder_samples(truth, valid, images=images)
        else:
            raise InvalidInputError("--weights needs --manifest, or --images and --truth")
        predictor = build_predictor(engine.engine_options())
        threshold = predictor.metadata.threshold if threshold is None else threshold
        if gsd is None and manifest is None:
            gsd = predictor.metadata.gsd_m
    else:
        raise InvalidInputError("give --pred and --truth, or --weights (see --help)")
    report = evaluate(
        predict_samples(samples[:limit], predictor, gsd),
        threshold=threshold,
        rho=rho,
        with_apls=not no_apls,
        gsd_m=gsd,
        save_pred=save_pred,
        per_image=per_image,
    )
    if predictor is not None:
        report["weights"] = str(engine.weights)
        report["tta"] = engine.tta
        cfg = predictor.config
        report["inference"] = {
            "backend": predictor.runner.name,
            "precision": cfg.precision,
            "patch_size": cfg.patch_size,
            "stride": cfg.stride,
            "edge_margin": cfg.edge_margin,
        }
    text = json.dumps(report, indent=2)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
    print(text)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training.evaluate``: ``sanchari evaluate``."""
    return run(command, argv, "python -m training.evaluate")


if __name__ == "__main__":
    sys.exit(main())
