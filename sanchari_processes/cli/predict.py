"""``sanchari predict``: road centrelines of local rasters (a file, a folder, a plain image)."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click
from tqdm import tqdm

from sanchari_processes.cli import options
from sanchari_processes.cli.common import bar, build_engine, iter_inputs
from sanchari_processes.cli.options import EngineArgs, engine_options
from sanchari_processes.errors import InvalidInputError

if TYPE_CHECKING:
    from sanchari_processes.engine.build import Engine
    from sanchari_processes.engine.probability import ProbabilityMap
    from sanchari_processes.engine.run import StageTimes
    from sanchari_processes.inference.predictor import RemoteBlocks


@click.command()
@click.argument("inputs", nargs=-1, type=options.PATH)
@click.option("-o", "--output", type=options.PATH, help="GeoJSON file to write.")
@click.option(
    "--out-dir", type=options.FOLDER, help="Directory for one NAME.geojson per input (batch runs)."
)
@engine_options()
@click.option("--mask-out", type=options.PATH, help="Write the 0/255 road mask here.")
@click.option("--prob-out", type=options.PATH, help="Write the 0..1 probability map here.")
@click.option(
    "--preview",
    type=options.PATH,
    help="Write a PNG of the image with the extracted roads drawn over it.",
)
@click.option("--bands", help="Comma-separated 1-based bands to use, e.g. 1,2,3 (default: RGB).")
@options.gsd(help="Metres per pixel, for images without georeferencing (default: the model's).")
@click.option(
    "--dask",
    "dask_scheduler",
    metavar="tcp://HOST:PORT",
    help="Run the model's blocks on this Dask cluster (same output as a local run; the "
    "workers read the input and the weights themselves, at the same paths).",
)
@options.aoi()
@options.imagery()
@options.resume()
@options.block_m()
@options.margin_m()
@options.grid_crs()
def predict(
    inputs: tuple[Path, ...],
    output: Path | None,
    out_dir: Path | None,
    engine: EngineArgs,
    mask_out: Path | None,
    prob_out: Path | None,
    preview: Path | None,
    bands: str | None,
    gsd: float | None,
    dask_scheduler: str | None,
    aoi: Path | None,
    imagery: tuple[str, ...],
    resume: bool,
    block_m: float,
    margin_m: float,
    grid_crs: str | None,
) -> None:
    """Extract road centrelines from INPUT rasters into GeoJSON.

    INPUT is a GeoTIFF (any CRS), a directory of rasters (batch), or a plain JPEG/PNG, in which
    case the GeoJSON is in pixel coordinates. With --aoi, an area is mapped from --imagery
    instead, block by block, into one stitched .gpkg, .fgb or .geojson (see docs/cli.md).

    \b
    Examples:
      sanchari predict scene.tif -o roads.geojson
      sanchari predict tiles/ --out-dir roads/ --tta d4
      sanchari predict scene.tif -o roads.geojson --mask-out mask.tif --prob-out prob.tif
      sanchari predict scene.tif -o roads.geojson --preview roads.png
      sanchari predict big.tif -o roads.geojson --dask tcp://scheduler:8786
      sanchari predict --aoi district.geojson --imagery scenes/ -o roads.gpkg --resume
    """
    if aoi is not None:
        from sanchari_processes.cli.predict_aoi import AoiArgs, predict_aoi

        args = AoiArgs(aoi, imagery, output, resume, block_m, margin_m, grid_crs, dask_scheduler)
        others = {
            "--out-dir": out_dir,
            "--mask-out": mask_out,
            "--prob-out": prob_out,
            "--preview": preview,
            "--bands": bands,
            "--gsd": gsd,
        }
        predict_aoi(args, engine, inputs, others)
        return
    if not inputs:
        raise click.UsageError("missing INPUT rasters (or --aoi AREA.geojson --imagery SOURCE)")
    if imagery or resume or grid_crs:
        raise click.UsageError("--imagery, --resume and --grid-crs apply to --aoi runs only")
    extras = Extras(mask_out, prob_out, preview)
    paths = _check(inputs, output, out_dir, extras)
    band_list = _parse_bands(bands)
    built = build_engine(engine)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    show = engine.show_progress()
    from sanchari_processes.engine.run import StageTimes  # after the checks: it loads rasterio

    times = StageTimes()
    with contextlib.ExitStack() as stack:
        blocks = _cluster_blocks(stack, dask_scheduler, engine) if dask_scheduler else None
        for path in tqdm(paths, desc="rasters", disable=not show or len(paths) == 1, unit="raster"):
            if output is not None:
                target = output
            else:
                assert out_dir is not None  # one of the two is required, checked above
                target = out_dir / f"{path.stem}.geojson"
            n = predict_one(
                path, target, built, band_list, gsd, show, extras=extras, blocks=blocks, times=times
            )
            click.echo(f"{path.name}: {n} road segments → {target}", err=True)
    _report_times(built, times)


def _report_times(built: Engine, times: StageTimes) -> None:
    """Seconds from the command's start to the first patch's probabilities (start-up cost),
    then where the rest went: the benchmarks read both lines."""
    from sanchari_processes import STARTED

    predictor = built.predictor
    if predictor.first_result is not None:
        click.echo(f"first patch {predictor.first_result - STARTED:.2f} s after start", err=True)
    network = (
        f" (network {predictor.network_s:.2f} s for {predictor.patches_run} patch"
        f"{'' if predictor.patches_run == 1 else 'es'})"
        if predictor.patches_run  # on a cluster the patches run in the workers
        else ""
    )
    click.echo(
        f"stages: model {times.model_s:.2f} s{network}, vectorize {times.vectorize_s:.2f} s, "
        f"write {times.write_s:.2f} s; whole command {time.perf_counter() - STARTED:.2f} s",
        err=True,
    )


@dataclass(frozen=True)
class Extras:
    """Optional side outputs of a single-input ``predict``."""

    mask_out: Path | None = None
    prob_out: Path | None = None
    preview: Path | None = None


def _check(
    inputs: tuple[Path, ...], output: Path | None, out_dir: Path | None, extras: Extras
) -> list[Path]:
    """The rasters to run, once the inputs and outputs make sense (before the model loads)."""
    for path in inputs:
        if not path.exists():
            raise InvalidInputError(f"input not found: {path}")
    paths = list(iter_inputs(list(inputs)))
    if not paths:
        raise InvalidInputError("no rasters (.tif, .tiff, .jpg, .png) found in the input directory")
    if (output is None) == (out_dir is None):
        raise click.UsageError("give exactly one of -o/--output or --out-dir")
    if output is not None and len(paths) > 1:
        raise click.UsageError(f"{len(paths)} inputs: use --out-dir for batch runs")
    if (extras.mask_out or extras.prob_out or extras.preview) and len(paths) > 1:
        raise click.UsageError("--mask-out, --prob-out and --preview take a single input")
    for target in (output, extras.mask_out, extras.prob_out, extras.preview):
        if target is not None and not target.absolute().parent.is_dir():
            raise InvalidInputError(f"output directory does not exist: {target.parent}")
    return paths


def _cluster_blocks(stack: contextlib.ExitStack, address: str, args: EngineArgs) -> RemoteBlocks:
    """``--dask``: the model's blocks on the cluster at ``address`` (closed with ``stack``)."""
    from sanchari_processes.engine.cluster import block_predictor, connect

    client = stack.enter_context(connect(address))
    return block_predictor(client, args.engine_options())


def predict_one(
    path: Path,
    target: Path,
    engine: Engine,
    bands: Sequence[int] | None,
    gsd: float | None,
    show: bool,
    *,
    extras: Extras = Extras(),
    extra: dict | None = None,
    blocks: RemoteBlocks | None = None,
    times: StageTimes | None = None,
) -> int:
    """Run the engine on one raster and write its GeoJSON; ``extra`` joins the provenance;
    ``times`` gets each stage's seconds added."""
    from sanchari_processes.engine.run import run_source
    from sanchari_processes.results.files import write_json_atomic
    from sanchari_processes.sources import open_raster

    def keep(prob: ProbabilityMap) -> None:
        if extras.mask_out:
            prob.save_mask(extras.mask_out, engine.vectorize.threshold)
        if extras.prob_out:
            prob.save_probability(extras.prob_out)

    meta = engine.metadata
    with open_raster(path, len(meta.bands), bands=bands, gsd_m=gsd) as source:
        if not source.is_georeferenced:
            click.echo(
                f"note: {path.name} has no georeferencing; coordinates are pixel (column, row)",
                err=True,
            )
        with (
            tempfile.TemporaryDirectory(prefix="sanchari-") as workdir,
            bar(show, f"{path.name}: model") as model_progress,
            bar(show, f"{path.name}: vectorize") as vector_progress,
        ):
            collection = run_source(
                source,
                engine.predictor,
                engine.vectorize,
                Path(workdir),
                model_progress=model_progress,
                vector_progress=vector_progress,
                keep=keep,
                blocks=blocks,
                times=times,
            )
        written = time.perf_counter()
        if extras.preview:
            from sanchari_processes.results.preview import render_preview

            render_preview(source, collection, extras.preview)
    collection["sanchari"].update(extra or {})
    write_json_atomic(collection, target)
    if times is not None:
        times.write_s += time.perf_counter() - written
    return len(collection["features"])


def _parse_bands(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise InvalidInputError(f"--bands must be comma-separated integers, got {text!r}") from None
