"""``sanchari adapt``: adapt a model to your region from the roads you already have."""

from __future__ import annotations

from pathlib import Path

import click

from sanchari_processes.adapt.config import (
    DEFAULT_IGNORE_M,
    DEFAULT_ROAD_WIDTH_M,
    MAX_IGNORE_M,
    MAX_MINUTES,
    MAX_ROAD_WIDTH_M,
    MIN_MINUTES,
    AdaptConfig,
)
from sanchari_processes.cli import options
from sanchari_processes.cli.common import bar
from sanchari_processes.config import DEFAULT_TTA, TTA_MODES
from sanchari_processes.errors import InvalidInputError

_DEFAULTS = AdaptConfig()


@click.command()
@click.argument("images", nargs=-1, required=True, type=options.PATH)
@click.option(
    "--roads",
    type=options.PATH,
    required=True,
    help="Your roads: centrelines (GeoJSON, GeoPackage, FlatGeobuf, Shapefile; any CRS) or a "
    "road mask raster (road where > 0).",
)
@click.option("-o", "--output", type=options.FOLDER, required=True, help="Model folder to write.")
@click.option(
    "--area",
    type=options.PATH,
    help="Polygons where ROADS are complete (everything else inside is background). Default: "
    "the roads' convex hull grown by a margin (a mask: its extent).",
)
@click.option(
    "--minutes",
    type=click.FloatRange(MIN_MINUTES, MAX_MINUTES),
    default=_DEFAULTS.minutes,
    show_default=True,
    help="CPU budget of the fine-tune.",
)
@click.option(
    "--road-width-m",
    type=click.FloatRange(0.0, MAX_ROAD_WIDTH_M, min_open=True),
    default=DEFAULT_ROAD_WIDTH_M,
    show_default=True,
    help="Width burnt around each centreline.",
)
@click.option(
    "--ignore-m",
    type=click.FloatRange(0.0, MAX_IGNORE_M),
    default=DEFAULT_IGNORE_M,
    show_default=True,
    help="Band on each side of a road that teaches nothing (widths are uncertain).",
)
@click.option(
    "--no-finetune",
    is_flag=True,
    help="Only re-choose the threshold for the region, and write that model.",
)
@click.option("--name", help="Model id (default: the base model's id, -adapted-, a timestamp).")
@options.weights(help="Base model (default: $SANCHARI_WEIGHTS, else the shipped model).")
@click.option(
    "--tta",
    type=click.Choice(TTA_MODES),
    default=DEFAULT_TTA,
    show_default=True,
    help="Test-time augmentation used to score and calibrate (as extraction will run it).",
)
@options.seed()
@options.progress()
def adapt(
    images: tuple[Path, ...],
    roads: Path,
    output: Path,
    area: Path | None,
    minutes: float,
    road_width_m: float,
    ignore_m: float,
    no_finetune: bool,
    name: str | None,
    weights: Path | None,
    tta: str,
    seed: int,
    progress: bool | None,
) -> None:
    """Adapt a model to IMAGES from ROADS you already have, into a model folder.

    First the threshold is re-chosen for the region; then a fine-tune, kept only where it beats
    that on spatial blocks it did not train on (the card says which and why). Use the folder
    with `sanchari predict --weights FOLDER`.

    \b
    Example:
      sanchari adapt scene.tif --roads my_roads.gpkg -o models/my-district
      sanchari predict scene.tif --weights models/my-district -o out/roads.geojson
    """
    import sys

    from sanchari_processes.adapt.labels import read_area, read_roads
    from sanchari_processes.adapt.run import adapt as run_adapt
    from sanchari_processes.settings import configure_gdal, default_weights

    configure_gdal()
    if output.exists() and any(output.iterdir()):
        raise InvalidInputError(f"{output} exists and is not empty: choose a new model folder")
    config = AdaptConfig(
        road_width_m=road_width_m,
        ignore_m=ignore_m,
        minutes=minutes,
        finetune=not no_finetune,
        tta=tta,  # type: ignore[arg-type]
        seed=seed,
    )
    show = sys.stderr.isatty() if progress is None else progress
    with bar(show, "adapt") as update:
        result = run_adapt(
            images,
            read_roads(roads),
            output,
            weights=weights or default_weights(),
            config=config,
            area=None if area is None else read_area(area),
            name=name,
            progress=lambda fraction, stage: update(fraction),
        )
    click.echo(f"{result.model_id}: {result.report['verdict']} → {result.folder}", err=True)
