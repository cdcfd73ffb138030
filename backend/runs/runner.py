"""RunRunner: executes one workflow run in this process, whichever executor scheduled it.

- The run is its LangGraph graph with a checkpointer (``thread_id`` = workflow id) and
  ``durability="sync"``: a node's checkpoint is durable before the next node starts, so a crash
  repeats at most the node that was in flight, and a resumed run continues from its checkpoint.
- It enforces the run's deadline and token budget (a budget stop keeps the best result so far),
  stops at a node boundary when cancellation was asked, and classifies failures by their code.
- It keeps the live record of every run it executes, so polls, waits and event streams in this
  process are answered from memory. Progress reaches the database at most every
  ``progress_interval`` seconds (the checkpoint, not the progress column, makes a run durable;
  on PostgreSQL the store writes it for every run at once, within 0.1 s: ``write_progress``);
  status changes are written at once.
- It appends the run's events to the event log (``backend.runs.events``): graph ``values``,
  ``updates``, LLM tokens (``messages``), ``custom`` writes, ``status`` on every visible change
  and ``end``, which is written in the transaction that finishes the run.
- It records the run's timeline (every node and upstream call, see ``agents.telemetry``) with
  the progress and at the end, and, when tracing is on, runs it inside one span that joins the
  trace of the request that submitted it.
- A run whose graph stops at a LangGraph ``interrupt(...)`` becomes ``waiting``: the question
  (the interrupt's value) is stored as the record's ``pending``, its lease and flight are given
  up and its checkpoint is kept, so it holds no executor slot and survives restarts. Once
  ``RunService.resume`` recorded an answer and re-scheduled it, the run continues from that
  checkpoint with ``Command(resume=answer)``. ``end_waiting`` ends a waiting run (a rejected
  answer, a cancel, or ``expire_waiting`` once ``AGENTFLOW_WAITING_TTL`` passed).
- A record that coalesced onto an identical run in flight (single flight, see
  ``backend.runs.cache``) waits for that run and ends as it did; a completed run with a cache key
  becomes the cached result for it, in the same transaction that finishes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, StreamMode

from agents import context, telemetry
from agents.errors import AgentflowError, BudgetExceeded, WorkflowTimeout
from agents.metrics import metrics
from agents.providers import Providers
from agents.providers.usage import Usage
from backend.runs.checkpoints import NEW_THREAD
from backend.runs.events import EventLog, jsonable, record_fields
from backend.runs.records import CacheOutcome, WorkflowRecord, WorkflowStatus
from backend.runs.signals import ChangeHub, status_key
from backend.runs.store import WorkflowStore, utcnow
from backend.runs.store.threads import ThreadStore
from backend.runs.threads import final_values
from workflows.base import WorkflowSpec
from workflows.registry import get_spec

__all__ = ["RunRunner"]

logger = logging.getLogger("agentflow.executor")
#: A follower re-reads its leader at least this often (it is also woken by the leader's changes).
FOLLOW_POLL_SECONDS = 1.0
#: What the graph streams: every mode becomes events of the same name (``backend.runs.events``).
STREAM_MODES: list[StreamMode] = ["updates", "values", "messages", "custom"]


class RunRunner:
    """Runs workflow graphs to a terminal status (or leaves them resumable when interrupted)."""

    def __init__(
        self,
        *,
        store: WorkflowStore,
        checkpointer: BaseCheckpointSaver[Any],
        providers: Providers,
        default_models: Mapping[str, Mapping[str, str]],
        workflow_timeout: float,
        hub: ChangeHub,
        progress_interval: float,
        cache_ttl: float = 0.0,
        events: EventLog | None = None,
    ) -> None:
        self.store = store
        self.events = events or EventLog(store=store, hub=hub)
        self.checkpointer = checkpointer
        self.providers = providers
        self.default_models = default_models
        self.workflow_timeout = workflow_timeout
        self.hub = hub
        self.progress_interval = progress_interval
        self.cache_ttl = cache_ttl
        #: The current record of every run executing (or about to) in this process.
        self.live: dict[str, WorkflowRecord] = {}
        self.threads = ThreadStore(store.engine)
        self._graphs: dict[str, CompiledStateGraph[Any, Any, Any, Any]] = {}

    def changed(self, workflow_id: str, status: WorkflowStatus | None = None) -> None:
        """Wake the run's watchers; naming a ``status`` that is not settled spares the
        ``settled_only`` ones (a ``?wait`` re-reads the record when the run ends, not at every step)."""
        self.hub.changed(workflow_id if status is None else status_key(workflow_id, status.value))

    def _graph(self, spec: WorkflowSpec) -> CompiledStateGraph[Any, Any, Any, Any]:
        graph = self._graphs.get(spec.name)
        if graph is None:
            graph = self._graphs[spec.name] = spec.compile(self.checkpointer)
        return graph

    async def run(
        self,
        record: WorkflowRecord,
        *,
        cancel_requested: Callable[[], bool],
        interrupted: Callable[[], bool],
        lease_owner: str | None = None,
    ) -> None:
        """Execute ``record`` until it ends; re-raise CancelledError.

        Args:
            lease_owner: recorded on the row when the run starts (the queue worker's name).
            cancel_requested: polled at every node boundary; True ends the run ``cancelled``.
            interrupted: consulted when the task is cancelled: True means the process is
                stopping (the run stays resumable), False means a client cancelled it.
        """
        self.live[record.id] = record
        try:
            await self.events.open(record.id, resumed=_maybe_resumed(record))
            # A resumed run appends to the timeline its earlier attempts stored.
            earlier = await self.store.timeline(workflow_id=record.id) if _maybe_resumed(record) else None
            timeline = telemetry.Timeline(earlier)
            record.timeline = timeline.entries
            with (
                context.bind(
                    correlation_id=record.correlation_id,
                    workflow_id=record.id,
                    workflow_type=record.workflow_type,
                    node=None,
                ),
                telemetry.run_scope(
                    timeline,
                    name=f"workflow {record.workflow_type}",
                    attributes={
                        "agentflow.workflow_id": record.id,
                        "agentflow.workflow_type": record.workflow_type,
                        "agentflow.correlation_id": record.correlation_id,
                        "agentflow.attempt": record.attempts + 1,
                        "agentflow.cache": record.cache_outcome.value if record.cache_outcome else None,
                    },
                    traceparent=record.traceparent,
                ),
            ):
                await self._execute(record, cancel_requested, interrupted, lease_owner)
        finally:
            if self.live.get(record.id) is record:  # (a resumed leg may have replaced it already)
                del self.live[record.id]
            record.timeline = None  # stored with the run; finished records are cached without it
            await asyncio.shield(self.events.close(record.id))
            self.changed(record.id)

    async def _execute(
        self,
        record: WorkflowRecord,
        cancel_requested: Callable[[], bool],
        interrupted: Callable[[], bool],
        lease_owner: str | None,
    ) -> None:
        spec = get_spec(record.workflow_type)
        if spec is None:
            await self._fail(record, "unknown_workflow", f"no workflow type {record.workflow_type!r}", None)
            return
        if record.cancel_requested:
            await self._finish(record, WorkflowStatus.CANCELLED, progress=record.progress)
            return
        if record.thread_id is not None and record.started_at is None and not await self._wait_turn(record):
            return
        started_at = record.started_at or utcnow()
        resumed = record.status is WorkflowStatus.RUNNING or record.attempts > 0
        attempts = record.attempts + 1
        if not await self.store.start_run(
            workflow_id=record.id, started_at=started_at, attempts=attempts, lease_owner=lease_owner
        ):
            return  # cancelled (or ended elsewhere) in the meantime
        record.status, record.started_at, record.attempts = WorkflowStatus.RUNNING, started_at, attempts
        self.events.status(record)
        self.changed(record.id, WorkflowStatus.RUNNING)
        if record.cached_from is not None and record.cache_outcome is CacheOutcome.COALESCED:
            try:
                if await self._follow(record, cancel_requested):
                    return
            except asyncio.CancelledError:
                if interrupted():
                    await asyncio.shield(self.store.update(workflow_id=record.id, attempts=attempts - 1))
                    raise
                await asyncio.shield(self._finish(record, WorkflowStatus.CANCELLED, progress=record.progress))
                raise
        logger.info(
            "workflow resumed" if resumed else "workflow started",
            extra={"event": "workflow_resumed" if resumed else "workflow_started", "attempt": attempts},
        )
        flushed_at = time.monotonic()
        request = spec.request_model.model_validate(record.input)
        config: RunnableConfig = {"configurable": {"thread_id": record.id}}
        graph = self._graph(spec)
        # A run that never started has no checkpoint: skip the lookup on the common path, ours
        # and LangGraph's (the saver answers its opening read without a query).
        has_checkpoint = resumed and await self.checkpointer.aget_tuple(config) is not None
        if not resumed:
            config["configurable"][NEW_THREAD] = True
        graph_input: Any = None if has_checkpoint else spec.initial_state(request)
        # Answered while waiting: hand the answer to the interrupt, unless the checkpoint is
        # already past it (a crash after the answer was consumed).
        if has_checkpoint and record.resume_value is not None and (await graph.aget_state(config)).interrupts:
            graph_input = Command(resume=record.resume_value)
        run_context = spec.make_context(request, self.providers, self.default_models[spec.name])
        state: dict[str, Any] = {}
        progress = record.progress
        budget = getattr(request, "max_tokens_budget", None)
        interrupts: tuple[Any, ...] = ()
        # The deadline covers execution, not a human's thinking time: it restarts on resume.
        remaining = self.workflow_timeout - _elapsed(record.resumed_at or started_at)
        # LLM calls stream tokens only while someone watches the run (see backend.runs.events).
        watch = context.token_watch.set(lambda: self.events.watched(record.id))
        try:
            async with asyncio.timeout(max(remaining, 0.001)):
                stream = cast(
                    "AsyncGenerator[tuple[str, Any], None]",
                    graph.astream(
                        graph_input,
                        config,
                        context=run_context,
                        durability="sync",
                        stream_mode=STREAM_MODES,
                    ),
                )
                emit = self.events.emit
                async with contextlib.aclosing(stream):
                    last_node = progress.get("node", "")
                    async for mode, chunk in stream:
                        if mode == "messages":
                            message, metadata = chunk
                            emit(record.id, "messages", [jsonable(message), jsonable(metadata)])
                            continue
                        if mode == "updates":
                            if isinstance(chunk, dict) and "__interrupt__" in chunk:
                                interrupts = tuple(chunk["__interrupt__"])
                                continue
                            last_node = next(iter(chunk), last_node) if isinstance(chunk, dict) else last_node
                            emit(record.id, "updates", jsonable(chunk))
                            continue
                        if mode == "custom":
                            emit(record.id, "custom", jsonable(chunk))
                            continue
                        state = {k: v for k, v in cast("dict[str, Any]", chunk).items() if k != "__interrupt__"}
                        emit(record.id, "values", jsonable(state))
                        progress = spec.progress(last_node, state)
                        usage = Usage.from_dict(state.get("usage"))
                        record.progress, record.usage = progress, usage
                        self.events.status(record)
                        self.changed(record.id, WorkflowStatus.RUNNING)
                        if time.monotonic() - flushed_at >= self.progress_interval:
                            flushed_at = time.monotonic()
                            await self.store.write_progress(
                                workflow_id=record.id,
                                progress=progress,
                                usage=usage,
                                timeline=list(record.timeline or []),
                            )
                        if budget is not None and usage.total_tokens >= budget:
                            raise BudgetExceeded(f"The run spent {usage.total_tokens} tokens of its {budget} budget.")
                        if cancel_requested():
                            logger.info("workflow cancelled at a node boundary", extra={"event": "workflow_cancelled"})
                            await self._finish(record, WorkflowStatus.CANCELLED, state=state, progress=progress)
                            return
        except asyncio.CancelledError:
            if interrupted():
                # Shutdown: the record stays resumable, and this attempt is given back.
                await asyncio.shield(self.store.update(workflow_id=record.id, attempts=attempts - 1))
                raise
            await asyncio.shield(self._finish(record, WorkflowStatus.CANCELLED, state=state, progress=progress))
            raise
        except TimeoutError:
            error = WorkflowTimeout(f"The run exceeded its {self.workflow_timeout:.0f} s deadline.")
            await self._fail(record, error.code, error.detail, state, progress, spec)
            return
        except AgentflowError as error:
            await self._fail(record, error.code, error.detail, state, progress, spec)
            return
        except Exception:
            logger.exception("workflow crashed", extra={"event": "workflow_error"})
            await self._fail(record, "internal_error", "The workflow failed unexpectedly.", state, progress)
            return
        finally:
            context.token_watch.reset(watch)
        if interrupts:
            await self._wait(record, interrupts[0].value, state, progress)
            return
        await self._finish(record, WorkflowStatus.COMPLETED, state=state, result=spec.result(state), progress=progress)

    async def _wait_turn(self, record: WorkflowRecord) -> bool:
        """Hold a run enqueued on a busy thread until every earlier run of the thread has ended.

        Waits like a coalesced follower: woken by the predecessor's changes, re-reading at least
        every ``FOLLOW_POLL_SECONDS``. Returns False if the run ended meanwhile (cancelled while
        queued); it stays ``queued`` while it waits.
        """
        assert record.thread_id is not None
        logged = False
        while True:
            ahead = await self.threads.runs_ahead(
                thread_id=record.thread_id, run_id=record.id, created_at=record.created_at
            )
            if ahead is None:
                return True
            signal = self.hub.watch(ahead)
            current = await self.store.get(workflow_id=record.id)
            if current is None or current.status.is_terminal:
                return False
            if not logged:
                logged = True
                logger.info(
                    "workflow waits for the run ahead of it on its thread",
                    extra={"event": "workflow_enqueued", "thread_id": record.thread_id, "waits_for": ahead},
                )
            await self.hub.wait(signal, FOLLOW_POLL_SECONDS)

    async def _wait(
        self, record: WorkflowRecord, question: Any, state: Mapping[str, Any], progress: dict[str, Any]
    ) -> None:
        """The graph stopped at an interrupt: park the run ``waiting`` on ``question``, keeping its checkpoint."""
        pending = dict(question) if isinstance(question, Mapping) else {"kind": "input", "value": question}
        pending.setdefault("kind", "input")
        since = utcnow()
        usage = Usage.from_dict(state.get("usage")) if state else record.usage
        if not await self.store.start_waiting(
            workflow_id=record.id,
            pending=pending,
            since=since,
            progress=progress,
            usage=usage,
            timeline=list(record.timeline) if record.timeline is not None else None,
        ):
            return  # ended elsewhere in the meantime
        record.status, record.pending, record.waiting_since = WorkflowStatus.WAITING, pending, since
        record.resume_value, record.flight_key = None, None
        record.progress, record.usage = progress, usage
        self.events.status(record)
        self.changed(record.id)
        logger.info(
            "workflow waiting for an answer",
            extra={"event": "workflow_waiting", "pending_kind": pending["kind"], "usage": usage.as_dict()},
        )

    async def end_waiting(
        self,
        workflow_id: str,
        *,
        status: WorkflowStatus = WorkflowStatus.CANCELLED,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> WorkflowRecord | None:
        """End a waiting run (rejected, cancelled or expired) and drop its checkpoint; None if it
        was not waiting."""
        record = await self.store.end_waiting(
            workflow_id=workflow_id, status=status, error_code=error_code, error_message=error_message
        )
        if record is None:
            return None
        self.changed(workflow_id)
        _count_finished(record)
        with context.bind(workflow_id=workflow_id, workflow_type=record.workflow_type):
            logger.info(
                "workflow %s while waiting",
                status.value,
                extra={"event": f"workflow_{status.value}", "error_code": error_code},
            )
        with contextlib.suppress(Exception):
            await self.checkpointer.adelete_thread(workflow_id)
        return record

    async def expire_waiting(self, ttl: float) -> int:
        """End every run waiting longer than ``ttl`` seconds as ``cancelled`` (``approval_timeout``)."""
        expired = 0
        for workflow_id in await self.store.waiting_before(before=utcnow() - timedelta(seconds=ttl)):
            ended = await self.end_waiting(
                workflow_id,
                error_code="approval_timeout",
                error_message=f"Nobody answered within {ttl:g} s (AGENTFLOW_WAITING_TTL).",
            )
            expired += ended is not None
        return expired

    async def _follow(self, record: WorkflowRecord, cancel_requested: Callable[[], bool]) -> bool:
        """Wait on the identical run ``record`` coalesced onto, and end as it ended.

        Returns True once ``record`` is finished (completed with the run's result at zero usage,
        failed with its error, or cancelled itself); False when ``record`` must run itself: the
        run it followed was cancelled, and ``record`` now holds the flight for its key.
        """
        logger.info(
            "workflow coalesced onto an identical run in flight",
            extra={"event": "workflow_coalesced", "leader_id": record.cached_from},
        )
        while record.cached_from is not None:
            leader_id = record.cached_from
            signal = self.hub.watch(leader_id)
            leader = self.live.get(leader_id) or await self.store.get(workflow_id=leader_id)
            if leader is not None and leader.status is WorkflowStatus.COMPLETED:
                await self._finish(
                    record,
                    WorkflowStatus.COMPLETED,
                    result=leader.result,
                    progress=leader.progress,
                    result_by_reference=True,
                )
                return True
            if leader is not None and leader.status is WorkflowStatus.FAILED:
                await self._finish(
                    record,
                    WorkflowStatus.FAILED,
                    result=leader.result,
                    error_code=leader.error_code,
                    error_message=leader.error_message,
                    progress=leader.progress,
                )
                return True
            if cancel_requested() or record.status.is_terminal:
                await self._finish(record, WorkflowStatus.CANCELLED, progress=record.progress)
                return True
            if leader is None or leader.status is WorkflowStatus.CANCELLED:
                key = record.cache_key
                if key is None:  # (never expected: a follower always has its key) run unflighted
                    await self.store.update(workflow_id=record.id, cached_from=None, cache_outcome=CacheOutcome.MISS)
                    record.cached_from, record.cache_outcome = None, CacheOutcome.MISS
                    return False
                if await self.store.take_flight(workflow_id=record.id, key=key):
                    record.cached_from, record.flight_key, record.cache_outcome = None, key, CacheOutcome.MISS
                    self.changed(record.id)
                    return False
                # Another follower took the flight (follow it), or it already ended (its result is cached).
                successor = await self.store.flight_leader(key=key) or await self.store.cached_result(
                    key=key, now=utcnow()
                )
                if successor is not None and successor.id != record.id:
                    record.cached_from = successor.id
                    await self.store.update(workflow_id=record.id, cached_from=successor.id)
                    continue
            await self.hub.wait(signal, FOLLOW_POLL_SECONDS)
        return False

    async def _fail(
        self,
        record: WorkflowRecord,
        code: str,
        message: str,
        state: Mapping[str, Any] | None,
        progress: dict[str, Any] | None = None,
        spec: WorkflowSpec | None = None,
    ) -> None:
        # A run stopped by its budget keeps the best result it reached (when it has one).
        partial = spec.partial_result(state) if spec is not None and state and code == "budget_exceeded" else None
        await self._finish(
            record,
            WorkflowStatus.FAILED,
            state=state,
            result=partial,
            error_code=code,
            error_message=message,
            progress=progress,
        )

    @staticmethod
    def _thread_values(
        record: WorkflowRecord, state: Mapping[str, Any] | None, result: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        spec = get_spec(record.workflow_type)
        return final_values(spec, record, state, result) if spec is not None else None

    async def _finish(
        self,
        record: WorkflowRecord,
        status: WorkflowStatus,
        *,
        state: Mapping[str, Any] | None = None,
        result: dict[str, Any] | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        progress: dict[str, Any] | None = None,
        result_by_reference: bool = False,
    ) -> None:
        finished_at = utcnow()
        usage = Usage.from_dict(state.get("usage")) if state else None
        cacheable = (
            status is WorkflowStatus.COMPLETED
            and self.cache_ttl > 0
            and record.cache_key is not None
            and record.cache_outcome in (CacheOutcome.MISS, CacheOutcome.REFRESH)
        )
        final = dataclasses.replace(
            record,
            status=status,
            finished_at=finished_at,
            result=result,
            error_code=error_code,
            error_message=error_message,
            usage=usage or record.usage,
            progress=progress if progress is not None else record.progress,
        )
        end = self.events.reserve(record.id, "end", record_fields(final))
        changed = await self.store.finish(
            workflow_id=record.id,
            status=status,
            result=result,
            error_code=error_code,
            error_message=error_message,
            usage=usage,
            progress=progress,
            finished_at=finished_at,
            timeline=list(record.timeline) if record.timeline is not None else None,
            result_by_reference=result_by_reference,
            thread_id=record.thread_id,
            # A cancelled run leaves its thread's values as they were (interrupt and rollback alike).
            thread_values=(
                self._thread_values(record, state, result)
                if record.thread_id is not None and status is not WorkflowStatus.CANCELLED
                else None
            ),
            cache_entry=(
                (record.cache_key, record.workflow_type, finished_at + timedelta(seconds=self.cache_ttl))
                if cacheable and record.cache_key is not None
                else None
            ),
            events=await self.events.take_unwritten(record.id, then=end),
        )
        if changed:
            if end is not None:
                self.events.publish(record.id, end)
            record.status, record.finished_at, record.result = status, finished_at, result
            record.error_code, record.error_message = error_code, error_message
            record.usage = usage or record.usage
            record.progress = progress if progress is not None else record.progress
            self.store.remember_finished(record)
            self.changed(record.id)  # answer waiters now, not after the clean-up below
            _count_finished(record)
            logger.info(
                "workflow %s",
                status.value,
                extra={"event": f"workflow_{status.value}", "error_code": error_code, "usage": record.usage.as_dict()},
            )
        with contextlib.suppress(Exception):
            # Finished runs need no checkpoints; dropping them keeps the checkpoint store small.
            await self.checkpointer.adelete_thread(record.id)


def _elapsed(started_at: datetime) -> float:
    return (utcnow() - started_at).total_seconds()


def _maybe_resumed(record: WorkflowRecord) -> bool:
    return record.status is WorkflowStatus.RUNNING or record.attempts > 0


def _count_finished(record: WorkflowRecord) -> None:
    instruments = metrics()
    coalesced = record.cache_outcome is CacheOutcome.COALESCED
    source = "coalesced" if coalesced else "run"
    instruments.child(instruments.workflows_finished, record.workflow_type, record.status.value, source).inc()
    if not coalesced and record.execution_time is not None:
        duration = instruments.child(instruments.workflow_duration, record.workflow_type, record.status.value)
        duration.observe(record.execution_time)
