"""The one place a configured engine is built from a checkpoint and the user's options.

The CLI, the service's jobs and the training tools all describe what the user chose as
:class:`EngineOptions` (``None`` meaning "the default") and get back an :class:`Engine` whose
predictor carries the resolved settings (device, backend, batch size, threshold), so every
default is decided here once and the provenance records what actually ran.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, cast

from sanchari_processes.config import (
    DEFAULT_SIMPLIFY_M,
    BackendName,
    DeviceName,
    InferenceConfig,
    VectorizeConfig,
)
from sanchari_processes.errors import InvalidInputError

if TYPE_CHECKING:
    from sanchari_processes.inference.backends import Runner, RunnerSpec
    from sanchari_processes.inference.checkpoint import LoadedModel, ModelMetadata
    from sanchari_processes.inference.predictor import Predictor

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineOptions:
    """What the user chose; ``None`` fields take the checkpoint's or the device's default."""

    weights: Path
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    threshold: float | None = None
    simplify_m: float = DEFAULT_SIMPLIFY_M
    #: Where exported models and compiled code are cached (``None``: the user cache folder).
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise InvalidInputError(f"threshold must be within 0..1, got {self.threshold}")
        if not self.simplify_m >= 0:
            raise InvalidInputError(f"simplify_m must be >= 0, got {self.simplify_m}")


@dataclass(frozen=True)
class Engine:
    """A predictor on its backend plus the vectorizer settings: all a run needs."""

    predictor: Predictor
    vectorize: VectorizeConfig

    @property
    def metadata(self) -> ModelMetadata:
        return self.predictor.metadata


def build_predictor(options: EngineOptions) -> Predictor:
    """The predictor ``options`` describe, its runner loaded once per process."""
    from sanchari_processes.inference import backends
    from sanchari_processes.inference.checkpoint import checkpoint_paths, read_metadata
    from sanchari_processes.inference.predictor import Predictor

    icfg = options.inference
    metadata = read_metadata(options.weights)
    device = backends.resolve_device(icfg.device)
    backend = backends.resolve_backend(icfg.backend, device, precision=icfg.precision)
    batch = icfg.batch_size or backends.default_batch_size(device)
    cache_dir = _cache_dir(options.cache_dir)
    weights, _ = checkpoint_paths(options.weights)
    spec = backends.RunnerSpec(
        weights=weights.resolve(),
        backend=backend,
        device=device,
        patch_size=icfg.patch_size,
        batch_size=batch,
        precision=backends.effective_precision(icfg.precision, backend, device, metadata.exports),
        cache_dir=cache_dir,
        threads=_threads(),
    )
    runner = _open_runner(spec, fallback=icfg.backend == "auto", requested=icfg.precision)
    resolved = replace(
        icfg,
        device=cast(DeviceName, device),
        backend=cast(BackendName, runner.name),
        batch_size=batch,
    )
    return Predictor(runner, metadata, resolved)


def build_engine(options: EngineOptions) -> Engine:
    """Predictor plus vectorizer settings, with the checkpoint's threshold unless overridden."""
    predictor = build_predictor(options)
    threshold = predictor.metadata.threshold if options.threshold is None else options.threshold
    vectorize = VectorizeConfig(
        threshold=threshold,
        simplify_m=options.simplify_m,
        jit_cache=_cache_dir(options.cache_dir) / "numba",
    )
    return Engine(predictor, vectorize)


def _open_runner(spec: RunnerSpec, *, fallback: bool, requested: str) -> Runner:
    """The cached runner; an ``auto`` choice whose runtime cannot start falls back to torch
    (for the float precisions torch runs here, ``requested`` being the user's: an int8 that
    ``auto`` chose becomes torch's float; an int8 or CPU fp16 asked for fails rather than
    change)."""
    from sanchari_processes.inference import backends

    try:
        return _runner_cached(spec, stat_key(spec.weights))
    except (ImportError, OSError, RuntimeError) as exc:
        if (
            not fallback
            or spec.backend == "torch"
            or not backends.installed("torch")
            or not backends.runs("torch", spec.device, requested)
        ):
            raise
        LOGGER.warning("%s could not start (%s); using torch", spec.backend, exc)
        torch_spec = replace(spec, backend="torch", precision=requested)
        return _runner_cached(torch_spec, stat_key(spec.weights))


def stat_key(path: Path) -> tuple[int, int]:
    """``(mtime_ns, size)``: a replaced checkpoint gets a new runner."""
    stat = path.stat()
    return (stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _runner_cached(spec: RunnerSpec, weights_stat: tuple[int, int]) -> Runner:
    """One runner per spec and weights file version per process (workers reuse it per job)."""
    del weights_stat  # part of the key only: a replaced checkpoint is loaded again
    from sanchari_processes.inference.backends import open_runner

    return open_runner(spec)


def clear_runner_cache() -> None:
    """Forget loaded runners (tests; or to free memory)."""
    _runner_cached.cache_clear()


def _cache_dir(cache_dir: Path | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    from sanchari_processes.settings import default_cache_dir

    return default_cache_dir()


def _threads() -> int | None:
    """Threads per runtime: ``OMP_NUM_THREADS`` when set (as torch reads it), else the default."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def torch_predictor(loaded: LoadedModel, config: InferenceConfig) -> Predictor:
    """A predictor on an already loaded torch model (tools that also save or inspect it)."""
    from sanchari_processes.inference import backends
    from sanchari_processes.inference.backends.torch_runner import TorchRunner
    from sanchari_processes.inference.predictor import Predictor

    device = loaded.device.type
    batch = config.batch_size or backends.default_batch_size(device)
    spec = backends.RunnerSpec(
        weights=loaded.path,
        backend="torch",
        device=device,
        patch_size=config.patch_size,
        batch_size=batch,
    )
    resolved = replace(config, device=device, backend="torch", batch_size=batch)  # type: ignore[arg-type]
    return Predictor(TorchRunner(loaded, spec), loaded.metadata, resolved)
