"""``python -m training.train_lovasz``: Phase 3, Lovász hinge fine-tuning of a trained model."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from training.cli import ArgumentParser, positive_float, positive_int, run_main
from training.config import phase3
from training.train import add_common_options, common_config


def _parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m training.train_lovasz",
        description="Phase 3 of the V4 recipe: Lovász hinge loss at lr 1e-5 for 20 epochs, "
        "starting from the best Phase-1 checkpoint.",
    )
    add_common_options(parser)
    parser.add_argument(
        "--init", type=Path, required=True, help="checkpoint to start from (Phase-1 best)"
    )
    parser.add_argument("--epochs", type=positive_int, default=20, help="default 20")
    parser.add_argument("--lr", type=positive_float, default=1e-5, help="default 1e-5")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from training.loop import describe, train

    config = common_config(
        args, phases=(phase3(args.epochs, args.lr),), init_weights=args.init, imagenet=False
    )
    best = train(config)
    print(describe(best))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, None))
