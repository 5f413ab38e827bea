"""``python -m training.evaluate``: pixel metrics accumulated over a set, plus APLS.

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

import cv2
import numpy as np
from affine import Affine

from sanchari_processes.config import (
    BACKENDS,
    DEFAULT_TTA,
    DEVICES,
    TTA_MODES,
    InferenceConfig,
    VectorizeConfig,
)
from sanchari_processes.errors import InvalidInputError
from training import metrics
from training.apls import AplsConfig, apls, geojson_lines, graph_from_lines
from training.cli import ArgumentParser, positive_float, positive_int, run_main
from training.io import IMAGE_SUFFIXES, read_binary, read_rgb, write_binary

_DEFAULTS = InferenceConfig()


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


def _parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m training.evaluate",
        description="Road IoU (accumulated over the set), precision, recall, F1, relaxed F1 and "
        "APLS, as JSON. Give --pred + --truth, --weights + --images + --truth, or --weights + "
        "--manifest.",
    )
    parser.add_argument("--pred", type=Path, help="folder of predicted masks (0/255)")
    parser.add_argument("--truth", type=Path, help="folder of truth masks (0/255)")
    parser.add_argument("--valid", type=Path, help="folder of no-data masks (255 = has data)")
    parser.add_argument("--weights", type=Path, help="checkpoint to run")
    parser.add_argument("--images", type=Path, help="folder of images for --weights")
    parser.add_argument("--manifest", type=Path, help="preprocess manifest (with --weights)")
    parser.add_argument("--split", default="val", help="manifest split (default val)")
    parser.add_argument(
        "--threshold", type=float, help="probability threshold (default: the checkpoint's)"
    )
    parser.add_argument("--rho", type=positive_float, default=3.0, help="relaxed F1 tolerance px")
    parser.add_argument(
        "--gsd",
        type=positive_float,
        help="metres per pixel of the images/masks: images are resampled to the model's GSD "
        "(default: the model's), and APLS needs it (manifests carry their own)",
    )
    parser.add_argument("--no-apls", action="store_true", help="skip APLS (faster)")
    parser.add_argument("--tta", choices=TTA_MODES, default=DEFAULT_TTA)
    parser.add_argument("--patch", type=positive_int, default=_DEFAULTS.patch_size)
    parser.add_argument(
        "--stride", type=positive_int, help="patch step (default: 3/4 of the patch)"
    )
    parser.add_argument(
        "--edge-margin", type=int, default=0, help="reflected context at image edges, px"
    )
    parser.add_argument("--batch-size", type=positive_int, help="default: the device's best")
    parser.add_argument("--device", default="auto", choices=DEVICES)
    parser.add_argument(
        "--backend", default="auto", choices=BACKENDS, help="inference runtime (as predict)"
    )
    parser.add_argument("--int8", action="store_true", help="the int8 model (model-export)")
    parser.add_argument("--cache-dir", type=Path, help="exported-model cache")
    parser.add_argument("--limit", type=positive_int, help="score only the first N images")
    parser.add_argument("--per-image", action="store_true", help="add per-image scores")
    parser.add_argument("--save-pred", type=Path, help="write predicted masks here")
    parser.add_argument("--output", type=Path, help="also write the JSON report here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    predictor = None
    threshold = args.threshold
    if args.pred is not None:
        if args.weights or args.images or args.manifest:
            raise InvalidInputError("--pred cannot be combined with --weights/--images/--manifest")
        if args.truth is None:
            raise InvalidInputError("--pred needs --truth")
        samples = folder_samples(args.truth, args.valid, pred=args.pred)
        threshold = 0.5 if threshold is None else threshold
        if args.gsd is None and not args.no_apls:
            # pixel metrics need no ground resolution: report them and say what was left out
            sys.stderr.write("note: APLS skipped: pass --gsd M (metres per pixel) to score it\n")
            args.no_apls = True
    elif args.weights is not None:
        from sanchari_processes.engine.build import EngineOptions, build_predictor

        if args.manifest is not None:
            samples = manifest_samples(args.manifest, args.split)
        elif args.images is not None and args.truth is not None:
            samples = folder_samples(args.truth, args.valid, images=args.images)
        else:
            raise InvalidInputError("--weights needs --manifest, or --images and --truth")
        try:
            config = InferenceConfig(
                patch_size=args.patch,
                stride=args.stride,
                batch_size=args.batch_size,
                tta=args.tta,
                device=args.device,
                backend=args.backend,
                int8=args.int8,
                edge_margin=args.edge_margin,
            )
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from None
        options = EngineOptions(args.weights, inference=config, cache_dir=args.cache_dir)
        predictor = build_predictor(options)
        threshold = predictor.metadata.threshold if threshold is None else threshold
        if args.gsd is None and args.manifest is None:
            args.gsd = predictor.metadata.gsd_m
    else:
        raise InvalidInputError("give --pred and --truth, or --weights (see --help)")
    if not 0.0 <= threshold <= 1.0:
        raise InvalidInputError(f"threshold must be within 0..1, got {threshold}")
    if args.limit:
        samples = samples[: args.limit]
    report = evaluate(
        predict_samples(samples, predictor, args.gsd),
        threshold=threshold,
        rho=args.rho,
        with_apls=not args.no_apls,
        gsd_m=args.gsd,
        save_pred=args.save_pred,
        per_image=args.per_image,
    )
    if predictor is not None:
        report["weights"] = str(args.weights)
        report["tta"] = args.tta
        cfg = predictor.config
        report["inference"] = {
            "backend": predictor.runner.name,
            "int8": cfg.int8,
            "patch_size": cfg.patch_size,
            "stride": cfg.stride,
            "edge_margin": cfg.edge_margin,
        }
    text = json.dumps(report, indent=2)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, None))
