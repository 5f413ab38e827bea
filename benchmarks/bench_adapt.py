"""Adaptation measured on data it never saw: the half-image protocol.

For each scene (the 2 labelled DeepGlobe dev pairs, rural South/South-East Asia, and the Paris
scene with its OpenStreetMap roads), the roads of one half stand in for the user's roads; road
IoU and APLS are scored on the other half for the shipped model (its own threshold), the
shipped model recalibrated on the labelled half, and the adapted model (whatever the guard
kept). Both halves take each role, over several seeds. Nothing is tuned on the scored half:
the adaptation sees only the labelled half's roads (its area is that half).

    python benchmarks/bench_adapt.py [--split lr|tb] [--minutes 4] [--seeds 0 1]
                                     [--scenes dg1 dg2 paris] [--json FILE]

``--split lr`` (left/right halves) is the development split, on which recipes are chosen;
``--split tb`` (top/bottom halves) is the report split, scored once with the recipe frozen.
Each run prints its wall seconds and the steps of each fine-tune (fold 1, fold 2, final): time
it on an idle machine only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import shapely

REPO = Path(__file__).resolve().parents[1]
#: ../shared/data beside the checkout (or a level up, from a worktree), or $SANCHARI_SHARED_DATA.
SHARED = next(
    (
        p
        for p in (
            Path(os.environ.get("SANCHARI_SHARED_DATA", "/nonexistent")),
            REPO.parent / "shared" / "data",
            REPO.parent.parent / "shared" / "data",
        )
        if p.is_dir()
    ),
    REPO.parent / "shared" / "data",
)
sys.path.insert(0, str(REPO))

from sanchari_processes.adapt.config import AdaptConfig  # noqa: E402
from sanchari_processes.adapt.labels import IGNORE, ROAD, label_grid, read_roads  # noqa: E402
from sanchari_processes.adapt.run import _histograms, adapt, read_region  # noqa: E402
from sanchari_processes.adapt.thresholds import best_threshold  # noqa: E402
from sanchari_processes.config import InferenceConfig  # noqa: E402
from sanchari_processes.engine.build import EngineOptions, build_engine  # noqa: E402
from sanchari_processes.settings import SHIPPED_WEIGHTS  # noqa: E402
from training import apls as apls_mod  # noqa: E402
from training.evaluate import mask_graph  # noqa: E402

DEV = SHARED / "roads" / "deepglobe_dev"
SCENES = {
    "dg1": (DEV / "images" / "104_sat.jpg", DEV / "masks" / "104_mask.png"),
    "dg2": (DEV / "images" / "2_sat.jpg", DEV / "masks" / "2_mask.png"),
    "paris": (
        SHARED / "scenes" / "paris_img1447.tif",
        SHARED / "scenes" / "paris_img1447_osm_roads.geojson",
    ),
}


def pairs_present() -> dict[str, tuple[Path, Path]]:
    """The scenes present (the DeepGlobe file names are found, not assumed)."""
    found = {}
    images = sorted((DEV / "images").glob("*")) if DEV.exists() else []
    for i, image in enumerate(images[:2], start=1):
        stem = image.stem.replace("_sat", "")
        masks = list((DEV / "masks").glob(f"{stem}*"))
        if masks:
            found[f"dg{i}"] = (image, masks[0])
    paris = SCENES["paris"]
    if paris[0].exists() and paris[1].exists():
        found["paris"] = paris
    return found


#: The two ways of halving a scene: left/right is the development split (recipes are chosen on
#: it), top/bottom the report split (scored once, with the recipe frozen).
SPLITS = {"lr": ("left", "right"), "tb": ("top", "bottom")}


def half_polygon(width: float, height: float, side: str, transform) -> shapely.Polygon:
    """One half of an image (left, right, top or bottom), in its CRS (pixel corners through
    ``transform``)."""
    x0, x1, y0, y1 = 0.0, width, 0.0, height
    if side == "left":
        x1 = width / 2
    elif side == "right":
        x0 = width / 2
    elif side == "top":
        y1 = height / 2
    else:
        y0 = height / 2
    corners = [transform * (x, y) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
    return shapely.Polygon(corners)


def scores(prob: np.ndarray, threshold: float, truth: np.ndarray, gsd: float) -> dict:
    known = truth != IGNORE
    pred = (prob >= threshold) & known
    road = (truth == ROAD) & known
    tp = int((pred & road).sum())
    union = int((pred | road).sum())
    iou = tp / union if union else float("nan")
    truth_graph = mask_graph(road.astype(np.float32), known, gsd)
    pred_graph = mask_graph(np.where(known, prob, 0).astype(np.float32), known, gsd, threshold)
    return {"iou": iou, "apls": apls_mod.apls(truth_graph, pred_graph)["apls"]}


def one_run(
    name: str, image: Path, roads_path: Path, sides: tuple[str, str], seed: int, config: dict
) -> dict:
    roads = read_roads(roads_path)
    base = build_engine(EngineOptions(SHIPPED_WEIGHTS, InferenceConfig())).predictor
    region = read_region(image, base)
    height, width = region.raw.shape[1:]
    side, score_side = sides
    train_area = half_polygon(width, height, side, region.grid.transform)
    score_area = half_polygon(width, height, score_side, region.grid.transform)
    crs = region.grid.crs
    truth_ignore = 0.0 if roads.is_mask else 2.0  # a mask is scored as drawn; lines +-2 m
    truth = label_grid(
        roads, region.grid, region.valid, ignore_m=truth_ignore, area=((score_area,), crs)
    )
    with tempfile.TemporaryDirectory() as tmp:
        start = time.monotonic()
        result = adapt(
            [image],
            roads,
            Path(tmp) / "model",
            weights=SHIPPED_WEIGHTS,
            config=AdaptConfig(seed=seed, **config),
            area=((train_area,), crs),
            progress=_Every(120.0),
        )
        seconds = time.monotonic() - start
        adapted = build_engine(EngineOptions(result.folder, InferenceConfig())).predictor
        adapted_prob = adapted.predict(region.raw, region.valid)
    if image not in _BASE_PROBS:  # the shipped model's probabilities do not change between runs
        _BASE_PROBS[image] = base.predict(region.raw, region.valid)
    base_prob = _BASE_PROBS[image]
    report = result.report
    gsd = region.grid.gsd_m
    cv = report["cross_validation"]
    row = {
        "scene": name,
        "train_half": side,
        "seed": seed,
        "seconds": round(seconds, 1),
        "steps": [*cv.get("steps", []), cv.get("final_steps", 0)],
        "verdict": report["verdict"].split(":")[0],
        "shipped": scores(base_prob, base.metadata.threshold, truth, gsd),
        # recalibration alone: what ``--no-finetune`` writes (the re-chosen threshold only
        # where it won out of fold); "rechosen": the re-chosen threshold whatever happened
        "recalibrated": scores(base_prob, _region_threshold(report), truth, gsd),
        "rechosen": scores(base_prob, report["recalibrated"]["threshold"], truth, gsd),
        "adapted": scores(adapted_prob, adapted.metadata.threshold, truth, gsd),
        "thresholds": [
            base.metadata.threshold,
            report["recalibrated"]["threshold"],
            adapted.metadata.threshold,
        ],
        "cv": cv,
    }
    if row["verdict"] == "adapted":  # other thresholds for the same model, to choose the rule
        cfg = AdaptConfig(seed=seed, **config)
        own = label_grid(
            roads,
            region.grid,
            region.valid,
            road_width_m=cfg.road_width_m,
            ignore_m=cfg.ignore_m,
            area=((train_area,), crs),
        )
        in_sample = best_threshold(*_histograms([(adapted_prob, own)]))[0]
        row["adapted_other_thresholds"] = {
            "in_sample": in_sample,
            "iou_in_sample": scores(adapted_prob, in_sample, truth, gsd)["iou"],
            "iou_0.5": scores(adapted_prob, 0.5, truth, gsd)["iou"],
        }
    return row


_BASE_PROBS: dict[Path, np.ndarray] = {}


class _Every:
    """Progress printed at most every ``seconds`` (a long run under load shows where it is)."""

    def __init__(self, seconds: float) -> None:
        self._seconds, self._last = seconds, time.monotonic()

    def __call__(self, fraction: float, stage: str) -> None:
        if time.monotonic() - self._last >= self._seconds:
            self._last = time.monotonic()
            print(f"  {100 * fraction:3.0f} % {stage}", flush=True)


def _region_threshold(report: dict) -> float:
    """The threshold recalibration alone keeps (the same test as the adaptation's)."""
    cv = report["cross_validation"]
    won = cv["recalibrated_iou"] > cv["base_iou"]
    return report["recalibrated"]["threshold"] if won else report["base"]["threshold"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--scenes", nargs="+")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="FIELD=VALUE",
        help="AdaptConfig fields off their defaults (development only: lr=2e-4 steps=100)",
    )
    parser.add_argument(
        "--split",
        choices=sorted(SPLITS),
        default="lr",
        help="lr: left/right halves (development); tb: top/bottom halves (report)",
    )
    parser.add_argument("--json", type=Path, help="write every run here")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the runs already in --json and do only the missing ones",
    )
    args = parser.parse_args()
    pairs = pairs_present()
    if not pairs:
        print("error: ../shared/data is absent: nothing to measure", file=sys.stderr)
        return 1
    chosen = args.scenes or list(pairs)
    config = {"minutes": args.minutes}
    for item in args.set:
        key, value = item.split("=", 1)
        kind = type(getattr(AdaptConfig(), key))
        config[key] = value.lower() in {"1", "true"} if kind is bool else kind(value)
    print(f"config: {AdaptConfig(**config)}", flush=True)
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    rows = json.loads(args.json.read_text()) if args.resume and args.json.exists() else []
    done = {(r["scene"], r["train_half"], r["seed"]) for r in rows}
    for name in chosen:
        image, roads = pairs[name]
        for side in SPLITS[args.split]:
            sides = (side, next(s for s in SPLITS[args.split] if s != side))
            for seed in args.seeds:
                if (name, side, seed) in done:
                    continue
                load = os.getloadavg()[0]
                row = one_run(name, image, roads, sides, seed, config)
                row["load"] = [round(load, 2), round(os.getloadavg()[0], 2)]  # before, after
                rows.append(row)
                print(
                    f"{name:6s} train {side:5s} seed {seed}: "
                    f"IoU shipped {row['shipped']['iou']:.3f} "
                    f"recal {row['recalibrated']['iou']:.3f} adapted {row['adapted']['iou']:.3f} | "
                    f"APLS {row['shipped']['apls']:.3f} {row['recalibrated']['apls']:.3f} "
                    f"{row['adapted']['apls']:.3f} | {row['verdict']} in {row['seconds']:.0f} s "
                    f"wall, steps {'+'.join(str(n) for n in row['steps'])} "
                    f"(load {os.getloadavg()[0]:.2f})",
                    flush=True,
                )
                if args.json:
                    args.json.write_text(json.dumps(rows, indent=1, default=float))
    _table(rows)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


def _table(rows: list[dict]) -> None:
    print("\n| scene | shipped IoU | recalibrated | adapted | shipped APLS | recal. | adapted |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in dict.fromkeys(r["scene"] for r in rows):
        mine = [r for r in rows if r["scene"] == name]
        means = [
            np.mean([r[k][m] for r in mine])
            for m in ("iou", "apls")
            for k in ("shipped", "recalibrated", "adapted")
        ]
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in means) + " |")
    rural = [r for r in rows if r["scene"] != "paris"]
    if rural:
        gain = [r["adapted"]["iou"] - r["shipped"]["iou"] for r in rural]
        over = [r["adapted"]["iou"] - r["recalibrated"]["iou"] for r in rural]
        print(
            f"rural runs: adapted - shipped {np.mean(gain):+.3f} (worst {min(gain):+.3f}), "
            f"adapted - recalibrated {np.mean(over):+.3f}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
