"""The pygeoapi process manager: validated jobs, a job store, real worker processes.

It replaces pygeoapi's stock managers where they fall short: inputs are validated and the job
planned before a job exists; jobs (sync and async) run in a bounded pool of worker processes
(:mod:`~sanchari_processes.service.executors.local`) or on a Dask cluster, never in a thread of
the web server; progress comes from the engine, with its stage; DELETE stops a running job and
removes its files; errors keep their HTTP status and OGC code, and our own bugs answer 500
without internals. Jobs live in SQLite (one server per jobs folder) or PostgreSQL (shared by
servers): :mod:`~sanchari_processes.service.store`.

Web threads never wait on the network or without limit: remote headers are read by a small
planning pool, synchronous executions are capped in number (:meth:`SanchariManager.start`'s
``sync_limit``) and in time (``sync_timeout_s``), and stop when their client disconnects. One
server owns a SQLite jobs folder (a lock taken before the store is opened). What becomes of jobs
whose owner is gone (a restart, or another server that stopped), heartbeats and expiry are
:mod:`~sanchari_processes.service.recovery`'s; callbacks are
:mod:`~sanchari_processes.service.callbacks`'.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from dataclasses import dataclass, replace
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

from sanchari_processes.errors import InternalError, QueueFullError, SanchariError
from sanchari_processes.errors import JobNotFoundError as SanchariJobNotFound
from sanchari_processes.results import OUTPUTS
from sanchari_processes.service.callbacks import CallbackNotifier, JobCallbacks
from sanchari_processes.service.events import JobEvents
from sanchari_processes.service.executors import make_executor
from sanchari_processes.service.executors.base import (
    JobExecutor,
    JobFailure,
    Runner,
    claim_owner,
    local_owner,
    release_owner,
)
from sanchari_processes.service.jobs import (
    RESULT_MIMETYPE,
    RoadJob,
    result_files,
    run_service_job,
)
from sanchari_processes.service.planning import PlanningPool
from sanchari_processes.service.process import SanchariProcessor, SanchariProcessorError
from sanchari_processes.service.recovery import Recovery
from sanchari_processes.service.requests import (
    Answer,
    Execution,
    ResultFile,
    parse_execution,
    pygeoapi_body,
    results_answer,
    stored_request,
)
from sanchari_processes.service.settings import ManagerSettings
from sanchari_processes.service.status import failure_error
from sanchari_processes.service.store import LIVE, FolderLock, JobStore, now, open_store
from sanchari_processes.service.sync import DEFAULT_SYNC_LIMIT, SyncExecutions

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What an execution gave: an accepted async job, or a finished sync job's answer."""

    job_id: str
    accepted: bool
    answer: Answer | None = None


class SanchariManager(BaseManager):
    """Jobs in a :class:`JobStore`, run by a :class:`JobExecutor` (state: the store, the
    executor and its events, recovery, the synchronous executions, the planning pool)."""

    def __init__(self, manager_def: dict) -> None:
        super().__init__(manager_def)
        self.settings = ManagerSettings.from_mapping(manager_def)
        self.is_async = True
        self.supports_subscribing = True
        #: Public base URL of the service (links in results and callbacks; set by the app).
        self.base_url = "http://localhost:5000"
        notifier = CallbackNotifier(self.settings.callbacks, retries=self.settings.callback_retries)
        self.callbacks = JobCallbacks(notifier, lambda: self.store, lambda: self.base_url)
        self._processors: dict[str, BaseProcessor] = {}
        self._store: JobStore | None = None
        self._executor: JobExecutor | None = None
        self._recovery: Recovery | None = None
        self._lock = threading.Lock()
        self._folder_lock = FolderLock(self.settings.store_dir)
        self._sync = SyncExecutions()
        self.events = JobEvents(
            self.settings, lambda: self.store, self._sync, self.callbacks, rerun=self.resubmit
        )
        self._planning = PlanningPool(self.settings.queue_size)
        #: Owner of this server's synchronous jobs (their callers wait on this process).
        self._sync_owner = local_owner()

    # -- life cycle -----------------------------------------------------------------------------
    def acquire_folder(self) -> None:
        """Take the jobs folder's lock (raises :class:`StoreBusyError` when another has it).

        Only a SQLite store belongs to one server; servers share a PostgreSQL one.
        """
        if not self.settings.jobs_db:
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
            self._sync.resize(sync_limit)
            runner = runner or run_service_job
            executor = executor or make_executor(self.settings, self.events, runner)
            store = self.store  # opened first: an unreachable database starts nothing
            self._sync_owner = local_owner()
            recovery = Recovery(self.settings, store, executor, self._sync_owner, self, self.events)
            recovery.beat()  # before any job is ours
            executor.start()
            recovered = recovery.settle_at_start()
            self._executor, self._recovery = executor, recovery
            claim_owner(self._sync_owner)
            self.callbacks.start()
            recovery.start()
        recovery.resume(recovered)

    def shutdown(self) -> None:
        recovery = self._recovery
        if recovery is not None:
            recovery.stop()
        with self._lock:
            executor, self._executor = self._executor, None
            self._recovery = None
        self._planning.shutdown()
        if executor is not None:
            executor.shutdown()
        self.callbacks.stop()
        release_owner(self._sync_owner)
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            if recovery is not None:  # its jobs stopped with it: others may settle them now
                recovery.forget_heartbeat()
            store.close()
        self._folder_lock.release()

    @property
    def store(self) -> JobStore:
        if self._store is None:
            self._store = open_store(self.settings.store_dir, self.settings.jobs_db)
        return self._store

    def job_dir(self, job_id: str) -> Path:
        return self.settings.job_dir(job_id)

    def get_processor(self, process_id: str) -> BaseProcessor:
        """One processor per process, kept (its catalogue index is reused across requests)."""
        with self._lock:
            if process_id not in self._processors:
                self._processors[process_id] = super().get_processor(process_id)
            return self._processors[process_id]

    # -- execution ------------------------------------------------------------------------------
    def run(
        self,
        process_id: str,
        inputs: Any,
        execution: Execution,
        *,
        async_: bool,
        keep: bool = False,
    ) -> Outcome:
        """Validate, plan and run (async: queue) a job; raises :class:`SanchariError` (4xx/5xx).

        A sync job is answered and forgotten, unless an output is by reference or ``keep``
        (its answer is its HTML page): then it is kept (and listed) like an async job, so its
        links work until it expires. A process that runs only asynchronously does so whatever
        the request prefers (OGC API - Processes, /req/core/process-execute-default-execution-mode).
        """
        keep = keep or execution.by_reference
        processor = self.get_processor(process_id)
        async_ = async_ or bool(getattr(processor, "async_only", False))
        job_id = str(uuid.uuid4())
        job = processor.prepare(  # type: ignore[attr-defined]
            inputs, job_id, self.job_dir(job_id), outputs=execution.files()
        )
        if async_ or keep:  # kept: its HTML page shows the imagery
            job = _with_backdrop(job)
        self.start()
        body = {"inputs": inputs, "execution": execution.to_dict()}
        self.callbacks.subscribe(job_id, execution.subscriber)
        if async_:
            self._accept(processor, job, body, sync=False)  # type: ignore[arg-type]
            return Outcome(job_id, accepted=True)
        try:
            self._sync.take_slot()
        except QueueFullError:
            self.callbacks.forget(job_id)
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)  # an image it was sent
            raise
        try:
            self._run_sync(processor, job, body)  # type: ignore[arg-type]
            answer = results_answer(execution, self._files(job_id), self.base_url, job_id)
        except BaseException:
            self._forget(job_id)
            raise
        finally:
            self._sync.release_slot()
        if keep:
            self.store.update(job_id, only_live=False, sync=0)
        else:
            self._forget(job_id)
        return Outcome(job_id, accepted=False, answer=answer)

    def execute_process(
        self,
        process_id: str,
        data_dict: dict,
        execution_mode: RequestedProcessExecutionMode | None = None,
        requested_outputs: dict | None = None,
        subscriber: Any | None = None,
        requested_response: str | None = "raw",
    ) -> tuple[str, str, Any, JobStatus, dict[str, str] | None]:
        """pygeoapi's manager interface (our own execute handler calls :meth:`run`)."""
        try:
            body = pygeoapi_body(requested_outputs, requested_response, subscriber)
            processor = self.get_processor(process_id)
            outputs = getattr(processor, "outputs", None) or OUTPUTS
            execution = parse_execution(body, self.settings.callbacks, outputs)
            async_ = execution_mode == RequestedProcessExecutionMode.respond_async
            outcome = self.run(process_id, data_dict, execution, async_=async_)
        except (ProcessorExecuteError, UnknownProcessError):
            raise
        except SanchariError as exc:
            raise SanchariProcessorError(exc) from None
        except Exception:
            LOGGER.exception("execution of %s failed", process_id)
            raise SanchariProcessorError(InternalError("internal error")) from None
        if outcome.accepted or outcome.answer is None:
            return outcome.job_id, "application/json", None, JobStatus.accepted, None
        answer = outcome.answer
        media = answer.headers.get("Content-Type", "application/json")
        return outcome.job_id, media, answer.body, JobStatus.successful, None

    def _accept(self, processor: SanchariProcessor, job: RoadJob, body: Any, sync: bool) -> None:
        """Store the job and hand it on; a full queue removes it again (503)."""
        if sync:
            self._sync.expect(job.job_id)
        assert self._executor is not None
        self.store.add(
            job.job_id,
            job.process_id,
            job.parameters,
            inputs=body,
            sync=sync,
            mimetype=RESULT_MIMETYPE,
            owner=self._sync_owner if sync else self._executor.owner,
        )
        try:
            self._submit(processor, job)
        except QueueFullError:
            self._sync.drop(job.job_id)
            self.callbacks.forget(job.job_id)
            self.store.delete(job.job_id)
            shutil.rmtree(job.job_dir, ignore_errors=True)  # an image it was sent
            raise

    def _run_sync(self, processor: SanchariProcessor, job: RoadJob, body: Any) -> dict:
        """Run ``job`` and wait for it, within the time limit and while the client is there;
        the finished record (a failure raises its error)."""
        self._accept(processor, job, body, sync=True)
        self._sync.wait(job.job_id, self.settings.sync_timeout_s)
        record = self.store.get(job.job_id)
        if record["status"] != JobStatus.successful.value:
            raise failure_error(record)
        return record

    def _forget(self, job_id: str) -> None:
        """Stop a job wherever it is and remove every trace of it."""
        self.store.delete(job_id)  # first: late events and planning find nothing to update
        self.callbacks.forget(job_id)
        if self._executor is not None:
            self._executor.cancel(job_id)
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def _submit(
        self, processor: SanchariProcessor, job: RoadJob, *, force: bool = False, attempt: int = 1
    ) -> None:
        """To the workers, or first to the planning pool when the plan needs the network."""
        if not processor.needs_network(job):
            self._hand_over(job, force=force, attempt=attempt)
            return
        pool = self._planning.reserve(job.process_id, processor.network_slots, force=force)
        self.store.update(job.job_id, message="Reading the remote image's header")
        self._planning.run(pool, lambda: self._plan_then_run(processor, job, attempt))

    def _plan_then_run(self, processor: SanchariProcessor, job: RoadJob, attempt: int = 1) -> None:
        """Planning-pool task: read remote headers, then queue the job (or fail it)."""
        if not self.store.exists(job.job_id, LIVE):
            return  # dismissed or abandoned while it waited
        try:
            job = processor.complete(job)
            if self._executor is None or not self.store.exists(job.job_id, LIVE):
                return
            self._hand_over(job, force=True, attempt=attempt)
        except SanchariError as exc:
            self.events.job_failed(job.job_id, JobFailure.from_error(exc))
        except Exception:
            LOGGER.exception("planning of job %s failed", job.job_id)
            self.events.job_failed(job.job_id, JobFailure.internal())

    def _hand_over(self, job: RoadJob, *, force: bool = False, attempt: int = 1) -> None:
        """Give ``job`` to the executor, and keep its task key with it (to re-attach)."""
        assert self._executor is not None
        task = self._executor.submit(job, force=force, attempt=attempt)
        if task:
            self.store.update(job.job_id, task=task)

    # -- jobs recovery gives back (:class:`~sanchari_processes.service.recovery.JobHost`) ------
    def resubmit(self, record: dict, attempt: int = 1) -> None:
        """Plan a stored job again (accepted by a previous server, or lost by the cluster: its
        ``attempt``) and queue it; once this server stops the job stays for the next one."""
        job_id = record["identifier"]
        if self._executor is None:
            return
        try:
            processor = self.get_processor(record["process_id"])
            inputs, execution = self._stored_request(record)
            self.callbacks.subscribe(job_id, execution.subscriber)
            job = processor.prepare(  # type: ignore[attr-defined]
                inputs, job_id, self.job_dir(job_id), outputs=execution.files()
            )
            job = _with_backdrop(job)
            self._submit(processor, job, force=True, attempt=attempt)  # type: ignore[arg-type]
        except SanchariError as exc:
            self.events.job_failed(job_id, JobFailure.from_error(exc))
        except Exception:
            LOGGER.exception("job %s could not be queued again", job_id)
            self.events.job_failed(job_id, JobFailure.internal())

    def follow(self, record: dict) -> None:
        """Send the callbacks of a job re-attached on the cluster."""
        _, execution = self._stored_request(record)
        self.callbacks.subscribe(record["identifier"], execution.subscriber)

    # -- results --------------------------------------------------------------------------------
    def _stored_request(self, record: dict) -> tuple[Any, Execution]:
        """A stored job's inputs and how it wants its results."""
        return stored_request(record.get("inputs"), self.settings.callbacks)

    def _files(self, job_id: str, record: dict | None = None) -> dict[str, ResultFile]:
        """A successful job's output files by output id."""
        return result_files(Path((record or self.store.get(job_id))["location"]))

    def results(self, job_id: str) -> Answer:
        """``/jobs/{id}/results`` of a successful job, as its execute request asked for them."""
        record = self.get_job(job_id)
        if record["status"] != JobStatus.successful.value or not record["location"]:
            raise JobResultNotFoundError()
        _, execution = self._stored_request(record)
        try:
            return results_answer(execution, self._files(job_id, record), self.base_url, job_id)
        except OSError:
            LOGGER.error("result files of job %s are missing", job_id)
            raise JobResultNotFoundError() from None

    def result_file(self, job_id: str, output_id: str) -> ResultFile:
        """One output's file of a successful job (``/jobs/{id}/results/{output}``)."""
        record = self.get_job(job_id)
        if record["status"] != JobStatus.successful.value or not record["location"]:
            raise JobResultNotFoundError()
        found = self._files(job_id, record).get(output_id)
        if found is None or not found.path.is_file():
            raise JobResultNotFoundError()
        return found

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
        answer = self.results(job_id)
        return answer.headers.get("Content-Type"), answer.body

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
        self.callbacks.forget(job_id)
        if record["status"] in LIVE and self._executor is not None:
            self._executor.cancel(job_id)
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        self.events.wake(job_id)
        return True

    def __repr__(self) -> str:
        return f"<SanchariManager> {self.settings.store_dir}"


def _with_backdrop(job: Any) -> Any:
    """A road job that also writes its map's imagery (a job of another kind has no map)."""
    return replace(job, backdrop=True) if hasattr(job, "backdrop") else job
