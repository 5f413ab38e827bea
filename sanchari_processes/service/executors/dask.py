"""Jobs on a Dask cluster: the :class:`~sanchari_processes.service.executors.base.JobExecutor`
for ``SANCHARI_DASK_SCHEDULER``.

Each job is one task (``Client.submit``) with a key derived from its id, kept with the job in
the store. Once it runs, the task *publishes* itself on the scheduler under that key, so it
outlives the client that submitted it: a web server that restarts finds it again
(:meth:`DaskExecutor.attach`) instead of failing it, and its result waits there until
collected. (The worker publishes, not the client: only then is the task surely known to the
scheduler. A task still queued when its server stops is dropped with that server's client,
and the job, still ``accepted`` in the store, is queued again by the next server.) Workers
run the same :func:`~sanchari_processes.service.executors.base.run_job` as local worker
processes; the model is built once per worker process and kept (``build_engine``'s cache, keyed
by the weights file and its size and time).

Progress travels in a per-job distributed ``Variable`` (last value wins, so a re-attached server
reads it too); a dismissed job's ``Event`` is set and the task stops at its next progress step.
A worker lost mid-job makes the scheduler run the task again elsewhere; once it has lost too
many (``distributed.scheduler.allowed-failures``) the job fails cleanly, never left running.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sanchari_processes.errors import BackendUnavailableError, QueueFullError
from sanchari_processes.service.executors.base import (
    JobCancelled,
    JobFailure,
    JobListener,
    Runner,
    run_job,
)

LOGGER = logging.getLogger(__name__)

#: How often the watcher looks at finished tasks, and at each running job's progress (s).
_TICK_S, _PROGRESS_POLL_S = 0.2, 0.5
#: Least time between two looks at a job's cancel flag, on the worker (s).
_CANCEL_CHECK_S = 0.5
#: Seconds to wait for the scheduler when connecting.
_CONNECT_TIMEOUT_S = 10
#: Why a job the cluster forgot has no results (its scheduler restarted): resubmit it.
LOST = JobFailure("JobInterrupted", 410, "the cluster lost this job; submit it again")


class ExecutorUnavailableError(BackendUnavailableError):
    """The Dask scheduler cannot be reached."""


def task_key(job_id: str) -> str:
    return f"sanchari-job-{job_id}"


def _progress_name(job_id: str) -> str:
    return f"sanchari-progress-{job_id}"


def _cancel_name(job_id: str) -> str:
    return f"sanchari-cancel-{job_id}"


def run_task(job: Any, runner: Runner) -> tuple[str, Any]:
    """The task a worker runs: the job, with progress out and the cancel flag in."""
    from distributed import Event, Future, Variable, get_client

    client = get_client()
    key = task_key(job.job_id)
    client.publish_dataset(Future(key, client=client), name=key, override=True)
    progress = Variable(_progress_name(job.job_id), client=client)
    cancel = Event(_cancel_name(job.job_id), client=client)
    last_check = [time.monotonic()]

    def check() -> None:
        if time.monotonic() - last_check[0] < _CANCEL_CHECK_S:
            return
        last_check[0] = time.monotonic()
        if cancel.is_set():
            cancel.clear()
            raise JobCancelled

    progress.set((0.0, None))  # "started"
    outcome = run_job(job, runner, lambda f, stage: progress.set((f, stage)), check)
    if outcome[0] == "cancelled":  # nobody collects it
        with contextlib.suppress(Exception):
            client.unpublish_dataset(key)
    return outcome


@dataclass
class _Watched:
    """A job this server follows: its future, and what was last reported of it."""

    future: Any
    key: str
    started: bool = False
    last: Any = None
    polled: float = field(default=0.0)


class DaskExecutor:
    """Runs jobs on a Dask cluster (implements :class:`JobExecutor`; state: client, watched)."""

    reattaches = True

    def __init__(
        self,
        listener: JobListener,
        runner: Runner,
        scheduler: str,
        *,
        queue_size: int = 16,
        connect_timeout_s: float = _CONNECT_TIMEOUT_S,
    ) -> None:
        self._listener = listener
        self._runner = runner
        self._scheduler = scheduler
        self._queue_size = queue_size
        self._connect_timeout_s = connect_timeout_s
        self.owner = f"dask:{scheduler}"
        self._client: Any = None
        self._watched: dict[str, _Watched] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        try:
            from distributed import Client
        except ImportError:
            raise ExecutorUnavailableError(
                "SANCHARI_DASK_SCHEDULER needs dask.distributed: "
                "pip install 'sanchari-processes[dask]'"
            ) from None
        try:
            self._client = Client(
                self._scheduler, timeout=self._connect_timeout_s, set_as_default=False
            )
        except OSError as exc:
            raise ExecutorUnavailableError(
                f"cannot reach the Dask scheduler at {self._scheduler}: {exc}"
            ) from None
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="sanchari-dask", daemon=True)
        self._thread.start()

    def submit(self, job: Any, *, force: bool = False) -> str | None:
        from distributed import Variable

        if self._client is None or self._stop.is_set():
            raise QueueFullError("the job executor is not running")
        with self._lock:
            if not force and len(self._watched) >= self._capacity() + self._queue_size:
                raise QueueFullError(
                    f"the cluster is busy and {len(self._watched)} job(s) are running or "
                    "queued; retry later"
                )
            key = task_key(job.job_id)
            try:
                Variable(_progress_name(job.job_id), client=self._client).set(None)
                future = self._client.submit(run_task, job, self._runner, key=key, pure=False)
            except (OSError, TimeoutError) as exc:
                LOGGER.error("cannot submit job %s to %s: %s", job.job_id, self._scheduler, exc)
                raise QueueFullError("the cluster cannot be reached; retry later") from None
            self._watched[job.job_id] = _Watched(future, key)
        return key

    def attach(self, job_id: str, task: str) -> bool:
        if self._client is None:
            return False
        try:
            future = self._client.get_dataset(task)
        except KeyError:
            return False
        with self._lock:
            self._watched[job_id] = _Watched(future, task)
        return True

    def cancel(self, job_id: str) -> bool:
        """Stop the job's task wherever it is, even one another server submitted (the key
        follows from the job id): queued, it is dropped; running, it stops at its next
        progress step (its cancel flag is set)."""
        if self._client is None:
            return False
        from distributed import Event, Future

        with self._lock:
            watched = self._watched.pop(job_id, None)
        key = task_key(job_id)
        Event(_cancel_name(job_id), client=self._client).set()
        item = watched or _Watched(Future(key, client=self._client), key)
        self._forget(job_id, item)
        item.future.cancel()
        return watched is not None

    def active(self) -> set[str]:
        with self._lock:
            return set(self._watched)

    def shutdown(self) -> None:
        """Stop watching; jobs keep running on the cluster for the next server to re-attach."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close(timeout=5)
            self._client = None
        with self._lock:
            self._watched.clear()

    # -- internals ------------------------------------------------------------------------------
    def _capacity(self) -> int:
        """Task slots of the cluster's workers (threads)."""
        try:
            return sum(self._client.nthreads().values())
        except Exception:
            return 0

    def _watch(self) -> None:
        while not self._stop.wait(_TICK_S):
            with self._lock:
                watched = list(self._watched.items())
            for job_id, item in watched:
                try:
                    if item.future.done():
                        self._settle(job_id, item)
                    elif time.monotonic() - item.polled >= _PROGRESS_POLL_S:
                        self._poll(job_id, item)
                except Exception:
                    LOGGER.exception("following job %s failed", job_id)

    def _poll(self, job_id: str, item: _Watched) -> None:
        """Report a running job's newest progress (read from its Variable)."""
        from distributed import Variable

        item.polled = time.monotonic()
        try:
            value = Variable(_progress_name(job_id), client=self._client).get(timeout=0.1)
        except TimeoutError:
            return  # not started yet
        if value is None or value == item.last:
            return
        if not item.started:
            item.started = True
            self._listener.job_started(job_id)
        item.last = value
        fraction, stage = value
        if fraction > 0 or stage:
            self._listener.job_progress(job_id, float(fraction), stage)

    def _settle(self, job_id: str, item: _Watched) -> None:
        """A finished task: report its outcome once, and forget it on the cluster."""
        with self._lock:
            if self._watched.get(job_id) is not item:
                return  # cancelled meanwhile
            del self._watched[job_id]
        kind, payload = self._outcome(job_id, item.future)
        if not item.started and kind == "succeeded":
            self._listener.job_started(job_id)
        if kind == "succeeded":
            self._listener.job_succeeded(job_id, Path(payload))
        elif kind == "failed":
            self._listener.job_failed(job_id, payload)
        self._forget(job_id, item)

    def _outcome(self, job_id: str, future: Any) -> tuple[str, Any]:
        from distributed.scheduler import KilledWorker

        status = future.status
        if status == "finished":
            return future.result(timeout=30)
        if status == "error":
            exc = future.exception(timeout=30)
            if isinstance(exc, KilledWorker):
                LOGGER.error("job %s: its workers kept dying (%s)", job_id, exc)
                return (
                    "failed",
                    JobFailure.internal("the worker running this job stopped unexpectedly"),
                )
            LOGGER.error("job %s: task error %r", job_id, exc)
            return ("failed", JobFailure.internal())
        LOGGER.error("job %s: the cluster reports its task as %s", job_id, status)
        return ("failed", LOST)

    def _forget(self, job_id: str, item: _Watched) -> None:
        """Drop the job's published task and progress on the scheduler."""
        from distributed import Variable

        with contextlib.suppress(Exception):
            self._client.unpublish_dataset(item.key)
        with contextlib.suppress(Exception):
            Variable(_progress_name(job_id), client=self._client).delete()
