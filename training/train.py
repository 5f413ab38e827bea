"""``python -m training.train``: Phase 1 (ComboLoss) and, with ``--hard-mining``, Phase 2."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from training.cli import (
    ArgumentParser,
    fraction,
    positive_float,
    positive_int,
    run_main,
    scale_range,
)
from training.config import STYLE_MODES, Augment, TrainConfig, phase1, phase2


def add_common_options(parser: ArgumentParser) -> None:
    """Options every training command shares (data, batching, hardware, resume)."""
    parser.add_argument("--manifest", type=Path, required=True, help="training.preprocess output")
    parser.add_argument("-o", "--out", type=Path, required=True, help="run folder")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="default 8")
    parser.add_argument(
        "--accumulate",
        type=positive_int,
        default=2,
        help="micro-batches per optimizer step (default 2: effective batch 16)",
    )
    parser.add_argument("--weight-decay", type=float, default=1e-4, help="AdamW (default 1e-4)")
    parser.add_argument(
        "--crop",
        type=positive_int,
        default=512,
        help="training crop side, a multiple of 32 (default 512; 256 is ~4x faster on CPU)",
    )
    parser.add_argument("--no-augment", action="store_true", help="no augmentation (debugging)")
    parser.add_argument(
        "--photometric",
        action="store_true",
        help="wide photometric augmentation (hue/saturation, gamma, contrast, colour "
        "temperature, blur, noise, JPEG) instead of V4's mild colour jitter",
    )
    parser.add_argument(
        "--scale-aug",
        type=scale_range,
        metavar="MIN,MAX",
        help="random zoom before cropping, e.g. 0.7,1.4 (default: none)",
    )
    parser.add_argument(
        "--style-dir",
        type=Path,
        help="unlabelled target-domain images to transfer the style of (e.g. "
        "../shared/data/deepglobe_unlabeled)",
    )
    parser.add_argument(
        "--style",
        choices=STYLE_MODES,
        default="fda",
        help="style transfer: fda (Fourier domain adaptation, default) or histogram",
    )
    parser.add_argument(
        "--style-p", type=fraction, default=0.5, help="share of samples restyled (default 0.5)"
    )
    parser.add_argument(
        "--nodata-p",
        type=fraction,
        default=0.0,
        help="share of samples given a synthetic no-data half-plane, filled as inference "
        "fills no-data and labelled no road (default 0: off)",
    )
    parser.add_argument(
        "--source-balance",
        type=float,
        default=0.0,
        help="0: sample tiles uniformly (default); 1: every data source equally; 0.5: ∝ √tiles",
    )
    parser.add_argument(
        "--epoch-tiles",
        type=positive_int,
        help="training samples per epoch (default: one per tile); epochs pace validation",
    )
    parser.add_argument(
        "--max-steps", type=positive_int, help="stop after this many optimizer steps in total"
    )
    parser.add_argument(
        "--save-every",
        type=int,
        default=100,
        help="write last checkpoint + state every N steps (default 100; 0: epoch ends only)",
    )
    parser.add_argument(
        "--val-max-tiles", type=positive_int, help="validate on at most N tiles (default all)"
    )
    parser.add_argument(
        "--val-threshold", type=fraction, default=0.5, help="threshold for val IoU (0.5)"
    )
    parser.add_argument(
        "--num-workers",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="data-loading processes (default min(4, CPUs))",
    )
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    parser.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--model-id", help="model_id written to the checkpoints")


def _parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m training.train",
        description="Phase 1 of the V4 recipe: ComboLoss (0.5 Dice + 0.5 Focal), AdamW, cosine "
        "LR, best checkpoint by validation IoU; --hard-mining adds Phase 2.",
    )
    add_common_options(parser)
    parser.add_argument("--preset", default="lite0", help="lite0, lite2 or v4 (default lite0)")
    parser.add_argument("--epochs", type=positive_int, default=50, help="default 50")
    parser.add_argument("--lr", type=positive_float, default=5e-4, help="default 5e-4")
    parser.add_argument(
        "--no-imagenet", action="store_true", help="random encoder instead of ImageNet weights"
    )
    parser.add_argument(
        "--init",
        type=Path,
        help="start from this trained checkpoint (fine-tuning: e.g. a new resolution, "
        "augmentations or pseudo-labels) instead of ImageNet",
    )
    parser.add_argument(
        "--hard-mining",
        action="store_true",
        help="then fine-tune on the hardest 20%% of training tiles (Phase 2)",
    )
    parser.add_argument("--hard-epochs", type=positive_int, default=10, help="default 10")
    parser.add_argument("--hard-lr", type=positive_float, default=1e-5, help="default 1e-5")
    parser.add_argument("--hard-fraction", type=fraction, default=0.2, help="default 0.2")
    return parser


def common_config(args: object, **kwargs: object) -> TrainConfig:
    """A TrainConfig from the shared options plus command-specific ``kwargs``."""
    a = vars(args)
    return TrainConfig(
        manifest=a["manifest"],
        out_dir=a["out"],
        batch_size=a["batch_size"],
        accumulate=a["accumulate"],
        weight_decay=a["weight_decay"],
        crop=a["crop"],
        augment=not a["no_augment"],
        augment_options=Augment(
            photometric=a["photometric"],
            scale=a["scale_aug"],
            style=a["style"],
            style_p=a["style_p"],
            nodata_p=a["nodata_p"],
        ),
        style_dir=a["style_dir"],
        source_balance=a["source_balance"],
        epoch_tiles=a["epoch_tiles"],
        max_steps=a["max_steps"],
        save_every=a["save_every"],
        val_max_tiles=a["val_max_tiles"],
        val_threshold=a["val_threshold"],
        num_workers=a["num_workers"],
        threads=a["threads"],
        device=a["device"],
        amp=not a["no_amp"],
        seed=a["seed"],
        resume=a["resume"],
        progress=not a["no_progress"],
        model_id=a["model_id"],
        **kwargs,  # type: ignore[arg-type]
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from training.loop import describe, train  # heavy imports after --help / bad options

    phases = [phase1(args.epochs, args.lr)]
    if args.hard_mining:
        phases.append(phase2(args.hard_epochs, args.hard_lr, args.hard_fraction))
    config = common_config(
        args,
        phases=tuple(phases),
        preset=args.preset,
        imagenet=not args.no_imagenet and args.init is None,
        init_weights=args.init,
    )
    best = train(config)
    print(describe(best))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, None))
