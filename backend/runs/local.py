"""LocalExecutor: runs workflows as asyncio tasks in the server process (the embedded default).

- At most ``max_concurrent`` runs execute at once; the rest wait ``queued``.
- Leases make resumption safe when several server processes share one database: a run is owned
  by one executor (``host:pid:nonce``), which renews the lease while it works. At start-up and
  periodically, an executor claims unfinished runs whose owner is gone (its lease expired, or
  it was a process on this host that no longer exists) and resumes them from their last
  checkpoint, under the correlation id of the request that created them. Each process runs only
  what it accepted or claimed: for work shared across processes and machines, use the queue
  executor (``AGENTFLOW_EXECUTOR=queue``).
- A run that stops to wait for a human (``waiting``) ends its task and releases its lease; the
  sweep never claims it. ``resume`` takes the lease again and schedules it like a new run.
- Shutdown stops taking work, gives running nodes a grace period, then leaves the rest
  resumable (their records stay ``queued``/``running``, leases released).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import uuid
from typing import Any

from agents import context
from agents.errors import ServiceUnavailable
from backend.runs.records import WorkflowRecord, WorkflowStatus
from backend.runs.stack import DeferredRunner
from backend.runs.store import WorkflowStore, utcnow

__all__ = ["LocalExecutor"]

logger = logging.getLogger("agentflow.executor")


def _owner_alive(owner: str) -> bool:
    """Whether the executor named ``owner`` may still be running (unknown hosts: assume yes)."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    pid = int(pid_text)
    if pid == os.getpid():
        return owner in _THIS_PROCESS_OWNERS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Executors alive in this process (tests run several apps, one after another, in one process).
_THIS_PROCESS_OWNERS: set[str] = set()


class LocalExecutor:
    """Schedules, resumes and cancels runs in this process; ``RunRunner`` executes them."""

    kind = "local"

    def __init__(
        self, *, store: WorkflowStore, runner: DeferredRunner, max_concurrent: int, lease_seconds: float = 30.0
    ) -> None:
        self.store = store
        self.runner = runner
        self.lease_seconds = lease_seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        _THIS_PROCESS_OWNERS.add(self.owner)
        self._slots = asyncio.Semaphore(max_concurrent)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._pending: dict[str, WorkflowRecord] = {}
        self._cancel_requested: set[str] = set()
        self._accepting = True
        self._stopping = False
        self._sweeper: asyncio.Task[None] | None = None

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        await self.sweep()
        self._sweeper = asyncio.create_task(self._maintain(), name="executor-leases")

    async def shutdown(self, grace: float) -> None:
        self._accepting = False
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        pending = [task for task in self._tasks.values() if not task.done()]
        if pending:
            logger.info("draining %d workflow runs", len(pending), extra={"event": "executor_draining"})
            await asyncio.wait(pending, timeout=grace)
        self._stopping = True
        leftover = [task for task in self._tasks.values() if not task.done()]
        for task in leftover:
            task.cancel()
        if leftover:
            await asyncio.gather(*leftover, return_exceptions=True)
            try:
                await self.store.release_leases(owner=self.owner)
            except Exception:
                # Shutdown goes on: the runs stay resumable either way, as a lease whose owner
                # is gone (or expired) is claimed by the next process's sweep.
                logger.warning(
                    "could not release the leases of unfinished runs; they are resumed once claimed",
                    exc_info=True,
                    extra={"event": "executor_release_failed"},
                )
            logger.info("left %d workflow runs resumable", len(leftover), extra={"event": "executor_stopped"})
        _THIS_PROCESS_OWNERS.discard(self.owner)

    @property
    def accepting(self) -> bool:
        return self._accepting

    @property
    def active_runs(self) -> int:
        return sum(1 for task in self._tasks.values() if not task.done())

    # --- operations ---------------------------------------------------------------------------

    async def accept(self, record: WorkflowRecord) -> WorkflowRecord:
        if not self._accepting:
            raise ServiceUnavailable("The server is shutting down and takes no new workflows.")
        await self.store.create(record=record, lease_owner=self.owner, lease_seconds=self.lease_seconds)
        self._schedule(record)
        return record

    def live(self, workflow_id: str) -> WorkflowRecord | None:
        return self.runner.live.get(workflow_id) or self._pending.get(workflow_id)

    async def resume(self, workflow_id: str, value: dict[str, Any]) -> WorkflowRecord | None:
        if not self._accepting:
            raise ServiceUnavailable("The server is shutting down and resumes no workflows.")
        record = await self.store.resume(
            workflow_id=workflow_id, value=value, now=utcnow(), lease_owner=self.owner, lease_seconds=self.lease_seconds
        )
        if record is not None:
            previous = self._tasks.get(workflow_id)
            if previous is not None and not previous.done():
                await asyncio.wait({previous})  # the leg that stopped to wait is still returning
                self._forget(workflow_id, previous)
            self._schedule(record)
        return record

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
        live = self.live(workflow_id)
        if record.status is WorkflowStatus.RUNNING:
            self._cancel_requested.add(workflow_id)
            if live is not None:
                live.cancel_requested = True
                self.runner.changed(workflow_id)
        elif record.status is WorkflowStatus.CANCELLED:
            if live is not None:
                live.status, live.finished_at = record.status, record.finished_at
            self.store.remember_finished(record)
            self.runner.changed(workflow_id)
        return live or record

    # --- scheduling and leases --------------------------------------------------------------

    def _schedule(self, record: WorkflowRecord) -> None:
        if record.id in self._tasks and not self._tasks[record.id].done():
            return
        self._pending[record.id] = record
        task = asyncio.create_task(self._run(record), name=f"workflow-{record.id}")
        self._tasks[record.id] = task
        task.add_done_callback(functools.partial(self._forget, record.id))

    def _forget(self, workflow_id: str, task: object = None) -> None:
        if task is not None and self._tasks.get(workflow_id) not in (task, None):
            return  # a newer task runs this workflow (it was resumed after waiting): keep its state
        self._tasks.pop(workflow_id, None)
        self._pending.pop(workflow_id, None)
        self._cancel_requested.discard(workflow_id)

    async def _run(self, record: WorkflowRecord) -> None:
        async with self._slots:
            self._pending.pop(record.id, None)
            if record.status.is_terminal:
                return
            await self.runner.run(
                record,
                cancel_requested=lambda: record.id in self._cancel_requested,
                interrupted=lambda: self._stopping,
            )

    async def sweep(self) -> int:
        """Claim and schedule unfinished runs whose owner is gone; returns how many."""
        if not self._accepting:
            return 0
        now = utcnow()
        claimed = 0
        for workflow_id, owner, expires in await self.store.unfinished(exclude_owner=self.owner):
            if workflow_id in self._tasks:
                continue
            orphaned = owner is None or (expires is not None and expires < now) or not _owner_alive(owner)
            if not orphaned:
                continue
            record = await self.store.claim(
                workflow_id=workflow_id, owner=self.owner, lease_seconds=self.lease_seconds, previous_owner=owner
            )
            if record is not None:
                claimed += 1
                with context.bind(
                    correlation_id=record.correlation_id, workflow_id=workflow_id, workflow_type=record.workflow_type
                ):
                    logger.info(
                        "resuming workflow",
                        extra={"event": "workflow_recovered", "previous_status": record.status.value},
                    )
                self._schedule(record)
        return claimed

    async def _maintain(self) -> None:
        interval = self.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                cancelled = await self.store.renew_leases(
                    owner=self.owner, workflow_ids=list(self._tasks), lease_seconds=self.lease_seconds
                )
                self._cancel_requested |= cancelled  # cancellations asked of another process
                await self.sweep()
            except Exception:
                logger.exception("lease maintenance failed", extra={"event": "lease_maintenance_failed"})
