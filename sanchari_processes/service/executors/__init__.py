"""Where jobs run: the executor is chosen by configuration in this one place.

``dask_scheduler`` set (``SANCHARI_DASK_SCHEDULER``): a Dask cluster
(:mod:`~sanchari_processes.service.executors.dask`, imported only then); otherwise the local
pool of worker processes (:mod:`~sanchari_processes.service.executors.local`). Both implement
:class:`~sanchari_processes.service.executors.base.JobExecutor`. New kinds register a builder
here; the manager never names one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sanchari_processes.service.executors.base import JobExecutor, JobListener, Runner
from sanchari_processes.service.executors.local import LocalProcessPool

if TYPE_CHECKING:
    from sanchari_processes.service.settings import ManagerSettings

Builder = Callable[["ManagerSettings", JobListener, Runner], JobExecutor]


def _local(settings: ManagerSettings, listener: JobListener, runner: Runner) -> JobExecutor:
    return LocalProcessPool(
        listener,
        runner,
        workers=settings.workers,
        queue_size=settings.queue_size,
        threads_per_worker=settings.torch_threads,
    )


def _dask(settings: ManagerSettings, listener: JobListener, runner: Runner) -> JobExecutor:
    from sanchari_processes.service.executors.dask import DaskExecutor

    assert settings.dask_scheduler is not None
    return DaskExecutor(listener, runner, settings.dask_scheduler, queue_size=settings.queue_size)


EXECUTORS: dict[str, Builder] = {"local": _local, "dask": _dask}


def executor_kind(settings: ManagerSettings) -> str:
    return "dask" if settings.dask_scheduler else "local"


def make_executor(settings: ManagerSettings, listener: JobListener, runner: Runner) -> JobExecutor:
    """The executor the settings ask for (not started)."""
    return EXECUTORS[executor_kind(settings)](settings, listener, runner)
