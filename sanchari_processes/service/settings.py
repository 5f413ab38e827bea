"""Typed settings of the service, parsed once from pygeoapi's configuration mapping.

pygeoapi hands each plugin its own block of ``pygeoapi-config.yml`` (environment variables are
interpolated there, at the edge, by pygeoapi's loader); these dataclasses turn those loose
mappings into checked values so nothing downstream reads the environment or guesses types.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sanchari_processes.adapt.config import MAX_MINUTES, MIN_MINUTES, AdaptConfig
from sanchari_processes.config import BACKENDS, PRECISIONS, TTA_MODES, InferenceConfig
from sanchari_processes.engine.build import EngineOptions
from sanchari_processes.errors import SanchariError, SettingsError
from sanchari_processes.netguard import NetPolicy
from sanchari_processes.settings import SHIPPED_WEIGHTS
from sanchari_processes.sources.base import SourceSettings
from sanchari_processes.sources.gee.credentials import GeeSettings
from sanchari_processes.sources.settings import REMOTE_KEYS, RemoteSettings

#: 4096 x 4096 source pixels: ~50 MB of RGB, a few minutes on a CPU.
DEFAULT_MAX_PIXELS = 4096 * 4096


@dataclass(frozen=True)
class EngineSettings:
    """What a worker needs to run the model (travels with every job; picklable)."""

    weights: Path = SHIPPED_WEIGHTS
    device: str = "auto"
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    #: Exported models and compiled code (``None``: the user cache folder).
    cache_dir: Path | None = None

    def options(self, request: Any) -> EngineOptions:
        """The engine options of one request (its tta, threshold and simplify_m) on these."""
        inference = self.inference
        if request.tta:
            inference = replace(inference, tta=request.tta)
        return EngineOptions(
            weights=self.weights,
            inference=inference,
            threshold=request.threshold,
            simplify_m=request.simplify_m,
            cache_dir=self.cache_dir,
        )


@dataclass(frozen=True)
class ProcessSettings:
    """A road-extraction processor: its imagery sources, their settings, limits and defaults."""

    #: Imagery sources, by registry name, in the order they are asked.
    sources: tuple[str, ...] = ("catalogue", "stac", "cog", "upload")
    geotiff_dir: Path = Path("geotiffs")
    engine: EngineSettings = field(default_factory=EngineSettings)
    max_pixels: int = DEFAULT_MAX_PIXELS
    default_window_size: int = 1024
    remote: RemoteSettings = field(default_factory=RemoteSettings)
    gee: GeeSettings = field(default_factory=GeeSettings)
    #: The models folder (adapted models, one sub-folder per id); ``None``: no ``model`` input.
    models_dir: Path | None = None

    def __post_init__(self) -> None:
        _check_limits(self.max_pixels, self.default_window_size)

    @classmethod
    def from_mapping(
        cls,
        block: Mapping[str, Any],
        default_sources: tuple[str, ...] = ("catalogue", "stac", "cog"),
    ) -> ProcessSettings:
        """Parse a processor block of ``pygeoapi-config.yml`` (unknown keys are errors)."""
        known = _ENGINE_KEYS | {"geotiff_dir", "sources", "gee", "models_dir"} | REMOTE_KEYS
        _reject_unknown(block, known, "processor")
        sources = block.get("sources") or default_sources
        if isinstance(sources, str):
            sources = [s.strip() for s in sources.split(",") if s.strip()]
        return cls(
            sources=tuple(str(s) for s in sources),
            geotiff_dir=Path(str(block.get("geotiff_dir") or "geotiffs")).expanduser(),
            engine=_engine_settings(block),
            max_pixels=_int(block, "max_pixels", DEFAULT_MAX_PIXELS),
            default_window_size=_int(block, "default_window_size", 1024),
            remote=RemoteSettings.from_mapping(block),
            gee=_gee_settings(block.get("gee") or {}),
            models_dir=_folder(block.get("models_dir")),
        )

    def source_settings(self) -> SourceSettings:
        return SourceSettings(
            max_pixels=self.max_pixels,
            default_window_size=self.default_window_size,
            geotiff_dir=self.geotiff_dir,
            remote=self.remote,
            gee=self.gee,
        )


def _folder(value: Any) -> Path | None:
    """A configured folder, absolute (workers may start elsewhere); ``None`` when unset."""
    text = str(value or "").strip()
    return Path(text).expanduser().absolute() if text else None


def models_dir_of(config: Mapping[str, Any]) -> Path | None:
    """The models folder of a whole configuration: the first process block that names one
    (the adaptation process's, where there is one); ``None`` when none does."""
    blocks = [
        resource.get("processor") or {}
        for resource in (config.get("resources") or {}).values()
        if isinstance(resource, Mapping) and resource.get("type") == "process"
    ]
    blocks.sort(key=lambda b: not str(b.get("name", "")).endswith("ModelAdaptationProcessor"))
    for block in blocks:
        folder = _folder(block.get("models_dir"))
        if folder is not None:
            return folder
    return None


#: The adaptation process's own settings (beside a road process's).
ADAPT_KEYS = {"max_minutes", "adaptation"}
#: The server's cap on an adaptation's budget unless configured (minutes).
DEFAULT_MAX_MINUTES = 10.0


@dataclass(frozen=True)
class AdaptationSettings:
    """The ``road-model-adaptation`` processor: imagery and model as a road process, plus the
    budget cap and the adaptation's defaults (any :class:`AdaptConfig` field but the budget)."""

    process: ProcessSettings
    #: Largest ``minutes`` a request may ask for (within the adaptation's own limits).
    max_minutes: float = DEFAULT_MAX_MINUTES
    #: The adaptation's defaults (its ``minutes`` is the default budget).
    defaults: AdaptConfig = field(default_factory=AdaptConfig)

    @classmethod
    def from_mapping(
        cls, block: Mapping[str, Any], default_sources: tuple[str, ...]
    ) -> AdaptationSettings:
        process = ProcessSettings.from_mapping(
            {k: v for k, v in block.items() if k not in ADAPT_KEYS}, default_sources
        )
        if process.models_dir is None:
            raise SettingsError("the adaptation process needs models_dir (SANCHARI_MODELS_DIR)")
        cap = _float(block, "max_minutes", DEFAULT_MAX_MINUTES)
        if not MIN_MINUTES <= cap <= MAX_MINUTES:
            raise SettingsError(
                f"max_minutes must be within {MIN_MINUTES:g}..{MAX_MINUTES:g}, got {cap:g}"
            )
        overrides = dict(block.get("adaptation") or {})
        allowed = {f.name for f in fields(AdaptConfig)} - {"minutes", "finetune", "road_width_m"}
        _reject_unknown(overrides, allowed, "adaptation")
        overrides.setdefault("tta", process.engine.inference.tta)
        if overrides["tta"] not in TTA_MODES:
            raise SettingsError(f"adaptation: tta must be one of {', '.join(TTA_MODES)}")
        try:
            defaults = AdaptConfig(minutes=min(AdaptConfig().minutes, cap), **overrides)
        except (TypeError, ValueError, SanchariError) as exc:
            raise SettingsError(f"adaptation settings: {exc}") from None
        return cls(process=process, max_minutes=cap, defaults=defaults)


def _float(block: Mapping[str, Any], key: str, default: float) -> float:
    value = block.get(key)
    if value in (None, ""):
        return default
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        raise SettingsError(f"setting {key} must be a number, got {value!r}") from None
    if number != number:
        raise SettingsError(f"setting {key} must be a number, got {value!r}")
    return number


def _gee_settings(block: Mapping[str, Any]) -> GeeSettings:
    try:
        return GeeSettings.from_mapping(block)
    except SettingsError:
        raise
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


#: Processor settings every process takes: the model, its device and the request limits.
_ENGINE_KEYS = {"name", "weights", "device", "backend", "precision", "cache_dir", "inference"}
_ENGINE_KEYS |= {"max_pixels", "default_window_size"}


def _engine_settings(block: Mapping[str, Any]) -> EngineSettings:
    weights = block.get("weights") or None
    cache_dir = block.get("cache_dir") or None
    inference = dict(block.get("inference") or {})
    _reject_unknown(inference, {f.name for f in fields(InferenceConfig)}, "inference")
    device = str(block.get("device") or "auto")
    backend = str(block.get("backend") or "auto")
    if backend not in BACKENDS:
        raise SettingsError(
            f"setting backend must be one of {', '.join(BACKENDS)}, got {backend!r}"
        )
    precision = str(block.get("precision") or "auto")
    if precision not in PRECISIONS:
        raise SettingsError(
            f"setting precision must be one of {', '.join(PRECISIONS)}, got {precision!r}"
        )
    try:
        base = InferenceConfig(device=device, backend=backend, precision=precision)  # type: ignore[arg-type]
        config = replace(base, **inference)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"inference settings: {exc}") from None
    return EngineSettings(
        weights=Path(str(weights)).expanduser() if weights else SHIPPED_WEIGHTS,
        device=device,
        inference=config,
        cache_dir=Path(str(cache_dir)).expanduser() if cache_dir else None,
    )


def _check_limits(max_pixels: int, default_window_size: int) -> None:
    if max_pixels < 64 * 64:
        raise SettingsError("max_pixels must be at least 4096")
    if not default_window_size >= 64 or default_window_size**2 > max_pixels:
        raise SettingsError("default_window_size must be >= 64 and fit within max_pixels")


@dataclass(frozen=True)
class ManagerSettings:
    """The job manager: where jobs live and how many run at once."""

    store_dir: Path = Path("sanchari-jobs")
    #: Worker processes; each holds one copy of the model.
    workers: int = 1
    #: Jobs waiting beyond the busy workers before new ones get 503.
    queue_size: int = 16
    #: ``Retry-After`` seconds sent with 503 answers.
    retry_after_s: int = 30
    #: torch threads per worker (default: the CPU cores shared among the workers).
    threads_per_worker: int = 0
    #: Longest synchronous execution; past it the job stops and the caller is told to use async.
    sync_timeout_s: int = 120
    #: Seconds a finished job (status and results) is kept; then it is deleted.
    job_retention_s: int = 7 * 24 * 3600
    #: Most finished jobs kept; the oldest go first beyond it.
    max_jobs: int = 10_000
    #: Largest request body accepted (bytes); larger ones get 413.
    max_body_bytes: int = 1024 * 1024
    #: Where callbacks (``subscriber`` URLs) may go: the remote-imagery address guard.
    callbacks: NetPolicy = field(default_factory=NetPolicy)
    #: Attempts per success/failure callback (waiting 1, 2, 4 … s between them).
    callback_retries: int = 4
    #: A ``postgresql://`` URL: jobs in PostgreSQL, shareable by several servers (else SQLite).
    jobs_db: str | None = None
    #: A Dask scheduler (``tcp://HOST:PORT``): jobs run on its workers (else local processes).
    dask_scheduler: str | None = None
    #: With ``jobs_db``: how often a server renews its heartbeat and settles the jobs of servers
    #: whose heartbeat stopped (seconds).
    heartbeat_s: int = 5
    #: With ``jobs_db``: a server silent this long is gone; its jobs are settled (seconds).
    server_timeout_s: int = 30
    #: With ``dask_scheduler``: times a job the cluster lost (its scheduler restarted) is
    #: submitted again before it fails.
    cluster_retries: int = 3

    def __post_init__(self) -> None:
        if self.workers < 1 or self.queue_size < 0:
            raise SettingsError("need workers >= 1 and queue_size >= 0")
        if self.sync_timeout_s < 1 or self.job_retention_s < 0 or self.max_jobs < 1:
            raise SettingsError("need sync_timeout_s >= 1, job_retention_s >= 0, max_jobs >= 1")
        if self.max_body_bytes < 1024:
            raise SettingsError("max_body_bytes must be at least 1024")
        if self.heartbeat_s < 1 or self.server_timeout_s < 2 * self.heartbeat_s:
            raise SettingsError("need heartbeat_s >= 1 and server_timeout_s >= 2 * heartbeat_s")
        if not 0 <= self.cluster_retries <= 100:
            raise SettingsError("cluster_retries must be within 0..100")
        if not 1 <= self.callback_retries <= 10:
            raise SettingsError("callback_retries must be within 1..10")
        if self.jobs_db and not _PG_URL.match(self.jobs_db):
            raise SettingsError(
                "SANCHARI_JOBS_DB (jobs_db) must be a postgresql://USER:PASSWORD@HOST:PORT/DB URL"
            )
        if self.dask_scheduler and not _SCHEDULER.match(self.dask_scheduler):
            raise SettingsError(
                "SANCHARI_DASK_SCHEDULER (dask_scheduler) must be a scheduler address like "
                f"tcp://HOST:PORT, got {self.dask_scheduler!r}"
            )

    def job_dir(self, job_id: str) -> Path:
        """A job's folder: its results, and its scratch (``work/``) while it runs."""
        return self.store_dir / "jobs" / job_id

    @property
    def torch_threads(self) -> int:
        if self.threads_per_worker > 0:
            return self.threads_per_worker
        return max(1, (os.cpu_count() or 1) // self.workers)

    @classmethod
    def from_mapping(cls, block: Mapping[str, Any]) -> ManagerSettings:
        """Parse ``server.manager`` of ``pygeoapi-config.yml``."""
        known = {"name", "connection", "output_dir", "processes", "workers", "queue_size"}
        known |= {"retry_after_s", "threads_per_worker", "sync_timeout_s", "job_retention_s"}
        known |= {"max_jobs", "max_body_bytes", "remote_allow", "remote_timeout_s"}
        known |= {"callback_retries", "jobs_db", "dask_scheduler", "heartbeat_s"}
        known |= {"server_timeout_s", "cluster_retries"}
        _reject_unknown(block, known, "server.manager")
        store = block.get("output_dir") or "sanchari-jobs"
        defaults = cls()
        remote = {k: block[k] for k in ("remote_allow", "remote_timeout_s") if k in block}
        return cls(
            store_dir=Path(str(store)).expanduser().absolute(),
            callbacks=RemoteSettings.from_mapping(remote).policy,
            jobs_db=str(block.get("jobs_db") or "").strip() or None,
            dask_scheduler=str(block.get("dask_scheduler") or "").strip() or None,
            **{
                key: _int(block, key, getattr(defaults, key))
                for key in (
                    "workers",
                    "queue_size",
                    "retry_after_s",
                    "threads_per_worker",
                    "sync_timeout_s",
                    "job_retention_s",
                    "max_jobs",
                    "max_body_bytes",
                    "callback_retries",
                    "heartbeat_s",
                    "server_timeout_s",
                    "cluster_retries",
                )
            },
        )


_PG_URL = re.compile(r"^postgres(ql)?://\S+$")
_SCHEDULER = re.compile(
    r"^(tcp|tls)://[^\s/:]+(:\d+)?/?$|^(tcp|tls)://\[[0-9a-fA-F:.]+\](:\d+)?/?$"
)


def _reject_unknown(block: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(block) - known)
    if unknown:
        raise SettingsError(f"unknown setting(s) in {where}: {', '.join(unknown)}")


def _int(block: Mapping[str, Any], key: str, default: int) -> int:
    value = block.get(key)
    if value in (None, ""):
        return default
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise SettingsError(f"setting {key} must be an integer, got {value!r}") from None


def load_config(path: Path) -> dict:
    """Read ``pygeoapi-config.yml`` with pygeoapi's loader (``${VAR:-default}`` expanded)."""
    from pygeoapi.util import yaml_load

    with open(path, encoding="utf-8") as fh:
        return yaml_load(fh)
