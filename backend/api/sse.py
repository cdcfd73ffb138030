"""Server-sent event framing for a run's event stream (the stream itself is ``RunService.events``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from backend.api.schemas import WorkflowPublic
from backend.runs import RunService, WorkflowRecord

__all__ = ["workflow_events"]


def _event(name: str, record: WorkflowRecord) -> str:
    data = WorkflowPublic.from_record(record).model_dump_json()
    return f"event: {name}\nid: {record.id}\ndata: {data}\n\n"


async def workflow_events(runs: RunService, workflow_id: str) -> AsyncIterator[str]:
    """``update`` on every change, ``end`` with the terminal record, comments as keep-alives."""
    async for record in runs.events(workflow_id=workflow_id):
        if record is None:
            yield ": keep-alive\n\n"
        elif record.status.is_terminal:
            yield _event("update", record)
            yield _event("end", record)
        else:
            yield _event("update", record)
