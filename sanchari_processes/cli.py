"""The ``sanchari`` command line: predict, vectorize and inspect models.

Every failure a user can cause ends in one ``error: …`` line on stderr and a non-zero exit
(1 for a failed run, 2 for bad usage); tracebacks are reserved for our own bugs.
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import click
from tqdm import tqdm

from sanchari_processes import __version__
from sanchari_processes.config import InferenceConfig, VectorizeConfig
from sanchari_processes.errors import InvalidInputError, ModelMissingError, SanchariError
from sanchari_processes.settings import default_weights

_TTA = click.Choice(["none", "flip4", "d4"])
_DEVICE = click.Choice(["auto", "cpu", "cuda"])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sanchari")
def cli() -> None:
    """SANCHARi: extract road centrelines from satellite and aerial imagery."""


@cli.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="GeoJSON file to write.")
@click.option(
    "--out-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory for one NAME.geojson per input (batch runs).",
)
@click.option(
    "--weights",
    type=click.Path(path_type=Path),
    help="Checkpoint (.safetensors with its .json, or a folder holding one). "
    "Default: $SANCHARI_WEIGHTS, else the shipped weights/ folder.",
)
@click.option("--device", type=_DEVICE, default="auto", show_default=True)
@click.option(
    "--tta", type=_TTA, default="flip4", show_default=True, help="Test-time augmentation."
)
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0),
    help="Road probability cut-off. Default: the checkpoint's recommended threshold.",
)
@click.option(
    "--simplify-m",
    type=click.FloatRange(min=0.0),
    default=1.0,
    show_default=True,
    help="Line simplification tolerance in metres.",
)
@click.option("--mask-out", type=click.Path(path_type=Path), help="Write the 0/255 road mask here.")
@click.option(
    "--prob-out", type=click.Path(path_type=Path), help="Write the 0..1 probability map here."
)
@click.option("--bands", help="Comma-separated 1-based bands to use, e.g. 1,2,3 (default: RGB).")
@click.option(
    "--gsd",
    type=click.FloatRange(min=0.0, min_open=True),
    help="Metres per pixel, for images without georeferencing (default: the model's).",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a TTY).")
def predict(
    inputs: tuple[Path, ...],
    output: Path | None,
    out_dir: Path | None,
    weights: Path | None,
    device: str,
    tta: str,
    threshold: float | None,
    simplify_m: float,
    mask_out: Path | None,
    prob_out: Path | None,
    bands: str | None,
    gsd: float | None,
    batch_size: int,
    progress: bool | None,
) -> None:
    """Extract road centrelines from INPUT rasters into GeoJSON.

    INPUT is a GeoTIFF (any CRS), a directory of rasters (batch), or a plain JPEG/PNG, in which
    case the GeoJSON is in pixel coordinates.

    \b
    Examples:
      sanchari predict scene.tif -o roads.geojson
      sanchari predict tiles/ --out-dir roads/ --tta d4
      sanchari predict scene.tif -o roads.geojson --mask-out mask.tif --prob-out prob.tif
    """
    from sanchari_processes.engine import iter_inputs

    paths = list(iter_inputs(list(inputs)))
    for path in inputs:
        if not path.exists():
            raise InvalidInputError(f"input not found: {path}")
    if not paths:
        raise InvalidInputError("no rasters (.tif, .tiff, .jpg, .png) found in the input directory")
    if (output is None) == (out_dir is None):
        raise click.UsageError("give exactly one of -o/--output or --out-dir")
    if output is not None and len(paths) > 1:
        raise click.UsageError(f"{len(paths)} inputs: use --out-dir for batch runs")
    if (mask_out or prob_out) and len(paths) > 1:
        raise click.UsageError("--mask-out and --prob-out take a single input")
    for target in (output, mask_out, prob_out):
        if target is not None and not target.absolute().parent.is_dir():
            raise InvalidInputError(f"output directory does not exist: {target.parent}")
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    show = sys.stderr.isatty() if progress is None else progress
    icfg = InferenceConfig(tta=tta, device=device, batch_size=batch_size)  # type: ignore[arg-type]
    predictor = _load_predictor(weights, icfg)
    meta = predictor.metadata
    vcfg = VectorizeConfig(
        threshold=meta.threshold if threshold is None else threshold, simplify_m=simplify_m
    )
    band_list = _parse_bands(bands)
    for path in tqdm(paths, desc="rasters", disable=not show or len(paths) == 1, unit="raster"):
        target = output if output is not None else out_dir / f"{path.stem}.geojson"
        n = _predict_one(
            path, target, predictor, icfg, vcfg, band_list, gsd, mask_out, prob_out, show
        )
        click.echo(f"{path.name}: {n} road segments → {target}", err=True)


def _predict_one(
    path: Path,
    target: Path,
    predictor,
    icfg: InferenceConfig,
    vcfg: VectorizeConfig,
    bands: Sequence[int] | None,
    gsd: float | None,
    mask_out: Path | None,
    prob_out: Path | None,
    show: bool,
) -> int:
    from sanchari_processes.engine import extract_roads, predict_probability
    from sanchari_processes.output import write_json_atomic
    from sanchari_processes.provenance import provenance
    from sanchari_processes.sources import open_raster

    meta = predictor.metadata
    with open_raster(path, len(meta.bands), bands=bands, gsd_m=gsd) as source:
        if not source.is_georeferenced:
            click.echo(
                f"note: {path.name} has no georeferencing; coordinates are pixel (column, row)",
                err=True,
            )
        with tempfile.TemporaryDirectory(prefix="sanchari-") as workdir:
            with _bar(show, f"{path.name}: model") as update:
                prob = predict_probability(source, predictor, icfg, Path(workdir), update)
            with _bar(show, f"{path.name}: vectorize") as update:
                collection = extract_roads(prob, vcfg, update)
            if mask_out:
                prob.save_mask(mask_out, vcfg.threshold)
            if prob_out:
                prob.save_probability(prob_out)
        collection["sanchari"] = provenance(meta, source, icfg, vcfg)
    write_json_atomic(collection, target)
    return len(collection["features"])


@cli.command()
@click.argument("raster", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True)
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=0.45, show_default=True)
@click.option("--simplify-m", type=click.FloatRange(min=0.0), default=1.0, show_default=True)
@click.option(
    "--gsd",
    type=click.FloatRange(min=0.0, min_open=True),
    help="Metres per pixel; required for rasters without georeferencing.",
)
def vectorize(
    raster: Path, output: Path, threshold: float, simplify_m: float, gsd: float | None
) -> None:
    """Vectorize an existing road RASTER (probability 0..1, or a 0/1 or 0/255 mask).

    \b
    Example:
      sanchari vectorize road_mask.tif -o roads.geojson --threshold 0.5
    """
    import rasterio
    from affine import Affine
    from pyproj import CRS
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    from sanchari_processes.output import write_json_atomic
    from sanchari_processes.probability import RasterBandArray
    from sanchari_processes.vectorize import vectorize_probability

    if not raster.exists():
        raise InvalidInputError(f"input not found: {raster}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = rasterio.open(raster)
    except RasterioIOError:
        raise InvalidInputError(f"cannot read {raster} as a raster") from None
    with ds:
        crs = CRS.from_user_input(ds.crs) if ds.crs else None
        if crs is None and gsd is None:
            raise InvalidInputError(f"{raster.name} has no georeferencing: pass --gsd METRES")
        transform = ds.transform if crs else Affine.identity()
        cfg = VectorizeConfig(threshold=threshold, simplify_m=simplify_m)
        collection = vectorize_probability(RasterBandArray(ds), transform, crs, cfg, gsd_m=gsd)
    write_json_atomic(collection, output)
    click.echo(f"{raster.name}: {len(collection['features'])} road segments → {output}", err=True)


@cli.command("model-info")
@click.argument("weights", type=click.Path(path_type=Path), required=False)
def model_info(weights: Path | None) -> None:
    """Show a checkpoint's metadata (default: the shipped model) as JSON."""
    import json

    from sanchari_processes.inference import load_checkpoint

    loaded = load_checkpoint(weights or default_weights(), "cpu")
    click.echo(json.dumps(loaded.metadata.to_dict(), indent=2))


@cli.command("model-init")
@click.option(
    "--preset", default="lite0", show_default=True, help="Architecture preset (v4, lite0, lite2)."
)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True)
@click.option("--gsd", type=click.FloatRange(min=0.0, min_open=True), default=0.5)
@click.option("--seed", type=int, default=0, show_default=True)
def model_init(preset: str, output: Path, gsd: float, seed: int) -> None:
    """Write an UNTRAINED (random-weight) checkpoint, for testing the pipeline end to end.

    Its output is not meaningful: it exists so the plumbing can be exercised before trained
    weights are available.
    """
    from sanchari_processes.inference import make_untrained_checkpoint

    path = make_untrained_checkpoint(output, preset, gsd_m=gsd, seed=seed)
    click.echo(f"untrained {preset} checkpoint → {path}", err=True)


def _load_predictor(weights: Path | None, config: InferenceConfig):
    from sanchari_processes.inference import Predictor, load_model_cached

    try:
        loaded = load_model_cached(weights or default_weights(), config.device)
    except ModelMissingError as exc:
        if weights is not None:
            raise
        raise ModelMissingError(
            f"{exc.message} — pass --weights PATH or set SANCHARI_WEIGHTS "
            "(`sanchari model-init -o weights/untrained.safetensors` makes an untrained one "
            "for testing)"
        ) from None
    if loaded.metadata.metrics.get("untrained"):
        click.echo(
            f"warning: {loaded.metadata.model_id} is an untrained model; roads will be noise",
            err=True,
        )
    return Predictor(loaded, config)


def _parse_bands(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise InvalidInputError(f"--bands must be comma-separated integers, got {text!r}") from None


class _bar:
    """A tqdm bar on stderr driven by 0..1 fractions (a no-op when hidden)."""

    def __init__(self, show: bool, desc: str) -> None:
        self._bar = tqdm(total=100, desc=desc, disable=not show, unit="%", leave=False)

    def __enter__(self):
        def update(fraction: float) -> None:
            self._bar.update(round(fraction * 100) - self._bar.n)

        return update

    def __exit__(self, *exc: object) -> None:
        self._bar.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: one line per error, never a traceback for the user's mistakes."""
    try:
        cli.main(args=argv, prog_name="sanchari", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return 2
    except SanchariError as exc:
        click.echo(f"error: {exc.message}", err=True)
        return 1
    except OSError as exc:
        click.echo(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), err=True)
        return 1
    return 0


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="SANCHARI_HOST")
@click.option("--port", type=click.IntRange(0, 65535), default=5000, show_default=True,
              envvar="SANCHARI_PORT")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
              envvar="PYGEOAPI_CONFIG",
              help="pygeoapi configuration. Default: the repository's pygeoapi-config.yml.")
@click.option("--url", envvar="SANCHARI_URL", help="Public base URL (default: http://HOST:PORT).")
@click.option("--threads", type=click.IntRange(min=1), default=8, show_default=True,
              help="HTTP request threads.")
def serve(host: str, port: int, config_path: Path | None, url: str | None, threads: int) -> None:
    """Run the OGC API - Processes service (waitress; Ctrl-C stops it).

    \b
    Settings come from the environment (see pygeoapi-config.yml), e.g.:
      SANCHARI_GEOTIFF_DIR=../shared/data/scenes sanchari serve --port 5000
    """
    from sanchari_processes.service.app import DEFAULT_CONFIG
    from sanchari_processes.service.server import serve as run_server

    config_path = config_path or DEFAULT_CONFIG
    if not config_path.is_file():
        raise InvalidInputError(f"configuration not found: {config_path}")
    run_server(config_path, host, port, url, threads)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
