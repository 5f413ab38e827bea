"""``sanchari model-info``, ``model-init`` and ``model-export``: checkpoints and their exports."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import click

from sanchari_processes.cli import options
from sanchari_processes.cli.common import iter_inputs
from sanchari_processes.config import CALIBRATION_PATCHES
from sanchari_processes.errors import InvalidInputError
from sanchari_processes.settings import default_weights


@click.command("model-info")
@click.argument("weights", type=options.PATH, required=False)
def model_info(weights: Path | None) -> None:
    """Show a checkpoint's metadata (default: the shipped model) as JSON."""
    import json

    from sanchari_processes.inference.metadata import verified_weights

    _, metadata, _ = verified_weights(weights or default_weights())
    click.echo(json.dumps(metadata.to_dict(), indent=2))


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
@click.option(
    "--precision",
    type=click.Choice(("fp32", "int8")),
    default="fp32",
    show_default=True,
    help="fp32: the float network as ONNX (needs torch); int8: quantised with NNCF from the "
    "float one, as OpenVINO IR (needs the int8 extra and --calibration).",
)
@click.option(
    "--calibration",
    type=options.PATH,
    multiple=True,
    help="Images or folders of images whose patches fit the int8 ranges (repeatable): "
    "training images, never held-out ones.",
)
@click.option(
    "--patches",
    type=options.POSITIVE_INT,
    default=CALIBRATION_PATCHES,
    show_default=True,
    help="Calibration patches (512 px) drawn from the images.",
)
@options.cache_dir(help="Cache folder ($SANCHARI_CACHE_DIR; default: the user cache folder).")
def model_export(
    weights: Path | None,
    precision: str,
    calibration: tuple[Path, ...],
    patches: int,
    cache_dir: Path | None,
) -> None:
    """Write a model's exported network beside its weights (default: the shipped model).

    The file is listed with its SHA-256 in the model's JSON and checked on every load; the
    openvino and onnxruntime backends then run the model without torch. `sanchari adapt`
    does this for the models it writes.

    \b
    Examples:
      sanchari model-export runs/my-model/model.safetensors
      sanchari model-export --precision int8 --calibration ../shared/data/roads/cil/images
    """
    if calibration and precision != "int8":
        raise click.UsageError("--calibration goes with --precision int8")
    source = weights or default_weights()
    from sanchari_processes.inference.metadata import checkpoint_paths

    folder = checkpoint_paths(source)[0].parent
    if not os.access(folder, os.W_OK):
        raise InvalidInputError(f"{folder}: not writable; copy the model folder and export there")
    if precision == "fp32":
        from sanchari_processes.inference.export import export_beside

        if importlib.util.find_spec("torch") is None:
            raise InvalidInputError(
                "exporting the float network needs torch: pip install 'sanchari-processes[train]'"
            )
        click.echo(f"fp32 → {export_beside(source)}", err=True)
        return
    if not calibration:
        raise click.UsageError("--precision int8 needs --calibration IMAGES (training images)")
    if importlib.util.find_spec("nncf") is None:
        raise InvalidInputError("int8 needs NNCF: pip install 'sanchari-processes[int8]'")
    for path in calibration:
        if not path.exists():
            raise InvalidInputError(f"calibration input not found: {path}")
    images = list(iter_inputs(list(calibration)))
    if not images:
        raise InvalidInputError("no calibration images (.tif, .jpg, .png) found")
    from sanchari_processes.inference.export import export_int8

    path = export_int8(source, cache_dir, images, patches=patches)
    click.echo(f"int8 → {path}", err=True)
