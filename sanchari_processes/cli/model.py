"""``sanchari model-info``, ``model-init`` and ``model-export``: checkpoints and their exports."""

from __future__ import annotations

from pathlib import Path

import click

from sanchari_processes.cli import options
from sanchari_processes.cli.common import iter_inputs
from sanchari_processes.errors import InvalidInputError
from sanchari_processes.settings import default_weights


@click.command("model-info")
@click.argument("weights", type=options.PATH, required=False)
def model_info(weights: Path | None) -> None:
    """Show a checkpoint's metadata (default: the shipped model) as JSON."""
    import json

    from sanchari_processes.inference import load_checkpoint

    loaded = load_checkpoint(weights or default_weights(), "cpu")
    click.echo(json.dumps(loaded.metadata.to_dict(), indent=2))


@click.command("model-init")
@click.option(
    "--preset", default="lite0", show_default=True, help="Architecture preset (v4, lite0, lite2)."
)
@click.option("-o", "--output", type=options.PATH, required=True)
@options.gsd(default=0.5, help=None)
@options.seed(help=None)
def model_init(preset: str, output: Path, gsd: float, seed: int) -> None:
    """Write an UNTRAINED (random-weight) checkpoint, for testing the pipeline end to end.

    Its output is not meaningful: it exists so the plumbing can be exercised before trained
    weights are available.
    """
    from sanchari_processes.inference import make_untrained_checkpoint

    path = make_untrained_checkpoint(output, preset, gsd_m=gsd, seed=seed)
    click.echo(f"untrained {preset} checkpoint → {path}", err=True)


@click.command("model-export")
@click.argument("weights", type=options.PATH, required=False)
@options.cache_dir(help="Cache folder ($SANCHARI_CACHE_DIR; default: the user cache folder).")
@options.int8(
    help="Also build the int8 model (needs --calibration images, ideally training images)."
)
@click.option(
    "--calibration",
    type=options.PATH,
    multiple=True,
    help="Images or folders of images whose patches fit the int8 ranges (repeatable).",
)
def model_export(
    weights: Path | None, cache_dir: Path | None, int8: bool, calibration: tuple[Path, ...]
) -> None:
    """Export a checkpoint (default: the shipped model) for the ONNX Runtime/OpenVINO backends.

    The export is cached by the weights' SHA-256 and verified before each use; `predict` builds
    it on first use anyway, so this only moves that cost (a few seconds) ahead of time.

    \b
    Examples:
      sanchari model-export
      sanchari model-export --int8 --calibration ../shared/data/roads/cil/images
    """
    if calibration and not int8:
        raise click.UsageError("--calibration goes with --int8")
    images: list[Path] = []
    if int8:
        if not calibration:
            raise click.UsageError("--int8 needs --calibration IMAGES (e.g. training images)")
        for path in calibration:
            if not path.exists():
                raise InvalidInputError(f"calibration input not found: {path}")
        images = list(iter_inputs(list(calibration)))
        if not images:
            raise InvalidInputError("no calibration images (.tif, .jpg, .png) found")
    from sanchari_processes.inference.export import export_int8, exported_model
    from sanchari_processes.settings import default_cache_dir

    source = weights or default_weights()
    folder = cache_dir or default_cache_dir()
    click.echo(f"float32 → {exported_model(source, folder)}", err=True)
    if int8:
        click.echo(f"int8 → {export_int8(source, folder, images)}", err=True)
