"""``sanchari train-lovasz``: Phase 3, Lovász hinge fine-tuning of a trained model."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from sanchari_processes.cli import options, run
from training.config import phase3
from training.train import common_config, common_options


@click.command("train-lovasz", context_settings=options.CONTEXT_SETTINGS)
@common_options
@click.option(
    "--init", type=options.PATH, required=True, help="Checkpoint to start from (Phase-1 best)."
)
@click.option("--epochs", type=options.POSITIVE_INT, default=20, help="Default 20.")
@click.option("--lr", type=options.POSITIVE_FLOAT, default=1e-5, help="Default 1e-5.")
def command(init: Path, epochs: int, lr: float, **common: Any) -> None:
    """Phase 3 of the V4 recipe: Lovász hinge loss at lr 1e-5 for 20 epochs, starting from the
    best Phase-1 checkpoint."""
    from training.loop import describe, train

    config = common_config(common, phases=(phase3(epochs, lr),), init_weights=init, imagenet=False)
    best = train(config)
    print(describe(best))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training.train_lovasz``: ``sanchari train-lovasz``."""
    return run(command, argv, "python -m training.train_lovasz")


if __name__ == "__main__":
    sys.exit(main())
