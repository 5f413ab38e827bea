"""``sanchari predict-gee``: road centrelines around points, from Google Earth Engine imagery."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from tqdm import tqdm

from sanchari_processes.cli import options
from sanchari_processes.cli.common import bar, build_engine
from sanchari_processes.cli.options import EngineArgs, engine_options
from sanchari_processes.cli.predict import predict_one
from sanchari_processes.errors import (
    CredentialsError,
    InvalidInputError,
    ModelMissingError,
    SanchariError,
)
from sanchari_processes.sources.gee.collections import NAIP, SENTINEL2

if TYPE_CHECKING:
    from sanchari_processes.engine.build import Engine
    from sanchari_processes.sources.gee.client import EarthEngineClient
    from sanchari_processes.sources.gee.credentials import GeeSettings
    from sanchari_processes.sources.gee.request import GeeRequest


@click.command("predict-gee")
@click.option("--lat", type=float, help="Latitude of one point (with --lon).")
@click.option("--lon", type=float, help="Longitude of one point (with --lat).")
@click.option(
    "--points",
    type=click.Path(path_type=Path, dir_okay=False),
    help="CSV of points: a header row with lat and lon columns (or latitude, longitude) and "
    "an optional name column naming the output file.",
)
@click.option("--name", help="Output name for the --lat/--lon point (default: LAT_LON).")
@click.option(
    "--collection",
    type=click.Choice([NAIP, SENTINEL2]),
    default=NAIP,
    show_default=True,
    help="NAIP (contiguous US, ~0.6 m) or Sentinel-2 (global, 10 m).",
)
@click.option(
    "--scale", type=float, default=1.0, show_default=True, help="Metres per pixel of the chip."
)
@click.option(
    "--window-size", type=int, default=1024, show_default=True, help="Chip side in pixels."
)
@click.option("--start-date", help="First acquisition date, YYYY-MM-DD.")
@click.option("--end-date", help="Last acquisition date, YYYY-MM-DD, inclusive (default: today).")
@click.option(
    "--out-dir",
    type=options.FOLDER,
    default=Path("."),
    show_default=True,
    help="Directory for one NAME.geojson per point.",
)
@click.option("--save-imagery", is_flag=True, help="Also keep each chip as NAME.tif.")
@click.option("--project", help="Cloud project for Earth Engine (default: $SANCHARI_GEE_PROJECT).")
@engine_options()
def predict_gee(
    lat: float | None,
    lon: float | None,
    points: Path | None,
    name: str | None,
    collection: str,
    scale: float,
    window_size: int,
    start_date: str | None,
    end_date: str | None,
    out_dir: Path,
    save_imagery: bool,
    project: str | None,
    engine: EngineArgs,
) -> None:
    """Extract road centrelines around points from Google Earth Engine imagery.

    One NAME.geojson per point in --out-dir, with the Earth Engine image ids and dates in its
    'sanchari' member. Earth Engine credentials come from SANCHARI_GEE_SERVICE_ACCOUNT_KEY (or
    GOOGLE_APPLICATION_CREDENTIALS) or `earthengine authenticate`, with SANCHARI_GEE_PROJECT;
    see Google Earth Engine imagery in the README.

    \b
    --points CSV, e.g.:
      name,lat,lon
      denver,39.7392,-104.9903
      boulder,40.0150,-105.2705

    \b
    Examples:
      sanchari predict-gee --lat 39.7392 --lon -104.9903 --out-dir roads/
      sanchari predict-gee --points cities.csv --out-dir roads/ --window-size 512
      sanchari predict-gee --lat 48.8566 --lon 2.3522 --collection COPERNICUS/S2_SR_HARMONIZED
    """
    import os

    from sanchari_processes.sources import gee

    if (points is None) == (lat is None and lon is None):
        raise click.UsageError("give --lat and --lon, or --points FILE.csv")
    if points is None and (lat is None or lon is None):
        raise click.UsageError("--lat and --lon go together")
    if points is not None and name:
        raise click.UsageError("--name applies to a single --lat/--lon point")
    if points is None:
        assert lat is not None and lon is not None
        named = [(name or f"{lat:.5f}_{lon:.5f}", lat, lon, "--lat/--lon")]
    else:
        named = _read_points(points)
    shared = {"collection": collection, "scale": scale, "window_size": window_size}
    shared.update({k: v for k, v in (("start_date", start_date), ("end_date", end_date)) if v})
    requests = [(label, _parse_request(y, x, shared, where)) for label, y, x, where in named]
    settings = gee.GeeSettings.from_env(os.environ)
    if project:
        settings = replace(settings, project=project)
    gee.resolve_credentials(settings)
    built = build_engine(engine)
    out_dir.mkdir(parents=True, exist_ok=True)
    show = engine.show_progress()
    batch = _Batch(gee.connect(settings), settings, built, out_dir, window_size, save_imagery, show)
    failed = 0
    for label, request in tqdm(requests, desc="points", disable=not show or len(requests) == 1):
        try:
            batch.predict_point(label, request)
        except (CredentialsError, ModelMissingError):
            raise
        except SanchariError as exc:
            failed += 1
            click.echo(f"{label}: failed: {exc.message}", err=True)
    if failed:
        raise SanchariError(f"{failed} of {len(requests)} point(s) failed (see above)")


def _parse_request(lat: float, lon: float, shared: dict[str, Any], where: str) -> GeeRequest:
    """One point's request, its errors prefixed with where the point came from."""
    from sanchari_processes.sources import gee

    try:
        return gee.parse_request({"latitude": lat, "longitude": lon, **shared})
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc.message}") from None


@dataclass(frozen=True)
class _Batch:
    """What every point of one ``predict-gee`` run shares."""

    client: EarthEngineClient
    settings: GeeSettings
    engine: Engine
    out_dir: Path
    window_size: int
    save_imagery: bool
    show: bool

    def predict_point(self, label: str, request: GeeRequest) -> None:
        """Fetch one point's chip, write ``label.geojson`` (and ``label.tif``) and say so."""
        from datetime import date

        from sanchari_processes.service.settings import DEFAULT_MAX_PIXELS
        from sanchari_processes.sources import gee

        target = self.out_dir / f"{label}.geojson"
        plan = gee.plan_gee(
            request.longitude,
            request.latitude,
            collection=request.collection,
            scale_m=request.scale,
            window_px=request.window_size or self.window_size,
            start=request.start_date,
            end=request.end_date,
            today=date.today(),
            max_pixels=DEFAULT_MAX_PIXELS,
            settings=self.settings,
        )
        with tempfile.TemporaryDirectory(prefix="sanchari-gee-") as workdir:
            with bar(self.show, f"{label}: Earth Engine") as update:
                fetched = gee.fetch_gee(plan, self.client, Path(workdir), update)
            extra = {"window": fetched.window, "imagery": fetched.imagery}
            extra["request"] = request.to_dict()
            n = predict_one(fetched.path, target, self.engine, None, None, self.show, extra=extra)
            if self.save_imagery:
                shutil.copyfile(fetched.path, self.out_dir / f"{label}.tif")
        dates = sorted(image["date"] for image in fetched.imagery["images"])
        click.echo(
            f"{label}: {n} road segments → {target} "
            f"({len(dates)} image(s), {dates[0]}..{dates[-1]})",
            err=True,
        )


def _read_points(path: Path) -> list[tuple[str, float, float, str]]:
    """``(name, lat, lon, where)`` rows of a points CSV (names made safe for file names)."""
    import csv
    import re

    if not path.is_file():
        raise InvalidInputError(f"points file not found: {path}")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = {c.strip().lower(): c for c in reader.fieldnames or []}
        lat_col = columns.get("lat") or columns.get("latitude")
        lon_col = columns.get("lon") or columns.get("longitude")
        if not lat_col or not lon_col:
            raise InvalidInputError(
                f"{path.name}: needs a header row with lat and lon columns (name optional)"
            )
        name_col = columns.get("name")
        rows: list[tuple[str, float, float, str]] = []
        for line, row in enumerate(reader, start=2):
            where = f"{path.name} line {line}"
            try:
                lat, lon = float(row[lat_col]), float(row[lon_col])
            except (TypeError, ValueError):
                raise InvalidInputError(f"{where}: lat and lon must be numbers") from None
            raw = (row.get(name_col) or "").strip() if name_col else ""
            label = re.sub(r"[^A-Za-z0-9_.-]+", "_", raw).strip("._") or f"point_{len(rows) + 1}"
            rows.append((label, lat, lon, where))
    if not rows:
        raise InvalidInputError(f"{path.name}: no points")
    names = [r[0] for r in rows]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise InvalidInputError(f"{path.name}: name {duplicate!r} is used twice")
    return rows
