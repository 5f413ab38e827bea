"""Plumbing the commands share: running one as a program, input expansion, progress bars.

Every failure a user can cause ends in one ``error: …`` line on stderr and a non-zero exit
(1 for a failed run, 2 for bad usage); tracebacks are reserved for our own bugs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click
from tqdm import tqdm

from sanchari_processes.errors import ModelMissingError, SanchariError
from sanchari_processes.settings import configure_gdal

if TYPE_CHECKING:
    from sanchari_processes.cli.options import EngineArgs
    from sanchari_processes.engine.build import Engine

#: Raster file types a directory input is expanded to.
RASTER_SUFFIXES = (".tif", ".tiff", ".jpg", ".jpeg", ".png", ".jp2", ".vrt")


def run(command: click.Command, argv: Sequence[str] | None, prog_name: str) -> int:
    """Run ``command`` as a program: its exit status, one line per error, never a traceback
    for the user's mistakes. ``sanchari`` and each ``python -m training.X`` alias go through
    here."""
    configure_gdal()
    try:
        status = command.main(args=argv, prog_name=prog_name, standalone_mode=False)
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
    # --help and friends end in an exit status; a command that ran returns None
    return status if isinstance(status, int) else 0


def iter_inputs(paths: list[Path]) -> Iterator[Path]:
    """Expand directories into the rasters they hold (GeoTIFF, JPEG, PNG), sorted by name."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.iterdir() if p.suffix.lower() in RASTER_SUFFIXES)
        else:
            yield path


def build_engine(args: EngineArgs) -> Engine:
    """The configured engine, with a hint when the default checkpoint is missing."""
    from sanchari_processes.engine.build import build_engine as build

    try:
        engine = build(args.engine_options())
    except ModelMissingError as exc:
        if args.weights is not None:
            raise
        raise ModelMissingError(
            f"{exc.message} — the shipped model is missing from this installation "
            "(reinstall sanchari-processes), or pass --weights PATH or set SANCHARI_WEIGHTS"
        ) from None
    if engine.metadata.metrics.get("untrained"):
        click.echo(
            f"warning: {engine.metadata.model_id} is an untrained model; roads will be noise",
            err=True,
        )
    return engine


class bar:
    """A tqdm bar on stderr driven by 0..1 fractions (a no-op when hidden).

    The bar appears on its first update, so bars of successive stages can be opened together.
    """

    def __init__(self, show: bool, desc: str) -> None:
        self._show = show
        self._desc = desc
        self._bar: tqdm | None = None

    def __enter__(self) -> Callable[[float], None]:
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
