"""Server-sent events for one workflow: its record each time it changes, until it ends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

from backend.executor import LocalExecutor
from backend.schemas import WorkflowPublic
from backend.store import WorkflowRecord

__all__ = ["workflow_events"]

KEEPALIVE_SECONDS = 15.0
POLL_SECONDS = 0.25


def _event(name: str, record: WorkflowRecord) -> str:
    data = WorkflowPublic.from_record(record).model_dump_json()
    return f"event: {name}\nid: {record.id}\ndata: {data}\n\n"


def _fingerprint(record: WorkflowRecord) -> str:
    return json.dumps([record.status.value, record.progress, record.usage, record.cancel_requested], sort_keys=True)


async def workflow_events(record: WorkflowRecord, *, executor: LocalExecutor) -> AsyncIterator[str]:
    """Yield SSE frames: ``update`` on every change, ``end`` when terminal.

    A run executing in this process signals each change; a run executing in another worker is
    polled from the store.
    """
    last = _fingerprint(record)
    yield _event("update", record)
    quiet_since = time.monotonic()
    while not record.status.is_terminal:
        signal = executor.change_signal(record.id)
        if signal is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(signal.wait(), KEEPALIVE_SECONDS)
        else:
            await asyncio.sleep(POLL_SECONDS)
        latest = await executor.get(record.id)
        if latest is None:
            return
        record = latest
        fingerprint = _fingerprint(record)
        if fingerprint != last:
            last = fingerprint
            quiet_since = time.monotonic()
            yield _event("update", record)
        elif time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
    yield _event("end", record)
