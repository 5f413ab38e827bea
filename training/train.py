"""``sanchari train``: Phase 1 (ComboLoss) and, with ``--hard-mining``, Phase 2.

The options every training run shares (data, batching, hardware, resume) are declared here once
for ``train`` and ``train-lovasz``; ``python -m training.train`` is the same command.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from sanchari_processes.cli import options, run
from training.config import STYLE_MODES, Augment, TrainConfig, phase1, phase2

F = TypeVar("F", bound=Callable[..., Any])


class ScaleRange(click.ParamType):
    """``"0.7,1.4"`` -> (0.7, 1.4), a zoom range with 0 < min <= max."""

    name = "MIN,MAX"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[float, float]:
        if isinstance(value, tuple):
            return value
        try:
            low, high = (float(part) for part in str(value).split(","))
        except ValueError:
            self.fail(f"expected MIN,MAX such as 0.7,1.4, got {value}", param, ctx)
        if not 0 < low <= high:
            self.fail(f"need 0 < MIN <= MAX, got {value}", param, ctx)
        return (low, high)


_COMMON_OPTIONS = (
    click.option(
        "--manifest", type=options.PATH, required=True, help="`sanchari preprocess` output."
    ),
    click.option("-o", "--out", type=options.PATH, required=True, help="Run folder."),
    click.option("--batch-size", type=options.POSITIVE_INT, default=8, help="Default 8."),
    click.option(
        "--accumulate",
        type=options.POSITIVE_INT,
        default=2,
        help="Micro-batches per optimizer step (default 2: effective batch 16).",
    ),
    click.option("--weight-decay", type=float, default=1e-4, help="AdamW (default 1e-4)."),
    click.option(
        "--crop",
        type=options.POSITIVE_INT,
        default=512,
        help="Training crop side, a multiple of 32 (default 512; 256 is ~4x faster on CPU).",
    ),
    click.option("--no-augment", is_flag=True, help="No augmentation (debugging)."),
    click.option(
        "--photometric",
        is_flag=True,
        help="Wide photometric augmentation (hue/saturation, gamma, contrast, colour "
        "temperature, blur, noise, JPEG) instead of V4's mild colour jitter.",
    ),
    click.option(
        "--scale-aug",
        type=ScaleRange(),
        help="Random zoom before cropping, e.g. 0.7,1.4 (default: none).",
    ),
    click.option(
        "--style-dir",
        type=options.PATH,
        help="Unlabelled target-domain images to transfer the style of (e.g. "
        "../shared/data/deepglobe_unlabeled).",
    ),
    click.option(
        "--style",
        type=click.Choice(STYLE_MODES),
        default="fda",
        help="Style transfer: fda (Fourier domain adaptation, default) or histogram.",
    ),
    click.option(
        "--style-p", type=options.FRACTION, default=0.5, help="Share of samples restyled (0.5)."
    ),
    click.option(
        "--nodata-p",
        type=options.FRACTION,
        default=0.0,
        help="Share of samples given a synthetic no-data half-plane, filled as inference "
        "fills no-data and labelled no road (default 0: off).",
    ),
    click.option(
        "--source-balance",
        type=float,
        default=0.0,
        help="0: sample tiles uniformly (default); 1: every data source equally; 0.5: ∝ √tiles.",
    ),
    click.option(
        "--epoch-tiles",
        type=options.POSITIVE_INT,
        help="Training samples per epoch (default: one per tile); epochs pace validation.",
    ),
    click.option(
        "--max-steps",
        type=options.POSITIVE_INT,
        help="Stop after this many optimizer steps in total.",
    ),
    click.option(
        "--save-every",
        type=int,
        default=100,
        help="Write last checkpoint + state every N steps (default 100; 0: epoch ends only).",
    ),
    click.option(
        "--val-max-tiles",
        type=options.POSITIVE_INT,
        help="Validate on at most N tiles (default all).",
    ),
    click.option(
        "--val-threshold", type=options.FRACTION, default=0.5, help="Threshold for val IoU (0.5)."
    ),
    click.option(
        "--num-workers",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="Data-loading processes (default min(4, CPUs)).",
    ),
    click.option(
        "--threads", type=options.POSITIVE_INT, help="Torch CPU threads (default: torch's)."
    ),
    options.device(),
    click.option("--no-amp", is_flag=True, help="No mixed precision on CUDA."),
    options.seed(),
    click.option("--resume", is_flag=True, help="Continue the run in --out."),
    click.option("--no-progress", is_flag=True, help="No progress bars."),
    click.option("--model-id", help="model_id written to the checkpoints."),
)


def common_options(command: F) -> F:
    """Add the options every training command shares (data, batching, hardware, resume)."""
    for decorate in reversed(_COMMON_OPTIONS):
        command = decorate(command)
    return command


def common_config(a: Mapping[str, Any], **kwargs: object) -> TrainConfig:
    """A TrainConfig from the shared options' values plus command-specific ``kwargs``."""
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


@click.command("train", context_settings=options.CONTEXT_SETTINGS)
@common_options
@click.option("--preset", default="lite0", help="lite0, lite2 or v4 (default lite0).")
@click.option("--epochs", type=options.POSITIVE_INT, default=50, help="Default 50.")
@click.option("--lr", type=options.POSITIVE_FLOAT, default=5e-4, help="Default 5e-4.")
@click.option("--no-imagenet", is_flag=True, help="Random encoder instead of ImageNet weights.")
@click.option(
    "--init",
    type=options.PATH,
    help="Start from this trained checkpoint (fine-tuning: e.g. a new resolution, "
    "augmentations or pseudo-labels) instead of ImageNet.",
)
@click.option(
    "--hard-mining",
    is_flag=True,
    help="Then fine-tune on the hardest 20% of training tiles (Phase 2).",
)
@click.option("--hard-epochs", type=options.POSITIVE_INT, default=10, help="Default 10.")
@click.option("--hard-lr", type=options.POSITIVE_FLOAT, default=1e-5, help="Default 1e-5.")
@click.option("--hard-fraction", type=options.FRACTION, default=0.2, help="Default 0.2.")
def command(
    preset: str,
    epochs: int,
    lr: float,
    no_imagenet: bool,
    init: Path | None,
    hard_mining: bool,
    hard_epochs: int,
    hard_lr: float,
    hard_fraction: float,
    **common: Any,
) -> None:
    """Phase 1 of the V4 recipe: ComboLoss (0.5 Dice + 0.5 Focal), AdamW, cosine LR, best
    checkpoint by validation IoU; --hard-mining adds Phase 2."""
    from training.loop import describe, train  # heavy imports after --help / bad options

    phases = [phase1(epochs, lr)]
    if hard_mining:
        phases.append(phase2(hard_epochs, hard_lr, hard_fraction))
    config = common_config(
        common,
        phases=tuple(phases),
        preset=preset,
        imagenet=not no_imagenet and init is None,
        init_weights=init,
    )
    best = train(config)
    print(describe(best))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training.train``: ``sanchari train``."""
    return run(command, argv, "python -m training.train")


if __name__ == "__main__":
    sys.exit(main())
