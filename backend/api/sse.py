"""Server-sent event framing for a run's event stream (the stream itself is ``RunService.events``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from backend.api.schemas import WorkflowPublic
from backend.runs import RunService, WorkflowRecord

__all__ = ["EVENT_SCHEMA", "workflow_events"]

#: One event of the stream, as OpenAPI describes ``text/event-stream`` items (comments are not events).
EVENT_SCHEMA = {
    "type": "object",
    "description": "`update` whenever status, progress or usage changes, then one `end`; `data` is the record.",
    "required": ["event", "id", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["update", "end"]},
        "id": {"type": "string", "description": "The workflow id."},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": "#/components/schemas/WorkflowPublic"},
        },
    },
}


def _event(name: str, record: WorkflowRecord) -> str:
    data = WorkflowPublic.from_record(record).model_dump_json()
    return f"event: {name}\nid: {record.id}\ndata: {data}\n\n"


async def workflow_events(runs: RunService, workflow_id: str, *, owner: str | None = None) -> AsyncIterator[str]:
    """``update`` on every change, ``end`` with the terminal record, comments as keep-alives."""
    async for record in runs.events(workflow_id=workflow_id, owner=owner):
        if record is None:
            yield ": keep-alive\n\n"
        elif record.status.is_terminal:
            yield _event("update", record)
            yield _event("end", record)
        else:
            yield _event("update", record)
