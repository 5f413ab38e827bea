"""The pygeoapi process manager: validated jobs, a SQLite job store, real worker processes.

It replaces pygeoapi's stock managers where they fall short: inputs are validated and the job
planned before a job exists; jobs (sync and async) run in a bounded pool of worker processes
(:mod:`~sanchari_processes.service.executor`) rather than a thread of the web server; progress
comes from the engine; DELETE stops a running job and removes its files; errors keep their
HTTP status and OGC code, and our own bugs answer 500 without internals.

Web threads never wait on the network or without limit: remote headers are read by a small
planning pool, synchronous executions are capped in number (:meth:`SanchariManager.start`'s
``sync_limit``) and in time (``sync_timeout_s``), and stop when their client disconnects. One
server owns the jobs folder (a lock taken before the store is opened); at start it runs again
the jobs that were queued, fails the ones that were running (410, "interrupted by a restart"),
and removes scratch folders; finished jobs expire after ``job_retention_s``.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pygeoapi.process.base import (
    BaseProcessor,
    JobNotFoundError,
    JobResultNotFoundError,
    ProcessorExecuteError,
    UnknownProcessError,
)
from pygeoapi.process.manager.base import BaseManager
from pygeoapi.util import JobStatus, RequestedProcessExecutionMode

from sanchari_processes.errors import (
    InternalError,
    InvalidInputError,
    QueueFullError,
    SanchariError,
    SyncTimeoutError,
)
from sanchari_processes.errors import JobNotFoundError as SanchariJobNotFound
from sanchari_processes.service.config import ManagerSettings
from sanchari_processes.service.executor import (
    JobExecutor,
    JobFailure,
    LocalProcessPool,
    Runner,
)
from sanchari_processes.service.jobs import RESULT_MIMETYPE, RoadJob, run_road_job
from sanchari_processes.service.process import (
    OUTPUT_ID,
    SanchariProcessor,
    SanchariProcessorError,
)
from sanchari_processes.service.store import LIVE, FolderLock, JobStore, now, stamp_of

LOGGER = logging.getLogger(__name__)

#: Set by the web layer around an execute request: "has the client gone away?".
CLIENT_GONE: ContextVar[Callable[[], bool] | None] = ContextVar("client_gone", default=None)
#: Synchronous executions allowed at once when the server does not say (``sync_limit``).
DEFAULT_SYNC_LIMIT = 4
#: How often a waiting synchronous request looks at its client and the clock (seconds).
_POLL_S = 0.2


class ClientGoneError(SanchariError):
    """The client of a synchronous execution disconnected; the job was stopped."""

    ogc_code = "ClientClosedRequest"
    http_status = 400


class SanchariManager(BaseManager):
    """Jobs in SQLite, run by a :class:`JobExecutor` (state: store, executor, waiters, pools)."""

    def __init__(self, manager_def: dict) -> None:
        super().__init__(manager_def)
        self.settings = ManagerSettings.from_mapping(manager_def)
        self.is_async = True
        self.supports_subscribing = False
        self._processors: dict[str, BaseProcessor] = {}
        self._store: JobStore | None = None
        self._executor: JobExecutor | None = None
        self._waiters: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._folder_lock = FolderLock(self.settings.store_dir)
        self._sync_slots = threading.BoundedSemaphore(DEFAULT_SYNC_LIMIT)
        self._planners: dict[str, ThreadPoolExecutor] = {}
        self._planning = 0
        self._stop = threading.Event()
        self._janitor: threading.Thread | None = None

    # -- life cycle -----------------------------------------------------------------------------
    def acquire_folder(self) -> None:
        """Take the jobs folder's lock (raises :class:`StoreBusyError` when another has it)."""
        self._folder_lock.acquire()

    def start(
        self,
        executor: JobExecutor | None = None,
        runner: Runner | None = None,
        *,
        sync_limit: int = DEFAULT_SYNC_LIMIT,
    ) -> None:
        """Lock the folder, recover the store, start the workers, run queued jobs again.

        Not done in ``__init__``: pygeoapi also builds managers just to write OpenAPI documents.
        """
        with self._lock:
            if self._executor is not None:
                return
            self.acquire_folder()
            self._sync_slots = threading.BoundedSemaphore(max(1, sync_limit))
            recovered = self.store.recover()
            self._clean_scratch({r["identifier"] for r in recovered.requeue})
            self._expire()
            if recovered.interrupted or recovered.requeue:
                LOGGER.warning(
                    "after a restart: %d job(s) queued again, %d interrupted job(s) failed",
                    len(recovered.requeue),
                    len(recovered.interrupted),
                )
            self._executor = executor or LocalProcessPool(
                self,
                runner or run_road_job,
                workers=self.settings.workers,
                queue_size=self.settings.queue_size,
                threads_per_worker=self.settings.torch_threads,
            )
            self._executor.start()
            self._stop.clear()
            self._janitor = threading.Thread(
                target=self._janitor_loop, name="sanchari-janitor", daemon=True
            )
            self._janitor.start()
        for record in recovered.requeue:
            self._requeue(record)

    def shutdown(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
            planners, self._planners = self._planners, {}
        self._stop.set()
        for pool in planners.values():
            pool.shutdown(wait=False, cancel_futures=True)
        if executor is not None:
            executor.shutdown()
        self._folder_lock.release()

    @property
    def store(self) -> JobStore:
        if self._store is None:
            self._store = JobStore(self.settings.database)
        return self._store

    def job_dir(self, job_id: str) -> Path:
        return self.settings.store_dir / "jobs" / job_id

    def get_processor(self, process_id: str) -> BaseProcessor:
        """One processor per process, kept (its catalogue index is reused across requests)."""
        with self._lock:
            if process_id not in self._processors:
                self._processors[process_id] = super().get_processor(process_id)
            return self._processors[process_id]

    # -- execution ------------------------------------------------------------------------------
    def execute_process(
        self,
        process_id: str,
        data_dict: dict,
        execution_mode: RequestedProcessExecutionMode | None = None,
        requested_outputs: dict | None = None,
        subscriber: Any | None = None,
        requested_response: str | None = "raw",
    ) -> tuple[str, str, Any, JobStatus, dict[str, str] | None]:
        try:
            return self._execute(
                process_id, data_dict, execution_mode, requested_outputs, requested_response
            )
        except (ProcessorExecuteError, UnknownProcessError):
            raise
        except SanchariError as exc:
            raise SanchariProcessorError(exc) from None
        except Exception:
            LOGGER.exception("execution of %s failed", process_id)
            raise SanchariProcessorError(InternalError("internal error")) from None

    def _execute(
        self,
        process_id: str,
        inputs: dict,
        mode: RequestedProcessExecutionMode | None,
        outputs: dict | None,
        response: str | None,
    ) -> tuple[str, str, Any, JobStatus, dict[str, str] | None]:
        processor = self.get_processor(process_id)
        _check_outputs(outputs)
        if response not in ("raw", "document"):
            raise InvalidInputError("'response' must be 'raw' or 'document'")
        job_id = str(uuid.uuid4())
        job = processor.prepare(inputs, job_id, self.job_dir(job_id))  # type: ignore[attr-defined]
        self.start()
        if mode == RequestedProcessExecutionMode.respond_async:
            self._accept(processor, job, inputs, sync=False)  # type: ignore[arg-type]
            return (
                job_id,
                "application/json",
                None,
                JobStatus.accepted,
                {"Preference-Applied": RequestedProcessExecutionMode.respond_async.value},
            )
        if not self._sync_slots.acquire(blocking=False):
            raise QueueFullError(
                "too many synchronous executions are running; retry later, or run the job "
                "asynchronously (header 'Prefer: respond-async')"
            )
        try:
            text = self._run_sync(processor, job, inputs)  # type: ignore[arg-type]
        finally:
            self._sync_slots.release()
        headers = None
        if mode == RequestedProcessExecutionMode.wait:
            headers = {"Preference-Applied": RequestedProcessExecutionMode.wait.value}
        if response == "document":
            value = {OUTPUT_ID: {"value": json.loads(text), "mediaType": RESULT_MIMETYPE}}
            return job_id, "application/json", value, JobStatus.successful, headers
        return job_id, RESULT_MIMETYPE, text, JobStatus.successful, headers

    def _accept(self, processor: SanchariProcessor, job: RoadJob, inputs: Any, sync: bool) -> None:
        """Store the job and hand it on; a full queue removes it again (503)."""
        waiter = threading.Event()
        if sync:
            self._waiters[job.job_id] = waiter
        self.store.add(
            job.job_id,
            job.process_id,
            job.request.to_dict(),
            inputs=inputs,
            sync=sync,
            mimetype=RESULT_MIMETYPE,
        )
        try:
            self._submit(processor, job)
        except QueueFullError:
            self._waiters.pop(job.job_id, None)
            self.store.delete(job.job_id)
            raise

    def _run_sync(self, processor: SanchariProcessor, job: RoadJob, inputs: Any) -> str:
        """Run ``job`` and wait for it, within the time limit and while the client is there.

        Synchronous jobs are not kept: the record and files go once the answer is read.
        """
        self._accept(processor, job, inputs, sync=True)
        waiter = self._waiters[job.job_id]
        deadline = time.monotonic() + self.settings.sync_timeout_s
        gone = CLIENT_GONE.get()
        try:
            while not waiter.wait(_POLL_S):
                if gone is not None and gone():
                    LOGGER.info("client of sync job %s disconnected; job stopped", job.job_id)
                    raise ClientGoneError("the client disconnected")
                if time.monotonic() >= deadline:
                    raise SyncTimeoutError(
                        f"the job ran longer than the {self.settings.sync_timeout_s} s allowed "
                        "for synchronous execution and was stopped; run it asynchronously "
                        "(header 'Prefer: respond-async') and poll /jobs/{jobId}"
                    )
            record = self.store.get(job.job_id)
            if record["status"] != JobStatus.successful.value:
                raise _failure_error(record)
            return Path(record["location"]).read_text(encoding="utf-8")
        finally:
            self._waiters.pop(job.job_id, None)
            self._forget(job.job_id)

    def _forget(self, job_id: str) -> None:
        """Stop a job wherever it is and remove every trace of it."""
        self.store.delete(job_id)  # first: late events and planning find nothing to update
        if self._executor is not None:
            self._executor.cancel(job_id)
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def _submit(self, processor: SanchariProcessor, job: RoadJob, *, force: bool = False) -> None:
        """To the workers, or first to the planning pool when the plan needs the network."""
        if not processor.needs_network(job):
            assert self._executor is not None
            self._executor.submit(job, force=force)
            return
        with self._lock:
            if not force and self._planning >= processor.network_slots + self.settings.queue_size:
                raise QueueFullError("too many remote images are being checked; retry later")
            self._planning += 1
            pool = self._planners.get(job.process_id)
            if pool is None:
                pool = ThreadPoolExecutor(
                    processor.network_slots, thread_name_prefix=f"sanchari-plan-{job.process_id}"
                )
                self._planners[job.process_id] = pool
        self.store.update(job.job_id, message="Reading the remote image's header")
        pool.submit(self._plan_then_run, processor, job)

    def _plan_then_run(self, processor: SanchariProcessor, job: RoadJob) -> None:
        """Planning-pool task: read remote headers, then queue the job (or fail it)."""
        try:
            if not self.store.exists(job.job_id, LIVE):
                return  # dismissed or abandoned while it waited
            try:
                job = processor.complete(job)
                if self._executor is None or not self.store.exists(job.job_id, LIVE):
                    return
                self._executor.submit(job, force=True)
            except SanchariError as exc:
                self.job_failed(job.job_id, JobFailure.from_error(exc))
            except Exception:
                LOGGER.exception("planning of job %s failed", job.job_id)
                self.job_failed(job.job_id, JobFailure.internal())
        finally:
            with self._lock:
                self._planning -= 1

    def _requeue(self, record: dict) -> None:
        """Plan again a job a previous server accepted but never started, and queue it."""
        job_id = record["identifier"]
        try:
            processor = self.get_processor(record["process_id"])
            job = processor.prepare(record["inputs"], job_id, self.job_dir(job_id))  # type: ignore[attr-defined]
            self._submit(processor, job, force=True)  # type: ignore[arg-type]
        except SanchariError as exc:
            self.job_failed(job_id, JobFailure.from_error(exc))
        except Exception:
            LOGGER.exception("job %s could not be queued again", job_id)
            self.job_failed(job_id, JobFailure.internal())

    # -- housekeeping ---------------------------------------------------------------------------
    def _clean_scratch(self, requeued: set[str]) -> None:
        """At start no job runs: only successful jobs' results stay (no ``work/`` folders)."""
        root = self.settings.store_dir / "jobs"
        if not root.is_dir():
            return
        kept = self.store.identifiers(["successful"])
        for folder in root.iterdir():
            if folder.name in requeued or folder.name not in kept:
                shutil.rmtree(folder, ignore_errors=True)
            else:
                shutil.rmtree(folder / "work", ignore_errors=True)

    def _expire(self) -> list[str]:
        """Delete finished jobs past retention (or beyond ``max_jobs``) and their files."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.settings.job_retention_s)
        expired = self.store.expire(stamp_of(cutoff), self.settings.max_jobs)
        for job_id in expired:
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        if expired:
            LOGGER.info("expired %d finished job(s)", len(expired))
        return expired

    def _janitor_loop(self) -> None:
        interval = min(300.0, max(0.5, self.settings.job_retention_s / 4))
        while not self._stop.wait(interval):
            try:
                self._expire()
            except Exception:
                LOGGER.exception("job expiry failed")

    # -- job events (from the executor) ---------------------------------------------------------
    def job_started(self, job_id: str) -> None:
        self.store.update(
            job_id, status="running", started=now(), progress=1, message="Reading imagery"
        )

    def job_progress(self, job_id: str, fraction: float) -> None:
        percent = min(99, max(1, int(fraction * 100)))
        stage = "Running the model" if fraction < 0.85 else "Vectorizing roads"
        self.store.update(job_id, status="running", progress=percent, message=stage)

    def job_succeeded(self, job_id: str, location: Path) -> None:
        self.store.update(
            job_id,
            status="successful",
            progress=100,
            finished=now(),
            location=str(location),
            mimetype=RESULT_MIMETYPE,
            message="Job complete",
        )
        self._wake(job_id)

    def job_failed(self, job_id: str, failure: JobFailure) -> None:
        self.store.update(
            job_id,
            status="failed",
            finished=now(),
            error=failure.to_dict(),
            message=f"{failure.code}: {failure.message}",
        )
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        self._wake(job_id)

    def _wake(self, job_id: str) -> None:
        waiter = self._waiters.get(job_id)
        if waiter is not None:
            waiter.set()

    # -- job store (pygeoapi's manager interface) -----------------------------------------------
    def get_jobs(
        self, status: JobStatus | None = None, limit: int | None = None, offset: int | None = None
    ) -> dict:
        statuses = [status.value] if status is not None else []
        jobs, total = self.store.list(limit=limit, offset=offset or 0, statuses=statuses)
        return {"jobs": jobs, "numberMatched": total}

    def add_job(self, job_metadata: dict) -> str:
        raise NotImplementedError("jobs are created by execute_process")

    def update_job(self, job_id: str, update_dict: dict) -> bool:
        return self.store.update(job_id, only_live=False, **update_dict)

    def get_job(self, job_id: str) -> dict:
        try:
            record = self.store.get(job_id)
        except SanchariJobNotFound:
            raise JobNotFoundError() from None
        if record["sync"]:
            raise JobNotFoundError()  # synchronous jobs are answered, not kept
        return record

    def get_job_result(self, job_id: str) -> tuple[str | None, Any]:
        record = self.get_job(job_id)
        if record["status"] != JobStatus.successful.value or not record["location"]:
            raise JobResultNotFoundError()
        try:
            return record["mimetype"], Path(record["location"]).read_bytes()
        except OSError:
            LOGGER.error("result file of job %s is missing", job_id)
            raise JobResultNotFoundError() from None

    def delete_job(self, job_id: str) -> bool:
        """Dismiss a job: stop it if queued or running, remove its files, keep a tombstone."""
        record = self.get_job(job_id)
        self.store.update(
            job_id,
            only_live=False,
            status=JobStatus.dismissed.value,
            message="Job dismissed",
            location=None,
            finished=record["finished"] or now(),
        )
        if record["status"] in LIVE and self._executor is not None:
            self._executor.cancel(job_id)
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        self._wake(job_id)
        return True

    def __repr__(self) -> str:
        return f"<SanchariManager> {self.settings.store_dir}"


def _check_outputs(outputs: Any) -> None:
    """Only the ``roads`` output exists, and only by value (we do not fake references)."""
    if outputs in (None, {}):
        return
    if not isinstance(outputs, dict):
        raise InvalidInputError("'outputs' must be an object keyed by output id")
    for key, spec in outputs.items():
        if key != OUTPUT_ID:
            raise InvalidInputError(f"unknown output '{key}'; the process has '{OUTPUT_ID}'")
        if spec is None:
            continue
        if not isinstance(spec, dict):
            raise InvalidInputError(f"output '{key}' must be an object")
        mode = spec.get("transmissionMode", "value")
        if mode != "value":
            raise InvalidInputError(
                f"output '{key}': transmissionMode '{mode}' is not supported; use 'value' "
                "(async results stay available at /jobs/{jobId}/results)"
            )
        media = (
            spec.get("format", {}).get("mediaType")
            if isinstance(spec.get("format"), dict)
            else None
        )
        if media not in (None, RESULT_MIMETYPE, "application/json"):
            raise InvalidInputError(f"output '{key}': only {RESULT_MIMETYPE} is produced")


def _failure_error(record: dict) -> SanchariProcessorError:
    """The stored failure of a job as the exception its execute request answers with."""
    if record["status"] == JobStatus.dismissed.value:
        return SanchariProcessorError(
            SanchariJobNotFound("the job was dismissed before it finished")
        )
    failure = record.get("error") or JobFailure.internal().to_dict()
    error = SanchariError(failure["message"])
    error.ogc_code = failure["code"]
    error.http_status = int(failure["status"])
    return SanchariProcessorError(error)
