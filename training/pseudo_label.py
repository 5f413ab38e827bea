"""``sanchari pseudo-label``: self-training labels on unlabelled target imagery.

The current model, with test-time augmentation, labels images it has no truth for; only
confident pixels keep a label (road where the probability is at least ``--road``, background
where it is at most ``--background``) and everything in between goes to the ``valid`` mask as
"ignore", the mechanism Massachusetts' no-data already uses. The output is an ordinary pairs
folder (``images/`` + ``masks/`` + ``valid/``) for ``sanchari preprocess --source DIR
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

import click
import numpy as np

from sanchari_processes.cli import options, run
from sanchari_processes.errors import InvalidInputError
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


@click.command("pseudo-label", context_settings=options.CONTEXT_SETTINGS)
@options.engine_options(
    options.weights,
    options.tta,
    options.batch_size,
    options.device,
    options.backend,
    weights={"required": True, "help": "The current model."},
    tta={"default": "d4"},
    backend={"help": "Inference runtime (as predict's).", "envvar": None},
)
@click.option("--images", type=options.PATH, required=True, help="Unlabelled images.")
@click.option("-o", "--out", type=options.PATH, required=True, help="Output pairs folder.")
@options.gsd(required=True, help="Metres per pixel of the images.")
@click.option(
    "--road", type=options.FRACTION, default=0.7, show_default=True, help="Road where p >= this."
)
@click.option(
    "--background",
    type=options.FRACTION,
    default=0.2,
    show_default=True,
    help="Background where p <= this; pixels in between are ignored.",
)
@click.option(
    "--grow",
    type=options.FRACTION,
    help="Also road: pixels with p >= this connected to road (hysteresis; default off).",
)
@click.option(
    "--min-road-m2",
    type=options.POSITIVE_FLOAT,
    default=50.0,
    show_default=True,
    help="Smaller road specks are ignored.",
)
def command(
    engine: options.EngineArgs,
    images: Path,
    out: Path,
    gsd: float,
    road: float,
    background: float,
    grow: float | None,
    min_road_m2: float,
) -> None:
    """Label unlabelled imagery with a model's confident pixels (self-training).

    Writes a pairs folder for `sanchari preprocess --train-only`.
    """
    config = PseudoConfig(road=road, background=background, grow=grow, min_road_m2=min_road_m2)
    paths = _images(images)
    if out.exists() and any(out.iterdir()):
        raise InvalidInputError(f"{out}: not empty; choose a new output folder")
    from sanchari_processes.engine.build import build_predictor

    engine_options = engine.engine_options()
    predictor = build_predictor(engine_options)
    rows = label_folder(paths, predictor, out, config, gsd)
    summary = {
        "weights": str(engine.weights),
        "model_id": predictor.metadata.model_id,
        "tta": engine.tta,
        "gsd_m": gsd,
        "config": config.__dict__,
        "inference": engine_options.inference.__dict__,
        "images": rows,
    }
    (out / "pseudo_labels.json").write_text(json.dumps(summary, indent=1) + "\n")
    share = np.mean([r["road_share"] for r in rows])
    print(f"{len(rows)} images labelled in {out}: mean road share {share:.2%}")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training.pseudo_label``: ``sanchari pseudo-label``."""
    return run(command, argv, "python -m training.pseudo_label")


if __name__ == "__main__":
    sys.exit(main())
