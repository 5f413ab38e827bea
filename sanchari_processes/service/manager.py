"""The pygeoapi process manager: validated jobs, a job store, real worker processes.

It replaces pygeoapi's stock managers where they fall short: inputs are validated and the job
planned before a job exists; jobs (sync and async) run in a bounded pool of worker processes
(:mod:`~sanchari_processes.service.executors.local`) or on a Dask cluster, never in a thread of
the web server; progress comes from the engine, with its stage; DELETE stops a running job and
removes its files; errors keep their HTTP status and OGC code, and our own bugs answer 500
without internals. Jobs live in SQLite (one server per jobs folder) or PostgreSQL (shared by
servers).

Web threads never wait on the network or without limit: remote headers are read by a small
planning pool, synchronous executions are capped in number (:meth:`SanchariManager.start`'s
``sync_limit``) and in time (``sync_timeout_s``), and stop when their client disconnects. One
server owns a SQLite jobs folder (a lock taken before the store is opened). At start it settles
the jobs whose owner is gone: it runs again the ones that were queued, fails the ones that were
running (410, "interrupted by a restart"), and removes their scratch folders; jobs still running
on a cluster are re-attached. Finished jobs expire after ``job_retention_s``.

Servers sharing a PostgreSQL store coordinate through it: each keeps a heartbeat for the owners
of its local jobs; every ``heartbeat_s`` a server settles, as at start, the live jobs of servers
silent for ``server_timeout_s`` (a crash), and every second it stops the jobs of its own that
another server dismissed.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass
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
    QueueFullError,
    SanchariError,
    SyncTimeoutError,
)
from sanchari_processes.errors import JobNotFoundError as SanchariJobNotFound
from sanchari_processes.results import OUTPUTS
from sanchari_processes.service.callbacks import CallbackNotifier
from sanchari_processes.service.executors import make_executor
from sanchari_processes.service.executors.base import (
    JobExecutor,
    JobFailure,
    Runner,
    claim_owner,
    local_owner,
    owner_alive,
    release_owner,
)
from sanchari_processes.service.jobs import RESULT_MIMETYPE, RoadJob, read_manifest, run_road_job
from sanchari_processes.service.process import (
    SanchariProcessor,
    SanchariProcessorError,
)
from sanchari_processes.service.requests import (
    Answer,
    Execution,
    ResultFile,
    execution_from_dict,
    results_answer,
    results_document,
)
from sanchari_processes.service.settings import ManagerSettings
from sanchari_processes.service.status import job_document
from sanchari_processes.service.store import (
    INTERRUPTED,
    LIVE,
    FolderLock,
    JobStore,
    Recovered,
    now,
    open_store,
    stamp_of,
)

LOGGER = logging.getLogger(__name__)

#: Set by the web layer around an execute request: "has the client gone away?".
CLIENT_GONE: ContextVar[Callable[[], bool] | None] = ContextVar("client_gone", default=None)
#: Synchronous executions allowed at once when the server does not say (``sync_limit``).
DEFAULT_SYNC_LIMIT = 4
#: How often a waiting synchronous request looks at its client and the clock (seconds).
_POLL_S = 0.2
#: Least time between two in-progress callbacks of one job (seconds).
_PROGRESS_CALLBACK_S = 2.0
#: How often a server sharing its store looks for its jobs dismissed on another (seconds).
_WATCH_S = 1.0


class ClientGoneError(SanchariError):
    """The client of a synchronous execution disconnected; the job was stopped."""

    ogc_code = "ClientClosedRequest"
    http_status = 400


@dataclass(frozen=True)
class Outcome:
    """What an execution gave: an accepted async job, or a finished sync job's answer."""

    job_id: str
    accepted: bool
    answer: Answer | None = None


class SanchariManager(BaseManager):
    """Jobs in a :class:`JobStore`, run by a :class:`JobExecutor` (state: store, executor,
    waiters, pools)."""

    def __init__(self, manager_def: dict) -> None:
        super().__init__(manager_def)
        self.settings = ManagerSettings.from_mapping(manager_def)
        self.is_async = True
        self.supports_subscribing = True
        #: Public base URL of the service (links in results and callbacks; set by the app).
        self.base_url = "http://localhost:5000"
        self.callbacks = CallbackNotifier(
            self.settings.callbacks, retries=self.settings.callback_retries
        )
        self._subscribers: dict[str, dict] = {}
        self._last_progress_callback: dict[str, float] = {}
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
        #: Owner of this server's synchronous jobs (their callers wait on this process).
        self._sync_owner = local_owner()
        #: Owners whose jobs die with this server: its heartbeat vouches for them.
        self._beating: tuple[str, ...] = ()

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
            self._sync_slots = threading.BoundedSemaphore(max(1, sync_limit))
            executor = executor or make_executor(self.settings, self, runner or run_road_job)
            store = self.store  # opened first: an unreachable database starts nothing
            self._sync_owner = local_owner()
            self._beating = (self._sync_owner,) + (() if executor.reattaches else (executor.owner,))
            store.beat(self._beating, self.settings.server_timeout_s)  # before any job is ours
            executor.start()
            recovered = self._settle(executor)
            self._expire()
            if recovered.interrupted or recovered.requeue or recovered.held:
                LOGGER.warning(
                    "after a restart: %d job(s) queued again, %d interrupted job(s) failed, "
                    "%d job(s) still held by a cluster or another server",
                    len(recovered.requeue),
                    len(recovered.interrupted),
                    len(recovered.held),
                )
            self._executor = executor
            claim_owner(self._sync_owner)
            self.callbacks.start()
            self._stop.clear()
            self._janitor = threading.Thread(
                target=self._janitor_loop, name="sanchari-janitor", daemon=True
            )
            self._janitor.start()
        for record in recovered.held:
            if record.get("owner") == executor.owner:
                self._reattach(record)
        for record in recovered.requeue:
            self._requeue(record)

    def _settle(self, executor: JobExecutor) -> Recovered:
        """Settle the live jobs whose owner is gone (:meth:`JobStore.recover`): at start what a
        predecessor left; later, with a shared store, what servers that stopped left."""
        recovered = self.store.recover(held=self._holder(executor), claim=executor.owner)
        for job_id in recovered.dropped:  # their callers left: stop them where they run
            executor.cancel(job_id)
        self._clean_scratch(recovered)
        return recovered

    def _holder(self, executor: JobExecutor) -> Callable[[str | None], bool]:
        """Whether a live job tagged ``owner`` is still held (so recovery leaves it alone): by
        this server, a cluster, or a server whose heartbeat is fresh. The heartbeats are read
        once, when first needed: after the jobs, so a server that started meanwhile is alive."""
        own = {executor.owner, *self._beating}
        beating: set[str] | None = None

        def held(owner: str | None) -> bool:
            nonlocal beating
            if not owner:
                return False
            if owner in own:
                return True
            if not self.store.shared:
                return False
            if beating is None:
                beating = self.store.live_owners(self.settings.server_timeout_s)
            return owner_alive(owner, beating)

        return held

    def shutdown(self) -> None:
        self._stop.set()
        if self._janitor is not None:
            self._janitor.join(10)
        with self._lock:
            executor, self._executor = self._executor, None
            planners, self._planners = self._planners, {}
        for pool in planners.values():
            pool.shutdown(wait=False, cancel_futures=True)
        if executor is not None:
            executor.shutdown()
        self.callbacks.stop()
        release_owner(self._sync_owner)
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            if executor is not None:  # its jobs stopped with it: others may settle them now
                self._forget_heartbeat(store)
            store.close()
        self._folder_lock.release()

    def _forget_heartbeat(self, store: JobStore) -> None:
        """Remove this server's heartbeat; a database already gone (stopped before this
        server) only delays that: the heartbeat then expires after ``server_timeout_s``."""
        try:
            store.forget_owners(self._beating)
        except Exception as exc:  # any driver error: shutdown must finish
            LOGGER.warning(
                "could not remove this server's heartbeat (%s); other servers settle its "
                "jobs once it is %s s old",
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                self.settings.server_timeout_s,
            )

    @property
    def store(self) -> JobStore:
        if self._store is None:
            self._store = open_store(self.settings.store_dir, self.settings.jobs_db)
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
    def run(self, process_id: str, inputs: Any, execution: Execution, *, async_: bool) -> Outcome:
        """Validate, plan and run (async: queue) a job; raises :class:`SanchariError` (4xx/5xx).

        A sync job is answered and forgotten, unless an output is by reference: then it is
        kept (and listed) like an async job, so its links work until it expires.
        """
        processor = self.get_processor(process_id)
        job_id = str(uuid.uuid4())
        job = processor.prepare(  # type: ignore[attr-defined]
            inputs, job_id, self.job_dir(job_id), outputs=execution.files()
        )
        self.start()
        body = {"inputs": inputs, "execution": execution.to_dict()}
        if execution.subscriber is not None:
            self._subscribers[job_id] = execution.subscriber.to_dict()
        if async_:
            self._accept(processor, job, body, sync=False)  # type: ignore[arg-type]
            return Outcome(job_id, accepted=True)
        if not self._sync_slots.acquire(blocking=False):
            self._subscribers.pop(job_id, None)
            raise QueueFullError(
                "too many synchronous executions are running; retry later, or run the job "
                "asynchronously (header 'Prefer: respond-async')"
            )
        try:
            self._run_sync(processor, job, body)  # type: ignore[arg-type]
            answer = results_answer(execution, self._files(job_id), self.base_url, job_id)
        except BaseException:
            self._forget(job_id)
            raise
        finally:
            self._sync_slots.release()
        if execution.by_reference:
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
        from sanchari_processes.service.requests import parse_execution

        try:
            body: dict[str, Any] = {"outputs": requested_outputs, "response": requested_response}
            if subscriber is not None:
                body["subscriber"] = {
                    "successUri": subscriber.success_uri,
                    "inProgressUri": subscriber.in_progress_uri,
                    "failedUri": subscriber.failed_uri,
                }
                body["subscriber"] = {k: v for k, v in body["subscriber"].items() if v}
            execution = parse_execution(body, self.settings.callbacks)
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
        waiter = threading.Event()
        if sync:
            self._waiters[job.job_id] = waiter
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
            self._waiters.pop(job.job_id, None)
            self._subscribers.pop(job.job_id, None)
            self.store.delete(job.job_id)
            raise

    def _run_sync(self, processor: SanchariProcessor, job: RoadJob, body: Any) -> dict:
        """Run ``job`` and wait for it, within the time limit and while the client is there;
        the finished record (a failure raises its error)."""
        self._accept(processor, job, body, sync=True)
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
            return record
        finally:
            self._waiters.pop(job.job_id, None)

    def _forget(self, job_id: str) -> None:
        """Stop a job wherever it is and remove every trace of it."""
        self.store.delete(job_id)  # first: late events and planning find nothing to update
        self._subscribers.pop(job_id, None)
        if self._executor is not None:
            self._executor.cancel(job_id)
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def _submit(self, processor: SanchariProcessor, job: RoadJob, *, force: bool = False) -> None:
        """To the workers, or first to the planning pool when the plan needs the network."""
        if not processor.needs_network(job):
            self._hand_over(job, force=force)
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
                self._hand_over(job, force=True)
            except SanchariError as exc:
                self.job_failed(job.job_id, JobFailure.from_error(exc))
            except Exception:
                LOGGER.exception("planning of job %s failed", job.job_id)
                self.job_failed(job.job_id, JobFailure.internal())
        finally:
            with self._lock:
                self._planning -= 1

    def _hand_over(self, job: RoadJob, *, force: bool = False) -> None:
        """Give ``job`` to the executor, and keep its task key with it (to re-attach)."""
        assert self._executor is not None
        task = self._executor.submit(job, force=force)
        if task:
            self.store.update(job.job_id, task=task)

    def _reattach(self, record: dict) -> None:
        """Follow again a job a previous server left on the cluster (or run it again when it
        never got there); one the cluster forgot fails as interrupted."""
        assert self._executor is not None
        job_id, task = record["identifier"], record.get("task")
        if task and self._executor.attach(job_id, task):
            _, execution = self._stored_request(record)
            if execution.subscriber is not None:
                self._subscribers[job_id] = execution.subscriber.to_dict()
            LOGGER.info("job %s: re-attached to its task %s", job_id, task)
            return
        if record["status"] == "accepted" and record["inputs"] is not None:
            self._requeue(record)
            return
        self.job_failed(job_id, JobFailure(**INTERRUPTED))

    def _requeue(self, record: dict) -> None:
        """Plan again a job a previous server accepted but never started, and queue it."""
        job_id = record["identifier"]
        try:
            processor = self.get_processor(record["process_id"])
            inputs, execution = self._stored_request(record)
            if execution.subscriber is not None:
                self._subscribers[job_id] = execution.subscriber.to_dict()
            job = processor.prepare(  # type: ignore[attr-defined]
                inputs, job_id, self.job_dir(job_id), outputs=execution.files()
            )
            self._submit(processor, job, force=True)  # type: ignore[arg-type]
        except SanchariError as exc:
            self.job_failed(job_id, JobFailure.from_error(exc))
        except Exception:
            LOGGER.exception("job %s could not be queued again", job_id)
            self.job_failed(job_id, JobFailure.internal())

    # -- housekeeping ---------------------------------------------------------------------------
    def _clean_scratch(self, recovered: Recovered) -> None:
        """Remove what settled jobs left. A server alone on its folder also removes every
        other folder but successful jobs' results (no ``work/``) and jobs a cluster holds."""
        root = self.settings.store_dir / "jobs"
        if not root.is_dir():
            return
        if self.store.shared:  # other servers' jobs live here too
            for job_id in recovered.settled:
                shutil.rmtree(root / job_id, ignore_errors=True)
            return
        requeued = {r["identifier"] for r in recovered.requeue}
        held = {r["identifier"] for r in recovered.held}
        kept = self.store.identifiers(["successful"])
        for folder in root.iterdir():
            if folder.name in held:
                continue
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
        """Expire finished jobs; with a shared store also keep this server's heartbeat, take
        over the jobs of servers that stopped, and stop those dismissed on another server."""
        tasks: list[tuple[float, Callable[[], Any]]] = [
            (min(300.0, max(0.5, self.settings.job_retention_s / 4)), self._expire)
        ]
        if self.store.shared:
            tasks += [(self.settings.heartbeat_s, self._take_over), (_WATCH_S, self._watch)]
        due = [time.monotonic() + interval for interval, _ in tasks]
        while not self._stop.wait(min(interval for interval, _ in tasks)):
            for index, (interval, task) in enumerate(tasks):
                if time.monotonic() < due[index]:
                    continue
                due[index] = time.monotonic() + interval
                try:
                    task()
                except Exception:
                    LOGGER.exception("janitor task %s failed", task.__name__)

    def _take_over(self) -> None:
        """Renew this server's heartbeat, then settle the jobs of servers whose heartbeat
        stopped: their queued jobs run here, their running ones fail as interrupted."""
        executor = self._executor
        if executor is None:
            return
        self.store.beat(self._beating, self.settings.server_timeout_s)
        recovered = self._settle(executor)
        if recovered.settled:
            LOGGER.warning(
                "from stopped servers: %d job(s) queued again here, %d interrupted job(s) failed",
                len(recovered.requeue),
                len(recovered.interrupted),
            )
        for record in recovered.requeue:
            self._requeue(record)

    def _watch(self) -> None:
        """Stop the local jobs whose record is no longer live (dismissed on another server) or
        no longer this server's (settled by another while this one was silent)."""
        executor = self._executor
        if executor is None or executor.reattaches:  # a cluster's jobs hear it from the cluster
            return
        here = executor.active()
        states = self.store.states(here) if here else {}
        for job_id in here:
            status, owner = states.get(job_id, (None, None))
            if status in LIVE and owner in self._beating:
                continue
            LOGGER.info("job %s: stopped here, its record is %s elsewhere", job_id, status)
            executor.cancel(job_id)
            if status not in LIVE:  # no server runs it: remove what it wrote since
                shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
            self._wake(job_id)

    # -- job events (from the executor) ---------------------------------------------------------
    def job_started(self, job_id: str) -> None:
        self.store.update(
            job_id, status="running", started=now(), progress=1, message="Reading imagery"
        )
        self._notify_progress(job_id, force=True)

    def job_progress(self, job_id: str, fraction: float, stage: str | None = None) -> None:
        percent = min(99, max(1, int(fraction * 100)))
        values: dict[str, Any] = {"status": "running", "progress": percent}
        if stage:
            values["message"] = stage
        self.store.update(job_id, **values)
        self._notify_progress(job_id)

    def job_succeeded(self, job_id: str, location: Path) -> None:
        changed = self.store.update(
            job_id,
            status="successful",
            progress=100,
            finished=now(),
            location=str(location),
            mimetype=RESULT_MIMETYPE,
            message="Job complete",
        )
        self._wake(job_id)
        if changed:  # a job two servers follow is reported once
            self._notify_final(job_id)

    def job_failed(self, job_id: str, failure: JobFailure) -> None:
        changed = self.store.update(
            job_id,
            status="failed",
            finished=now(),
            error=failure.to_dict(),
            message=f"{failure.code}: {failure.message}",
        )
        if changed:
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        self._wake(job_id)
        if changed:
            self._notify_final(job_id)

    def _wake(self, job_id: str) -> None:
        waiter = self._waiters.get(job_id)
        if waiter is not None:
            waiter.set()

    # -- callbacks ------------------------------------------------------------------------------
    def _notify_progress(self, job_id: str, *, force: bool = False) -> None:
        """An in-progress callback, at most every few seconds per job (queued, never waited)."""
        uri = self._subscribers.get(job_id, {}).get("inProgressUri")
        if not uri:
            return
        moment = time.monotonic()
        if not force and moment - self._last_progress_callback.get(job_id, 0.0) < (
            _PROGRESS_CALLBACK_S
        ):
            return
        self._last_progress_callback[job_id] = moment
        try:
            record = self.store.get(job_id)
        except SanchariJobNotFound:
            return
        self.callbacks.send(uri, job_document(self.base_url, record), retry=False)

    def _notify_final(self, job_id: str) -> None:
        """The success (results document) or failure (exception) callback of a finished job."""
        subscriber = self._subscribers.pop(job_id, None)
        self._last_progress_callback.pop(job_id, None)
        if not subscriber:
            return
        try:
            record = self.store.get(job_id)
            if record["status"] == JobStatus.successful.value:
                _, execution = self._stored_request(record)
                document = results_document(
                    execution, self._files(job_id, record), self.base_url, job_id
                )
                self.callbacks.send(subscriber.get("successUri"), document)
            elif record["status"] == JobStatus.failed.value:
                error = record.get("error") or JobFailure.internal().to_dict()
                exception = {
                    "type": error["code"],
                    "code": error["code"],
                    "status": error["status"],
                    "description": error["message"],
                    "jobID": job_id,
                }
                self.callbacks.send(subscriber.get("failedUri"), exception)
        except (SanchariError, OSError, ValueError):
            LOGGER.exception("callback for job %s could not be prepared", job_id)

    # -- results --------------------------------------------------------------------------------
    def _stored_request(self, record: dict) -> tuple[Any, Execution]:
        """A stored job's inputs and how it wants its results (older records: inputs only)."""
        stored = record.get("inputs")
        if isinstance(stored, dict) and set(stored) == {"inputs", "execution"}:
            return stored["inputs"], execution_from_dict(
                stored["execution"], self.settings.callbacks
            )
        return stored, execution_from_dict(None, self.settings.callbacks)

    def _files(self, job_id: str, record: dict | None = None) -> dict[str, ResultFile]:
        """A successful job's output files by output id."""
        record = record or self.store.get(job_id)
        location = Path(record["location"]).absolute()  # a relative jobs folder is the CWD's
        return {
            key: ResultFile(location.parent / entry["file"], entry["mediaType"])
            for key, entry in read_manifest(location).items()
            if key in OUTPUTS and "/" not in entry["file"]
        }

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
        self._subscribers.pop(job_id, None)
        if record["status"] in LIVE and self._executor is not None:
            self._executor.cancel(job_id)
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        self._wake(job_id)
        return True

    def __repr__(self) -> str:
        return f"<SanchariManager> {self.settings.store_dir}"


def _failure_error(record: dict) -> SanchariError:
    """The stored failure of a job as the error its execute request answers with."""
    if record["status"] == JobStatus.dismissed.value:
        return SanchariJobNotFound("the job was dismissed before it finished")
    failure = record.get("error") or JobFailure.internal().to_dict()
    error = SanchariError(failure["message"])
    error.ogc_code = failure["code"]
    error.http_status = int(failure["status"])
    return error
