"""The pygeoapi process manager: validated jobs, a SQLite job store, real worker processes.

It replaces pygeoapi's stock managers where they fall short: inputs are validated and the job
planned before a job exists; jobs (sync and async) run in a bounded pool of worker processes
(:mod:`~sanchari_processes.service.executor`) rather than a thread of the web server; progress
comes from the engine; DELETE stops a running job and removes its files; errors keep their
HTTP status and OGC code, and our own bugs answer 500 without internals.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import uuid
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
)
from sanchari_processes.errors import JobNotFoundError as SanchariJobNotFound
from sanchari_processes.service.config import ManagerSettings
from sanchari_processes.service.executor import (
    JobExecutor,
    JobFailure,
    LocalProcessPool,
    Runner,
)
from sanchari_processes.service.jobs import RESULT_MIMETYPE, run_road_job
from sanchari_processes.service.process import OUTPUT_ID, SanchariProcessorError
from sanchari_processes.service.store import LIVE, JobStore, now

LOGGER = logging.getLogger(__name__)


class SanchariManager(BaseManager):
    """Jobs in SQLite, run by a :class:`JobExecutor` (state: store, executor, sync waiters)."""

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

    # -- life cycle -----------------------------------------------------------------------------
    def start(self, executor: JobExecutor | None = None, runner: Runner | None = None) -> None:
        """Open the store, fail jobs a previous run left live, start the workers.

        Not done in ``__init__``: pygeoapi also builds managers just to write OpenAPI documents.
        """
        with self._lock:
            if self._executor is not None:
                return
            interrupted = self.store.fail_interrupted()
            if interrupted:
                LOGGER.warning("marked %d interrupted job(s) as failed", len(interrupted))
            self._executor = executor or LocalProcessPool(
                self,
                runner or run_road_job,
                workers=self.settings.workers,
                queue_size=self.settings.queue_size,
                threads_per_worker=self.settings.torch_threads,
            )
            self._executor.start()

    def shutdown(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown()

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
        is_async = mode == RequestedProcessExecutionMode.respond_async
        waiter = threading.Event()
        if not is_async:
            self._waiters[job_id] = waiter
        self.store.add(job_id, process_id, job.request.to_dict())
        self.store.update(job_id, mimetype=RESULT_MIMETYPE)
        try:
            assert self._executor is not None
            self._executor.submit(job)
        except QueueFullError:
            self._waiters.pop(job_id, None)
            self.store.delete(job_id)
            raise
        if is_async:
            return (
                job_id,
                "application/json",
                None,
                JobStatus.accepted,
                {"Preference-Applied": RequestedProcessExecutionMode.respond_async.value},
            )
        headers = None
        if mode == RequestedProcessExecutionMode.wait:
            headers = {"Preference-Applied": RequestedProcessExecutionMode.wait.value}
        try:
            waiter.wait()
        finally:
            self._waiters.pop(job_id, None)
        record = self.store.get(job_id)
        if record["status"] != JobStatus.successful.value:
            raise _failure_error(record)
        text = Path(record["location"]).read_text(encoding="utf-8")
        if response == "document":
            value = {OUTPUT_ID: {"value": json.loads(text), "mediaType": RESULT_MIMETYPE}}
            return job_id, "application/json", value, JobStatus.successful, headers
        return job_id, RESULT_MIMETYPE, text, JobStatus.successful, headers

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
        jobs, total = self.store.list(limit=limit, offset=offset or 0)
        return {"jobs": jobs, "numberMatched": total}

    def add_job(self, job_metadata: dict) -> str:
        raise NotImplementedError("jobs are created by execute_process")

    def update_job(self, job_id: str, update_dict: dict) -> bool:
        return self.store.update(job_id, only_live=False, **update_dict)

    def get_job(self, job_id: str) -> dict:
        try:
            return self.store.get(job_id)
        except SanchariJobNotFound:
            raise JobNotFoundError() from None

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
