"""Progress of running runs on PostgreSQL: the latest of each run, written for every run at once.

In queue mode the record is the only place another process (the API answering a poll) sees a
run's progress, so a worker writes it at every step. One transaction per step of every run was,
under B2q, the largest share of a worker's store CPU and of PostgreSQL's (an UPDATE and a NOTIFY
each). Here a step only records the run's latest progress, usage and timeline in memory; every
``interval`` seconds (0.1, like the event log's batches) one statement updates every run that
moved, and one NOTIFY names them (``<id>=running``, so a ``?wait`` for the run to settle is not
woken by it). A poll sees a step at most ``interval`` plus a commit later, as an event stream
does.

Only rows still ``running`` are updated: a progress write never overtakes the transaction that
ended or parked the run. Those transactions take the run's pending progress first
(``take``) and write it themselves when they have none of their own. A crash loses at most the
last ``interval`` of progress; the run resumes from its checkpoint and writes progress again.

Written by hand: it is a timer around one UPDATE over ``json_to_recordset``
(``backend.runs.store.fastpath.UPDATE_PROGRESS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["ProgressBatch"]

logger = logging.getLogger("agentflow.store")

#: Writes rows (``id``, ``progress``, ``usage``, ``timeline``) of running runs and notifies them
#: (the store runs ``backend.runs.store.fastpath.UPDATE_PROGRESS``).
Write = Callable[[list[dict[str, Any]]], Awaitable[None]]


class ProgressBatch:
    """The pending progress of this process's running runs, written every ``interval`` seconds."""

    def __init__(self, write: Write, *, interval: float = 0.1) -> None:
        self.write = write
        self.interval = interval
        self._pending: dict[str, dict[str, Any]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._writing: asyncio.Task[None] | None = None

    def put(self, workflow_id: str, values: dict[str, Any]) -> None:
        """Record a run's latest ``progress``, ``usage`` and ``timeline`` (JSON-able) for the next write."""
        self._pending[workflow_id] = values
        if self._timer is None and self._writing is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._write_soon)

    def take(self, workflow_id: str) -> dict[str, Any] | None:
        """Remove and return a run's pending values (the caller writes them in its own transaction)."""
        return self._pending.pop(workflow_id, None)

    async def flush(self) -> None:
        """Write what is pending now (at shutdown, before the engine closes)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._writing is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._writing)
        if self._pending:
            self._writing = asyncio.create_task(self._write(), name="progress-write")
            await asyncio.shield(self._writing)

    def _write_soon(self) -> None:
        self._timer = None
        if self._writing is None:
            self._writing = asyncio.create_task(self._write(), name="progress-write")

    async def _write(self) -> None:
        batch, self._pending = self._pending, {}
        try:
            await self.write([{"id": workflow_id, **values} for workflow_id, values in batch.items()])
        except Exception:
            for workflow_id, values in batch.items():  # written next time, unless newer values came
                self._pending.setdefault(workflow_id, values)
            logger.warning("writing run progress failed; retrying", extra={"event": "run_progress_write_failed"})
        finally:
            self._writing = None
            if self._pending and self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(self.interval, self._write_soon)
