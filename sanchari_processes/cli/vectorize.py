"""``sanchari vectorize``: road centrelines of an existing probability map or road mask."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from sanchari_processes.cli import options
from sanchari_processes.config import DEFAULT_THRESHOLD, VectorizeConfig
from sanchari_processes.errors import InvalidInputError


@click.command()
@click.argument("raster", type=options.PATH)
@click.option("-o", "--output", type=options.PATH, required=True)
@options.threshold(default=DEFAULT_THRESHOLD, show_default=True, help=None)
@options.simplify_m(help=None)
@options.gsd(help="Metres per pixel; required for rasters without georeferencing.")
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

    from sanchari_processes.engine.probability import RasterBandArray
    from sanchari_processes.results.files import write_json_atomic
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
