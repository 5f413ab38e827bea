"""Options several commands take, each declared once; choices and defaults come from config.py.

An :class:`Option` is a click option's declaration plus, for an engine option, the config it
fills (``into``: a field of :class:`~sanchari_processes.config.InferenceConfig` or of
:class:`~sanchari_processes.engine.build.EngineOptions`, named as the option's parameter).
:func:`engine_options` adds a set of them to a command as one :class:`EngineArgs` argument,
which maps the values into those configs by that name. So a new engine option is one
declaration here (listed in :data:`ENGINE_OPTIONS` for ``predict``/``predict-gee``) plus the
code that uses the config field; a command of its own picks it with ``engine_options(...)``.

Commands call an option to get its click decorator, overriding settings where a command
differs (``weights(required=True)``, ``tta(default="d4")``).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click

from sanchari_processes.config import (
    BACKENDS,
    CPU_BATCH_SIZE,
    CUDA_BATCH_SIZE,
    DEFAULT_SIMPLIFY_M,
    DEFAULT_TTA,
    DEVICES,
    PRECISIONS,
    TTA_MODES,
    InferenceConfig,
)
from sanchari_processes.errors import InvalidInputError

if TYPE_CHECKING:
    from sanchari_processes.engine.build import EngineOptions

F = TypeVar("F", bound=Callable[..., Any])
Into = Literal["inference", "engine"]

#: ``-h`` as well as ``--help``, for the group and for commands run on their own.
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}

POSITIVE_INT = click.IntRange(min=1)
POSITIVE_FLOAT = click.FloatRange(min=0.0, min_open=True)
#: A share: 0 <= x < 1.
FRACTION = click.FloatRange(0.0, 1.0, max_open=True)
PROBABILITY = click.FloatRange(0.0, 1.0)
PATH = click.Path(path_type=Path)
FOLDER = click.Path(path_type=Path, file_okay=False)

_INFERENCE = InferenceConfig()


@dataclass(frozen=True)
class Option:
    """One click option declared once; ``into`` names the engine config its value fills."""

    decls: tuple[str, ...]
    settings: Mapping[str, Any] = field(default_factory=dict)
    into: Into | None = None

    @property
    def name(self) -> str:
        """The parameter name click gives it (``simplify_m`` for ``--simplify-m``)."""
        return click.Option(self.decls).name or ""

    def __call__(self, *names: str, **overrides: Any) -> Callable[[F], F]:
        """The click decorator, with this command's ``overrides`` of the shared settings (and a
        parameter name of its own, e.g. ``gsd("gsds", multiple=True)``)."""
        return click.option(*self.decls, *names, **{**self.settings, **overrides})


def option(*decls: str, into: Into | None = None, **settings: Any) -> Option:
    return Option(decls, settings, into)


# The engine: model, runtime and vectorizer.
weights = option(
    "--weights",
    into="engine",
    type=PATH,
    help="Checkpoint (.safetensors with its .json, or a folder holding one). "
    "Default: $SANCHARI_WEIGHTS, else the shipped weights/ folder.",
)
device = option(
    "--device",
    into="inference",
    type=click.Choice(DEVICES),
    default=_INFERENCE.device,
    show_default=True,
)
backend = option(
    "--backend",
    into="inference",
    type=click.Choice(BACKENDS),
    envvar="SANCHARI_BACKEND",
    default=_INFERENCE.backend,
    show_default=True,
    help="Inference runtime ($SANCHARI_BACKEND). auto: torch on CUDA; on a CPU the fastest "
    "installed of openvino, onnxruntime, torch.",
)
tta = option(
    "--tta",
    into="inference",
    type=click.Choice(TTA_MODES),
    default=DEFAULT_TTA,
    show_default=True,
    help="Test-time augmentation.",
)
threshold = option(
    "--threshold",
    into="engine",
    type=PROBABILITY,
    help="Road probability cut-off. Default: the checkpoint's recommended threshold.",
)
simplify_m = option(
    "--simplify-m",
    into="engine",
    type=click.FloatRange(min=0.0),
    default=DEFAULT_SIMPLIFY_M,
    show_default=True,
    help="Line simplification tolerance in metres.",
)
batch_size = option(
    "--batch-size",
    into="inference",
    type=POSITIVE_INT,
    help=f"Patches per forward pass. Default: {CPU_BATCH_SIZE} on a CPU, "
    f"{CUDA_BATCH_SIZE} on CUDA (measured fastest).",
)
precision = option(
    "--precision",
    into="inference",
    type=click.Choice(PRECISIONS),
    envvar="SANCHARI_PRECISION",
    default=_INFERENCE.precision,
    show_default=True,
    help="Network arithmetic ($SANCHARI_PRECISION). auto: openvino runs the model's int8 "
    "network where it has one (the shipped model does), else the backend's fastest float; "
    "fp32; fp16 (CUDA, or openvino where the CPU has it); int8 (openvino; the model must carry "
    "the network `sanchari model-export --precision int8` writes).",
)
cache_dir = option(
    "--cache-dir",
    into="engine",
    type=FOLDER,
    envvar="SANCHARI_CACHE_DIR",
    help="Cache of exported models and compiled code ($SANCHARI_CACHE_DIR; default: the "
    "user cache folder, e.g. ~/.cache/sanchari).",
)
patch = option(
    "--patch",
    "patch_size",
    into="inference",
    type=POSITIVE_INT,
    default=_INFERENCE.patch_size,
    show_default=True,
    help="Model patch side in pixels.",
)
stride = option(
    "--stride", into="inference", type=POSITIVE_INT, help="Patch step (default: 3/4 of the patch)."
)
edge_margin = option(
    "--edge-margin",
    into="inference",
    type=click.IntRange(min=0),
    default=_INFERENCE.edge_margin,
    show_default=True,
    help="Reflected context at image edges, px.",
)
progress = option(
    "--progress/--no-progress", default=None, help="Progress bar (default: on a TTY)."
)

# Not engine options, but shared all the same.
gsd = option("--gsd", type=POSITIVE_FLOAT, help="Metres per pixel.")
seed = option("--seed", type=int, default=0, show_default=True, help="Random seed.")

# Area-of-interest runs (``predict --aoi``).
aoi = option(
    "--aoi",
    type=PATH,
    metavar="AREA.geojson",
    help="Map this area (a GeoJSON Polygon/MultiPolygon, Feature or FeatureCollection) from "
    "the --imagery scenes, in blocks stitched into one output (.gpkg, .fgb or .geojson).",
)
imagery = option(
    "--imagery",
    multiple=True,
    metavar="SOURCE",
    help="With --aoi (repeatable): a folder of GeoTIFFs, a STAC ItemCollection (.json), a "
    "text file of COG URLs, one COG URL, or a STAC API item search URL searched over the AOI "
    "('https://host/v1/search?collections=C&datetime=D1/D2').",
)
resume = option(
    "--resume",
    is_flag=True,
    help="With --aoi: skip the blocks recorded in OUTPUT.blocks/ by an interrupted run.",
)
block_m = option(
    "--block-m",
    type=click.FloatRange(min=16.0),
    default=1024.0,
    show_default=True,
    help="With --aoi: side of a block's core in metres (each block adds --margin-m around it).",
)
margin_m = option(
    "--margin-m",
    type=click.FloatRange(min=0.0),
    default=64.0,
    show_default=True,
    help="With --aoi: context read around each block, in metres.",
)
grid_crs = option(
    "--grid-crs",
    metavar="CRS",
    help="With --aoi: the projected CRS of the model grid (default: the UTM zone of the AOI's "
    "centroid).",
)

#: ``predict`` and ``predict-gee``'s engine options, in --help order.
ENGINE_OPTIONS: tuple[Option, ...] = (
    weights,
    device,
    backend,
    tta,
    threshold,
    simplify_m,
    batch_size,
    precision,
    cache_dir,
    progress,
)


class EngineArgs:
    """The engine options a command was given (validated by click), as one argument.

    Each value is an attribute (``engine.tta``); :meth:`inference` and :meth:`engine_options`
    map them into the configs by their ``into``.
    """

    def __init__(self, values: Mapping[str, Any], declared: tuple[Option, ...]) -> None:
        self._values = dict(values)
        self._into = {o.name: o.into for o in declared}

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def _given(self, into: Into) -> dict[str, Any]:
        """The options filling ``into`` that have a value (``None`` keeps the config's default)."""
        return {
            name: value
            for name, value in self._values.items()
            if self._into[name] == into and value is not None
        }

    def inference(self, **fixed: Any) -> InferenceConfig:
        """The :class:`InferenceConfig` these options describe, plus the command's ``fixed``."""
        try:
            return InferenceConfig(**{**self._given("inference"), **fixed})
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from None

    def engine_options(self, **fixed: Any) -> EngineOptions:
        """The engine these options describe (weights default: $SANCHARI_WEIGHTS, else shipped)."""
        from sanchari_processes.engine.build import EngineOptions
        from sanchari_processes.settings import default_weights

        given = {**self._given("engine"), **fixed}
        given["weights"] = given.get("weights") or default_weights()
        return EngineOptions(inference=self.inference(progress=False), **given)

    def show_progress(self) -> bool:
        """``--progress``/``--no-progress``, else a bar when stderr is a terminal."""
        chosen = self._values.get("progress")
        return sys.stderr.isatty() if chosen is None else bool(chosen)


def engine_options(*chosen: Option, **overrides: Mapping[str, Any]) -> Callable[[F], F]:
    """Add the ``chosen`` options (default: :data:`ENGINE_OPTIONS`) as one ``engine`` argument.

    ``overrides`` change one option's settings for this command, by parameter name:
    ``engine_options(weights, tta, weights={"required": True}, tta={"default": "d4"})``.
    """
    options = chosen or ENGINE_OPTIONS
    names = [o.name for o in options]
    unknown = set(overrides) - set(names)
    if unknown:
        raise TypeError(f"overrides for options not chosen: {sorted(unknown)}")

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            engine = EngineArgs({name: kwargs.pop(name) for name in names}, options)
            return command(engine=engine, **kwargs)

        decorated: Callable[..., Any] = wrapper
        for opt in reversed(options):
            decorated = opt(**overrides.get(opt.name, {}))(decorated)
        return decorated  # type: ignore[return-value]

    return decorate
