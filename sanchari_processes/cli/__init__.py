"""The ``sanchari`` command line: predict, vectorize, adapt, serve, inspect models, and train.

One module per command; the options several share are declared once in :mod:`.options`. The
training tools join as plug-ins (see :mod:`.group`), imported only when used, so ``sanchari
--help`` and ``sanchari predict`` answer a mistake before torch or a model loads.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from sanchari_processes import __version__
from sanchari_processes.cli.adapt import adapt
from sanchari_processes.cli.common import iter_inputs, run
from sanchari_processes.cli.group import SanchariGroup
from sanchari_processes.cli.model import model_export, model_info, model_init
from sanchari_processes.cli.options import CONTEXT_SETTINGS
from sanchari_processes.cli.predict import predict
from sanchari_processes.cli.predict_gee import predict_gee
from sanchari_processes.cli.serve import serve
from sanchari_processes.cli.vectorize import vectorize

__all__ = ["cli", "iter_inputs", "main", "run"]


@click.group(cls=SanchariGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="sanchari")
def cli() -> None:
    """SANCHARi: extract road centrelines from satellite and aerial imagery."""


_COMMANDS = (predict, predict_gee, vectorize, adapt, model_info, model_init, model_export, serve)
for _command in _COMMANDS:
    cli.add_command(_command)


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: one line per error, never a traceback for the user's mistakes."""
    return run(cli, argv, "sanchari")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
