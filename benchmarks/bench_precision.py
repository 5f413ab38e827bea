"""int8 against fp32, by TTA: held-out road IoU, mask agreement and CPU seconds per km².

Prints figures; it is not a test. In one run:

1. A copy of the model folder (default: the shipped ``weights/``) gets an int8 network, unless
   it lists one already: ``export_int8`` (what ``sanchari model-export --precision int8`` runs)
   with ``--patches`` patches drawn from the *training* images of ``--data`` (CIL, EPFL,
   Massachusetts: the split the model was trained on, seed 0, 15 % held out, recomputed here;
   held-out images are never used), resampled to the model's ground resolution first.
2. fp32 and int8 on OpenVINO run over the held-out sets: the DeepGlobe dev pairs (rural, 0.5 m,
   labelled masks) and the Paris scene (its OpenStreetMap roads rasterised 6 m wide, as
   ``check_paris_osm.py`` does). Road IoU at the model's threshold for each, and the share of
   each mask's road pixels within 2 px of the other's (the bar: IoU within 0.01 of fp32 and
   ≥ 95 % within 2 px).
   Each of ``--tta`` (none, flip4, d4) in turn.
3. Seconds per 512² forward pass of each and of ``fp16`` (the half float the CPU has, bfloat16 on
   AVX512-BF16; the default before int8), interleaved, best of
   ``--repeats``, with the CPU's flags and the load average: only an idle machine's figures
   mean anything.
4. The choice table: CPU seconds per km² of ``sanchari predict`` end to end (start-up, reading,
   model, vectorizing, writing) for each TTA × precision, on a ``--size``² mosaic of CIL/EPFL
   tiles at the model's resolution (as ``bench_vs_seed.py`` builds it), ``--rounds`` rounds of
   every pair in turn, each run started once the load average settled under 0.3 (``--settle``),
   best of the rounds; printed beside the held-out IoU of step 2.

    python benchmarks/bench_precision.py [--weights weights] [--out /tmp/sanchari-int8]
    python benchmarks/bench_precision.py --rounds 2 --size 4096   # the README's table

The last two columns of the per-image table: the share of int8's road pixels within 2 px of
fp32's, and of fp32's within 2 px of int8's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_vs_seed import agreement, mosaic, run, sanchari  # noqa: E402
from machine import cpu_flags, load_note, settle, warn_if_busy  # noqa: E402

from sanchari_processes.config import TTA_MODES, InferenceConfig  # noqa: E402
from sanchari_processes.engine.build import EngineOptions, build_predictor  # noqa: E402
from sanchari_processes.inference.metadata import checkpoint_paths, read_metadata  # noqa: E402

#: The training sources and their ground resolution (as ``docs/training.md`` preprocesses them).
SOURCES = {"cil": 0.6, "epfl": 0.6, "massachusetts": 1.0}
#: The split the shipped model was trained with (its metadata's ``data``).
SPLIT_SEED, VAL_FRACTION = 0, 0.15
PRECISIONS = ("fp32", "int8")


def model_copy(weights: Path, out: Path) -> Path:
    """The model's files (weights, JSON, exports) copied into ``out/model``."""
    source, meta = checkpoint_paths(weights)
    folder = out / "model"
    folder.mkdir(parents=True, exist_ok=True)
    names = [source.name, meta.name]
    for entry in read_metadata(source).exports.values():
        names += list(entry["files"])
    for name in names:
        shutil.copy2(source.parent / name, folder / name)
    return folder / source.name


def training_images(data: Path, out: Path, gsd_m: float) -> list[Path]:
    """The training split's images, resampled to ``gsd_m`` as PNG under ``out``."""
    from training.io import read_rgb, write_rgb
    from training.preprocess import find_pairs, resample_pair, split_pairs

    folder = out / "calibration"
    folder.mkdir(parents=True, exist_ok=True)
    pairs = [p for name in SOURCES for p in find_pairs(data / name)]  # labelled by folder
    split = split_pairs(pairs, VAL_FRACTION, SPLIT_SEED)
    paths = []
    for pair in pairs:
        if split[(pair.source, pair.name)] != "train":
            continue
        path = folder / f"{pair.source}-{pair.name}.png"
        if not path.is_file():
            image = read_rgb(pair.image)
            scaled, _, _ = resample_pair(
                image, image[..., 0] > 0, None, SOURCES[pair.source] / gsd_m
            )
            write_rgb(path, scaled)
        paths.append(path)
    return paths


def build_int8(weights: Path, data: Path, out: Path, patches: int) -> None:
    from sanchari_processes.inference.export import export_int8

    gsd_m = read_metadata(weights).gsd_m
    images = training_images(data, out, gsd_m)
    print(f"int8 calibration: {patches} patches from {len(images)} training images")
    start = time.perf_counter()
    export_int8(weights, out / "cache", images, patches=patches)
    print(f"int8 built in {time.perf_counter() - start:.0f} s ({load_note()})")


def deepglobe(predictor, data: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, probability, truth)`` of each DeepGlobe dev pair (0.5 m)."""
    from training.evaluate import predict_at_model_gsd
    from training.io import read_binary, read_rgb

    folder = data / "deepglobe_dev"
    out = []
    for image_path in sorted((folder / "images").iterdir()):
        truth = read_binary(folder / "masks" / f"{image_path.stem}.png")
        prob = predict_at_model_gsd(predictor, read_rgb(image_path), None, 0.5)
        out.append((f"deepglobe/{image_path.stem}", prob, truth))
    return out


def paris(predictor, shared: Path) -> tuple[str, np.ndarray, np.ndarray]:
    """The Paris scene's probability on its grid and its OSM roads rasterised 6 m wide."""
    from check_paris_osm import SCENE, load_scene, road_mask

    from sanchari_processes.engine.run import predict_probability
    from sanchari_processes.sources import open_raster

    scene = load_scene(shared)
    with (
        open_raster(shared / SCENE, len(predictor.metadata.bands)) as source,
        tempfile.TemporaryDirectory() as work,
    ):
        prob = predict_probability(source, predictor, Path(work))
        values = prob[0 : prob.shape[0], 0 : prob.shape[1]]
    return "paris (OSM)", values, road_mask(scene)


def iou(mask: np.ndarray, truth: np.ndarray) -> float:
    return float((mask & truth).sum() / max(1, (mask | truth).sum()))


#: ``{(tta, precision): {held-out set: pooled road IoU}}``, filled by :func:`quality`.
IoUs = dict[tuple[str, str], dict[str, float]]


def quality(weights: Path, args: argparse.Namespace, tta: str, ious: IoUs) -> None:
    """Each precision's road mask per held-out image; prints IoU and agreement."""
    threshold = read_metadata(weights).threshold
    masks: dict[str, dict[str, np.ndarray]] = {}
    truths: dict[str, np.ndarray] = {}
    for precision in PRECISIONS:
        config = InferenceConfig(tta=tta, device="cpu", backend="openvino", precision=precision)
        predictor = build_predictor(EngineOptions(weights, config, cache_dir=args.out / "cache"))
        results = [*deepglobe(predictor, args.data), paris(predictor, args.shared)]
        masks[precision] = {name: prob > threshold for name, prob, _ in results}
        truths.update({name: truth.astype(bool) for name, _, truth in results})
    print(f"\n== held-out road IoU at threshold {threshold:.2f}, tta {tta}")
    head = ("fp32", "int8", "diff")
    print(f"{'image':22s}" + "".join(f"{h:>8s}" for h in head) + f"{'in 2 px':>10s}" * 2)
    for name, truth in truths.items():
        a, b = masks["fp32"][name], masks["int8"][name]
        agree = agreement(a, b)
        fp32, int8 = iou(a, truth), iou(b, truth)
        print(
            f"{name:22s}{fp32:8.4f}{int8:8.4f}{int8 - fp32:+8.4f}"
            f"{agree['b_near_a']:10.1%}{agree['a_near_b']:10.1%}"
        )
    deepglobe_names = [n for n in truths if n.startswith("deepglobe/")]
    for label, names in (("deepglobe (pooled)", deepglobe_names), ("paris (OSM)", ["paris (OSM)"])):
        pooled = {}
        for precision in PRECISIONS:
            inter = sum(int((masks[precision][n] & truths[n]).sum()) for n in names)
            union = sum(int((masks[precision][n] | truths[n]).sum()) for n in names)
            pooled[precision] = inter / max(1, union)
            ious.setdefault((tta, precision), {})[label] = pooled[precision]
        both = [agreement(masks["fp32"][n], masks["int8"][n]) for n in names]
        near = min(min(x["a_near_b"], x["b_near_a"]) for x in both)
        ok = abs(pooled["int8"] - pooled["fp32"]) <= 0.01 and near >= 0.95
        print(
            f"{label}: fp32 {pooled['fp32']:.4f}, int8 {pooled['int8']:.4f} "
            f"({pooled['int8'] - pooled['fp32']:+.4f}); masks within 2 px (worse side) "
            f"{near:.1%}: {'PASSES' if ok else 'FAILS'} the bar (IoU within 0.01, >= 95 % within "
            "2 px)"
        )


def choices(weights: Path, args: argparse.Namespace, ious: IoUs) -> None:
    """CPU s/km² of ``sanchari predict`` end to end per TTA × precision, beside held-out IoU."""
    gsd_m = read_metadata(weights).gsd_m
    raster = args.out / f"mosaic-{args.size}.tif"
    if not raster.is_file():
        args.out.mkdir(parents=True, exist_ok=True)
        mosaic(args.data, args.size, gsd_m, raster)
    km2 = (args.size * gsd_m) ** 2 / 1e6
    pairs = [(tta, precision) for tta in args.tta for precision in PRECISIONS]
    best: dict[tuple[str, str], dict[str, float]] = {}
    loads = []
    print(f"\n== sanchari predict end to end, {args.size}² at {gsd_m} m ({km2:.2f} km²)")
    for round_ in range(args.rounds):
        for tta, precision in pairs:
            cmd = sanchari("predict", str(raster), "-o", str(args.out / "choice.geojson"))
            cmd += ["--weights", str(weights), "--tta", tta, "--precision", precision]
            cmd += ["--backend", "openvino", "--device", "cpu", "--no-progress"]
            cmd += ["--cache-dir", str(args.out / "cache")]
            before = settle(args.settle)
            loads.append(before)
            r = run(cmd)
            print(
                f"round {round_ + 1} tta {tta:5s} {precision}: wall {r['wall']:.1f} s, "
                f"CPU {r['cpu']:.1f} s (load {before:.2f} -> {os.getloadavg()[0]:.2f})\n"
                f"  {r['times']}"
            )
            key = (tta, precision)
            if key not in best or r["cpu"] < best[key]["cpu"]:
                best[key] = r
    sets = sorted({label for scores in ious.values() for label in scores})
    print(f"\nbest of {args.rounds}; CPU: {cpu_flags()}")
    print(f"{'tta':6s}{'precision':10s}{'CPU s/km²':>11s}{'wall s/km²':>12s}", end="")
    print("".join(f"{'IoU ' + label:>26s}" for label in sets))
    for tta, precision in pairs:
        r, scores = best[(tta, precision)], ious.get((tta, precision), {})
        print(f"{tta:6s}{precision:10s}{r['cpu'] / km2:11.1f}{r['wall'] / km2:12.1f}", end="")
        cells = [f"{scores[label]:26.4f}" if label in scores else " " * 26 for label in sets]
        print("".join(cells))
    warn_if_busy(loads)


def speed(weights: Path, args: argparse.Namespace) -> None:
    """Seconds per 512² forward pass, fp32 and int8 interleaved, best of ``--repeats``."""
    batch = np.random.default_rng(0).standard_normal((1, 3, 512, 512)).astype(np.float32)
    runners = {}
    for precision in ("fp16", *PRECISIONS):  # fp16: OpenVINO's hint, bfloat16 where the CPU has it
        config = InferenceConfig(tta="none", device="cpu", backend="openvino", precision=precision)
        runners[precision] = build_predictor(
            EngineOptions(weights, config, cache_dir=args.out / "cache")
        ).runner
        runners[precision](batch)  # warm
    best = dict.fromkeys(runners, float("inf"))
    print(f"\n== seconds per 512² forward pass (OpenVINO), interleaved, best of {args.repeats}")
    settle(args.settle)
    print(f"before: {load_note()}")
    for _ in range(args.repeats):
        for precision, runner in runners.items():
            start = time.perf_counter()
            runner(batch)
            best[precision] = min(best[precision], time.perf_counter() - start)
    print(f"after:  {load_note()}")
    for precision, seconds in best.items():
        print(f"{precision} ({runners[precision].arithmetic}): {seconds:.3f} s")
    print(f"int8 / fp32: {best['int8'] / best['fp32']:.2f}")
    if os.getloadavg()[0] >= 0.3:
        print("WARNING: the machine was not idle (load >= 0.3): these timings are not results")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=REPO / "weights")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "roads")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "sanchari-int8")
    parser.add_argument("--patches", type=int, default=300, help="int8 calibration patches")
    parser.add_argument("--tta", nargs="+", default=["none", "flip4", "d4"], choices=TTA_MODES)
    parser.add_argument("--repeats", type=int, default=5, help="forward passes timed, per pass")
    parser.add_argument("--size", type=int, default=4096, help="mosaic side for s/km²")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the choice table")
    parser.add_argument(
        "--settle", type=float, default=300.0,
        help="before each timed command wait up to this many seconds for load < 0.3 (0: do not)",
    )  # fmt: skip
    parser.add_argument("--skip-speed", action="store_true", help="no per-pass timing")
    parser.add_argument("--skip-quality", action="store_true", help="no held-out IoU")
    parser.add_argument("--skip-choices", action="store_true", help="no s/km² table")
    args = parser.parse_args()
    print(f"CPU flags: {cpu_flags()}")
    print(f"before: {load_note()}")
    weights = checkpoint_paths(args.weights)[0]
    if "int8" not in read_metadata(weights).exports:
        weights = model_copy(weights, args.out)
        if "int8" not in read_metadata(weights).exports:
            build_int8(weights, args.data, args.out, args.patches)
    print(f"model: {weights}")
    ious: IoUs = {}
    for tta in () if args.skip_quality else args.tta:
        quality(weights, args, tta, ious)
    if not args.skip_speed:
        speed(weights, args)
    if not args.skip_choices:
        choices(weights, args, ious)
    print(f"\nafter: {load_note()}")


if __name__ == "__main__":
    main()
