"""The ``sanchari`` command line: predict, vectorize and inspect models.

Every failure a user can cause ends in one ``error: …`` line on stderr and a non-zero exit
(1 for a failed run, 2 for bad usage); tracebacks are reserved for our own bugs.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from tqdm import tqdm

if TYPE_CHECKING:
    from sanchari_processes.engine.build import Engine, EngineOptions
    from sanchari_processes.engine.probability import ProbabilityMap
    from sanchari_processes.inference.predictor import RemoteBlocks

# Only light modules at the top: options and inputs are checked before torch, the runtimes or
# the model load, so a mistake is answered in a fraction of a second.
from sanchari_processes import __version__
from sanchari_processes.config import (
    BACKENDS,
    CPU_BATCH_SIZE,
    CUDA_BATCH_SIZE,
    DEFAULT_SIMPLIFY_M,
    DEFAULT_THRESHOLD,
    DEFAULT_TTA,
    DEVICES,
    TTA_MODES,
    InferenceConfig,
    VectorizeConfig,
)
from sanchari_processes.errors import (
    CredentialsError,
    InvalidInputError,
    ModelMissingError,
    SanchariError,
)
from sanchari_processes.settings import configure_gdal, default_weights
from sanchari_processes.sources.gee.collections import NAIP, SENTINEL2

#: Raster file types a directory input is expanded to.
RASTER_SUFFIXES = (".tif", ".tiff", ".jpg", ".jpeg", ".png", ".jp2", ".vrt")

_ENGINE_OPTIONS = (
    click.option(
        "--weights",
        type=click.Path(path_type=Path),
        help="Checkpoint (.safetensors with its .json, or a folder holding one). "
        "Default: $SANCHARI_WEIGHTS, else the shipped weights/ folder.",
    ),
    click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True),
    click.option(
        "--backend",
        type=click.Choice(BACKENDS),
        envvar="SANCHARI_BACKEND",
        default="auto",
        show_default=True,
        help="Inference runtime ($SANCHARI_BACKEND). auto: torch on CUDA; on a CPU the fastest "
        "installed of openvino, onnxruntime, torch.",
    ),
    click.option(
        "--tta",
        type=click.Choice(TTA_MODES),
        default=DEFAULT_TTA,
        show_default=True,
        help="Test-time augmentation.",
    ),
    click.option(
        "--threshold",
        type=click.FloatRange(0.0, 1.0),
        help="Road probability cut-off. Default: the checkpoint's recommended threshold.",
    ),
    click.option(
        "--simplify-m",
        type=click.FloatRange(min=0.0),
        default=DEFAULT_SIMPLIFY_M,
        show_default=True,
        help="Line simplification tolerance in metres.",
    ),
    click.option(
        "--batch-size",
        type=click.IntRange(min=1),
        help=f"Patches per forward pass. Default: {CPU_BATCH_SIZE} on a CPU, "
        f"{CUDA_BATCH_SIZE} on CUDA (measured fastest).",
    ),
    click.option(
        "--int8",
        is_flag=True,
        help="Run the int8 model built by `sanchari model-export --int8` (openvino/onnxruntime).",
    ),
    click.option(
        "--cache-dir",
        type=click.Path(path_type=Path, file_okay=False),
        envvar="SANCHARI_CACHE_DIR",
        help="Cache of exported models and compiled code ($SANCHARI_CACHE_DIR; default: the "
        "user cache folder, e.g. ~/.cache/sanchari).",
    ),
    click.option(
        "--progress/--no-progress", default=None, help="Progress bar (default: on a TTY)."
    ),
)


@dataclass(frozen=True)
class _EngineArgs:
    """The engine options as given on the command line (validated by click)."""

    weights: Path | None
    device: str
    backend: str
    tta: str
    threshold: float | None
    simplify_m: float
    batch_size: int | None
    int8: bool
    cache_dir: Path | None
    progress: bool | None

    def show_progress(self) -> bool:
        return sys.stderr.isatty() if self.progress is None else self.progress


def _engine_options(command: Callable) -> Callable:
    """The model and vectorizer options ``predict`` and ``predict-gee`` share, as one argument."""
    names = [f.name for f in fields(_EngineArgs)]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        engine = _EngineArgs(**{name: kwargs.pop(name) for name in names})
        return command(engine=engine, **kwargs)

    for option in reversed(_ENGINE_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


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
@_engine_options
@click.option("--mask-out", type=click.Path(path_type=Path), help="Write the 0/255 road mask here.")
@click.option(
    "--prob-out", type=click.Path(path_type=Path), help="Write the 0..1 probability map here."
)
@click.option(
    "--preview",
    type=click.Path(path_type=Path),
    help="Write a PNG of the image with the extracted roads drawn over it.",
)
@click.option("--bands", help="Comma-separated 1-based bands to use, e.g. 1,2,3 (default: RGB).")
@click.option(
    "--gsd",
    type=click.FloatRange(min=0.0, min_open=True),
    help="Metres per pixel, for images without georeferencing (default: the model's).",
)
@click.option(
    "--dask",
    "dask_scheduler",
    metavar="tcp://HOST:PORT",
    help="Run the model's blocks on this Dask cluster (same output as a local run; the "
    "workers read the input and the weights themselves, at the same paths).",
)
def predict(
    inputs: tuple[Path, ...],
    output: Path | None,
    out_dir: Path | None,
    engine: _EngineArgs,
    mask_out: Path | None,
    prob_out: Path | None,
    preview: Path | None,
    bands: str | None,
    gsd: float | None,
    dask_scheduler: str | None,
) -> None:
    """Extract road centrelines from INPUT rasters into GeoJSON.

    INPUT is a GeoTIFF (any CRS), a directory of rasters (batch), or a plain JPEG/PNG, in which
    case the GeoJSON is in pixel coordinates.

    \b
    Examples:
      sanchari predict scene.tif -o roads.geojson
      sanchari predict tiles/ --out-dir roads/ --tta d4
      sanchari predict scene.tif -o roads.geojson --mask-out mask.tif --prob-out prob.tif
      sanchari predict scene.tif -o roads.geojson --preview roads.png
      sanchari predict big.tif -o roads.geojson --dask tcp://scheduler:8786
    """
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
    if (mask_out or prob_out or preview) and len(paths) > 1:
        raise click.UsageError("--mask-out, --prob-out and --preview take a single input")
    for target in (output, mask_out, prob_out, preview):
        if target is not None and not target.absolute().parent.is_dir():
            raise InvalidInputError(f"output directory does not exist: {target.parent}")
    band_list = _parse_bands(bands)
    built = _build_engine(engine)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    show = engine.show_progress()
    with contextlib.ExitStack() as stack:
        blocks = _cluster_blocks(stack, dask_scheduler, engine) if dask_scheduler else None
        for path in tqdm(paths, desc="rasters", disable=not show or len(paths) == 1, unit="raster"):
            target = output if output is not None else out_dir / f"{path.stem}.geojson"
            extras = _Extras(mask_out, prob_out, preview)
            n = _predict_one(
                path, target, built, band_list, gsd, show, extras=extras, blocks=blocks
            )
            click.echo(f"{path.name}: {n} road segments → {target}", err=True)


def _cluster_blocks(stack: contextlib.ExitStack, address: str, args: _EngineArgs) -> RemoteBlocks:
    """``--dask``: the model's blocks on the cluster at ``address`` (closed with ``stack``)."""
    from sanchari_processes.engine.cluster import block_predictor, connect

    client = stack.enter_context(connect(address))
    return block_predictor(client, _options(args))


def iter_inputs(paths: list[Path]) -> Iterator[Path]:
    """Expand directories into the rasters they hold (GeoTIFF, JPEG, PNG), sorted by name."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.iterdir() if p.suffix.lower() in RASTER_SUFFIXES)
        else:
            yield path


@dataclass(frozen=True)
class _Extras:
    """Optional side outputs of a single-input ``predict``."""

    mask_out: Path | None = None
    prob_out: Path | None = None
    preview: Path | None = None


def _predict_one(
    path: Path,
    target: Path,
    engine: Engine,
    bands: Sequence[int] | None,
    gsd: float | None,
    show: bool,
    *,
    extras: _Extras = _Extras(),
    extra: dict | None = None,
    blocks: RemoteBlocks | None = None,
) -> int:
    """Run the engine on one raster and write its GeoJSON; ``extra`` joins the provenance."""
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
            _bar(show, f"{path.name}: model") as model_progress,
            _bar(show, f"{path.name}: vectorize") as vector_progress,
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
            )
        if extras.preview:
            from sanchari_processes.results.preview import render_preview

            render_preview(source, collection, extras.preview)
    collection["sanchari"].update(extra or {})
    write_json_atomic(collection, target)
    return len(collection["features"])


@cli.command("predict-gee")
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
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("."),
    show_default=True,
    help="Directory for one NAME.geojson per point.",
)
@click.option("--save-imagery", is_flag=True, help="Also keep each chip as NAME.tif.")
@click.option("--project", help="Cloud project for Earth Engine (default: $SANCHARI_GEE_PROJECT).")
@_engine_options
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
    engine: _EngineArgs,
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
    from datetime import date

    from sanchari_processes.service.settings import DEFAULT_MAX_PIXELS
    from sanchari_processes.sources import gee

    if (points is None) == (lat is None and lon is None):
        raise click.UsageError("give --lat and --lon, or --points FILE.csv")
    if points is None and (lat is None or lon is None):
        raise click.UsageError("--lat and --lon go together")
    if points is not None and name:
        raise click.UsageError("--name applies to a single --lat/--lon point")
    options = {"collection": collection, "scale": scale, "window_size": window_size}
    options.update({k: v for k, v in (("start_date", start_date), ("end_date", end_date)) if v})
    if points is None:
        assert lat is not None and lon is not None
        named = [(name or f"{lat:.5f}_{lon:.5f}", lat, lon, "--lat/--lon")]
    else:
        named = _read_points(points)
    requests = []
    for label, p_lat, p_lon, where in named:
        try:
            requests.append(
                (label, gee.parse_request({"latitude": p_lat, "longitude": p_lon, **options}))
            )
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where}: {exc.message}") from None
    settings = gee.GeeSettings.from_env(os.environ)
    if project:
        settings = replace(settings, project=project)
    gee.resolve_credentials(settings)
    built = _build_engine(engine)
    out_dir.mkdir(parents=True, exist_ok=True)
    show = engine.show_progress()
    client = gee.connect(settings)
    failed = 0
    for label, request in tqdm(requests, desc="points", disable=not show or len(requests) == 1):
        target = out_dir / f"{label}.geojson"
        try:
            plan = gee.plan_gee(
                request.longitude,
                request.latitude,
                collection=request.collection,
                scale_m=request.scale,
                window_px=request.window_size or window_size,
                start=request.start_date,
                end=request.end_date,
                today=date.today(),
                max_pixels=DEFAULT_MAX_PIXELS,
                settings=settings,
            )
            with tempfile.TemporaryDirectory(prefix="sanchari-gee-") as workdir:
                with _bar(show, f"{label}: Earth Engine") as update:
                    fetched = gee.fetch_gee(plan, client, Path(workdir), update)
                extra = {"window": fetched.window, "imagery": fetched.imagery}
                extra["request"] = request.to_dict()
                n = _predict_one(fetched.path, target, built, None, None, show, extra=extra)
                if save_imagery:
                    shutil.copyfile(fetched.path, out_dir / f"{label}.tif")
        except (CredentialsError, ModelMissingError):
            raise
        except SanchariError as exc:
            failed += 1
            click.echo(f"{label}: failed: {exc.message}", err=True)
            continue
        dates = sorted(image["date"] for image in fetched.imagery["images"])
        click.echo(
            f"{label}: {n} road segments → {target} "
            f"({len(dates)} image(s), {dates[0]}..{dates[-1]})",
            err=True,
        )
    if failed:
        raise SanchariError(f"{failed} of {len(requests)} point(s) failed (see above)")


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


@cli.command()
@click.argument("raster", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True)
@click.option(
    "--threshold", type=click.FloatRange(0.0, 1.0), default=DEFAULT_THRESHOLD, show_default=True
)
@click.option(
    "--simplify-m", type=click.FloatRange(min=0.0), default=DEFAULT_SIMPLIFY_M, show_default=True
)
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


@cli.command("model-export")
@click.argument("weights", type=click.Path(path_type=Path), required=False)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="SANCHARI_CACHE_DIR",
    help="Cache folder ($SANCHARI_CACHE_DIR; default: the user cache folder).",
)
@click.option(
    "--int8",
    is_flag=True,
    help="Also build the int8 model (needs --calibration images, ideally training images).",
)
@click.option(
    "--calibration",
    type=click.Path(path_type=Path),
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


def _options(args: _EngineArgs) -> EngineOptions:
    """The engine options the command line asked for."""
    from sanchari_processes.engine.build import EngineOptions

    try:
        icfg = InferenceConfig(
            tta=args.tta,  # type: ignore[arg-type]
            device=args.device,  # type: ignore[arg-type]
            backend=args.backend,  # type: ignore[arg-type]
            batch_size=args.batch_size,
            int8=args.int8,
            progress=False,
        )
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from None
    return EngineOptions(
        weights=args.weights or default_weights(),
        inference=icfg,
        threshold=args.threshold,
        simplify_m=args.simplify_m,
        cache_dir=args.cache_dir,
    )


def _build_engine(args: _EngineArgs) -> Engine:
    """The configured engine, with a hint when the default checkpoint is missing."""
    from sanchari_processes.engine.build import build_engine

    options = _options(args)
    try:
        engine = build_engine(options)
    except ModelMissingError as exc:
        if args.weights is not None:
            raise
        raise ModelMissingError(
            f"{exc.message} — pass --weights PATH or set SANCHARI_WEIGHTS "
            "(`sanchari model-init -o weights/untrained.safetensors` makes an untrained one "
            "for testing)"
        ) from None
    if engine.metadata.metrics.get("untrained"):
        click.echo(
            f"warning: {engine.metadata.model_id} is an untrained model; roads will be noise",
            err=True,
        )
    return engine


def _parse_bands(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise InvalidInputError(f"--bands must be comma-separated integers, got {text!r}") from None


class _bar:
    """A tqdm bar on stderr driven by 0..1 fractions (a no-op when hidden).

    The bar appears on its first update, so bars of successive stages can be opened together.
    """

    def __init__(self, show: bool, desc: str) -> None:
        self._show = show
        self._desc = desc
        self._bar: tqdm | None = None

    def __enter__(self):
        def update(fraction: float) -> None:
            if self._bar is None:
                self._bar = tqdm(
                    total=100, desc=self._desc, disable=not self._show, unit="%", leave=False
                )
            self._bar.update(round(fraction * 100) - self._bar.n)

        return update

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: one line per error, never a traceback for the user's mistakes."""
    configure_gdal()
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
@click.option(
    "--port", type=click.IntRange(0, 65535), default=5000, show_default=True, envvar="SANCHARI_PORT"
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="PYGEOAPI_CONFIG",
    help="pygeoapi configuration. Default: the repository's pygeoapi-config.yml.",
)
@click.option("--url", envvar="SANCHARI_URL", help="Public base URL (default: http://HOST:PORT).")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="HTTP request threads.",
)
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
