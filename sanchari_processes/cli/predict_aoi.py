"""``sanchari predict --aoi``: an area of interest over many scenes, in blocks, stitched."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import click

from sanchari_processes.cli.options import EngineArgs
from sanchari_processes.errors import InvalidInputError
from sanchari_processes.netguard import AllowList, NetPolicy
from sanchari_processes.sources.settings import RemoteSettings

#: Output types of an AOI run.
AOI_SUFFIXES = (".gpkg", ".fgb", ".geojson", ".json")


@dataclass(frozen=True)
class AoiArgs:
    """What ``predict --aoi`` was given besides the engine options."""

    aoi: Path
    imagery: tuple[str, ...]
    output: Path | None
    resume: bool
    block_m: float
    margin_m: float
    grid_crs: str | None
    dask_scheduler: str | None


def check_aoi_args(args: AoiArgs, inputs: tuple[Path, ...], others: dict[str, object]) -> Path:
    """The output path, once the AOI run's options make sense (before any work)."""
    if inputs:
        raise click.UsageError("give INPUT rasters or --aoi with --imagery, not both")
    if not args.imagery:
        raise click.UsageError(
            "--aoi needs --imagery (a folder, an ItemCollection, COG URLs or a STAC API search)"
        )
    given = [name for name, value in others.items() if value]
    if given:
        raise click.UsageError(f"{given[0]} does not apply to --aoi runs")
    if args.output is None:
        raise click.UsageError("--aoi needs -o/--output (.gpkg, .fgb or .geojson)")
    if args.output.suffix.lower() not in AOI_SUFFIXES:
        raise InvalidInputError(f"-o {args.output.name}: an AOI run writes .gpkg, .fgb or .geojson")
    if not args.output.absolute().parent.is_dir():
        raise InvalidInputError(f"output directory does not exist: {args.output.parent}")
    return args.output


def predict_aoi(args: AoiArgs, engine: EngineArgs, inputs: tuple[Path, ...], others: dict) -> None:
    """Plan the blocks, run them (here or on ``--dask``), write the stitched lines."""
    from sanchari_processes.aoi import find_scenes, load_aoi, plan_aoi, run_aoi
    from sanchari_processes.aoi.grid import parse_crs
    from sanchari_processes.inference.checkpoint import read_metadata

    output = check_aoi_args(args, inputs, others)
    crs = parse_crs(args.grid_crs) if args.grid_crs else None
    area = load_aoi(args.aoi)
    options = engine.engine_options()
    metadata = read_metadata(options.weights)
    remote = remote_settings()
    scenes = find_scenes(args.imagery, remote, area)
    plan = plan_aoi(
        area, scenes, metadata.gsd_m, block_m=args.block_m, margin_m=args.margin_m, crs=crs
    )
    click.echo(
        f"{len(plan.blocks)} blocks of {plan.grid.block_m:g} m on {plan.grid.crs.to_string()}, "
        f"{plan.km2:.3f} km² over {len(scenes)} scene(s)",
        err=True,
    )
    with contextlib.ExitStack() as stack:
        built = client = None
        if args.dask_scheduler:
            from sanchari_processes.engine.cluster import connect

            client = stack.enter_context(connect(args.dask_scheduler))
        else:
            from sanchari_processes.cli.common import build_engine

            built = build_engine(engine)
        summary = run_aoi(
            plan,
            output,
            options,
            model_sha=metadata.weights_sha256,
            engine=built,
            client=client,
            resume=args.resume,
            remote=remote,
            show_progress=engine.show_progress(),
        )
    for line in summary.lines_of_text():
        click.echo(line, err=True)


def remote_settings() -> RemoteSettings:
    """COG URLs are read through the address guard, with the service's allow-list
    (``SANCHARI_REMOTE_ALLOW``: non-public hosts a deployment trusts)."""
    allow = AllowList.parse(os.environ.get("SANCHARI_REMOTE_ALLOW") or None)
    return RemoteSettings(policy=NetPolicy(allow=allow))
