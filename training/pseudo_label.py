"""``python -m training.pseudo_label``: self-training labels on unlabelled target imagery.

The current model, with test-time augmentation, labels images it has no truth for; only
confident pixels keep a label (road where the probability is at least ``--road``, background
where it is at most ``--background``) and everything in between goes to the ``valid`` mask as
"ignore", the mechanism Massachusetts' no-data already uses. The output is an ordinary pairs
folder (``images/`` + ``masks/`` + ``valid/``) for ``training.preprocess --source DIR
--train-only NAME``: the labels are the model's own, so they must never be held out.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sanchari_processes.config import BACKENDS, DEVICES, TTA_MODES
from sanchari_processes.errors import InvalidInputError
from training.cli import ArgumentParser, fraction, positive_float, positive_int, run_main
from training.io import IMAGE_SUFFIXES, read_rgb, write_binary


@dataclass(frozen=True)
class PseudoConfig:
    """Which pixels of a prediction become labels."""

    road: float = 0.7
    background: float = 0.2
    #: Pixels down to this probability that touch confident road are road too (hysteresis):
    #: a faint track's continuation of a clear one is taught as road, not ignored. None: off.
    grow: float | None = None
    #: Confident road blobs smaller than this (m²) are specks, not roads: ignored instead.
    min_road_m2: float = 50.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.background < self.road <= 1.0:
            raise InvalidInputError("need 0 <= --background < --road <= 1")
        if self.grow is not None and not self.background < self.grow < self.road:
            raise InvalidInputError("need --background < --grow < --road")


def pseudo_label(
    prob: np.ndarray, config: PseudoConfig, gsd_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(road, valid)`` from a probability map: confident road, confident background, and
    everything else (including road specks) marked invalid."""
    from skimage.morphology import remove_small_objects

    confident_road = prob >= config.road
    min_px = max(1, round(config.min_road_m2 / (gsd_m * gsd_m)))
    road = remove_small_objects(confident_road, max_size=min_px - 1)
    if config.grow is not None:
        road = grow_from(road, prob >= config.grow)
    valid = road | (prob <= config.background)
    return road, valid


def grow_from(seeds: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """The connected components of ``candidates`` (8-connected) that hold a seed pixel."""
    from scipy import ndimage as ndi

    labels, _ = ndi.label(candidates | seeds, structure=np.ones((3, 3), bool))
    keep = np.unique(labels[seeds])
    return np.isin(labels, keep[keep > 0])


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InvalidInputError(f"{folder}: not a directory")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise InvalidInputError(f"{folder}: no images")
    return images


def label_folder(
    images: Sequence[Path], predictor: Any, out: Path, config: PseudoConfig, gsd_m: float
) -> list[dict[str, Any]]:
    """Write ``out/images``, ``out/masks`` and ``out/valid`` for every image; returns one
    summary row per image."""
    from training.evaluate import predict_at_model_gsd

    for sub in ("images", "masks", "valid"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    rows = []
    for path in images:
        prob = predict_at_model_gsd(predictor, read_rgb(path), None, gsd_m)
        road, valid = pseudo_label(prob, config, gsd_m)
        stem = path.stem.removesuffix("_sat")
        shutil.copyfile(path, out / "images" / f"{stem}{path.suffix.lower()}")
        write_binary(out / "masks" / f"{stem}.png", road)
        write_binary(out / "valid" / f"{stem}.png", valid)
        rows.append(
            {
                "image": path.name,
                "road_share": round(float(road.mean()), 5),
                "labelled_share": round(float(valid.mean()), 5),
            }
        )
        print(
            f"{path.name}: road {road.mean():.2%}, labelled {valid.mean():.2%}",
            flush=True,
        )
    return rows


def _parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m training.pseudo_label",
        description="Label unlabelled imagery with a model's confident pixels (self-training); "
        "writes a pairs folder for training.preprocess --train-only.",
    )
    parser.add_argument("--weights", type=Path, required=True, help="the current model")
    parser.add_argument("--images", type=Path, required=True, help="unlabelled images")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output pairs folder")
    parser.add_argument(
        "--gsd", type=positive_float, required=True, help="metres per pixel of the images"
    )
    parser.add_argument("--tta", choices=TTA_MODES, default="d4")
    parser.add_argument(
        "--road", type=fraction, default=0.7, help="road where p >= this (default 0.7)"
    )
    parser.add_argument(
        "--background",
        type=fraction,
        default=0.2,
        help="background where p <= this (default 0.2); pixels in between are ignored",
    )
    parser.add_argument(
        "--grow",
        type=fraction,
        help="also road: pixels with p >= this connected to road (hysteresis; default off)",
    )
    parser.add_argument(
        "--min-road-m2", type=positive_float, default=50.0, help="smaller road specks ignored"
    )
    parser.add_argument("--batch-size", type=positive_int, help="default: the device's best")
    parser.add_argument("--device", default="auto", choices=DEVICES)
    parser.add_argument("--backend", default="auto", choices=BACKENDS, help="as predict's")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = PseudoConfig(
        road=args.road,
        background=args.background,
        grow=args.grow,
        min_road_m2=args.min_road_m2,
    )
    images = _images(args.images)
    if args.out.exists() and any(args.out.iterdir()):
        raise InvalidInputError(f"{args.out}: not empty; choose a new output folder")
    from sanchari_processes.config import InferenceConfig
    from sanchari_processes.engine.build import EngineOptions, build_predictor

    inference = InferenceConfig(
        tta=args.tta, batch_size=args.batch_size, device=args.device, backend=args.backend
    )
    predictor = build_predictor(EngineOptions(args.weights, inference))
    rows = label_folder(images, predictor, args.out, config, args.gsd)
    summary = {
        "weights": str(args.weights),
        "model_id": predictor.metadata.model_id,
        "tta": args.tta,
        "gsd_m": args.gsd,
        "config": config.__dict__,
        "inference": inference.__dict__,
        "images": rows,
    }
    (args.out / "pseudo_labels.json").write_text(json.dumps(summary, indent=1) + "\n")
    road = np.mean([r["road_share"] for r in rows])
    print(f"{len(rows)} images labelled in {args.out}: mean road share {road:.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, None))
