"""Change signals: wake whoever waits on a run (``?wait``, event streams) when its record changes.

Within one process the engine signals the hub directly. Across processes, on PostgreSQL, every
record write sends ``NOTIFY agentflow_runs`` in its own transaction (see the store), and one
``LISTEN`` connection per process feeds the hub, so a waiter in any API process wakes when a
worker anywhere commits a change. Without a cross-process source (SQLite with several server
processes) waiters fall back to re-reading the record every ``POLL_SECONDS``.

A notification names the status the record has after the write when the writer knows it
(``status_key``: ``<id>=<status>``). A waiter that only cares about the run settling (``?wait``:
ended, or waiting for an answer) watches with ``settled_only`` and is not woken by the progress
writes of a running run: in queue mode a run notifies at every step, and each wake-up of a long
poll was a read of the record (most of an API process's CPU per run under B2q). The runner
names ``running`` in-process too, when a run starts and after each step, so a ``?wait`` on the
executing process sleeps through the steps as well. A change whose status is not named (writes
that do not set the status, the runner's other signals) wakes every watcher, as before.

Written by hand because it is a dictionary of ``asyncio.Event`` and one LISTEN loop: psycopg
provides the notifications; nothing more is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator

__all__ = [
    "POLL_SECONDS",
    "SETTLED_STATUSES",
    "WATCH_RENEW_SECONDS",
    "ChangeHub",
    "listen_for_changes",
    "status_key",
    "watch_key",
]

logger = logging.getLogger("agentflow.runs")
POLL_SECONDS = 0.25
#: A process watching a run elsewhere says so again this often; the word lasts three times as long.
WATCH_RENEW_SECONDS = 5.0
_WATCH_SUFFIX = ":watch"
#: The statuses a settled-only watcher is woken by (``WorkflowStatus`` values: final, or waiting).
SETTLED_STATUSES = frozenset({"completed", "failed", "cancelled", "waiting"})


def watch_key(workflow_id: str) -> str:
    """The key a process notifies to say that someone there watches ``workflow_id``'s events."""
    return workflow_id + _WATCH_SUFFIX


def status_key(workflow_id: str, status: str) -> str:
    """The key (and NOTIFY payload) saying that ``workflow_id`` changed and now has ``status``."""
    return f"{workflow_id}={status}"


class ChangeHub:
    """One event per watched run, set (and replaced) at the run's next change.

    Events are held weakly: a run nobody waits on costs nothing. Grab the event with ``watch``
    *before* reading the record, then wait on it, so a change in between is never missed.
    """

    def __init__(self, *, sees_every_change: bool) -> None:
        #: True when every change of every run reaches this hub (one process, or LISTEN is up).
        self.sees_every_change = sees_every_change
        self._events: weakref.WeakValueDictionary[str, asyncio.Event] = weakref.WeakValueDictionary()
        #: Watchers woken only when a run settles (or by a change of unknown status).
        self._settled: weakref.WeakValueDictionary[str, asyncio.Event] = weakref.WeakValueDictionary()
        #: Runs watched in another process (``watch_key`` notifications) → until when (monotonic).
        self._watched_elsewhere: dict[str, float] = {}

    def watch(self, workflow_id: str, *, settled_only: bool = False) -> asyncio.Event:
        """The event set at the run's next change; with ``settled_only``, at the next change into a
        settled status (``SETTLED_STATUSES``) or of unknown status."""
        events = self._settled if settled_only else self._events
        event = events.get(workflow_id)
        if event is None:
            event = events[workflow_id] = asyncio.Event()
        return event

    def changed(self, workflow_id: str) -> None:
        """Wake the watchers of a run; ``workflow_id`` may name its new status (``status_key``)."""
        if workflow_id.endswith(_WATCH_SUFFIX):
            now = time.monotonic()
            # Every process hears every watch, mostly of runs it does not execute: forget lapsed ones.
            for lapsed in [key for key, until in self._watched_elsewhere.items() if until < now]:
                del self._watched_elsewhere[lapsed]
            self._watched_elsewhere[workflow_id.removesuffix(_WATCH_SUFFIX)] = now + 3 * WATCH_RENEW_SECONDS
            return
        workflow_id, _, status = workflow_id.partition("=")
        event = self._events.pop(workflow_id, None)
        if event is not None:
            event.set()
        if not status or status in SETTLED_STATUSES:
            event = self._settled.pop(workflow_id, None)
            if event is not None:
                event.set()

    def watched_elsewhere(self, workflow_id: str) -> bool:
        """Whether another process said, recently enough, that someone there watches the run."""
        until = self._watched_elsewhere.get(workflow_id)
        if until is None:
            return False
        if until < time.monotonic():
            del self._watched_elsewhere[workflow_id]
            return False
        return True

    def changed_all(self) -> None:
        """Wake every waiter (after a gap in notifications, so they re-read their record)."""
        events = [*self._events.values(), *self._settled.values()]
        self._events.clear()
        self._settled.clear()
        for event in events:
            event.set()

    async def wait(self, event: asyncio.Event, seconds: float) -> None:
        """Until ``event`` is set or ``seconds`` pass (fewer when changes may go unseen)."""
        if not self.sees_every_change:
            seconds = min(seconds, POLL_SECONDS)
        # asyncio.timeout, not wait_for: wait_for runs the wait in a task of its own (3.11).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(seconds, 0)):
                await event.wait()


@contextlib.asynccontextmanager
async def listen_for_changes(hub: ChangeHub, conninfo: str, channel: str) -> AsyncIterator[None]:
    """Feed ``hub`` from PostgreSQL ``LISTEN channel`` for as long as the context is open.

    If the connection drops, waiters poll until it is back; on reconnect every waiter is woken
    once to re-read its record, since notifications sent meanwhile are lost.
    """
    ready = asyncio.Event()
    task = asyncio.create_task(_listen(hub, conninfo, channel, ready), name="change-listener")
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), 10)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _listen(hub: ChangeHub, conninfo: str, channel: str, ready: asyncio.Event) -> None:
    import psycopg
    from psycopg import sql

    delay = 0.5
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as connection:
                await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                hub.sees_every_change = True
                hub.changed_all()
                ready.set()
                delay = 0.5
                async for notification in connection.notifies():
                    for key in notification.payload.split(","):  # event-log appends batch their keys
                        hub.changed(key)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("change listener lost its connection; waiters poll", extra={"event": "listen_lost"})
        hub.sees_every_change = False
        ready.set()
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10.0)
