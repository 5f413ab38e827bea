"""Jobs on a Dask cluster: the :class:`~sanchari_processes.service.executors.base.JobExecutor`
for ``SANCHARI_DASK_SCHEDULER``.

Each job is one task (``Client.submit``) with a key derived from its id and attempt, kept with
the job in the store. Once it runs, the task *publishes* itself on the scheduler under that key,
so it outlives the client that submitted it: a web server that restarts finds it again
(:meth:`DaskExecutor.attach`) instead of failing it, and its result waits there until collected.
(The worker publishes, not the client: only then is the task surely known to the scheduler.)
Workers run the same :func:`~sanchari_processes.service.executors.base.run_job` as local worker
processes; the model is built once per worker process and kept (``build_engine``'s cache, keyed
by the weights file and its size and time).

Progress travels in a per-attempt distributed ``Variable`` (last value wins, so a re-attached
server reads it too); a dismissed job's ``Event`` is set and the task stops at its next progress
step. A worker lost mid-job makes the scheduler run the task again elsewhere; once it has lost
too many (``distributed.scheduler.allowed-failures``) the job fails cleanly.

The scheduler itself may go away (a restart, an upgrade). Nothing on a request path waits for
it: :meth:`~DaskExecutor.submit`, :meth:`~DaskExecutor.attach` and :meth:`~DaskExecutor.cancel`
only note what is to be done, and one watcher thread talks to the cluster. When the connection
is lost, the watcher tells the listener that the jobs wait (``job_waiting``), drops the client
and connects again with bounded back-off; once back, it looks for each job's task (a scheduler
that lived on still has it) and reports the ones it forgot as lost (``job_lost``): the manager
then submits them again from the store (one that had started under a new attempt key, a
bounded number of times).
Each submission writes its key to the job's folder, and the task stops when it finds another
there (:mod:`~sanchari_processes.service.executors.dask_task`): a job completes once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sanchari_processes.errors import BackendUnavailableError, QueueFullError
from sanchari_processes.service.executors.base import JobFailure, JobListener, Runner
from sanchari_processes.service.executors.dask_task import (
    ATTEMPT_FILE,
    attempt_of,
    cancel_name,
    progress_name,
    run_task,
    task_key,
)

LOGGER = logging.getLogger(__name__)

#: How often the watcher looks at finished tasks, and at each running job's progress (s).
_TICK_S, _PROGRESS_POLL_S = 0.2, 0.5
#: Seconds to wait for the scheduler when connecting.
_CONNECT_TIMEOUT_S = 10
#: Seconds between two tries to reach a scheduler that went away: doubling, up to the second.
_RETRY_S = (0.5, 5.0)
#: How often the watcher reads the cluster's worker threads (the queue's bound), in seconds.
_SLOTS_S = 2.0
#: What a job says while the scheduler cannot be reached.
WAITING = "Waiting for the Dask cluster: its scheduler cannot be reached (the job resumes then)"


class ExecutorUnavailableError(BackendUnavailableError):
    """dask.distributed is not installed."""


@dataclass
class _Watched:
    """A job this server follows: its task key, and what is to be done about it (``submit``
    its job; ``find`` its task, after a lost connection or a restart; ``follow`` its future),
    and what was last reported of it."""

    key: str
    state: str = "follow"
    job: Any = None
    future: Any = None
    started: bool = False
    last: Any = None
    polled: float = 0.0


class DaskExecutor:
    """Runs jobs on a Dask cluster (implements :class:`JobExecutor`; state: the client while
    connected, the watched jobs, the cancellations not yet sent)."""

    reattaches = True

    def __init__(
        self,
        listener: JobListener,
        runner: Runner,
        scheduler: str,
        *,
        queue_size: int = 16,
        connect_timeout_s: float = _CONNECT_TIMEOUT_S,
        retry_s: tuple[float, float] = _RETRY_S,
    ) -> None:
        self._listener = listener
        self._runner = runner
        self._scheduler = scheduler
        self._queue_size = queue_size
        self._connect_timeout_s = connect_timeout_s
        self._retry_s = retry_s
        self.owner = f"dask:{scheduler}"
        self._client: Any = None
        self._connected = threading.Event()
        self._watched: dict[str, _Watched] = {}
        #: Jobs to stop on the cluster (with what was watched of them), sent by the watcher.
        self._cancels: dict[str, _Watched | None] = {}
        self._slots = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def connected(self) -> bool:
        """Whether the scheduler is reachable (as the watcher last saw it)."""
        return self._connected.is_set()

    def start(self) -> None:
        """Connect and start watching; an unreachable scheduler is waited for, not an error
        (a server restarting during a scheduler restart keeps its jobs)."""
        if self._thread is not None:
            return
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise ExecutorUnavailableError(
                "SANCHARI_DASK_SCHEDULER needs dask.distributed: "
                "pip install 'sanchari-processes[dask]'"
            ) from None
        self._stop.clear()
        try:
            self._connect(self._connect_timeout_s)
        except OSError as exc:
            LOGGER.warning(
                "cannot reach the Dask scheduler at %s (%s): jobs wait until it can be reached",
                self._scheduler,
                exc,
            )
        self._thread = threading.Thread(target=self._watch, name="sanchari-dask", daemon=True)
        self._thread.start()

    def submit(self, job: Any, *, force: bool = False, attempt: int = 1) -> str | None:
        """Queue ``job`` (the watcher sends it to the cluster, once reachable)."""
        if self._thread is None or self._stop.is_set():
            raise QueueFullError("the job executor is not running")
        with self._lock:
            if not force and len(self._watched) >= self._slots + self._queue_size:
                raise QueueFullError(
                    f"the cluster is busy and {len(self._watched)} job(s) are running or "
                    "queued; retry later"
                )
            key = task_key(job.job_id, attempt)
            self._watched[job.job_id] = _Watched(key, "submit", job=job)
        if not self.connected:
            self._listener.job_waiting(job.job_id, WAITING)
        return key

    def attach(self, job_id: str, task: str) -> bool:
        """Follow a job a previous server left on the cluster: the watcher looks for its task
        (once the scheduler is reachable) and reports it lost when the cluster forgot it."""
        if self._thread is None:
            return False
        with self._lock:
            self._watched[job_id] = _Watched(task, "find")
        if not self.connected:
            self._listener.job_waiting(job_id, WAITING)
        return True

    def cancel(self, job_id: str) -> bool:
        """Stop the job's task wherever it is, even one another server submitted (the key
        follows from the job id): queued, it is dropped; running, it stops at its next
        progress step (its cancel flag is set). The watcher does it, once connected."""
        with self._lock:
            watched = self._watched.pop(job_id, None)
            if watched is None or watched.state != "submit":  # else never sent
                self._cancels[job_id] = watched
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
        with self._lock:
            client, self._client = self._client, None
            self._connected.clear()
            self._watched.clear()
        if client is not None:
            with contextlib.suppress(Exception):
                client.close(timeout=5)

    # -- the connection -------------------------------------------------------------------------
    def _connect(self, timeout: float) -> None:
        from distributed import Client

        client = Client(self._scheduler, timeout=timeout, set_as_default=False)
        if self._stop.is_set():  # shut down meanwhile
            with contextlib.suppress(Exception):
                client.close(timeout=5)
            return
        with self._lock:
            self._client = client
            self._connected.set()
        self._read_slots()

    def _lose_connection(self) -> None:
        """The scheduler went away: the jobs wait, each to be looked for once it is back."""
        with self._lock:
            client, self._client = self._client, None
            self._connected.clear()
            for item in self._watched.values():
                if item.state == "follow":
                    item.state, item.future = "find", None
            waiting = list(self._watched)
        LOGGER.warning(
            "lost the Dask scheduler at %s: %d job(s) wait for it", self._scheduler, len(waiting)
        )
        if client is not None:  # its own reconnection is not waited for: closed aside
            threading.Thread(target=_close_quietly, args=(client,), daemon=True).start()
        for job_id in waiting:
            self._listener.job_waiting(job_id, WAITING)

    def _read_slots(self) -> None:
        """The cluster's worker threads (kept for :meth:`submit`'s bound)."""
        with contextlib.suppress(Exception):
            self._slots = sum(self._client.nthreads().values())

    # -- the watcher ----------------------------------------------------------------------------
    def _watch(self) -> None:
        delay, retry_at, slots_at = self._retry_s[0], 0.0, 0.0
        while not self._stop.wait(_TICK_S):
            if not self.connected:
                if time.monotonic() < retry_at:
                    continue
                try:
                    self._connect(min(self._connect_timeout_s, 5.0))
                except OSError as exc:
                    LOGGER.info("the Dask scheduler at %s is still away: %s", self._scheduler, exc)
                    retry_at, delay = time.monotonic() + delay, min(2 * delay, self._retry_s[1])
                    continue
                LOGGER.warning("connected again to the Dask scheduler at %s", self._scheduler)
                delay = self._retry_s[0]
            if self._client is None or self._client.status != "running":
                self._lose_connection()
                continue
            if time.monotonic() >= slots_at:
                self._read_slots()
                slots_at = time.monotonic() + _SLOTS_S
            try:
                self._send_cancels()
                self._tick()
            except Exception:
                LOGGER.exception("following the jobs on %s failed", self._scheduler)

    def _tick(self) -> None:
        """One look at every watched job."""
        with self._lock:
            watched = list(self._watched.items())
        for job_id, item in watched:
            try:
                if item.state == "submit":
                    self._send(job_id, item)
                elif item.state == "find":
                    self._find(job_id, item)
                elif item.future.done():
                    self._settle(job_id, item)
                elif time.monotonic() - item.polled >= _PROGRESS_POLL_S:
                    self._poll(job_id, item)
            except Exception:
                if self._client is None or self._client.status != "running":
                    return  # the connection went: the next tick sees it
                LOGGER.exception("following job %s failed", job_id)

    def _send(self, job_id: str, item: _Watched) -> None:
        """Submit a queued job, its key written first to its folder (the attempt guard)."""
        guarded = True
        try:
            folder = Path(item.job.job_dir)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / ATTEMPT_FILE).write_text(item.key, encoding="utf-8")
        except (AttributeError, OSError) as exc:
            LOGGER.warning("job %s: its attempt cannot be written (%s)", job_id, exc)
            guarded = False
        future = self._client.submit(
            run_task, item.job, self._runner, item.key, guarded, key=item.key, pure=False
        )
        with self._lock:
            if self._watched.get(job_id) is item:
                item.state, item.future, item.job = "follow", future, None
                return
        future.cancel()  # dismissed meanwhile

    def _find(self, job_id: str, item: _Watched) -> None:
        """Follow a job's task again where the cluster still has it; else report it lost."""
        future = self._client.get_dataset(item.key, default=None)
        with self._lock:
            if self._watched.get(job_id) is not item:
                return
            if future is not None:
                item.state, item.future, item.polled = "follow", future, 0.0
                return
            del self._watched[job_id]
        LOGGER.warning("job %s: the cluster lost its task %s", job_id, item.key)
        self._listener.job_lost(job_id, attempt_of(item.key))

    def _send_cancels(self) -> None:
        """Stop on the cluster the jobs dismissed since the last look."""
        from distributed import Event, Future

        with self._lock:
            cancels, self._cancels = self._cancels, {}
        for job_id, watched in cancels.items():
            key = watched.key if watched else task_key(job_id)
            Event(cancel_name(job_id), client=self._client).set()
            future = watched.future if watched and watched.future else None
            (future or Future(key, client=self._client)).cancel()
            self._forget(key)

    def _poll(self, job_id: str, item: _Watched) -> None:
        """Report a running job's newest progress (read from its Variable)."""
        from distributed import Variable

        item.polled = time.monotonic()
        try:
            value = Variable(progress_name(item.key), client=self._client).get(timeout=0.1)
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
        """A finished task: report its outcome once, and forget it on the cluster. A task the
        cluster dropped (its scheduler restarted) is looked for again."""
        with self._lock:
            if self._watched.get(job_id) is not item:
                return  # cancelled meanwhile
            if item.future.status in ("cancelled", "lost"):
                item.state, item.future = "find", None
                return
            del self._watched[job_id]
        kind, payload = self._outcome(job_id, item.future)
        if not item.started and kind == "succeeded":
            self._listener.job_started(job_id)
        if kind == "succeeded":
            self._listener.job_succeeded(job_id, Path(payload))
        elif kind == "failed":
            self._listener.job_failed(job_id, payload)
        else:  # it stopped by itself: dismissed elsewhere, or replaced (the store knows)
            self._listener.job_lost(job_id, attempt_of(item.key))
        self._forget(item.key)

    def _outcome(self, job_id: str, future: Any) -> tuple[str, Any]:
        from distributed.scheduler import KilledWorker

        if future.status == "finished":
            return future.result(timeout=30)
        exc = future.exception(timeout=30)
        if isinstance(exc, KilledWorker):
            LOGGER.error("job %s: its workers kept dying (%s)", job_id, exc)
            return (
                "failed",
                JobFailure.internal("the worker running this job stopped unexpectedly"),
            )
        LOGGER.error("job %s: task error %r", job_id, exc)
        return ("failed", JobFailure.internal())

    def _forget(self, key: str) -> None:
        """Drop a task's publication and progress on the scheduler."""
        from distributed import Variable

        with contextlib.suppress(Exception):
            self._client.unpublish_dataset(key)
        with contextlib.suppress(Exception):
            Variable(progress_name(key), client=self._client).delete()


def _close_quietly(client: Any) -> None:
    with contextlib.suppress(Exception):
        client.close(timeout=5)
