"""What every executor shares: the :class:`JobExecutor` interface, job events and failures,
owner tags, and :func:`run_job` (how a job's outcome and progress are reported from a worker).

An executor runs jobs outside the web request: the local pool of worker processes
(:mod:`~sanchari_processes.service.executors.local`) or a Dask cluster
(:mod:`~sanchari_processes.service.executors.dask`). Each tags the jobs it holds in the store
with its ``owner``, so that recovery can tell whose jobs are still held (:func:`owner_alive`).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sanchari_processes.errors import SanchariError

LOGGER = logging.getLogger(__name__)

#: Progress of a job: ``progress(fraction, stage=None)``; ``stage`` names what it is doing.
Progress = Callable[..., None]
#: A worker-side job runner: ``run(job, progress) -> result path`` (module-level, picklable).
Runner = Callable[[Any, Progress], Path]
#: Least time between two progress events of one job (seconds), unless the stage changes.
PROGRESS_INTERVAL_S = 0.2
#: Pools alive in this process, by owner tag (see :func:`owner_alive`).
_LIVE_OWNERS: set[str] = set()


class JobCancelled(BaseException):
    """Raised inside a runner (from its progress callback) when its job was dismissed.

    A ``BaseException`` so that no ``except Exception`` inside the engine swallows it.
    """


@dataclass(frozen=True)
class JobFailure:
    """Why a job failed, as the OGC exception it answers with (never internal text)."""

    code: str
    status: int
    message: str

    @classmethod
    def from_error(cls, exc: SanchariError) -> JobFailure:
        return cls(exc.ogc_code, exc.http_status, exc.message)

    @classmethod
    def internal(cls, message: str = "internal error while running the job") -> JobFailure:
        return cls("NoApplicableCode", 500, message)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "status": self.status, "message": self.message}


class JobListener(Protocol):
    """Receives job events (called from the executor's event thread)."""

    def job_started(self, job_id: str) -> None: ...

    def job_progress(self, job_id: str, fraction: float, stage: str | None = None) -> None: ...

    def job_succeeded(self, job_id: str, location: Path) -> None: ...

    def job_failed(self, job_id: str, failure: JobFailure) -> None: ...

    def job_waiting(self, job_id: str, message: str) -> None:
        """The job waits for its executor (a cluster that cannot be reached): say why."""

    def job_lost(self, job_id: str, attempts: int) -> None:
        """The cluster lost the job after ``attempts`` submissions (its scheduler restarted):
        submit it again (``attempt=attempts + 1``), or fail it."""


class JobExecutor(Protocol):
    """Runs jobs outside the web request. Jobs need a ``job_id`` attribute.

    ``owner`` tags the jobs this executor holds in the store; ``reattaches`` says whether a new
    executor with the same tag can pick up jobs a previous one left running (a cluster can).
    """

    owner: str
    reattaches: bool

    def start(self) -> None: ...

    def submit(self, job: Any, *, force: bool = False, attempt: int = 1) -> str | None:
        """Queue ``job``; its task key (kept with the job to re-attach), or ``None``.

        Raises :class:`QueueFullError` when no capacity is left. ``force`` queues beyond the
        bound: for jobs already accepted (requeued after a restart, or just planned).
        ``attempt`` counts the submissions of a job the cluster lost (see ``job_lost``).
        """

    def attach(self, job_id: str, task: str) -> bool:
        """Follow a job a previous server left running; ``False`` when it is gone."""

    def cancel(self, job_id: str) -> bool:
        """Stop a queued or running job; ``False`` when it is not here (already finished)."""

    def active(self) -> set[str]:
        """Ids of the jobs queued or running here."""

    def shutdown(self) -> None: ...


def local_owner() -> str:
    """A fresh owner tag for a pool of this process: ``local:HOST:PID:TOKEN``."""
    return f"local:{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def claim_owner(owner: str) -> None:
    """Mark ``owner`` (a tag of this process) as alive until :func:`release_owner`."""
    _LIVE_OWNERS.add(owner)


def release_owner(owner: str) -> None:
    _LIVE_OWNERS.discard(owner)


def owner_alive(owner: str, heartbeats: Collection[str] | None = None) -> bool:
    """Whether the server holding jobs tagged ``owner`` may still be running.

    Clusters settle their own jobs: presumed alive. Where the store keeps heartbeats (a shared
    one; ``heartbeats`` are the owners beating) a local pool is alive while it beats, on any
    host. Without them, it is gone when its process on this host is (or, in this process, when
    it was shut down); pools on other hosts are presumed alive.
    """
    kind, _, rest = owner.partition(":")
    if kind != "local":
        return True
    if heartbeats is not None:
        return owner in heartbeats
    host, _, pid_token = rest.partition(":")
    pid_text, _, _ = pid_token.partition(":")
    if host != socket.gethostname():
        return True
    if not pid_text.isdigit():
        return False
    if int(pid_text) == os.getpid():
        return owner in _LIVE_OWNERS
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ProgressThrottle:
    """Passes on a job's progress at most every :data:`PROGRESS_INTERVAL_S` (and each new
    stage, and the end), clamped to 0..1, so a fast engine never floods the events."""

    def __init__(self, emit: Callable[[float, str | None], None]) -> None:
        self._emit = emit
        self._time = 0.0
        self._fraction = -1.0
        self._stage: str | None = None

    def __call__(self, fraction: float, stage: str | None = None) -> None:
        moment = time.monotonic()
        new_stage = stage is not None and stage != self._stage
        due = fraction - self._fraction >= 0.01 and moment - self._time >= PROGRESS_INTERVAL_S
        if fraction >= 1.0 or new_stage or due:
            self._time, self._fraction = moment, fraction
            self._stage = stage or self._stage
            self._emit(min(max(fraction, 0.0), 1.0), self._stage)


def run_job(
    job: Any,
    runner: Runner,
    emit: Callable[[float, str | None], None],
    check: Callable[[], None] = lambda: None,
) -> tuple[str, Any]:
    """Run ``job`` in a worker: ``("succeeded", path)``, ``("failed", JobFailure)`` or
    ``("cancelled", None)``. ``check`` is called at each progress step and may raise
    :class:`JobCancelled` to stop the job there."""
    throttle = ProgressThrottle(emit)

    def progress(fraction: float, stage: str | None = None) -> None:
        check()
        throttle(fraction, stage)

    try:
        location = runner(job, progress)
    except JobCancelled:
        LOGGER.info("job %s stopped: it was dismissed", job.job_id)
        return ("cancelled", None)
    except SanchariError as exc:
        LOGGER.info("job %s failed: %s", job.job_id, exc.message)
        return ("failed", JobFailure.from_error(exc))
    except Exception:
        LOGGER.exception("job %s crashed", job.job_id)
        return ("failed", JobFailure.internal())
    return ("succeeded", str(location))
