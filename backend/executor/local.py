"""LocalExecutor: runs workflows as asyncio tasks in the server process.

- At most ``max_concurrent`` runs execute at once; the rest wait ``queued``.
- Each run is a LangGraph graph with a checkpointer (``thread_id`` = workflow id) and
  ``durability="sync"``: a node's checkpoint is on disk before the next node starts, so a
  crash repeats at most the node that was in flight.
- Leases make resumption safe with several processes on one database: a run is owned by
  one executor (``host:pid:nonce``), which renews the lease while it works. At start-up and
  periodically, an executor claims unfinished runs whose owner is gone (its lease expired, or
  it was a process on this host that no longer exists) and resumes them from their last
  checkpoint, under the correlation id of the request that created them.
- Shutdown stops taking work, gives running nodes a grace period, then leaves the rest
  resumable (their records stay ``queued``/``running``, leases released).
- The executor holds the live record of every run it owns and keeps it current, so polls,
  waits and event streams for those runs are answered from memory. Progress reaches the
  database at most every ``PROGRESS_FLUSH_SECONDS`` (the checkpoint, not the progress column,
  is what makes a run durable); status changes are written at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncGenerator, Mapping
from datetime import datetime
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph

from agents import context
from agents.errors import AgentflowError, BudgetExceeded, ServiceUnavailable, WorkflowTimeout
from agents.providers import Providers
from backend.store import WorkflowRecord, WorkflowStatus, WorkflowStore
from backend.store.repository import utcnow
from workflows.base import WorkflowSpec
from workflows.registry import get_spec

__all__ = ["LocalExecutor"]

logger = logging.getLogger("agentflow.executor")
PROGRESS_FLUSH_SECONDS = 1.0


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
    """Schedules, runs, resumes and cancels workflow runs in this process."""

    def __init__(
        self,
        *,
        store: WorkflowStore,
        checkpointer: BaseCheckpointSaver[Any],
        providers: Providers,
        default_models: Mapping[str, str],
        max_concurrent: int,
        workflow_timeout: float,
        lease_seconds: float = 30.0,
    ) -> None:
        self.store = store
        self.checkpointer = checkpointer
        self.providers = providers
        self.default_models = default_models
        self.workflow_timeout = workflow_timeout
        self.lease_seconds = lease_seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        _THIS_PROCESS_OWNERS.add(self.owner)
        self._slots = asyncio.Semaphore(max_concurrent)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._finished: dict[str, asyncio.Event] = {}
        self._cancel_requested: set[str] = set()
        self._changed: dict[str, asyncio.Event] = {}
        self._live: dict[str, WorkflowRecord] = {}
        self._graphs: dict[str, CompiledStateGraph[Any, Any, Any, Any]] = {}
        self._accepting = True
        self._stopping = False
        self._sweeper: asyncio.Task[None] | None = None

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume what an earlier process left unfinished, then keep leases fresh."""
        await self.sweep()
        self._sweeper = asyncio.create_task(self._maintain(), name="executor-leases")

    async def shutdown(self, grace: float) -> None:
        """Stop taking work; let running nodes finish for ``grace`` seconds; leave the rest."""
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
            await self.store.release_leases(owner=self.owner)
            logger.info("left %d workflow runs resumable", len(leftover), extra={"event": "executor_stopped"})
        _THIS_PROCESS_OWNERS.discard(self.owner)

    @property
    def accepting(self) -> bool:
        return self._accepting

    @property
    def active_runs(self) -> int:
        return sum(1 for task in self._tasks.values() if not task.done())

    # --- public operations ------------------------------------------------------------------

    def check_accepting(self) -> None:
        if not self._accepting:
            raise ServiceUnavailable("The server is shutting down and takes no new workflows.")

    def submit(self, record: WorkflowRecord) -> None:
        """Schedule a freshly stored (and leased) record."""
        self._live[record.id] = record
        self._schedule(record.id)

    def snapshot(self, workflow_id: str) -> WorkflowRecord | None:
        """The current record of a run this executor owns (None for runs owned elsewhere)."""
        return self._live.get(workflow_id)

    async def get(self, workflow_id: str) -> WorkflowRecord | None:
        """The freshest record: from memory for runs owned here, else from the store."""
        return self._live.get(workflow_id) or await self.store.get(workflow_id=workflow_id)

    async def cancel(self, workflow_id: str) -> WorkflowRecord | None:
        """Cancel a run: queued ones never start; running ones stop at the next node boundary."""
        record = await self.store.request_cancel(workflow_id=workflow_id)
        if record is None:
            return None
        live = self._live.get(workflow_id)
        if record.status is WorkflowStatus.RUNNING:
            self._cancel_requested.add(workflow_id)
            if live is not None:
                live.cancel_requested = True
        elif record.status is WorkflowStatus.CANCELLED:
            if live is not None:
                live.status, live.finished_at = record.status, record.finished_at
            self.store.remember_finished(record)
            self._finish_event(workflow_id)
        return live or record

    async def wait(self, workflow_id: str, max_wait: float) -> WorkflowRecord | None:
        """The record once terminal, or as it stands when ``max_wait`` seconds run out."""
        deadline = time.monotonic() + max_wait
        record = await self.get(workflow_id)
        while record is not None and not record.status.is_terminal:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            event = self._finished.get(workflow_id)
            if event is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
            else:  # running in another process: poll gently
                await asyncio.sleep(min(0.25, remaining))
            record = await self.get(workflow_id)
        return record

    def change_signal(self, workflow_id: str) -> asyncio.Event | None:
        """An event set at the next change of a run executing here (None if it runs elsewhere).

        Grab it *before* reading the record, then wait on it: a change in between sets it.
        """
        if workflow_id not in self._tasks:
            return None
        return self._changed.setdefault(workflow_id, asyncio.Event())

    def _signal_change(self, workflow_id: str) -> None:
        event = self._changed.pop(workflow_id, None)
        if event is not None:
            event.set()

    # --- scheduling and leases --------------------------------------------------------------

    def _schedule(self, workflow_id: str) -> None:
        if workflow_id in self._tasks and not self._tasks[workflow_id].done():
            return
        self._finished.setdefault(workflow_id, asyncio.Event())
        task = asyncio.create_task(self._run(workflow_id), name=f"workflow-{workflow_id}")
        self._tasks[workflow_id] = task
        task.add_done_callback(functools.partial(self._forget, workflow_id))

    def _forget(self, workflow_id: str, _task: object = None) -> None:
        self._tasks.pop(workflow_id, None)
        self._live.pop(workflow_id, None)
        self._signal_change(workflow_id)
        self._cancel_requested.discard(workflow_id)
        self._finish_event(workflow_id)

    def _finish_event(self, workflow_id: str) -> None:
        event = self._finished.pop(workflow_id, None)
        if event is not None:
            event.set()

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
                self._live[workflow_id] = record
                with context.bind(
                    correlation_id=record.correlation_id, workflow_id=workflow_id, workflow_type=record.workflow_type
                ):
                    logger.info(
                        "resuming workflow",
                        extra={"event": "workflow_recovered", "previous_status": record.status.value},
                    )
                self._schedule(workflow_id)
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

    # --- running ----------------------------------------------------------------------------

    def _graph(self, spec: WorkflowSpec) -> CompiledStateGraph[Any, Any, Any, Any]:
        graph = self._graphs.get(spec.name)
        if graph is None:
            graph = self._graphs[spec.name] = spec.compile(self.checkpointer)
        return graph

    async def _run(self, workflow_id: str) -> None:
        async with self._slots:
            record = self._live.get(workflow_id)
            if record is None or record.status.is_terminal:
                return
            with context.bind(
                correlation_id=record.correlation_id,
                workflow_id=record.id,
                workflow_type=record.workflow_type,
                node=None,
            ):
                await self._execute(record)

    async def _execute(self, record: WorkflowRecord) -> None:
        spec = get_spec(record.workflow_type)
        if spec is None:
            await self._fail(record.id, "unknown_workflow", f"no workflow type {record.workflow_type!r}", None)
            return
        if record.cancel_requested:
            await self._finish(record.id, WorkflowStatus.CANCELLED, progress=record.progress)
            return
        started_at = record.started_at or utcnow()
        resumed = record.status is WorkflowStatus.RUNNING or record.attempts > 0
        await self.store.update(
            workflow_id=record.id, status=WorkflowStatus.RUNNING, started_at=started_at, attempts=record.attempts + 1
        )
        record.status, record.started_at, record.attempts = WorkflowStatus.RUNNING, started_at, record.attempts + 1
        self._signal_change(record.id)
        logger.info(
            "workflow resumed" if resumed else "workflow started",
            extra={"event": "workflow_resumed" if resumed else "workflow_started", "attempt": record.attempts},
        )
        flushed_at = time.monotonic()
        request = spec.request_model.model_validate(record.input)
        config: RunnableConfig = {"configurable": {"thread_id": record.id}}
        graph = self._graph(spec)
        # A run that never started has no checkpoint: skip the lookup on the common path.
        has_checkpoint = resumed and await self.checkpointer.aget_tuple(config) is not None
        graph_input = None if has_checkpoint else spec.initial_state(request)
        run_context = spec.make_context(request, self.providers, self.default_models)
        state: dict[str, Any] = {}
        progress = record.progress
        budget = getattr(request, "max_tokens_budget", None)
        remaining = self.workflow_timeout - _elapsed(started_at)
        try:
            async with asyncio.timeout(max(remaining, 0.001)):
                stream = cast(
                    "AsyncGenerator[tuple[str, Any], None]",
                    graph.astream(
                        graph_input,
                        config,
                        context=run_context,
                        durability="sync",
                        stream_mode=["updates", "values"],
                    ),
                )
                async with contextlib.aclosing(stream):
                    last_node = progress.get("node", "")
                    async for mode, chunk in stream:
                        if mode == "updates":
                            last_node = next(iter(chunk), last_node) if isinstance(chunk, dict) else last_node
                            continue
                        state = cast("dict[str, Any]", chunk)
                        progress = spec.progress(last_node, state)
                        record.progress, record.usage = progress, _usage(state)
                        self._signal_change(record.id)
                        if time.monotonic() - flushed_at >= PROGRESS_FLUSH_SECONDS:
                            flushed_at = time.monotonic()
                            await self.store.update(workflow_id=record.id, progress=progress, usage=record.usage)
                        if budget is not None and _tokens(state) >= budget:
                            raise BudgetExceeded(f"The run spent {_tokens(state)} tokens of its {budget} budget.")
                        if record.id in self._cancel_requested:
                            logger.info("workflow cancelled at a node boundary", extra={"event": "workflow_cancelled"})
                            await self._finish(record.id, WorkflowStatus.CANCELLED, state=state, progress=progress)
                            return
        except asyncio.CancelledError:
            if self._stopping:
                raise  # shutdown: the record stays resumable
            await self._finish(record.id, WorkflowStatus.CANCELLED, state=state, progress=progress)
            raise
        except TimeoutError:
            error = WorkflowTimeout(f"The run exceeded its {self.workflow_timeout:.0f} s deadline.")
            await self._fail(record.id, error.code, error.detail, state, progress, spec)
            return
        except AgentflowError as error:
            await self._fail(record.id, error.code, error.detail, state, progress, spec)
            return
        except Exception:
            logger.exception("workflow crashed", extra={"event": "workflow_error"})
            await self._fail(record.id, "internal_error", "The workflow failed unexpectedly.", state, progress)
            return
        result = spec.result(state)
        await self._finish(record.id, WorkflowStatus.COMPLETED, state=state, result=result, progress=progress)

    async def _fail(
        self,
        workflow_id: str,
        code: str,
        message: str,
        state: Mapping[str, Any] | None,
        progress: dict[str, Any] | None = None,
        spec: WorkflowSpec | None = None,
    ) -> None:
        # A run stopped by its budget keeps the best result it reached (when it has one).
        partial = spec.partial_result(state) if spec is not None and state and code == "budget_exceeded" else None
        await self._finish(
            workflow_id,
            WorkflowStatus.FAILED,
            state=state,
            result=partial,
            error_code=code,
            error_message=message,
            progress=progress,
        )

    async def _finish(
        self,
        workflow_id: str,
        status: WorkflowStatus,
        *,
        state: Mapping[str, Any] | None = None,
        result: dict[str, Any] | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        progress: dict[str, Any] | None = None,
    ) -> None:
        finished_at = utcnow()
        usage = _usage(state) if state else None
        changed = await self.store.finish(
            workflow_id=workflow_id,
            status=status,
            result=result,
            error_code=error_code,
            error_message=error_message,
            usage=usage,
            progress=progress,
            finished_at=finished_at,
        )
        live = self._live.get(workflow_id)
        if changed and live is not None:
            live.status, live.finished_at, live.result = status, finished_at, result
            live.error_code, live.error_message = error_code, error_message
            live.usage = usage or live.usage
            live.progress = progress if progress is not None else live.progress
            self.store.remember_finished(live)
            self._finish_event(workflow_id)  # answer waiters now, not after the clean-up below
        if changed:
            logger.info(
                "workflow %s",
                status.value,
                extra={"event": f"workflow_{status.value}", "error_code": error_code, "usage": _usage(state or {})},
            )
        with contextlib.suppress(Exception):
            # Finished runs need no checkpoints; dropping them keeps the checkpoint store small.
            await self.checkpointer.adelete_thread(workflow_id)


def _elapsed(started_at: datetime) -> float:
    return (utcnow() - started_at).total_seconds()


def _usage(state: Mapping[str, Any]) -> dict[str, Any]:
    usage = dict(state.get("usage") or {})
    return {
        "input_tokens": int(usage.get("input_tokens", 0)),
        "output_tokens": int(usage.get("output_tokens", 0)),
        "llm_calls": int(usage.get("llm_calls", 0)),
        "est_cost_usd": round(float(usage.get("est_cost_usd", 0.0)), 6),
    }


def _tokens(state: Mapping[str, Any]) -> int:
    usage = _usage(state)
    return int(usage["input_tokens"]) + int(usage["output_tokens"])
