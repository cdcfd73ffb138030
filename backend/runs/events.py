"""The per-run event log: every event a run produces, numbered, buffered, stored and replayable.

A run's events (``RunEvent``) carry a sequence number that starts at 1 and only grows, also
across a resume after a crash (the resuming process continues after the highest stored one).
Kinds: ``values`` (graph state after a superstep), ``updates`` (``{node: update}``), ``messages``
(LangGraph's ``stream_mode="messages"`` item: ``[message_chunk, metadata]``), ``custom`` (what
nodes write with ``get_stream_writer()``), ``status`` (the record, when status, progress or usage
change) and ``end`` (the terminal record, always last).

Cost: events are not written one row at a time. The process that executes a run keeps its
events in memory, serves subscribers in the same process from there at once, and writes every
run's pending events in one multi-row INSERT at most every ``flush_interval`` seconds; the last
events (``end`` included) go in the transaction that finishes the run. On PostgreSQL each write
notifies ``<workflow id>:events``, so a stream in another process (the API, with the run on a
queue worker) wakes when the rows are committed; without notifications it polls.

A crash loses at most the last ``flush_interval`` of events of the runs it interrupts, yet a
subscriber may already have seen some of them (served from memory). So that such a subscriber
never sees a number twice, a process serves from memory only events numbered at most
``RESUME_GAP`` past the last one it knows stored, and a resumed run numbers its next events
``RESUME_GAP`` past the last stored one: numbers jump at a resume, and are never reused. A
reader that reconnects with the last number it saw receives every stored event after it.
Events are deleted ``retention`` seconds after their run ended (``sweep_forever``).

Tokens: LLM calls stream (``messages`` chunks) only while someone watches the run
(``watching``, held by every ``RunService.stream``). A stream in another process (queue
executor, several server processes on PostgreSQL) says so through the change hub every
``WATCH_RENEW_SECONDS`` (``backend.runs.signals``); with no such channel (several server
processes on SQLite) calls always stream (``stream_always``). A call nobody watches is made
whole and logged as one ``messages`` event: streaming costs CPU per chunk.

Written by hand because no library offers a per-run, resumable, batched log over our store: the
store (SQLAlchemy), the change hub and sse-starlette (at the edge) do the rest.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic_core import to_jsonable_python

from agents.providers.usage import Usage
from backend.runs.records import CacheOutcome, WorkflowRecord, WorkflowStatus
from backend.runs.signals import ChangeHub
from backend.runs.store import WorkflowStore, utcnow

__all__ = [
    "EVENT_KINDS",
    "EventLog",
    "RunEvent",
    "events_key",
    "jsonable",
    "record_fields",
    "record_from_fields",
]

logger = logging.getLogger("agentflow.events")

EVENT_KINDS = ("values", "updates", "messages", "custom", "status", "end")
#: Events of a live run kept in memory beyond the unwritten ones (for subscribers that lag a little).
MEMORY_TAIL = 256
#: How far past its last stored event a run's numbers may run ahead in memory; a resumed run
#: starts numbering this far past the last stored event (see the module docstring).
RESUME_GAP = 1000


@dataclass(frozen=True, slots=True)
class RunEvent:
    """One event of a run's log."""

    seq: int  #: per run, from 1, strictly increasing, never reused
    kind: str  #: one of ``EVENT_KINDS``
    data: Any  #: JSON-able


def events_key(workflow_id: str) -> str:
    """The change-hub key (and NOTIFY payload) that signals new events of a run."""
    return f"{workflow_id}:events"


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types (graph state holds pydantic models, dataclasses, tuples...)."""
    return to_jsonable_python(value, fallback=str)


def record_fields(record: WorkflowRecord) -> dict[str, Any]:
    """The record as a plain JSON-able dict (what ``status`` and ``end`` events carry).

    Internal bookkeeping (owner, idempotency key, lease, cache keys, trace context, timeline)
    stays out: events are shown to clients.
    """
    return {
        "id": record.id,
        "workflow_type": record.workflow_type,
        "status": record.status.value,
        "created_at": record.created_at.isoformat(),
        "started_at": record.started_at.isoformat() if record.started_at else None,
        "finished_at": record.finished_at.isoformat() if record.finished_at else None,
        "input": record.input,
        "result": jsonable(record.result) if record.result is not None else None,
        "error_code": record.error_code,
        "error_message": record.error_message,
        "progress": dict(record.progress),
        "usage": record.usage.as_dict(),
        "correlation_id": record.correlation_id,
        "cancel_requested": record.cancel_requested,
        "attempts": record.attempts,
        "cached_from": record.cached_from,
        "cache_outcome": record.cache_outcome.value if record.cache_outcome else None,
        # A waiting run's question (e.g. the plan to approve), so a stream shows what it waits on.
        "pending": jsonable(record.pending) if record.pending is not None else None,
        "waiting_since": record.waiting_since.isoformat() if record.waiting_since else None,
    }


def record_from_fields(data: dict[str, Any]) -> WorkflowRecord:
    """The record a ``status`` or ``end`` event carries (the inverse of ``record_fields``)."""

    def when(name: str) -> datetime | None:
        value = data.get(name)
        return datetime.fromisoformat(value) if value else None

    created_at = when("created_at")
    assert created_at is not None
    return WorkflowRecord(
        id=data["id"],
        workflow_type=data["workflow_type"],
        status=WorkflowStatus(data["status"]),
        created_at=created_at,
        started_at=when("started_at"),
        finished_at=when("finished_at"),
        input=data.get("input") or {},
        result=data.get("result"),
        error_code=data.get("error_code"),
        error_message=data.get("error_message"),
        progress=data.get("progress") or {},
        usage=Usage.from_dict(data.get("usage")),
        correlation_id=data.get("correlation_id"),
        cancel_requested=bool(data.get("cancel_requested")),
        attempts=int(data.get("attempts") or 0),
        cached_from=data.get("cached_from"),
        cache_outcome=CacheOutcome(data["cache_outcome"]) if data.get("cache_outcome") else None,
        pending=data.get("pending"),
        waiting_since=when("waiting_since"),
    )


def _status_fingerprint(record: WorkflowRecord) -> tuple[Any, ...]:
    """What a ``status`` event shows that can change while a run runs (compared with ``==``)."""
    # progress is copied: the runner may update the dict it holds in place.
    return (record.status, dict(record.progress), record.usage, record.cancel_requested)


@dataclass(slots=True)
class _RunLog:
    """The in-memory part of one live run's log, in the process executing it."""

    next_seq: int
    #: The highest number known to be stored (memory serves at most ``RESUME_GAP`` past it).
    stored_upto: int
    #: Recent events, contiguous and in order: every unwritten one, plus a tail of written ones.
    events: list[RunEvent] = field(default_factory=list)
    #: How many of ``events`` (from the end) are not written yet.
    unwritten: int = 0
    status: tuple[Any, ...] | None = None


class EventLog:
    """Numbers, buffers, writes and reads run events for one process (see the module docstring)."""

    def __init__(
        self, *, store: WorkflowStore, hub: ChangeHub, flush_interval: float = 0.1, stream_always: bool = False
    ) -> None:
        self.store = store
        self.hub = hub
        self.flush_interval = flush_interval
        self.stream_always = stream_always
        self._runs: dict[str, _RunLog] = {}
        self._watchers: dict[str, int] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None

    # --- who watches --------------------------------------------------------------------------

    @contextlib.contextmanager
    def watching(self, workflow_id: str) -> Iterator[None]:
        """Mark the run as watched (its LLM calls stream tokens) for the duration of a block."""
        self._watchers[workflow_id] = self._watchers.get(workflow_id, 0) + 1
        try:
            yield
        finally:
            left = self._watchers.pop(workflow_id, 1) - 1
            if left > 0:
                self._watchers[workflow_id] = left

    def watched(self, workflow_id: str) -> bool:
        """Whether the run's LLM calls should stream tokens now (watched here, or in another
        process that said so through the change hub)."""
        return self.stream_always or workflow_id in self._watchers or self.hub.watched_elsewhere(workflow_id)

    # --- writing (the process executing the run) -------------------------------------------

    async def open(self, workflow_id: str, *, resumed: bool) -> None:
        """Start logging a run here; a resumed run continues after its last stored event."""
        if workflow_id in self._runs:
            return
        if not resumed:
            self._runs[workflow_id] = _RunLog(next_seq=1, stored_upto=0)
            return
        last = await self.store.last_event_seq(workflow_id=workflow_id)
        self._runs.setdefault(workflow_id, _RunLog(next_seq=last + 1 + RESUME_GAP, stored_upto=last))

    def is_live(self, workflow_id: str) -> bool:
        """Whether the run's log is held (and written) by this process."""
        return workflow_id in self._runs

    def emit(self, workflow_id: str, kind: str, data: Any) -> RunEvent | None:
        """Append an event (``data`` already JSON-able); None if the run is not logged here."""
        run = self._runs.get(workflow_id)
        if run is None:
            return None
        event = RunEvent(run.next_seq, kind, data)
        run.next_seq += 1
        run.events.append(event)
        run.unwritten += 1
        self.hub.changed(events_key(workflow_id))
        if self._timer is None and self._flushing is None:
            self._timer = asyncio.get_running_loop().call_later(self.flush_interval, self._flush_soon)
        return event

    def status(self, record: WorkflowRecord) -> RunEvent | None:
        """Emit a ``status`` event if status, progress, usage or a cancel request changed."""
        run = self._runs.get(record.id)
        if run is None:
            return None
        fingerprint = _status_fingerprint(record)
        if fingerprint == run.status:
            return None
        run.status = fingerprint
        return self.emit(record.id, "status", record_fields(record))

    def reserve(self, workflow_id: str, kind: str, data: Any) -> RunEvent | None:
        """Number an event without publishing it (the ``end`` event, written with the finish)."""
        run = self._runs.get(workflow_id)
        if run is None:
            return None
        event = RunEvent(run.next_seq, kind, data)
        run.next_seq += 1
        return event

    def publish(self, workflow_id: str, event: RunEvent) -> None:
        """Make a reserved event visible here, once it is stored."""
        run = self._runs.get(workflow_id)
        if run is not None:
            run.events.append(event)
            run.stored_upto = max(run.stored_upto, event.seq)
        self.hub.changed(events_key(workflow_id))

    async def take_unwritten(self, workflow_id: str, *, then: RunEvent | None = None) -> list[dict[str, Any]]:
        """The run's events not yet written (and ``then``, a reserved one), as rows, for the
        caller to write (with the run's finish).

        Waits for a write in flight first, so what it returns follows everything stored.
        """
        await self._settle()
        run = self._runs.get(workflow_id)
        pending: list[RunEvent] = []
        if run is not None and run.unwritten:
            pending = run.events[len(run.events) - run.unwritten :]
            run.unwritten = 0
        if then is not None:
            pending.append(then)
        return _rows(workflow_id, pending)

    async def close(self, workflow_id: str) -> None:
        """Write what is left of the run's events and stop logging it here."""
        with contextlib.suppress(Exception):
            rows = await self.take_unwritten(workflow_id)
            if rows:
                await self.store.append_events(rows=rows)
                self.hub.changed(events_key(workflow_id))
        self._runs.pop(workflow_id, None)
        self.hub.changed(events_key(workflow_id))

    async def flush(self) -> None:
        """Write every run's pending events now (one INSERT)."""
        await self._settle()
        self._flushing = asyncio.create_task(self._write(), name="event-log-flush")
        await asyncio.shield(self._flushing)

    async def aclose(self) -> None:
        """Write what is pending and stop the flush timer (at shutdown, before the engine closes).

        Without it a flush scheduled by the last events could start after the store's engine is
        disposed and the event loop closed, and those events would be lost.
        """
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if any(run.unwritten for run in self._runs.values()):
            await self.flush()
        else:
            await self._settle()
        if self._timer is not None:  # a write that failed re-armed it; nothing will run it now
            self._timer.cancel()
            self._timer = None

    async def _settle(self) -> None:
        while self._flushing is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._flushing)

    def _flush_soon(self) -> None:
        self._timer = None
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._write(), name="event-log-flush")

    async def _write(self) -> None:
        taken: list[tuple[str, _RunLog, int, int]] = []  # (id, run, how many, the last number taken)
        rows: list[dict[str, Any]] = []
        try:
            for workflow_id, run in self._runs.items():
                if run.unwritten:
                    rows.extend(_rows(workflow_id, run.events[len(run.events) - run.unwritten :]))
                    taken.append((workflow_id, run, run.unwritten, run.events[-1].seq))
                    run.unwritten = 0
            if rows:
                await self.store.append_events(rows=rows)
            for workflow_id, run, _, last in taken:
                run.stored_upto = max(run.stored_upto, last)
                _trim(run)
                self.hub.changed(events_key(workflow_id))  # more of the run may be shown now
        except BaseException as error:
            for _, run, count, _ in taken:  # written next time (or with the run's finish)
                run.unwritten += count
            if not isinstance(error, Exception):
                raise
            logger.warning("writing run events failed; retrying", extra={"event": "run_events_write_failed"})
        finally:
            self._flushing = None
            if self._timer is None and any(run.unwritten for run in self._runs.values()):
                self._timer = asyncio.get_running_loop().call_later(self.flush_interval, self._flush_soon)

    # --- reading (any process) ----------------------------------------------------------------

    async def read(self, workflow_id: str, *, after: int, limit: int = 1000) -> list[RunEvent]:
        """Events with ``seq`` > ``after``, in order, without gaps: from memory when this process
        holds them, else from the store (then from memory for the part not written yet)."""
        run = self._runs.get(workflow_id)
        if run is not None and run.events and run.events[0].seq <= after + 1:
            return _after(run.events, after, run.stored_upto + RESUME_GAP)[:limit]
        stored = await self.store.events(workflow_id=workflow_id, after=after, limit=limit)
        found = [RunEvent(seq, kind, data) for seq, kind, data in stored]
        run = self._runs.get(workflow_id)
        if run is not None and run.events and len(found) < limit:
            upto = found[-1].seq if found else after
            if run.events[0].seq <= upto + 1:
                found.extend(_after(run.events, upto, run.stored_upto + RESUME_GAP))
        return found

    # --- retention ----------------------------------------------------------------------------

    async def sweep(self, *, retention: float, since: datetime | None = None) -> int:
        """Delete the events of runs that ended more than ``retention`` seconds ago."""
        return await self.store.delete_events(
            finished_before=utcnow() - timedelta(seconds=retention), finished_since=since
        )

    async def sweep_forever(self, *, retention: float, interval: float | None = None) -> None:
        """Run ``sweep`` periodically (every ``retention`` / 4, at most every 10 minutes).

        After the first pass only recently ended runs are looked at (with a margin for commits
        that land late), so a sweep costs little however much history the store holds.
        """
        every = interval if interval is not None else min(max(retention / 4, 1.0), 600.0)
        since: datetime | None = None
        while True:
            cutoff = utcnow() - timedelta(seconds=retention)
            try:
                deleted = await self.sweep(retention=retention, since=since)
                since = cutoff - timedelta(seconds=max(every * 2, 3600))
                if deleted:
                    logger.info("deleted old run events", extra={"event": "run_events_swept", "rows": deleted})
            except Exception:
                logger.exception("event retention sweep failed", extra={"event": "run_events_sweep_failed"})
            await asyncio.sleep(every)


def _after(events: Sequence[RunEvent], after: int, upto: int) -> list[RunEvent]:
    """The events numbered after ``after`` and at most ``upto`` (``events`` is in order)."""
    start = bisect.bisect_right(events, after, key=lambda event: event.seq)
    end = bisect.bisect_right(events, upto, key=lambda event: event.seq)
    return list(events[start:end])


def _trim(run: _RunLog) -> None:
    keep = max(MEMORY_TAIL, run.unwritten)
    if len(run.events) > keep * 2:
        del run.events[: len(run.events) - keep]


def _rows(workflow_id: str, events: Sequence[RunEvent]) -> list[dict[str, Any]]:
    now = utcnow()
    return [
        {"workflow_id": workflow_id, "seq": event.seq, "kind": event.kind, "data": event.data, "created_at": now}
        for event in events
    ]
