"""QueueExecutor: runs as procrastinate jobs on PostgreSQL, executed by any worker process.

- A submit inserts the workflow row and defers its job in the same transaction (one psycopg
  connection, see the store), so every accepted row has exactly one job and no job exists
  without its row. A reconciliation pass re-defers the job of any unfinished run whose job
  has vanished, as a last line of defence.
- Every ``agentflow serve`` process may run an embedded worker (``--worker-concurrency``;
  0 = API only) and ``agentflow worker`` runs dedicated ones on any machine that reaches the
  database. A worker with a free slot takes the oldest queued job, whoever accepted it.
- Workers send heartbeats. A worker whose heartbeat is older than half of ``stalled_after``
  is presumed dead: its jobs go back to the queue and another worker resumes each run from its
  last LangGraph checkpoint. A run that has been started ``max_attempts`` times ends ``failed``
  with code ``worker_lost``.
- Cancel: a queued job is removed; a running one is aborted through procrastinate (a NOTIFY
  reaches the worker, which cancels the run's task and records it ``cancelled``).
- A run that stops to wait for a human (``waiting``) finishes its job; ``resume`` records the
  answer and defers a new job in the same transaction.
- Graceful shutdown: jobs still running after the grace period are interrupted and go straight
  back to the queue, their attempt given back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from datetime import timedelta
from typing import Any

from procrastinate import App, PsycopgConnector, RetryStrategy
from procrastinate.job_context import AbortReason, JobContext
from procrastinate.jobs import Status
from procrastinate.worker import Worker
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agents import context
from agents.errors import ServiceUnavailable
from backend.runs.records import WorkflowRecord, WorkflowStatus
from backend.runs.stack import DeferredRunner
from backend.runs.store import WorkflowStore, utcnow
from backend.runs.store.tables import workflows

__all__ = ["QUEUE", "TASK_NAME", "JobQueue", "QueueExecutor", "RunInterrupted"]

logger = logging.getLogger("agentflow.executor")
TASK_NAME = "agentflow.run_workflow"
QUEUE = "agentflow"
#: Unfinished runs older than this whose job is gone get a new one.
RECONCILE_AFTER = timedelta(seconds=30)

_ORPHANS = text(
    """
    SELECT w.id FROM workflows w
    LEFT JOIN procrastinate_jobs j ON j.id = w.job_id
    WHERE w.status IN ('queued', 'running') AND w.created_at < :before
      AND (j.id IS NULL OR j.status NOT IN ('todo', 'doing'))
    ORDER BY w.created_at
    LIMIT 500
    """
)


#: A worker with this many slots per job-fetching loop gets another loop (at most ``MAX_FETCHERS``).
SLOTS_PER_FETCHER = 64
MAX_FETCHERS = 4


class _Worker(Worker):
    """procrastinate's worker, taking jobs with ``fetchers`` loops side by side instead of one.

    A worker takes one job per database round trip, and that round trip waits its turn on an
    event loop busy with the runs it already started: under B2q's burst (500 slots per worker)
    a fetch took ~10 ms and the last job started ~10 s after its submit, longer than a run
    takes. Loops side by side share the worker's slots (its semaphore), heartbeat, listener and
    registration; each still takes one job at a time with ``procrastinate_fetch_job_v2``.
    """

    def __init__(self, *args: Any, fetchers: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fetchers = fetchers

    async def _fetch_and_process_jobs(self) -> None:
        if self.fetchers <= 1:
            await super()._fetch_and_process_jobs()  # type: ignore[no-untyped-call]
            return
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(self.fetchers):
                    group.create_task(super()._fetch_and_process_jobs())  # type: ignore[no-untyped-call]
        except ExceptionGroup as failed:  # what one loop alone would have raised (the others stopped)
            raise failed.exceptions[0] from None


class RunInterrupted(Exception):
    """A run's job was interrupted by a worker shutdown; procrastinate re-queues it at once."""


class JobQueue:
    """The procrastinate app for workflow jobs: opened once per process, shared by API and workers."""

    def __init__(self, conninfo: str, *, pool_size: int = 10) -> None:
        self.app = App(connector=PsycopgConnector(conninfo=conninfo, min_size=1, max_size=pool_size))
        self._task: Any = None

    def register(self, job: Any) -> None:
        """Register the coroutine that runs one workflow job (``job(context, workflow_id=...)``)."""
        self._task = self.app.task(
            name=TASK_NAME,
            queue=QUEUE,
            pass_context=True,
            retry=RetryStrategy(retry_exceptions=[RunInterrupted]),
        )(job)

    async def open(self) -> None:
        await self.app.open_async()

    async def close(self) -> None:
        await self.app.close_async()

    async def defer_in(self, connection: AsyncConnection, workflow_ids: list[str]) -> list[int]:
        """Defer one job per workflow on ``connection``, inside its open transaction."""
        raw = await connection.get_raw_connection()
        jobs = [self._configured(workflow_id).make_new_job(workflow_id=workflow_id) for workflow_id in workflow_ids]
        deferred = await self.app.job_manager.batch_defer_jobs_async(jobs, connection=raw.driver_connection)
        return [int(job.id) for job in deferred if job.id is not None]

    def _configured(self, workflow_id: str) -> Any:
        if self._task is None:
            # API-only processes defer without running: a stand-in that names the same task.
            self.register(_never_runs_here)
        return self._task.configure(queueing_lock=workflow_id)


async def _never_runs_here(_context: JobContext, workflow_id: str) -> None:  # pragma: no cover
    raise RuntimeError(f"workflow {workflow_id} reached a process without a worker")


class QueueExecutor:
    """Defers runs as jobs; runs an embedded worker when ``concurrency`` > 0."""

    kind = "queue"

    def __init__(
        self,
        *,
        store: WorkflowStore,
        runner: DeferredRunner,
        queue: JobQueue,
        concurrency: int,
        stalled_after: float,
        max_attempts: int,
        shutdown_grace: float,
    ) -> None:
        self.store = store
        self.runner = runner
        self.queue = queue
        self.concurrency = concurrency
        self.stalled_after = stalled_after
        self.max_attempts = max_attempts
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._accepting = True
        self._worker: Worker | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._shutdown_grace = shutdown_grace
        if concurrency > 0:
            queue.register(self._run_job)

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        if self.concurrency <= 0:
            return
        heartbeat = max(self.stalled_after / 6, 0.5)
        self._worker = _Worker(
            self.queue.app,
            fetchers=max(1, min(MAX_FETCHERS, self.concurrency // SLOTS_PER_FETCHER)),
            queues=[QUEUE],
            name=self.name,
            concurrency=self.concurrency,
            install_signal_handlers=False,
            update_heartbeat_interval=heartbeat,
            stalled_worker_timeout=self.stalled_after,
            shutdown_graceful_timeout=self._shutdown_grace,
            fetch_job_polling_interval=1.0,
            abort_job_polling_interval=2.0,
            delete_jobs="always",  # the workflow row is the record; finished jobs only take space
        )
        self._worker_task = asyncio.create_task(self._worker.run(), name="queue-worker")  # type: ignore[no-untyped-call]
        self._recovery = asyncio.create_task(self._recover_forever(), name="queue-recovery")
        logger.info(
            "queue worker started",
            extra={"event": "worker_started", "worker": self.name, "concurrency": self.concurrency},
        )

    async def shutdown(self, grace: float) -> None:
        self._accepting = False
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
        if self._worker is not None and self._worker_task is not None:
            self._worker.stop()  # type: ignore[no-untyped-call]
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker_task
            logger.info("queue worker stopped", extra={"event": "worker_stopped", "worker": self.name})

    @property
    def accepting(self) -> bool:
        return self._accepting

    @property
    def active_runs(self) -> int:
        return len(self.runner.live)

    # --- operations ---------------------------------------------------------------------------

    async def accept(self, record: WorkflowRecord) -> WorkflowRecord:
        if not self._accepting:
            raise ServiceUnavailable("The server is shutting down and takes no new workflows.")
        return await self.store.create(record=record)

    def live(self, workflow_id: str) -> WorkflowRecord | None:
        return self.runner.live.get(workflow_id)

    async def resume(self, workflow_id: str, value: dict[str, Any]) -> WorkflowRecord | None:
        if not self._accepting:
            raise ServiceUnavailable("The server is shutting down and resumes no workflows.")
        return await self.store.resume(workflow_id=workflow_id, value=value, now=utcnow())

    async def end_waiting(
        self, workflow_id: str, *, status: WorkflowStatus, error_code: str | None, error_message: str | None
    ) -> WorkflowRecord | None:
        return await self.runner.end_waiting(
            workflow_id, status=status, error_code=error_code, error_message=error_message
        )

    async def cancel(self, workflow_id: str) -> WorkflowRecord | None:
        record = await self.store.request_cancel(workflow_id=workflow_id)
        if record is None:
            return None
        manager = self.queue.app.job_manager
        if record.job_id is not None:
            if record.status is WorkflowStatus.CANCELLED:
                await manager.cancel_job_by_id_async(record.job_id, delete_job=True)
            elif record.status is WorkflowStatus.RUNNING:
                await manager.cancel_job_by_id_async(record.job_id, abort=True)
        live = self.runner.live.get(workflow_id)
        if live is not None:
            live.cancel_requested = True
            self.runner.changed(workflow_id)
        if record.status.is_terminal:
            self.store.remember_finished(record)
        return live or record

    # --- the job ------------------------------------------------------------------------------

    async def _run_job(self, job_context: JobContext, workflow_id: str) -> None:
        record = await self.store.get(workflow_id=workflow_id)
        if record is None or record.status.is_terminal:
            return

        def interrupted() -> bool:
            return job_context.abort_reason() is not AbortReason.USER_REQUEST

        try:
            await self.runner.run(
                record, cancel_requested=lambda: False, interrupted=interrupted, lease_owner=self.name
            )
        except asyncio.CancelledError:
            if interrupted():
                raise RunInterrupted(workflow_id) from None
            raise

    # --- recovery -----------------------------------------------------------------------------

    async def _recover_forever(self) -> None:
        interval = max(self.stalled_after / 6, 0.5)
        reconciled_at = 0.0
        while True:
            await asyncio.sleep(interval)
            try:
                await self.recover_stalled()
                now = asyncio.get_running_loop().time()
                if now - reconciled_at >= RECONCILE_AFTER.total_seconds() / 2:
                    reconciled_at = now
                    await self.reconcile()
            except Exception:
                logger.exception("queue recovery failed", extra={"event": "queue_recovery_failed"})

    async def recover_stalled(self) -> int:
        """Re-queue the jobs of workers presumed dead; end runs out of attempts as ``worker_lost``."""
        manager = self.queue.app.job_manager
        stalled = await manager.get_stalled_jobs(task_name=TASK_NAME, seconds_since_heartbeat=self.stalled_after / 2)
        requeued = 0
        for job in stalled:
            workflow_id = str(job.task_kwargs.get("workflow_id"))
            record = await self.store.get(workflow_id=workflow_id)
            assert job.id is not None
            with context.bind(
                correlation_id=record.correlation_id if record else None, workflow_id=workflow_id, node=None
            ):
                try:
                    if record is None or record.status.is_terminal:
                        await manager.finish_job_by_id_async(job.id, status=Status.FAILED, delete_job=True)
                    elif record.attempts >= self.max_attempts:
                        await self.store.finish(
                            workflow_id=workflow_id,
                            status=WorkflowStatus.FAILED,
                            error_code="worker_lost",
                            error_message=f"The run's worker was lost {record.attempts} times.",
                        )
                        await manager.finish_job_by_id_async(job.id, status=Status.FAILED, delete_job=True)
                        logger.warning("run ended: worker lost", extra={"event": "workflow_worker_lost"})
                    else:
                        await manager.retry_job(job)
                        requeued += 1
                        logger.info(
                            "re-queued the run of a lost worker",
                            extra={"event": "workflow_requeued", "attempt": record.attempts},
                        )
                except Exception:  # another worker got there first
                    logger.debug("stalled job already handled", extra={"event": "stalled_job_skipped"})
        return requeued

    async def reconcile(self) -> int:
        """Give a new job to every unfinished run whose job is gone (never expected; cheap to check)."""
        async with self.store.engine.connect() as connection:
            rows = (await connection.execute(_ORPHANS, {"before": utcnow() - RECONCILE_AFTER})).all()
        for (workflow_id,) in rows:
            async with self.store.engine.begin() as connection:
                (job_id,) = await self.queue.defer_in(connection, [workflow_id])
                await connection.execute(update(workflows).where(workflows.c.id == workflow_id).values(job_id=job_id))
            logger.warning(
                "re-deferred a run without a job", extra={"event": "workflow_redeferred", "workflow_id": workflow_id}
            )
        return len(rows)
