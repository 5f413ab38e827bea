"""Jobs in a bounded pool of local worker processes (the default executor).

pygeoapi runs async jobs in a thread of the web worker, where they cannot be stopped and share
the GIL with the web server. Here each job runs in a long-lived worker *process* (spawned, so
torch and GDAL start clean) that loads the model once and keeps it; dismissing a running job
terminates its worker, which is then replaced. Jobs beyond the busy workers wait in a bounded
queue; a full queue refuses new jobs (503). Workers die with the server, however it dies: each
holds the read end of a pipe whose only writer is the server, and exits when it reads EOF.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
from collections import deque
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from sanchari_processes.errors import QueueFullError
from sanchari_processes.service.executors.base import (
    JobFailure,
    JobListener,
    Runner,
    claim_owner,
    local_owner,
    release_owner,
    run_job,
)

LOGGER = logging.getLogger(__name__)


class _Worker:
    """One worker process and its two pipes (state: the job it runs, if any)."""

    def __init__(self, ctx: Any, runner: Runner, threads: int) -> None:
        task_recv, self.tasks = ctx.Pipe(duplex=False)
        self.events, event_send = ctx.Pipe(duplex=False)
        # Never written: the worker exits when it reads EOF, i.e. when this process is gone.
        life_recv, self.lifeline = ctx.Pipe(duplex=False)
        self.process = ctx.Process(
            target=_worker_main,
            args=(task_recv, event_send, life_recv, runner, threads),
            name="sanchari-worker",
            daemon=True,
        )
        self.process.start()
        task_recv.close()
        event_send.close()
        life_recv.close()
        self.job_id: str | None = None
        self.cancelled = False

    def stop(self, timeout: float) -> None:
        """Idle workers finish cleanly; a busy one is terminated (its job is failed on restart)."""
        if self.job_id is not None:
            self.process.terminate()
        with contextlib.suppress(OSError):
            self.tasks.send(None)
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout)
        self.close()

    def close(self) -> None:
        for conn in (self.tasks, self.events, self.lifeline):
            conn.close()


class LocalProcessPool:
    """A bounded pool of worker processes on this machine (implements :class:`JobExecutor`)."""

    reattaches = False

    def __init__(
        self,
        listener: JobListener,
        runner: Runner,
        *,
        workers: int = 1,
        queue_size: int = 16,
        threads_per_worker: int = 1,
    ) -> None:
        self._listener = listener
        self._runner = runner
        self._size = workers
        self._queue_size = queue_size
        self._threads = threads_per_worker
        self._ctx = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._pending: deque[Any] = deque()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.owner = local_owner()

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            claim_owner(self.owner)
            self._workers = [self._spawn() for _ in range(self._size)]
            self._thread = threading.Thread(
                target=self._event_loop, name="sanchari-executor", daemon=True
            )
            self._thread.start()

    def submit(self, job: Any, *, force: bool = False, attempt: int = 1) -> str | None:
        """Queue ``job`` (``attempt`` is the cluster executor's: a pool never loses jobs so)."""
        with self._lock:
            if self._thread is None or self._stopping:
                raise QueueFullError("the job executor is not running")
            idle = any(w.job_id is None for w in self._workers) and not self._pending
            if not force and not idle and len(self._pending) >= self._queue_size:
                raise QueueFullError(
                    f"all {self._size} worker(s) are busy and {len(self._pending)} job(s) are "
                    "queued; retry later"
                )
            self._pending.append(job)
            self._dispatch()
        return None

    def attach(self, job_id: str, task: str) -> bool:
        return False  # a pool's jobs die with its server

    def cancel(self, job_id: str) -> bool:
        with self._lock:
            for job in self._pending:
                if job.job_id == job_id:
                    self._pending.remove(job)
                    return True
            target = next((w for w in self._workers if w.job_id == job_id), None)
            if target is None:
                return False
            target.cancelled = True
            target.process.terminate()
        target.process.join(10)
        if target.process.is_alive():
            target.process.kill()
            target.process.join(5)
        return True

    def active(self) -> set[str]:
        with self._lock:
            running = {w.job_id for w in self._workers if w.job_id and not w.cancelled}
            return running | {job.job_id for job in self._pending}

    def queued(self) -> int:
        with self._lock:
            return len(self._pending)

    def shutdown(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._stopping = True
            workers, self._workers = self._workers, []
            self._pending.clear()
            release_owner(self.owner)
        for worker in workers:
            worker.stop(timeout)
        if self._thread is not None:
            self._thread.join(timeout)

    # -- internals (hold the lock where noted) -----------------------------------------------
    def _spawn(self) -> _Worker:
        return _Worker(self._ctx, self._runner, self._threads)

    def _dispatch(self) -> None:
        """Hand pending jobs to idle workers (lock held)."""
        for worker in self._workers:
            if not self._pending:
                return
            if worker.job_id is None and worker.process.is_alive():
                job = self._pending.popleft()
                worker.job_id = job.job_id
                try:
                    worker.tasks.send(job)
                except OSError:
                    worker.job_id = None
                    self._pending.appendleft(job)

    def _event_loop(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
                by_conn: dict[Any, _Worker] = {}
                for worker in self._workers:
                    by_conn[worker.events] = worker
                    by_conn[worker.process.sentinel] = worker
            try:
                ready = wait(list(by_conn), timeout=0.5)
            except OSError:
                ready = []
            for handle in ready:
                worker = by_conn[handle]
                events: Connection = worker.events  # typed: `is` would narrow it to the handle
                if handle is events:
                    try:
                        message: tuple[str, str, Any] = events.recv()
                    except (EOFError, OSError):
                        self._worker_died(worker)
                        continue
                    self._handle(worker, message)
                else:
                    self._drain(worker)
                    self._worker_died(worker)

    def _drain(self, worker: _Worker) -> None:
        """Deliver events a worker sent just before it exited."""
        try:
            while worker.events.poll():
                self._handle(worker, worker.events.recv())
        except (EOFError, OSError):
            pass

    def _handle(self, worker: _Worker, message: tuple[str, str, Any]) -> None:
        kind, job_id, payload = message
        if worker.cancelled:
            return
        if kind == "started":
            self._listener.job_started(job_id)
        elif kind == "progress":
            self._listener.job_progress(job_id, float(payload[0]), payload[1])
        elif kind in ("succeeded", "failed"):
            with self._lock:
                worker.job_id = None
            if kind == "succeeded":
                self._listener.job_succeeded(job_id, Path(payload))
            else:
                self._listener.job_failed(job_id, payload)
            with self._lock:
                self._dispatch()

    def _worker_died(self, worker: _Worker) -> None:
        with self._lock:
            if worker not in self._workers:
                return
            self._workers.remove(worker)
            job_id, cancelled = worker.job_id, worker.cancelled
            worker.process.join(1)
            worker.close()
            if not self._stopping:
                self._workers.append(self._spawn())
                self._dispatch()
        if job_id is not None and not cancelled:
            LOGGER.error("worker for job %s exited with code %s", job_id, worker.process.exitcode)
            self._listener.job_failed(
                job_id, JobFailure.internal("the worker running this job stopped unexpectedly")
            )


def _worker_main(
    tasks: Connection, events: Connection, lifeline: Connection, runner: Runner, threads: int
) -> None:
    """A worker process: run jobs one at a time, reporting events; the model stays cached."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle
    threading.Thread(target=_die_with_parent, args=(lifeline,), daemon=True).start()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # Read by torch (and numpy's BLAS) when the runner first imports them.
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(max(1, threads))
    while True:
        try:
            job = tasks.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        events.send(("started", job.job_id, None))

        def emit(fraction: float, stage: str | None, job_id: str = job.job_id) -> None:
            events.send(("progress", job_id, (fraction, stage)))

        kind, payload = run_job(job, runner, emit)
        events.send((kind, job.job_id, payload))


def _die_with_parent(lifeline: Connection) -> None:
    """Block until the server's end of the pipe closes (it exited or was killed), then exit."""
    try:
        while True:
            lifeline.recv()
    except (EOFError, OSError):
        pass
    os._exit(0)
